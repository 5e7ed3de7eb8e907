"""Retention against the real database: what goes, what stays, dry runs, the prune lock, the worker
pool's housekeeping, and a million-event prune next to a live sync."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa

from sync_core import db, retention
from sync_core.config import ConfigError
from sync_core.worker import WorkerPool
from tests.support.env import q, test_settings
from tests.support.simenv import make_env, make_sim
from tests.test_sync_e2e import run_pair, seller

SEED = """
insert into accounts (id, name) overriding system value values (1, 'acme');
insert into sync_runs (id, account_id, stream, status, owner, started_at, finished_at) overriding system value values
  (1, 1, 'orders', 'succeeded', 'w', now() - interval '100 days', now() - interval '100 days'),  -- old: goes
  (2, 1, 'orders', 'failed', 'w', now() - interval '95 days', now() - interval '95 days'),       -- old: goes
  (3, 1, 'payouts', 'running', 'w', now() - interval '100 days', null),                          -- running: stays
  (4, 1, 'offers', 'failed', 'w', now() - interval '100 days', now() - interval '100 days'),     -- pointed at: stays
  (5, 1, 'orders', 'succeeded', 'w', now() - interval '10 days', now() - interval '10 days');    -- recent: stays
insert into sync_state (account_id, stream, run_id) values (1, 'offers', 4);
insert into quarantine (run_id, account_id, stream, reason) values
  (1, 1, 'orders', 'bad'), (1, 1, 'orders', 'bad'), (2, 1, 'orders', 'bad'), (5, 1, 'orders', 'bad');
insert into run_events (ts, run_id, account_id, kind, message) values
  (now() - interval '40 days', 1, 1, 'note', 'old'), (now() - interval '31 days', 1, 1, 'note', 'old'),
  (now() - interval '31 days', null, 1, 'audit', 'old'),
  (now() - interval '29 days', 5, 1, 'note', 'recent'), (now() - interval '1 hour', 5, 1, 'note', 'recent');
