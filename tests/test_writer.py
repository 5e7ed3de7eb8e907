"""The page writer's state machine (sync_core/writer.py), transition by transition, against the real
embedded PostgreSQL: what is held, what is written with what position, in one fenced transaction."""

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from sync_core import coordination as co
from sync_core.sim import SellerSpec
from sync_core.streams import STREAMS
from sync_core.streams.base import StreamPage
from sync_core.writer import FAILED, HOLD_BEHIND, HOLDING, IDLE, LOST, WRITE_HOLD_S, PageWriter
from tests.support.simenv import make_env, make_sim


def order(i, modified="2026-10-01T00:00:00.000Z"):
    return {"orderId": f"W-{i}", "creationDate": "2026-09-30T00:00:00.000Z", "lastModifiedDate": modified,
            "pricingSummary": {"total": {"value": f"{i}.00", "currency": "USD"}},
            "lineItems": [{"lineItemId": f"L{i}", "sku": f"S{i}", "quantity": 1,
                           "total": {"value": f"{i}.00", "currency": "USD"}}]}


def item(sku):
    return {"sku": sku, "product": {"title": sku}, "condition": "NEW",
            "availability": {"shipToLocationAvailability": {"quantity": 1}}}


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(SellerSpec("wendy", orders=0, transactions=0, payouts=0, disputes=0, conversations=0,
                              inventory_items=0, days=10))
    e = make_env(tmp_path, db_url, sim, BAYSYNC_WRITE_BATCH_ROWS="10")
    await e.add_account("wendy")
    yield e
    await e.engine.dispose()


@contextlib.asynccontextmanager
async def orders_locked(env):
    """Another transaction holds the orders table: a write in flight waits until the block ends."""
    lock = await env.engine.connect()
    tx = await lock.begin()
    await lock.execute(sa.text("lock table orders in exclusive mode"))
    try:
        yield
    finally:
        await tx.rollback()
        await lock.close()


async def writer(env, stream="orders", map_=None, behind=False):
    aid = await env.scalar("select id from accounts where name = 'wendy'")
    owner = co.new_owner("test")
    async with env.engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, stream, 60)
    s = STREAMS[stream] if map_ is None else dataclasses.replace(STREAMS[stream], map=map_)
    w = PageWriter(env.settings, env.engine, s, claim, owner)
    w.write_behind = behind
    return w


async def checkpoint(env, stream="orders"):
    return await env.scalar("select checkpoint from sync_state where stream = :s", s=stream)


async def test_plain_pages_are_held_then_written_with_the_page_that_moves_the_cursor(env):
    w = await writer(env)
    assert w.state == IDLE
    assert await w.put(StreamPage([order(1), order(2)], {"p": 1})) is False
    assert w.state == HOLDING and await env.scalar("select count(*) from orders") == 0
    await w.put(StreamPage([order(3)], {"p": 2}))
    assert w.state == HOLDING and w._held.pages == 2
    cursor = datetime(2026, 10, 2, tzinfo=timezone.utc)
    await w.put(StreamPage([order(4)], {"p": 3}, cursor=cursor, windows_done=1, windows_total=1))
    assert w.state == IDLE
    assert await env.scalar("select count(*) from orders") == 4
    assert await env.scalar("select count(*) from order_line_items") == 4
    assert await checkpoint(env) == {"p": 3}
    assert await env.scalar("select cursor from sync_state where stream = 'orders'") == cursor
    # one transaction: one page event for the three pages
    assert [r[0] for r in await env.rows("select (data->>'pages')::int from run_events where kind = 'page'")] == [3]
    assert w.totals.pages == 3 and w.totals.inserted == 4


async def test_a_page_reaching_write_batch_rows_is_written_at_once(env):
    w = await writer(env)
    await w.put(StreamPage([order(i) for i in range(6)], {"p": 1}))
    assert w.state == HOLDING
    await w.put(StreamPage([order(i) for i in range(6, 10)], {"p": 2}))  # 6 + 4 = write_batch_rows (10)
    assert w.state == IDLE and await env.scalar("select count(*) from orders") == 10
    assert await checkpoint(env) == {"p": 2}


