"""Bad config and bad CLI input: one line naming what to fix, exit code 2, nothing changed in the database."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

CASES = [
    # (extra env, args)
    ({"BAYSYNC_WORKERS": "many"}, ["run"]),
    ({"BAYSYNC_LOG_FORMAT": "yaml"}, ["status"]),
    ({"BAYSYNC_LEASE_TTL_S": "2"}, ["run"]),
    ({"BAYSYNC_HEARTBEAT_S": "50"}, ["run"]),
    ({"BAYSYNC_EBAY_MARKETPLACE_ID": "germany"}, ["sync", "-a", "acme", "-s", "orders"]),
    ({"BAYSYNC_EBAY_API_BASE_URL": "api.ebay.com"}, ["sync", "-a", "acme", "-s", "orders"]),
    ({"BAYSYNC_DATABASE_URL": "sqlite:///x.db"}, ["migrate"]),
    ({"BAYSYNC_HEALTH_BIND": "9464"}, ["run"]),
    ({"BAYSYNC_STREAMS_ORDERS_PAGE_SIZE": "1000"}, ["run"]),
    ({"BAYSYNC_STREAMS_WIDGETS_ENABLED": "true"}, ["run"]),
    ({"BAYSYNC_STREAMS_ORDERS_ENABLED": "maybe"}, ["run"]),
    ({"BAYSYNC_CONFIG": "/nonexistent/baysync.toml"}, ["status"]),
    ({}, ["sync", "--account", "acme"]),
    ({}, ["sync", "--account", "acme", "--stream", "everything"]),
    ({}, ["sync", "--account", "ghost", "--stream", "orders"]),
    ({}, ["sync", "--account", "acme", "--stream", "orders", "--since", "last tuesday"]),
    ({}, ["backfill", "--account", "acme", "--stream", "orders", "--since", "2999-12-31"]),
    ({}, ["stop", "--account", "ghost"]),
    ({}, ["pause", "--account", "acme", "--stream", "nope"]),
    ({}, ["logs", "--level", "chatty"]),
    ({}, ["logs", "--run", "abc"]),
    ({}, ["run", "--workers", "0"]),
    ({}, ["run", "--health", "localhost"]),
    ({}, ["run", "--log-format", "xml"]),
    ({}, ["accounts", "add", "no spaces please"]),
    ({}, ["accounts", "remove", "acme"]),
    ({}, ["sim", "--port", "70000"]),
    ({}, ["demo", "--seconds", "-1"]),
    ({}, ["frobnicate"]),
]


def snapshot(url):
    eng = sa.create_engine(url)
    with eng.connect() as c:
        tables = c.execute(sa.text("select tablename from pg_tables where schemaname = 'public' order by 1")).scalars().all()
        out = {t: c.execute(sa.text(f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {t} t")).scalar()
               for t in tables}
    eng.dispose()
    return out


@pytest.fixture
def seeded(cli_env, db_url):
    eng = sa.create_engine(db_url)
    with eng.begin() as c:
        aid = c.execute(sa.text("insert into accounts (name) values ('acme') returning id")).scalar()
        c.execute(sa.text("insert into sync_state (account_id, stream) select :a, s from unnest(array['orders','payouts']) s"),
                  dict(a=aid))
    eng.dispose()
    return cli_env


def test_at_least_twenty_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("extra,args", CASES, ids=[" ".join(a) + (" " + ",".join(e) if e else "") for e, a in CASES])
def test_bad_input(seeded, db_url, extra, args):
    before = snapshot(db_url)
    env = dict(seeded, **extra)
    r = subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ("error" in lines[0]), r.stderr
    assert snapshot(db_url) == before