"""


def seed(url: str) -> None:
    with sa.create_engine(url).begin() as c:
        for stmt in SEED.split(";\n"):
            if stmt.strip():
                c.execute(sa.text(stmt))


def snapshot(url: str) -> dict:
    return {"events": q(url, "select message, count(*) from run_events group by 1 order by 1"),
            "runs": [r[0] for r in q(url, "select id from sync_runs order by id")],
            "quarantine": [r[0] for r in q(url, "select run_id from quarantine order by run_id")],
            "migration_log": q(url, "select * from migration_log order by id")}


async def test_old_rows_go_recent_stay_dry_run_deletes_nothing(settings, db_url):
    seed(db_url)
    before = snapshot(db_url)
    assert before["migration_log"]
    engine = db.make_async_engine(settings, "cli")
    try:
        r = await retention.prune(engine, settings, dry_run=True)
        assert r.counts() == {"run_events": 3, "sync_runs": 2, "quarantine": 3}
        assert snapshot(db_url) == before
        r = await retention.prune(engine, settings, batch=1)  # several batches per table
        assert r.counts() == {"run_events": 3, "sync_runs": 2, "quarantine": 3} and not r.skipped
    finally:
        await engine.dispose()
    after = snapshot(db_url)
    assert after["runs"] == [3, 4, 5] and after["quarantine"] == [5]
    assert [m for m, _ in after["events"]] == ["recent", "retention: deleted 3 event(s), 2 finished run(s), "
                                                          "3 quarantined record(s)"]
    assert after["migration_log"] == before["migration_log"]
    assert q(db_url, "select count(*) from sync_state")[0][0] == 1 and q(db_url, "select count(*) from accounts")[0][0] == 1


async def test_zero_days_keeps_forever_and_bad_values_are_one_line(tmp_path, db_url):
    seed(db_url)
    s = test_settings(tmp_path, db_url, BAYSYNC_EVENTS_RETENTION_DAYS="0", BAYSYNC_RUNS_RETENTION_DAYS="0")
    engine = db.make_async_engine(s, "cli")
    try:
        assert (await retention.prune(engine, s)).total == 0
    finally:
        await engine.dispose()
    assert q(db_url, "select count(*) from run_events")[0][0] == 5
    for var, value in (("BAYSYNC_EVENTS_RETENTION_DAYS", "-1"), ("BAYSYNC_RUNS_RETENTION_DAYS", "soon"),
                       ("BAYSYNC_RUNS_RETENTION_DAYS", "1.5")):
        with pytest.raises(ConfigError) as ei:
            test_settings(tmp_path, db_url, **{var: value})
        assert var in str(ei.value) and "\n" not in str(ei.value)


async def test_only_one_process_prunes_at_a_time(settings, db_url):
    seed(db_url)
    with psycopg.connect(**db.psycopg_conninfo(db_url), autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", (retention.PRUNE_LOCK_KEY,))
        engine = db.make_async_engine(settings, "cli")
        try:
            r = await retention.prune(engine, settings)
            assert r.skipped and r.total == 0
            assert q(db_url, "select count(*) from run_events")[0][0] == 5
            other.execute("select pg_advisory_unlock(%s)", (retention.PRUNE_LOCK_KEY,))
            r = await retention.prune(engine, settings)
            assert not r.skipped and r.events == 3
            # the lock went back with the pooled connection: a third prune is not skipped
            assert not (await retention.prune(engine, settings)).skipped
        finally:
            await engine.dispose()


async def test_worker_pool_housekeeping_prunes(settings, db_url):
    seed(db_url)
    engine = db.make_async_engine(settings, "worker")
    pool = WorkerPool(settings, engine, concurrency=2)
    await pool.start()
    try:
        deadline = time.monotonic() + 30
        while q(db_url, "select count(*) from sync_runs where id in (1, 2)")[0][0]:
            assert time.monotonic() < deadline, "housekeeping did not prune"
            await asyncio.sleep(0.1)
    finally:
        await pool.stop()
        await engine.dispose()
    assert q(db_url, "select count(*) from run_events where message = 'old'")[0][0] == 0
    assert q(db_url, "select count(*) from run_events where message = 'recent'")[0][0] == 2


_SAMPLE = """
    select a.pid, a.application_name as app, a.wait_event_type as wait,
           extract(epoch from now() - a.query_start) as query_s, extract(epoch from now() - a.xact_start) as xact_s,
           pg_blocking_pids(a.pid) as blockers
    from pg_stat_activity a
    where a.datname = current_database() and a.pid <> pg_backend_pid() and a.xact_start is not null"""


async def test_pruning_a_million_events_does_not_stall_a_concurrent_sync(tmp_path, db_url):
    """1,000,000 old events are pruned while real syncs run: they succeed, none of their statements
    ever waits on a lock held by the prune, and the prune's transactions stay short (bounded batches)."""
    sim = make_sim(seller("alice", orders=3000, days=80), now=datetime.now(timezone.utc) - timedelta(minutes=5))
    env = make_env(tmp_path, db_url, sim)
    await env.add_account("alice")
    with sa.create_engine(db_url).begin() as c:  # one statement: ~5-10 s on a busy 2-CPU machine
        c.execute(sa.text("insert into run_events (ts, kind, message) select now() - interval '60 days', 'note', "
                          "'old' from generate_series(1, 1000000)"))
    prune_engine = db.make_async_engine(env.settings, "prune")  # application_name baysync/prune
    samples: list[dict] = []
    stop = asyncio.Event()

    async def sampler() -> None:
        async with await psycopg.AsyncConnection.connect(**db.psycopg_conninfo(db_url), autocommit=True) as c:
            while not stop.is_set():
                rows = await (await c.execute(_SAMPLE)).fetchall()
                pages = (await (await c.execute("select coalesce(sum(pages), 0) from sync_runs")).fetchone())[0]
                cols = ("pid", "app", "wait", "query_s", "xact_s", "blockers")
                samples.append({"pages": pages, "rows": [dict(zip(cols, r)) for r in rows]})
                await asyncio.sleep(0.05)

    sampling = asyncio.create_task(sampler())
    try:
        pruning = asyncio.create_task(retention.prune(prune_engine, env.settings))
        t0 = time.monotonic()
        while not any(r["app"] == "baysync/prune" for s in samples for r in s["rows"]):  # prune is deleting
            assert time.monotonic() - t0 < 30 and not pruning.done()
            await asyncio.sleep(0.02)
        runs = []  # real syncs, one stream after another, for as long as the prune goes on
        for stream in ("orders", "transactions", "payouts", "messages", "inventory_items", "offers", "disputes"):
            runs.append(await run_pair(env, "alice", stream))
            if pruning.done():
                break
        synced_at = time.monotonic()
        result = await asyncio.wait_for(pruning, 120)
        pruned_at = time.monotonic()
    finally:
        stop.set()
        await sampling
        await prune_engine.dispose()
    try:
        assert [status for status, _ in runs] == ["succeeded"] * len(runs)
        ctx = runs[0][1]
        assert ctx.totals.inserted == await env.scalar("select count(*) from orders") > 0
        assert result.events == 1_000_000
        assert q(db_url, "select count(*) from run_events where message = 'old'")[0][0] == 0
        assert q(db_url, f"select count(*) from run_events where run_id = {ctx.run_id}")[0][0] > 0
        prune_pids = {r["pid"] for s in samples for r in s["rows"] if r["app"] == "baysync/prune"}
        sync_rows = [r for s in samples for r in s["rows"] if r["app"] == "baysync/test"]
        assert prune_pids and sync_rows
        # the sync's statements were never blocked by the prune, and never waited long on any lock
        assert not [r for r in sync_rows if set(r["blockers"] or ()) & prune_pids]
        assert max((r["query_s"] for r in sync_rows if r["wait"] == "Lock"), default=0) < 5
        # bounded batches: no prune transaction stayed open for long
        assert max(r["xact_s"] for s in samples for r in s["rows"] if r["app"] == "baysync/prune") < 5
        # they really overlapped: the sync committed pages while the prune was in a transaction
        progress = [s for s in samples if any(r["app"] == "baysync/prune" for r in s["rows"])]
        assert len({s["pages"] for s in progress}) > 1, f"no sync progress seen while pruning (sync {synced_at - t0:.1f}s, " \
                                    f"prune {pruned_at - t0:.1f}s)"
    finally:
        await env.engine.dispose()