async def test_the_timer_writes_held_pages_once_the_first_is_old(env):
    w = await writer(env)
    timer = asyncio.create_task(w.run_timer())
    try:
        await w.put(StreamPage([order(1)], {"p": 1}))
        assert w.state == HOLDING
        deadline = asyncio.get_running_loop().time() + WRITE_HOLD_S + 30
        while w.state != IDLE:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert await env.scalar("select count(*) from orders") == 1 and await checkpoint(env) == {"p": 1}
    finally:
        await w.stop_timer(timer)


async def test_flush_writes_held_pages_and_a_positionless_page_keeps_the_held_position(env):
    w = await writer(env)
    await w.put(StreamPage([order(1)], {"p": 1}))
    await w.put(StreamPage([order(2)], None))  # records without a position (a re-fetch): written at once
    assert w.state == IDLE and await env.scalar("select count(*) from orders") == 2
    assert await checkpoint(env) == {"p": 1}
    await w.put(StreamPage([order(3)], {"p": 2}))
    await w.flush()
    assert w.state == IDLE and await checkpoint(env) == {"p": 2}


async def test_a_failed_write_is_final(env):
    """WRITING -> FAILED: the error is kept and raised by every later call; nothing of the failed write and
    nothing after it is stored, the position stays where it was."""
    w = await writer(env)
    async with env.engine.begin() as conn:
        await conn.execute(sa.text("alter table orders add constraint no_w2 check (order_id <> 'W-2') not valid"))
    await w.put(StreamPage([order(1)], {"p": 1}, cursor=datetime(2026, 10, 1, tzinfo=timezone.utc)))
    await w.put(StreamPage([order(2)], {"p": 2}))
    with pytest.raises(Exception, match="no_w2"):
        await w.put(StreamPage([order(3)], {"p": 3}, cursor=datetime(2026, 10, 2, tzinfo=timezone.utc)))
    assert w.state == FAILED
    with pytest.raises(Exception, match="no_w2"):
        await w.put(StreamPage([order(4)], {"p": 4}, cursor=datetime(2026, 10, 3, tzinfo=timezone.utc)))
    with pytest.raises(Exception, match="no_w2"):
        await w.flush()
    assert {r[0] for r in await env.rows("select order_id from orders")} == {"W-1"}
    assert await checkpoint(env) == {"p": 1}


async def test_a_lost_lease_drops_held_pages_and_events(env):
    """WRITING -> LOST: the fence finds another owner; the held pages and the pending events are not
    written, now or later."""
    w = await writer(env)
    await w.put(StreamPage([order(1)], {"p": 1}))
    w.event("note", "pending event")
    async with env.engine.begin() as conn:
        await conn.execute(sa.text("update sync_state set lease_owner = 'someone-else' where run_id = :r"),
                           dict(r=w.run_id))
    with pytest.raises(co.LeaseLost):
        await w.put(StreamPage([order(2)], {"p": 2}, cursor=datetime(2026, 10, 2, tzinfo=timezone.utc)))
    assert w.state == LOST
    await w.flush_held()  # the run's early-end path: writes nothing once the lease is gone
    with pytest.raises(co.LeaseLost):
        await w.flush_events()
    assert await env.scalar("select count(*) from orders") == 0
    assert await env.scalar("select count(*) from run_events where run_id = :r", r=w.run_id) == 0


async def test_events_alone_are_written_fenced_and_a_stop_request_is_seen(env):
    w = await writer(env)
    w.event("note", "one")
    w.event("note", "two")
    async with env.engine.begin() as conn:
        await co.request_stop(conn, w.account_id, "orders")
    assert await w.flush_events() == 2 and w.pending_events == []
    assert w.stop_requested
    assert [r[0] for r in await env.rows("select message from run_events where kind = 'note' order by id")] == \
        ["one", "two"]


