"""Orders that move while a window is paged (getOrders pages by record offset over a live result set:
sell_fulfillment_v1_oas3.json getOrders `offset`/`total`; the `lastmodifieddate` filter selects on the
order's last-modified time, so a modified order leaves a window that ended before the modification).

The simulator's ``touch_orders_*`` knobs modify orders of the page it has just served; without the re-read
the orders after them move up one offset each and are skipped."""

from datetime import datetime, timedelta

import pytest

from sync_core.ebay.paging import MAX_WINDOW_REREADS
from tests.support.simenv import make_env, make_sim
from tests.test_sync_e2e import NOW, run_pair, seller


def _ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=300, days=60), now=NOW)
    # one window at a time: the simulator's clock stands still, so a touched order lands inside the plan's
    # last window, which these tests need read after the touch (on eBay's clock it lands after the plan's end;
    # concurrent windows and moving records: tests/reliability/test_kill9.py)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="25", BAYSYNC_INITIAL_BACKFILL_DAYS="60",
                 BAYSYNC_RUN_CONCURRENCY="1")
    await e.add_account("alice")
    yield e
    await e.engine.dispose()


async def _stored(env):
    return {r[0]: r[1] for r in await env.rows("select order_id, last_modified_date from orders")}


async def test_orders_modified_between_pages_are_not_skipped(env):
    # after page 1 of the first (oldest) window, 3 of its orders are modified: they leave that window
    env.sim.set_faults(touch_orders_after_page=1, touch_orders_n=3, touch_orders_times=1)
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    touched = env.sim.orders_touched_while_paging
    assert len(touched) == 3 and env.sim.stats["faults"]["orders_touched"] == 3
    since = NOW - timedelta(days=60)
    truth = {o["orderId"]: _ts(o["lastModifiedDate"]) for o in env.sim.truth("alice", "orders")
             if _ts(o["lastModifiedDate"]) >= since}
    assert await _stored(env) == truth  # nothing skipped, the touched ones in their modified version
    rereads = await env.rows("select message, level from run_events where kind = 'window_reread'")
    assert len(rereads) == 1 and rereads[0].level == "warning"
    assert "total changed from" in rereads[0].message and "re-read 1/" in rereads[0].message


async def test_a_window_that_keeps_moving_fails_after_bounded_rereads(env):
    env.sim.set_faults(touch_orders_after_page=1, touch_orders_n=2, touch_orders_times=MAX_WINDOW_REREADS + 5)
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "failed"
    assert await env.scalar("select count(*) from run_events where kind = 'window_reread'") == MAX_WINDOW_REREADS
    err = await env.scalar("select error from sync_runs order by id desc limit 1")
    assert "kept changing while paged" in err and f"after {MAX_WINDOW_REREADS} re-read" in err
    # the window was not marked done: the cursor did not move past it
    assert await env.scalar("select cursor from sync_state where stream = 'orders'") is None
    # the next run (the orders have stopped moving) reads it again and stores everything
    env.sim.set_faults(touch_orders_after_page=None)
    assert (await run_pair(env, "alice", "orders"))[0] == "succeeded"
    since = NOW - timedelta(days=60)
    truth = {o["orderId"]: _ts(o["lastModifiedDate"]) for o in env.sim.truth("alice", "orders")
             if _ts(o["lastModifiedDate"]) >= since}
    assert await _stored(env) == truth


async def test_without_moving_orders_each_window_is_read_once(env):
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    assert await env.scalar("select count(*) from run_events where kind = 'window_reread'") == 0
    n = len(await _stored(env))
    run = (await env.rows("select windows_total, api_calls from sync_runs"))[0]
    assert run.api_calls <= run.windows_total + n // 25 + 1


def _span(url: str) -> timedelta:
    from sync_core.ebay.paging import parse_range_filter

    start, end = parse_range_filter(url, "lastmodifieddate")
    return end - start


async def test_a_window_with_more_orders_than_a_slice_is_read_in_time_slices(env, monkeypatch):
    """A seller with 10k+ orders a day: a 30-day window holds hundreds of thousands of orders and some are
    modified every second; re-reading the whole window whenever one moved never ended (bench.e2e with 1M
    orders failed after 3 re-reads of a 390,000-order window). The window is read in time slices of about
    SLICE_ORDERS orders (here 60 of the ~150 per 30-day window) and a slice that moves while it is paged is
    the only thing read again."""
    from sync_core.streams import orders as orders_stream

    monkeypatch.setattr(orders_stream, "SLICE_ORDERS", 60)
    env.sim.set_faults(touch_orders_after_page=1, touch_orders_n=2, touch_orders_times=1)
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    since = NOW - timedelta(days=60)
    truth = {o["orderId"]: _ts(o["lastModifiedDate"]) for o in env.sim.truth("alice", "orders")
             if _ts(o["lastModifiedDate"]) >= since}
    assert await _stored(env) == truth  # nothing skipped, the touched ones in their modified version
    sliced = await env.rows("select message, level from run_events where kind = 'window_sliced' order by id")
    assert all(r.level == "info" for r in sliced)
    # both 30-day windows (~150 orders each) were sliced in 3; a slice still above 60 (orders are not spread
    # evenly over time) would be sliced again
    assert sum("read in 3 time slices" in r.message for r in sliced) == 2
    assert env.sim.stats["faults"]["orders_touched"] == 2
    rereads = await env.rows("select data from run_events where kind = 'window_reread'")
    assert len(rereads) == 1
    window = rereads[0].data["reason"].split(" changed while paged")[0].removeprefix("orders window ")
    start, end = (_ts(t) for t in window.split(".."))
    assert end - start < timedelta(days=15)  # a slice, not the 30-day window


async def test_a_run_stopped_inside_a_slice_resumes_in_it(env, monkeypatch):
    """The checkpoint inside a sliced window is the slice's URL: the next run goes on in that slice, then
    reads the rest of the window, and nothing is missing."""
    from sync_core.streams import orders as orders_stream

    monkeypatch.setattr(orders_stream, "SLICE_ORDERS", 40)
    env.settings = env.settings.with_values(write_batch_rows=1)  # every page written: the stop is exact
    status, ctx = await run_pair(env, "alice", "orders", stop_after_pages=2)
    assert status == "cancelled"
    position = await env.scalar("select checkpoint from sync_state where stream = 'orders'")
    assert position["next"] and _span(position["next"]) < timedelta(days=10)  # inside a slice of the 1st window
    first_calls = await env.scalar("select api_calls from sync_runs order by id limit 1")
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    since = NOW - timedelta(days=60)
    truth = {o["orderId"]: _ts(o["lastModifiedDate"]) for o in env.sim.truth("alice", "orders")
             if _ts(o["lastModifiedDate"]) >= since}
    assert await _stored(env) == truth
    # the second run did not start the first window over: it was probed (and sliced) once
    sliced = [r[0] for r in await env.rows("select message from run_events where kind = 'window_sliced'")]
    ranges = [m.split(" holds ")[0] for m in sliced]
    assert len(ranges) == len(set(ranges)) and sum("read in 4 time slices" in m for m in sliced) == 2
    assert first_calls >= 3  # the probe and two pages of the first slice
