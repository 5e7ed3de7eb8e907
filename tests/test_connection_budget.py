"""A worker process keeps to its connection budget: db_pool_size + db_max_overflow pooled connections
plus one LISTEN connection, however many slots it runs; slots beyond that wait for a connection and
their runs still succeed."""

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy.engine import make_url

from sync_core import coordination as co
from sync_core.db import psycopg_conninfo
from sync_core.sim import SellerSpec
from sync_core.runner import Run
from sync_core.worker import LISTEN_APP, Clients, WorkerPool, worker_engine
from tests.support.env import test_settings
from tests.support.simenv import make_env, make_sim

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
STREAMS_ON = ("orders", "transactions", "payouts", "inventory_items")
OFF = ("disputes", "messages", "offers", "active_inventory", "returns", "inquiries", "cases", "cancellations", "shipping_fulfillments")


class BackendSampler(threading.Thread):
    """Counts the test database's backends (all but the test's own engine) every few milliseconds,
    from its own thread and connection, independent of the event loop under test."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        info = psycopg_conninfo(url)
        self.dbname = info["dbname"]
        self.conninfo = dict(info, dbname="postgres")
        self.stop = threading.Event()
        self.peak, self.at_peak, self.samples = 0, {}, 0
        self.seen: set[str] = set()

    def run(self) -> None:
        with psycopg.connect(**self.conninfo, autocommit=True) as c:
            while not self.stop.is_set():
                # connections only: autovacuum and parallel query workers also show up under the
                # database (a parallel worker even with its leader's application_name). A client backend
                # still starting up has no state yet: it is counted once it is up (a connection kept over
                # the budget would be seen then), not while a replaced connection's backend still exits.
                rows = c.execute("select coalesce(application_name, ''), count(*) from pg_stat_activity "
                                 "where datname = %s and application_name is distinct from 'baysync/test' "
                                 "and backend_type = 'client backend' and state is not null group by 1",
                                 (self.dbname,)).fetchall()
                total = sum(n for _, n in rows)
                self.seen.update(a for a, _ in rows)
                if total > self.peak:
                    self.peak, self.at_peak = total, dict(rows)
                self.samples += 1
                self.stop.wait(0.005)


async def test_16_slots_keep_to_pool_size_3_plus_listener_and_every_run_succeeds(tmp_path, db_url):
    sellers = [SellerSpec(f"s{i:02d}", orders=12, transactions=20, payouts=3, disputes=1, conversations=2,
                          inventory_items=6, days=20, future_days=0) for i in range(20)]
    env = make_env(tmp_path, db_url, make_sim(*sellers, now=NOW), BAYSYNC_DB_POOL_SIZE="3",
                   BAYSYNC_DB_MAX_OVERFLOW="0",
                   **{f"BAYSYNC_STREAMS_{s.upper()}_ENABLED": "false" for s in OFF})
    for s in sellers:
        await env.add_account(s.name)
    engine = worker_engine(env.settings)
    pool = WorkerPool(env.settings, engine, concurrency=16, transport=env.transport, owns_engine=True)
    sampler = BackendSampler(db_url)
    sampler.start()
    expected = len(sellers) * len(STREAMS_ON)
    try:
        await pool.start()
        for _ in range(600):
            done = await env.scalar("select count(*) from sync_runs where status <> 'running'")
            if done >= expected:
                break
            await asyncio.sleep(0.1)
    finally:
        await pool.stop()
        sampler.stop.set()
        sampler.join(10)
        await env.engine.dispose()
    statuses = dict(await env.rows("select status, count(*) from sync_runs group by 1"))
    assert statuses == {"succeeded": expected}, statuses
    assert pool.stats.runs == {"succeeded": expected}, pool.stats.runs
    # the sampler did watch this pool: its pooled connections and its listener were seen
    assert sampler.samples > 20 and {"baysync/worker", LISTEN_APP} <= sampler.seen, (sampler.samples, sampler.seen)
    assert sampler.peak <= 3 + 1, sampler.at_peak
    assert sampler.at_peak.get(LISTEN_APP, 0) <= 1, sampler.at_peak


def test_worker_engine_is_the_configured_budget_whatever_the_slots(tmp_path, db_url):
    s = test_settings(tmp_path, db_url, BAYSYNC_DB_POOL_SIZE="3", BAYSYNC_DB_MAX_OVERFLOW="0", BAYSYNC_WORKERS="64")
    eng = worker_engine(s)
    assert eng.pool.size() == 3 and eng.pool._max_overflow == 0
    assert make_url(str(eng.url)).database == make_url(db_url).database


async def test_a_run_that_waits_longer_than_the_pool_timeout_still_succeeds(tmp_path, db_url, caplog):
    """Waiting for a pooled connection is normal under the budget: a run whose writes find the only
    connection busy for longer than db_pool_timeout_s retries the wait and succeeds."""
    caplog.set_level(logging.WARNING, logger="baysync.db")
    sim = make_sim(SellerSpec("alice", orders=40, days=20, future_days=0), now=NOW)
    env = make_env(tmp_path, db_url, sim, BAYSYNC_DB_POOL_SIZE="1", BAYSYNC_DB_MAX_OVERFLOW="0",
                   BAYSYNC_DB_POOL_TIMEOUT_S="1")
    aid = await env.add_account("alice")
    engine = worker_engine(env.settings)
    clients = Clients(env.settings, engine, transport=env.transport)
    owner = co.new_owner("test")
    async with env.engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, "orders", 60)
    ctx = Run(env.settings, engine, claim, owner)
    await clients.for_run(ctx)
    busy = await engine.connect()  # the whole budget, taken
    run = asyncio.create_task(ctx.execute())
    try:
        for _ in range(600):  # until the run has waited a full pool timeout at least once
            if "QueuePool limit" in caplog.text or run.done():
                break
            await asyncio.sleep(0.05)
        assert "QueuePool limit" in caplog.text, caplog.text
    finally:
        await busy.close()
    try:
        assert await asyncio.wait_for(run, 60) == "succeeded", await env.scalar(
            "select error from sync_runs where id = :r", r=claim.run_id)
        truth = {o["orderId"] for o in sim.truth("alice", "orders")}
        assert {r[0] for r in await env.rows("select order_id from orders")} == truth
    finally:
        await clients.aclose()
        await engine.dispose()
        await env.engine.dispose()
