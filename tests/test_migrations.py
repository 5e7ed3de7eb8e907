import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync_core import migrate, tables
from tests.support.env import test_settings


def test_single_linear_head():
    assert len(migrate.heads()) == 1
    seen = set()
    for rev in migrate.script().walk_revisions():
        assert not rev.is_merge_point, f"{rev.revision} is a merge"
        assert rev.revision not in seen
        seen.add(rev.revision)


def test_upgrade_downgrade_upgrade(tmp_path, empty_db_url):
    s = test_settings(tmp_path, empty_db_url)
    out = []
    r = migrate.migrate(s, out.append)
    assert r.revision == migrate.head() and r.applied
    assert any(line.startswith("applying") for line in out) and any("applied" in line for line in out)
    migrate.downgrade(s, "base", say=out.append)
    eng = sa.create_engine(empty_db_url)
    with eng.connect() as c:
        assert migrate.current_revision(c) is None
        assert c.execute(sa.text("select to_regclass('sync_state')")).scalar() is None
    r = migrate.migrate(s, out.append)
    assert r.revision == migrate.head()
    with eng.connect() as c:
        log = migrate.history(c)
        assert log and log[0]["revision"] == migrate.head() and log[0]["duration_ms"] >= 0
    eng.dispose()


def test_migrated_schema_matches_table_definitions(db_url):
    from sync_core import streams

    combined = sa.MetaData()
    for md in (tables.metadata, streams.metadata):
        for t in md.tables.values():
            t.to_metadata(combined)
    # the after-sale tables (issue 11) are declared before their streams exist: they must be covered too
    from sync_core.streams import after_sale_tables
    assert {t.name for t in after_sale_tables.ALL_TABLES} <= set(combined.tables)
    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), combined)
    eng.dispose()
    assert diff == []


def test_each_stream_has_its_own_revision():
    from sync_core.streams import STREAMS

    revs = list(migrate.script().walk_revisions())
    for name in STREAMS:  # a revision named after the stream, or one listing it (0014_after_sale: `streams`)
        assert any(r.revision.endswith("_" + name) or name in getattr(r.module, "streams", ()) for r in revs), \
            f"no migration for stream {name}"


def test_schema_gate(tmp_path, empty_db_url, db_url):
    with pytest.raises(migrate.SchemaMismatch) as ei:
        migrate.check_schema(test_settings(tmp_path, empty_db_url))
    assert "run baysync migrate" in str(ei.value) and migrate.head() in str(ei.value)
    assert migrate.check_schema(test_settings(tmp_path, db_url)) == migrate.head()