async def test_a_snapshot_marks_absent_rows_in_the_transaction_of_its_last_page(env):
    """snapshot pages collect their keys (kept in the position, so a resumed listing keeps them); the page
    that completes the listing marks the stored rows it did not list, in its own transaction."""
    w = await writer(env, "inventory_items")
    await w.put(StreamPage([item("A"), item("B"), item("C")], {"next": None}, cursor=datetime.now(timezone.utc),
                           windows_done=1, windows_total=1, snapshot=True, mark_absent=True))
    assert await env.scalar("select count(*) from inventory_items where removed_at is null") == 3
    async with env.engine.begin() as conn:
        await co.finish(conn, w.owner, w.run_id, "succeeded", interval_s=0)
    # the next listing: A on its first page, then the run stops (the position carries the keys) ...
    w2 = await writer(env, "inventory_items")
    await w2.put(StreamPage([item("A")], {"next": "page2"}, snapshot=True))
    await w2.flush()
    assert (await checkpoint(env, "inventory_items")) == {"next": "page2", "seen": ["A"]}
    async with env.engine.begin() as conn:
        await co.finish(conn, w2.owner, w2.run_id, "cancelled", interval_s=0)
    # ... and the resumed run lists C: B is gone, A is not (it was listed before the stop)
    w3 = await writer(env, "inventory_items")
    assert w3.seen == ["A"]
    await w3.put(StreamPage([item("C")], {"next": None}, cursor=datetime.now(timezone.utc), windows_done=1,
                            windows_total=1, snapshot=True, mark_absent=True))
    gone = [r[0] for r in await env.rows("select sku from inventory_items where removed_at is not null")]
    assert gone == ["B"]
    assert await env.scalar("select count(*) from run_events where kind = 'absent' and run_id = :r", r=w3.run_id) == 1


async def test_records_are_mapped_once(env):
    calls = []

    def counting(rec):
        calls.append(rec["orderId"])
        return STREAMS["orders"].map(rec)
    w = await writer(env, map_=counting)
    await w.put(StreamPage([order(1), order(2)], {"p": 1}))
    await w.put(StreamPage([order(3)], {"p": 2}, cursor=datetime(2026, 10, 2, tzinfo=timezone.utc)))
    assert sorted(calls) == ["W-1", "W-2", "W-3"]


async def test_write_behind_commits_after_put_returns_and_hands_its_error_on(env):
    """Write-behind (pipelined runs): put() returns once the write has started; pages put meanwhile are held
    for the next write, which waits for it; a failed write-behind is raised by the next call."""
    w = await writer(env, behind=True)
    async with orders_locked(env):  # the write-behind waits for the table lock until the block ends
        await w.put(StreamPage([order(1)], {"p": 1}, cursor=datetime(2026, 10, 1, tzinfo=timezone.utc)))
        assert w.state == "writing"  # put returned; the write waits for the table lock
        await w.put(StreamPage([order(2)], {"p": 2}))  # held meanwhile
        assert w._held.pages == 1
    await w.drain()
    assert await env.scalar("select count(*) from orders") == 1 and await checkpoint(env) == {"p": 1}
    await w.flush()
    assert await env.scalar("select count(*) from orders") == 2 and await checkpoint(env) == {"p": 2}
    async with env.engine.begin() as conn:
        await conn.execute(sa.text("alter table orders add constraint no_w3 check (order_id <> 'W-3') not valid"))
    await w.put(StreamPage([order(3)], {"p": 3}, cursor=datetime(2026, 10, 3, tzinfo=timezone.utc)))
    with pytest.raises(Exception, match="no_w3"):  # by the put, or (held while W-3's write ran) the flush
        await w.put(StreamPage([order(4)], {"p": 4}, cursor=datetime(2026, 10, 4, tzinfo=timezone.utc)))
        await w.flush()
    assert w.state == FAILED and await checkpoint(env) == {"p": 2}
    assert await env.scalar("select count(*) from orders") == 2


