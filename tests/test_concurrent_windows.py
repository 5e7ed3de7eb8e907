"""Concurrent windows and pipelined pages (runner.Run._windowed): at most ``run_concurrency`` windows in
flight, the next page requested while the previous one is written, an honest checkpoint (the cursor moves
only over a contiguous prefix of finished windows; later finished windows are remembered and not fetched
again after a restart), and the minimum number of API calls against the simulator.

The controlled tests run the real orders declaration with its ``fetch_window`` replaced by a test function
(another declaration of the same tables, ``Run(stream=...)``) whose windows the test holds and releases."""

import asyncio
import dataclasses
import math
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from sync_core import coordination as co
from sync_core.ebay.paging import Page
from sync_core.runner import Run
from sync_core.sim import SellerSpec
from sync_core.streams import STREAMS
from sync_core.worker import Clients
from tests.support.simenv import make_env, make_sim

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def order(oid, modified):
    return {"orderId": oid, "creationDate": modified, "lastModifiedDate": modified,
            "pricingSummary": {"total": {"value": "1.00", "currency": "USD"}}, "lineItems": []}


class Windows:
    """A fetch_window whose windows yield two pages each; window 0 waits for ``release[0]`` before its
    first page, and every window's second page waits for ``release_second`` when it is given."""

    def __init__(self):
        self.calls: list[tuple[int, str | None]] = []
        self.active = 0
        self.max_active = 0
        self.release = {0: asyncio.Event()}
        self.asked_second: set[int] = set()
        self.release_second: asyncio.Event | None = None
        self.plan_start: datetime | None = None

    def __call__(self, client, window, resume_url, limit):
        return self._pages(window, resume_url)

    async def _pages(self, window, resume_url):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            idx = round((window.start - self.plan_start) / timedelta(days=30))  # the plan: 4 windows of 30 days
            self.calls.append((idx, resume_url))
            if idx in self.release:
                await self.release[idx].wait()
            mod = (window.start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
            if resume_url is None:
                yield Page([order(f"C-{idx}-1", mod)], 2, f"w{idx}?offset=0", f"w{idx}?offset=1")
            self.asked_second.add(idx)
            if self.release_second is not None:
                await self.release_second.wait()
            yield Page([order(f"C-{idx}-2", mod)], 2, f"w{idx}?offset=1", None)
        finally:
            self.active -= 1


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(SellerSpec("cora", orders=0, transactions=0, payouts=0, disputes=0, conversations=0,
                              inventory_items=0, days=10), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="120")
    await e.add_account("cora")
    yield e
    await e.engine.dispose()


async def claimed_run(env, fake, **settings):
    aid = await env.scalar("select id from accounts where name = 'cora'")
    owner = co.new_owner("test")
    async with env.engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, "orders", 60)
    s = env.settings.with_values(**settings) if settings else env.settings
    run = Run(s, env.engine, claim, owner, stream=dataclasses.replace(STREAMS["orders"], fetch_window=fake))
    run.client = object()  # the test's fetch_window calls no client
    fake.plan_start = fake.plan_start or run.now - timedelta(days=120)
    return run


