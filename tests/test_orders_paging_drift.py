"""Orders that move while a window is paged (getOrders pages by record offset over a live result set:
sell_fulfillment_v1_oas3.json getOrders `offset`/`total`; the `lastmodifieddate` filter selects on the
order's last-modified time, so a modified order leaves a window that ended before the modification).

The simulator's ``touch_orders_*`` knobs modify orders of the page it has just served; without the re-read
the orders after them move up one offset each and are skipped."""

from datetime import datetime, timedelta, timezone

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