def test_four_concurrent_migrates(tmp_path, empty_db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYSYNC_")}
    env.update(BAYSYNC_HOME=str(tmp_path), BAYSYNC_DATABASE_URL=empty_db_url, PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen([sys.executable, "-m", "console.cli", "migrate"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    applied = [o for o, _ in outs if "applying" in o]
    at_head = [o for o, _ in outs if "already at head" in o]
    assert len(applied) == 1 and len(at_head) == 3, outs
    eng = sa.create_engine(empty_db_url)
    with eng.connect() as c:
        n = c.execute(sa.text("select count(*) from migration_log")).scalar()
    eng.dispose()
    assert n == len(migrate.pending_revisions(None))


def test_failed_revision_leaves_nothing_half_applied(tmp_path, empty_db_url):
    eng = sa.create_engine(empty_db_url)
    with eng.begin() as c:  # make the first revision fail midway: a table it creates already exists
        c.execute(sa.text("create table workers (x int)"))
    s = test_settings(tmp_path, empty_db_url)
    with pytest.raises(Exception):
        migrate.migrate(s, lambda m: None)
    with eng.connect() as c:
        assert migrate.current_revision(c) is None
        assert c.execute(sa.text("select to_regclass('accounts')")).scalar() is None
    eng.dispose()


def test_unknown_revision_is_refused_untouched(tmp_path, db_url):
    eng = sa.create_engine(db_url)
    with eng.begin() as c:
        c.execute(sa.text("update alembic_version set version_num = '0042_newer'"))
        logged = c.execute(sa.text("select count(*) from migration_log")).scalar()
    s = test_settings(tmp_path, db_url)
    line = f"database schema at 0042_newer, which this baysync (head {migrate.head()}) does not know: upgrade baysync"
    for call in (lambda: migrate.check_schema(s), lambda: migrate.check_schema(s, allow_behind=True),
                 lambda: migrate.migrate(s, lambda m: None), lambda: migrate.pending_revisions("0042_newer")):
        with pytest.raises(migrate.SchemaUnknown) as ei:
            call()
        assert str(ei.value) == line
    with eng.connect() as c:
        assert migrate.current_revision(c) == "0042_newer"
        assert c.execute(sa.text("select count(*) from migration_log")).scalar() == logged
        assert c.execute(sa.text("select pg_try_advisory_lock(:k)"), {"k": migrate.MIGRATE_LOCK_KEY}).scalar()  # released
    eng.dispose()


def test_failed_revision_names_it_and_the_database_error(tmp_path, empty_db_url):
    """A later revision fails ("does not exist": not mistaken for a bad database_url): MigrationFailed
    names it and the error; the revisions before it stay applied, nothing of it exists. (Its record in
    migration_log is written in its transaction: without that table the revision fails at its end.)"""
    s = test_settings(tmp_path, empty_db_url)
    migrate.migrate(s, lambda m: None, target="0001_core")
    eng = sa.create_engine(empty_db_url)
    with eng.begin() as c:
        c.execute(sa.text("drop table migration_log"))
    with pytest.raises(migrate.MigrationFailed) as ei:
        migrate.migrate(s, lambda m: None)
    msg = str(ei.value)
    assert msg.startswith("migration 0002_orders failed: ") and 'relation "migration_log" does not exist' in msg, msg
    assert msg.endswith("(nothing of it applied; database at 0001_core)") and "\n" not in msg
    with eng.connect() as c:
        assert migrate.current_revision(c) == "0001_core"
        assert c.execute(sa.text("select to_regclass('orders')")).scalar() is None
    eng.dispose()


def test_raw_payloads_are_stored_inline(db_url):
    """Every table with a ``raw`` column keeps rows up to a page uncompressed (0015_raw_inline: pglz on each
    ~3 KB order was a third of PostgreSQL's CPU in a first sync). A new stream's revision must set it too."""
    from sync_core import streams

    raw_tables = {t.name for t in streams.metadata.tables.values() if "raw" in t.c}
    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        opts = dict(c.execute(sa.text("select relname, reloptions from pg_class where relkind = 'r' "
                                      "and relname = any(:n)"), dict(n=sorted(raw_tables))).all())
    eng.dispose()
    assert set(opts) == raw_tables
    missing = sorted(t for t, o in opts.items() if "toast_tuple_target=8160" not in (o or []))
    assert not missing, f"set (toast_tuple_target = 8160) on {missing} in their revision (see 0015_raw_inline)"


def test_line_items_raw_moves_to_a_view_and_back(tmp_path, empty_db_url):
    """0016_line_items_raw: order_line_items.raw is dropped and served by the view order_line_items_raw from
    orders.raw; downgrading refills the column from the orders (nothing stored is lost either way)."""
    import json

    s = test_settings(tmp_path, empty_db_url)
    migrate.migrate(s, lambda _l: None)
    li = [{"lineItemId": "L1", "sku": "A", "total": {"value": "1.50", "currency": "EUR"}},
          {"lineItemId": "L2", "title": "Zoë"}]
    eng = sa.create_engine(empty_db_url)
    with eng.begin() as c:
        aid = c.execute(sa.text("insert into accounts (name) values ('a') returning id")).scalar()
        c.execute(sa.text("insert into orders (account_id, order_id, last_modified_date, raw, payload_hash) "
                          "values (:a, 'O1', now(), cast(:raw as jsonb), '\\x00')"),
                  dict(a=aid, raw=json.dumps({"orderId": "O1", "lineItems": li})))
        c.execute(sa.text("insert into order_line_items (account_id, order_id, line_item_id) "
                          "values (:a, 'O1', 'L1'), (:a, 'O1', 'L2')"), dict(a=aid))
    with eng.connect() as c:
        got = c.execute(sa.text("select line_item_id, raw from order_line_items_raw order by 1")).all()
    assert [tuple(r) for r in got] == [("L1", li[0]), ("L2", li[1])]
    migrate.downgrade(s, "0015_raw_inline", say=lambda _l: None)
    with eng.connect() as c:
        got = c.execute(sa.text("select line_item_id, raw from order_line_items order by 1")).all()
        assert c.execute(sa.text("select to_regclass('order_line_items_raw')")).scalar() is None
    assert [tuple(r) for r in got] == [("L1", li[0]), ("L2", li[1])]
    migrate.migrate(s, lambda _l: None)
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from order_line_items_raw")).scalar() == 2
        cols = c.execute(sa.text("select column_name from information_schema.columns "
                                 "where table_name = 'order_line_items'")).scalars().all()
    assert "raw" not in cols
    eng.dispose()