async def until(cond, what, timeout=30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_finished_windows_beyond_the_prefix_are_remembered_and_not_fetched_again(env):
    fake = Windows()
    run = await claimed_run(env, fake)
    task = asyncio.create_task(run.execute())

    async def later_windows_done():
        cp = await env.scalar("select checkpoint from sync_state where stream = 'orders'")
        return bool(cp) and cp.get("done") == [1, 2, 3]
    await until(later_windows_done, "windows 1-3 written while window 0 waits")
    # the cursor does not pass window 0, which has not even started
    assert await env.scalar("select cursor from sync_state where stream = 'orders'") is None
    assert await env.scalar("select count(*) from orders") == 6
    async with env.engine.begin() as conn:
        await co.request_stop(conn, run.account_id, "orders")
    fake.release_second = asyncio.Event()  # window 0 gives its first page, then waits
    fake.release[0].set()
    assert await asyncio.wait_for(task, 30) == "cancelled"
    cp = await env.scalar("select checkpoint from sync_state where stream = 'orders'")
    assert cp["i"] == 0 and cp["next"] == "w0?offset=1" and cp["done"] == [1, 2, 3]
    assert await env.scalar("select cursor from sync_state where stream = 'orders'") is None

    fake2 = Windows()
    fake2.release = {}
    fake2.plan_start = fake.plan_start  # the resumed run keeps the first run's plan
    run2 = await claimed_run(env, fake2)
    assert await run2.execute() == "succeeded"
    assert fake2.calls == [(0, "w0?offset=1")]  # only the unfinished window, from where it stopped
    assert {r[0] for r in await env.rows("select order_id from orders")} == \
        {f"C-{k}-{p}" for k in range(4) for p in (1, 2)}
    cursor = await env.scalar("select cursor from sync_state where stream = 'orders'")
    assert abs((cursor - run.now).total_seconds()) < 1  # the end of the plan's last window


async def test_at_most_run_concurrency_windows_are_in_flight(env):
    fake = Windows()
    run = await claimed_run(env, fake, run_concurrency=2)
    task = asyncio.create_task(run.execute())
    await until(lambda: _true(len(fake.calls) >= 2), "two windows started")
    await until(lambda: _true(3 in {c[0] for c in fake.calls}), "window 3 started while window 0 waits")
    assert fake.max_active == 2
    fake.release[0].set()
    assert await asyncio.wait_for(task, 30) == "succeeded"
    assert fake.max_active == 2 and sorted(c[0] for c in fake.calls) == [0, 1, 2, 3]


async def _true(v):
    return v


@pytest.mark.parametrize("concurrency", [4, 1])
async def test_the_next_page_is_requested_while_the_previous_one_is_written(env, concurrency):
    """Pipelined pages: while page 1's write waits (the test holds a lock on the orders table), the window's
    next page is already asked for. With run_concurrency = 1 it is not (one request at a time)."""
    fake = Windows()
    fake.release = {}
    run = await claimed_run(env, fake, run_concurrency=concurrency, write_batch_rows=1)
    lock = await env.engine.connect()
    tx = await lock.begin()
    await lock.execute(sa.text("lock table orders in exclusive mode"))
    task = asyncio.create_task(run.execute())
    try:
        async def blocked_write():
            return await env.scalar("select count(*) from pg_locks l join pg_class c on c.oid = l.relation "
                                    "where c.relname = 'orders' and not l.granted") > 0
        await until(blocked_write, "a page write waiting for the lock")
        if concurrency > 1:
            await until(lambda: _true(bool(fake.asked_second)), "a second page asked for during the write")
        else:
            await asyncio.sleep(0.5)
            assert not fake.asked_second
    finally:
        await tx.rollback()
        await lock.close()
    assert await asyncio.wait_for(task, 30) == "succeeded"
    assert await env.scalar("select count(*) from orders") == 8


async def test_concurrent_backfill_stores_the_truth_with_the_minimum_of_calls(tmp_path, db_url):
    """Against the simulator (a little latency, so windows really overlap): every order of the plan, and
    exactly ceil(records / page size) calls per window (at least one)."""
    sim = make_sim(SellerSpec("dora", orders=700, transactions=0, payouts=0, disputes=0, conversations=0,
                              inventory_items=0, days=170), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="160", BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50")
    try:
        aid = await e.add_account("dora")
        e.sim.set_faults(latency_ms=20.0, only_paths=("/sell/fulfillment",))
        owner = co.new_owner("test")
        async with e.engine.begin() as conn:
            claim = await co.claim_pair(conn, owner, aid, "orders", 60)
        clients = Clients(e.settings, e.engine, transport=e.transport)
        run = Run(e.settings, e.engine, claim, owner)
        assert await run.execute(clients) == "succeeded"
        await clients.aclose()
        end = run.now
        start = run.plan_start
        truth = [o for o in e.sim.truth("dora", "orders")
                 if start <= datetime.fromisoformat(o["lastModifiedDate"].replace("Z", "+00:00")) <= end]
        assert {r[0] for r in await e.rows("select order_id from orders")} == {o["orderId"] for o in truth}
        minimum, w0 = 0, start
        while w0 < end:
            w1 = min(w0 + timedelta(days=30), end)
            n = sum(1 for o in truth if w0 <= datetime.fromisoformat(o["lastModifiedDate"].replace("Z", "+00:00")) < w1)
            minimum += max(1, math.ceil(n / 50))
            w0 = w1
        calls = await e.scalar("select api_calls from sync_runs where id = :r", r=run.run_id)
        assert calls == minimum
        assert await e.scalar("select windows_total from sync_runs where id = :r", r=run.run_id) == 6
    finally:
        await e.engine.dispose()


async def test_run_end_says_where_the_time_went(tmp_path, db_url):
    """The run_end event carries the run's timing (sync_core.writer.Timing) and says in words how long the run
    waited for eBay and for database writes: with run_concurrency 1 every page is requested after the
    previous one is stored, so the run waits at least the API's latency for each of its pages."""
    sim = make_sim(SellerSpec("ezra", orders=300, transactions=0, payouts=0, disputes=0, conversations=0,
                              inventory_items=0, days=60), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_INITIAL_BACKFILL_DAYS="60", BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50",
                 BAYSYNC_RUN_CONCURRENCY="1")
    try:
        aid = await e.add_account("ezra")
        e.sim.set_faults(latency_ms=40.0, only_paths=("/sell/fulfillment",))
        owner = co.new_owner("test")
        async with e.engine.begin() as conn:
            claim = await co.claim_pair(conn, owner, aid, "orders", 60)
        clients = Clients(e.settings, e.engine, transport=e.transport)
        run = Run(e.settings, e.engine, claim, owner)
        assert await run.execute(clients) == "succeeded"
        await clients.aclose()
        calls = await e.scalar("select api_calls from sync_runs where id = :r", r=run.run_id)
        assert calls >= 6
        msg, timing = (await e.rows("select message, data->'timing' from run_events "
                                    "where kind = 'run_end' and run_id = :r", r=run.run_id))[0]
        assert set(timing) == {"pages_wait_s", "map_s", "write_wait_s", "write_s"}
        assert timing["pages_wait_s"] >= 0.9 * calls * 0.040, (timing, calls)
        assert timing["write_s"] > 0 and timing["map_s"] > 0 and timing["write_wait_s"] >= 0
        assert f"waited {timing['pages_wait_s']:.1f}s for eBay" in msg, msg
        assert "for database writes" in msg
    finally:
        await e.engine.dispose()