async def test_pages_finishing_windows_are_held_while_a_write_behind_runs_and_carry_the_latest_cursor(env):
    """Write-behind in flight: a page that moves the cursor (a finished window) is held like a plain one; the
    next write saves the last page's position and the latest cursor of the pages it takes. Without a write
    in flight such a page is written at once (test_plain_pages_are_held_then_written_with_the_page_that...)."""
    w = await writer(env, behind=True)
    c1, c2 = datetime(2026, 10, 5, tzinfo=timezone.utc), datetime(2026, 10, 6, tzinfo=timezone.utc)
    async with orders_locked(env):  # the write-behind waits for the table lock until the block ends
        await w.put(StreamPage([order(1)], {"p": 1}, cursor=datetime(2026, 10, 1, tzinfo=timezone.utc)))
        assert w.state == "writing"  # the write waits for the table lock
        await w.put(StreamPage([order(2)], {"p": 2}, cursor=c2, windows_done=3, windows_total=5))
        await w.put(StreamPage([order(3)], {"p": 3}))  # a plain page after it
        await w.put(StreamPage([order(4)], {"p": 4}, cursor=c1, windows_done=3, windows_total=5))
        assert w._held.pages == 3  # all held while the first write is in flight
    await w.drain()
    assert await env.scalar("select count(*) from orders") == 1
    await w.flush()
    assert await env.scalar("select count(*) from orders") == 4 and await checkpoint(env) == {"p": 4}
    assert await env.scalar("select cursor from sync_state where stream = 'orders'") == c2
    assert [r[0] for r in await env.rows("select (data->>'pages')::int from run_events where kind = 'page' "
                                         "order by id")] == [1, 3]


async def test_while_a_write_behind_runs_pages_are_held_up_to_twice_write_batch_rows(env):
    """Write-behind in flight: the run keeps taking pages (its fetchers are not stopped behind the database)
    until what is held reaches HOLD_BEHIND x write_batch_rows (10 here); the page that would reach it waits
    for the write in flight and goes with the held pages in the next write."""
    assert HOLD_BEHIND == 2
    w = await writer(env, behind=True)
    async with orders_locked(env):  # the write-behind waits for the table lock until the block ends
        await w.put(StreamPage([order(0)], {"p": 0}, cursor=datetime(2026, 10, 1, tzinfo=timezone.utc)))
        assert w.state == "writing"  # the write waits for the table lock
        for p, first in enumerate((1, 7, 13), start=1):  # 6 + 6 + 6 = 18 < 20: held, put returns at once
            await asyncio.wait_for(w.put(StreamPage([order(i) for i in range(first, first + 6)], {"p": p})), 5)
        assert w._held.pages == 3 and w._held.records == 18
        fourth = asyncio.create_task(w.put(StreamPage([order(19), order(20)], {"p": 4})))  # 18 + 2 = 20
        await asyncio.sleep(0.3)
        assert not fourth.done()  # waits for the write in flight
    await fourth
    await w.drain()
    assert await env.scalar("select count(*) from orders") == 21 and await checkpoint(env) == {"p": 4}
    assert [r[0] for r in await env.rows("select (data->>'records')::int from run_events where kind = 'page' "
                                         "order by id")] == [1, 20]


async def test_an_order_twice_on_one_page_is_stored_once_with_its_line_items(env):
    """eBay pages over a live result set: an order may come back twice in one write, on one page or two
    (it moved while paged). Its last version wins, its line items too; before, only a write of several held
    pages collapsed them and a single page with a repeated order failed its write on the line items'
    primary key, every run again."""
    w = await writer(env)
    again = order(1)
    again["pricingSummary"]["total"]["value"] = "7.00"
    again["lineItems"][0]["total"]["value"] = "7.00"
    await w.put(StreamPage([order(1), order(2), again], {"p": 1}, cursor=datetime.now(timezone.utc)))
    await w.drain()
    rows = dict((await env.rows("select order_id, total_value from orders")))
    items = await env.rows("select order_id, total_value from order_line_items order by order_id")
    assert {k: str(v) for k, v in rows.items()} == {"W-1": "7.00", "W-2": "2.00"}
    assert [(r[0], str(r[1])) for r in items] == [("W-1", "7.00"), ("W-2", "2.00")]
