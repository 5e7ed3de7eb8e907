"""Whole runs against the in-process simulator and a real database: backfill windows, lookback,
quarantine, STOP and resume, reauth isolation, and no token in any sink."""

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from sync_core import coordination as co
from sync_core.sim import SellerSpec
from sync_core.runner import Run
from sync_core.streams.base import StreamPage
from sync_core.streams import STREAMS
from sync_core.worker import Clients, WorkerPool
from tests.support.simenv import make_env, make_sim

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def seller(name="alice", orders=400, **kw):
    base = dict(transactions=600, payouts=12, disputes=8, conversations=10, inventory_items=30, days=150)
    base.update(kw)
    return SellerSpec(name, orders=orders, **base)


async def _pair_ctx(env, account, stream, clients=None, kind="incremental"):
    """A claimed run of (account, stream), with its eBay client when ``clients`` is given."""
    aid = await env.scalar("select id from accounts where name = :n", n=account)
    owner = co.new_owner("test")
    async with env.engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, stream, 60, kind=kind)
    assert claim is not None
    ctx = Run(env.settings, env.engine, claim, owner)
    if clients is not None:
        await clients.for_run(ctx)
    return ctx


async def run_pair(env, account, stream, clients=None, kind="incremental", stop_after_pages=None):
    own = clients is None
    clients = clients or Clients(env.settings, env.engine, transport=env.transport)
    ctx = await _pair_ctx(env, account, stream, clients, kind)
    aid = ctx.account_id
    if stop_after_pages:
        orig = ctx.writer.put

        async def put(*a, **k):
            r = await orig(*a, **k)
            if ctx.totals.pages >= stop_after_pages:
                async with env.engine.begin() as conn:
                    await co.request_stop(conn, aid, stream)
            return r
        ctx.writer.put = put
    status = await ctx.execute()
    if own:
        await clients.aclose()
    return status, ctx


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice"), seller("bob", orders=100), now=NOW)
    e = make_env(tmp_path, db_url, sim)
    yield e
    await e.engine.dispose()


async def test_default_backfill_is_90_days_and_minimal_calls(env):
    await env.add_account("alice")
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    since = NOW - timedelta(days=90)
    truth = [o for o in env.sim.truth("alice", "orders")
             if datetime.fromisoformat(o["lastModifiedDate"].replace("Z", "+00:00")) >= since]
    ids = set(r[0] for r in await env.rows("select order_id from orders"))
    assert ids == {o["orderId"] for o in truth}
    assert await env.scalar("select count(*) from order_line_items") == sum(len(o["lineItems"]) for o in truth)
    cursor = await env.scalar("select cursor from sync_state where stream = 'orders'")
    assert abs((cursor - datetime.now(timezone.utc)).total_seconds()) < 120
    run = (await env.rows("select windows_total, api_calls, records_inserted from sync_runs"))[0]
    assert run.windows_total == 3  # 90 days in 30-day windows
    # minimum calls: one per 200 records per window (here each window fits one or two pages)
    assert run.api_calls <= run.windows_total + len(truth) // 200 + 1
    assert run.records_inserted == len(truth)


async def test_lookback_picks_up_late_modification(env):
    await env.add_account("alice")
    assert (await run_pair(env, "alice", "orders"))[0] == "succeeded"
    env.sim.advance(60)
    touched = env.sim.touch("alice", "orders", n=3)
    env.sim.advance(1)
    status, ctx = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    # touched orders older than the first 90-day backfill are new to us; the rest are updates
    assert ctx.totals.updated + ctx.totals.inserted == 3 and ctx.totals.updated >= 1
    truth = {o["orderId"]: o for o in env.sim.truth("alice", "orders")}
    for oid in touched:
        got = await env.scalar("select last_modified_date from orders where order_id = :o", o=oid)
        assert got == datetime.fromisoformat(truth[oid]["lastModifiedDate"].replace("Z", "+00:00"))


async def test_malformed_records_are_quarantined_rest_stored(env):
    env.sim.set_faults(malformed_rate=0.05, only_paths=("/sell/finances",))
    await env.add_account("alice")
    status, ctx = await run_pair(env, "alice", "transactions")
    assert status == "succeeded"
    q = await env.scalar("select count(*) from quarantine where stream = 'transactions'")
    stored = await env.scalar("select count(*) from transactions")
    assert q > 0 and stored > 0
    assert ctx.totals.quarantined == q
    assert await env.scalar("select sum(records_quarantined) from sync_runs") == q
    reason = await env.scalar("select reason from quarantine limit 1")
    assert reason and ("missing" in reason or "should be" in reason or "not" in reason)


async def test_stop_between_pages_then_resume_without_duplicates(env):
    # one window at a time: the page count at the stop is exact (concurrent windows: test_concurrent_windows.py)
    env.settings = env.settings.with_values(initial_backfill_days=140, run_concurrency=1)
    await env.add_account("alice")
    status, ctx = await run_pair(env, "alice", "orders", stop_after_pages=2)
    # the request is seen by the next page's fenced transaction: that page commits, then the run ends
    assert status == "cancelled" and ctx.totals.pages == 3
    cp = await env.scalar("select checkpoint from sync_state where stream = 'orders'")
    assert cp and cp["i"] >= 1
    assert await env.scalar("select status from sync_runs order by id limit 1") == "cancelled"
    status, ctx2 = await run_pair(env, "alice", "orders")
    assert status == "succeeded"
    assert ctx2.totals.pages >= 1
    since = NOW - timedelta(days=140)
    truth = {o["orderId"] for o in env.sim.truth("alice", "orders")
             if datetime.fromisoformat(o["lastModifiedDate"].replace("Z", "+00:00")) >= since}
    assert set(r[0] for r in await env.rows("select order_id from orders")) == truth


async def test_reauth_needed_for_one_account_others_keep_syncing(env):
    await env.add_account("alice")
    await env.add_account("bob")
    env.sim.set_faults(revoke_refresh_tokens=["alice"])
    pool = WorkerPool(env.settings, env.engine, concurrency=8, transport=env.transport)
    await pool.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.2)
            env.sim.advance(1)  # report tasks complete in sim time
            pending = await env.scalar("select count(*) from sync_state where status in ('queued', 'running')")
            if pending == 0:
                break
    finally:
        await pool.stop()
    assert await env.scalar("select status from accounts where name = 'alice'") == "reauth_needed"
    assert await env.scalar("select count(*) from sync_state s join accounts a on a.id = s.account_id "
                            "where a.name = 'alice' and s.status <> 'reauth_needed'") == 0
    assert await env.scalar("select count(*) from sync_state s join accounts a on a.id = s.account_id "
                            "where a.name = 'bob' and s.status = 'idle' and s.last_success_at is not null") == len(STREAMS)
    assert await env.scalar("select count(*) from orders o join accounts a on a.id = o.account_id where a.name='bob'") > 0


async def test_all_streams_sync_and_no_token_reaches_any_sink(env, caplog):
    caplog.set_level(logging.DEBUG)
    await env.add_account("alice")
    # Force 401 -> refresh again and again during the runs: every access token the simulator issues
    # expires after 15 calls.  Counted in calls, not seconds, so a token is never rejected before its
    # first use (8 workers share one token: each has at most one call in flight when it is renewed).
    env.sim.set_faults(access_token_uses=15)
    pool = WorkerPool(env.settings, env.engine, concurrency=8, transport=env.transport)
    await pool.start()
    try:
        for _ in range(300):
            await asyncio.sleep(0.2)
            env.sim.advance(2)  # report tasks complete in simulator time (tokens expire by calls here)
            if await env.scalar("select count(*) from sync_state where status in ('queued', 'running')") == 0:
                break
    finally:
        await pool.stop()
    states = dict(await env.rows("select stream, status from sync_state"))
    assert set(states.values()) == {"idle"}, states
    # the tokens did expire mid-run and were refreshed, more than once
    stats = env.sim.stats
    assert stats["faults"].get("401", 0) >= 2 and stats["tokens"].get("refresh_token", 0) >= 3, stats
    # quotas were refreshed from getRateLimits (the simulator answers with its own numbers)
    assert any(v["source"] != "default" for v in pool.clients.budget.snapshot().values())
    # every secret the simulator ever issued, and the client secret
    secrets = set(env.sim.auth.refresh) | set(env.sim.auth.access) | {env.settings.ebay_client_secret}
    assert len(secrets) > 2
    events = " ".join(str(r) for r in await env.rows("select message, data::text from run_events"))
    runs = " ".join(str(r) for r in await env.rows("select * from sync_runs"))
    state = " ".join(str(r) for r in await env.rows("select * from sync_state"))
    logs = caplog.text
    for sec in secrets:
        for sink in (events, runs, state, logs):
            assert sec not in sink
    creds = await env.rows("select refresh_token_ct, access_token_ct from credentials")
    for row in creds:
        for ct in row:
            assert ct is None or all(sec.encode() not in bytes(ct) for sec in secrets)


async def test_backfill_requested_during_a_run_is_not_lost(env):
    await env.add_account("alice")
    aid = await env.scalar("select id from accounts where name = 'alice'")
    since = NOW - timedelta(days=140)
    # a run in flight when the backfill request arrives ...
    owner = co.new_owner("test")
    async with env.engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, "orders", 60)
        await co.request_backfill(conn, aid, "orders", since)
    ctx = Run(env.settings, env.engine, claim, owner)
    clients = Clients(env.settings, env.engine, transport=env.transport)
    assert await ctx.execute(clients) == "succeeded"
    # ... finishes its own plan and leaves the request for the next run
    assert await env.scalar("select backfill_since from sync_state where stream = 'orders'") == since
    status, ctx2 = await run_pair(env, "alice", "orders", clients=clients)
    await clients.aclose()
    assert status == "succeeded" and ctx2.claim.kind == "backfill"
    assert await env.scalar("select backfill_since from sync_state where stream = 'orders'") is None
    old = {o["orderId"] for o in env.sim.truth("alice", "orders")
           if datetime.fromisoformat(o["lastModifiedDate"].replace("Z", "+00:00")) >= since}
    assert old <= set(r[0] for r in await env.rows("select order_id from orders"))


async def test_unusable_key_fails_the_run_with_the_reason(env, monkeypatch):
    await env.add_account("alice")
    monkeypatch.setenv("BAYSYNC_SECRET_KEY", "not-the-key-the-tokens-were-encrypted-with")
    pool = WorkerPool(env.settings, env.engine, concurrency=8, transport=env.transport)
    await pool.start()
    try:
        for _ in range(60):
            await asyncio.sleep(0.2)
            if await env.scalar("select count(*) from sync_state where status in ('queued', 'running')") == 0:
                break
    finally:
        await pool.stop()
    rows = await env.rows("select status, last_error from sync_state")
    assert {r.status for r in rows} == {"failed"}
    assert all("BAYSYNC_SECRET_KEY" in r.last_error or "key" in r.last_error for r in rows)
    assert await env.scalar("select count(*) from sync_runs where status = 'running'") == 0


async def test_active_inventory_reuses_a_task_left_by_a_dead_run(env):
    """A run that created a report task and died before checkpointing it: eBay answers 409 to a new
    task while that one is in progress; the next run reuses it and stores the snapshot."""
    await env.add_account("alice")
    env.sim.set_faults(report_delay_s=30)
    clients = Clients(env.settings, env.engine, transport=env.transport)
    aid = await env.scalar("select id from accounts where name = 'alice'")
    orphan = await (await clients.client(aid, "alice", None)).create_inventory_task()
    task = asyncio.create_task(run_pair(env, "alice", "active_inventory", clients=clients))
    for _ in range(50):
        await asyncio.sleep(0.1)
        env.sim.advance(2)
        if task.done():
            break
    status, ctx = await task
    await clients.aclose()
    assert status == "succeeded"
    msgs = [r[0] for r in await env.rows("select message from run_events where kind = 'feed_task'")]
    assert any(orphan in m and "reusing" in m for m in msgs)
    assert await env.scalar("select count(*) from active_inventory") == len(env.sim.truth("alice", "active_inventory"))


async def test_a_report_task_that_takes_long_is_visible_while_the_run_polls(env):
    """The report task never completes (the simulator's clock stands still): the run's polls and the task's
    status reach run_events while it waits, long before any record is stored; STOP ends the wait."""
    await env.add_account("alice")
    env.sim.set_faults(report_delay_s=3600)
    task = asyncio.create_task(run_pair(env, "alice", "active_inventory"))
    deadline = asyncio.get_running_loop().time() + 30
    polls = "select count(*) from run_events where kind = 'http' and data->>'op' = 'getInventoryTask'"
    while await env.scalar(polls) < 3:  # more than a held page write (after 2 s) could carry
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    msgs = [r[0] for r in await env.rows("select message from run_events where kind = 'feed_task' order by id")]
    assert "created" in msgs[0] and "QUEUED after 0s" in msgs[1]
    assert await env.scalar("select coalesce(sum(records_inserted), 0) from sync_runs") == 0 and not task.done()
    aid = await env.scalar("select id from accounts where name = 'alice'")
    async with env.engine.begin() as conn:
        await co.request_stop(conn, aid, "active_inventory")
    status, ctx = await asyncio.wait_for(task, 30)
    assert status == "cancelled"


async def test_nul_characters_are_replaced_and_the_page_is_stored(env):
    """PostgreSQL text and jsonb cannot hold NUL: a record carrying one (in a mapped column, in the payload,
    in a child row) is stored with U+FFFD instead, and the page's other records are stored too."""
    await env.add_account("alice")
    ctx = await _pair_ctx(env, "alice", "orders")

    def rec(i, name):
        return {"orderId": f"NUL-{i}", "creationDate": "2026-09-30T00:00:00.000Z",
                "lastModifiedDate": "2026-10-01T00:00:00.000Z", "buyer": {"username": name},
                "pricingSummary": {"total": {"value": "1.00", "currency": "USD"}},
                "lineItems": [{"lineItemId": f"L{i}", "sku": "S\x001", "title": "t\x00", "quantity": 1,
                               "total": {"value": "1.00", "currency": "USD"}}]}

    await ctx.writer.put(StreamPage([rec(1, "bad\x00name"), rec(2, "fine")], None))
    await ctx.writer.flush()  # (a pipelined run's writer may commit behind put)
    assert await env.scalar("select count(*) from orders where order_id like 'NUL-%'") == 2
    assert await env.scalar("select buyer from orders where order_id = 'NUL-1'") == "bad\ufffdname"
    assert await env.scalar("select raw->'buyer'->>'username' from orders where order_id = 'NUL-1'") == "bad\ufffdname"
    assert await env.scalar("select sku from order_line_items where order_id = 'NUL-2'") == "S\ufffd1"


@pytest.mark.parametrize("batch_rows", ["1000", "1"])
async def test_consecutive_pages_are_written_together(tmp_path, db_url, batch_rows):
    """write_batch_rows: pages of 50 are written in one transaction per window (the page that ends a window
    writes what is held, with the window's cursor); with 1, one transaction per page. Same data either way."""
    sim = make_sim(seller("carol", orders=300, days=80), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50", BAYSYNC_WRITE_BATCH_ROWS=batch_rows,
                 BAYSYNC_RUN_CONCURRENCY="1")  # one window at a time, one request at a time
    try:
        await e.add_account("carol")
        clients = Clients(e.settings, e.engine, transport=e.transport)
        ctx = await _pair_ctx(e, "carol", "orders", clients)
        assert await ctx.execute() == "succeeded"
        await clients.aclose()
        truth = {o["orderId"] for o in e.sim.truth("carol", "orders")}
        assert {r[0] for r in await e.rows("select order_id from orders")} == truth
        writes = await e.scalar("select count(*) from run_events where kind = 'page'")
        run = (await e.rows("select pages, windows_total, records_inserted from sync_runs"))[0]
        assert run.records_inserted == len(truth) and run.pages == ctx.totals.pages >= len(truth) // 50
        if batch_rows == "1":
            assert writes == run.pages
        else:
            assert writes == run.windows_total < run.pages
    finally:
        await e.engine.dispose()


async def test_held_pages_are_written_when_the_api_fails(tmp_path, db_url):
    """Pages held for a batched write are not lost when a later call fails: they are written with their
    checkpoint, the run fails with the API's error, and the next run resumes after them (no duplicates)."""
    sim = make_sim(seller("dave", orders=400, days=25), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50", BAYSYNC_API_RETRY_ATTEMPTS="1",
                 BAYSYNC_RUN_CONCURRENCY="1")  # one request at a time: exactly three pages before the fault
    try:
        await e.add_account("dave")
        clients = Clients(e.settings, e.engine, transport=e.transport)
        ctx = await _pair_ctx(e, "dave", "orders", clients)
        orig = ctx.writer.put

        async def put(*a, **k):
            r = await orig(*a, **k)
            if ctx.writer._held.pages == 3:
                e.sim.set_faults(rate_5xx=1.0)  # every later call fails
            return r
        ctx.writer.put = put
        assert await ctx.execute() == "failed"
        assert await e.scalar("select count(*) from orders") == 150  # the three held pages
        # (the two earlier 30-day windows are empty: one page each, written with its window's cursor)
        assert [r[0] for r in await e.rows("select (data->>'pages')::int from run_events where kind = 'page' "
                                           "order by id")] == [1, 1, 3]
        cp = await e.scalar("select checkpoint from sync_state where stream = 'orders'")
        assert cp["next"] and "offset=150" in cp["next"]

        e.sim.set_faults(rate_5xx=0.0)
        ctx2 = await _pair_ctx(e, "dave", "orders", clients)
        assert await ctx2.execute() == "succeeded"
        await clients.aclose()
        assert ctx2.totals.inserted == 250 and ctx2.totals.updated == 0
        truth = {o["orderId"] for o in e.sim.truth("dave", "orders")}
        assert {r[0] for r in await e.rows("select order_id from orders")} == truth and len(truth) == 400
    finally:
        await e.engine.dispose()


async def test_held_pages_are_written_after_the_hold_time_while_the_api_is_slow(tmp_path, db_url):
    """A held page does not wait for the next page: when the API is slow (here every call takes 3 s), the
    run's flusher writes it with its checkpoint once it is WRITE_HOLD_S old, while the next call is still
    in flight."""
    from sync_core.writer import WRITE_HOLD_S

    sim = make_sim(seller("erin", orders=150, days=25), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50")
    try:
        await e.add_account("erin")
        clients = Clients(e.settings, e.engine, transport=e.transport)
        ctx = await _pair_ctx(e, "erin", "orders", clients)
        e.sim.set_faults(latency_ms=3000.0, only_paths=("/sell/fulfillment",))
        run = asyncio.create_task(ctx.execute())
        # the two empty 30-day windows are written at once (each page ends its window); then the third
        # window's first page (50 orders) is held while the second page takes 3 s to come
        deadline = asyncio.get_running_loop().time() + 30
        while await e.scalar("select count(*) from orders") < 50:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        stored_while_running = not run.done()
        held_pages_written = await e.scalar("select count(*) from run_events where kind = 'page' "
                                            "and (data->>'records')::int = 50")
        cp = await e.scalar("select checkpoint from sync_state where stream = 'orders'")
        assert await run == "succeeded"
        await clients.aclose()
        assert stored_while_running and held_pages_written == 1 and "offset=50" in cp["next"]
        assert WRITE_HOLD_S < 3
        assert await e.scalar("select count(*) from orders") == 150
    finally:
        await e.engine.dispose()


async def test_held_pages_are_not_written_once_the_lease_is_gone(tmp_path, db_url):
    """Write batching keeps the fence: a page held when the run's lease passes to another owner (as after
    a rescue) is never written, by the flusher or later; the run ends as lost."""
    sim = make_sim(seller("fred", orders=150, days=25), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50")
    try:
        await e.add_account("fred")
        clients = Clients(e.settings, e.engine, transport=e.transport)
        ctx = await _pair_ctx(e, "fred", "orders", clients)
        e.sim.set_faults(latency_ms=1500.0, only_paths=("/sell/fulfillment",))
        run = asyncio.create_task(ctx.execute())
        deadline = asyncio.get_running_loop().time() + 30
        while not ctx.writer._held.pages:  # the third window's first page is held (the two before were empty)
            assert asyncio.get_running_loop().time() < deadline and not run.done()
            await asyncio.sleep(0.02)
        async with e.engine.begin() as conn:
            await conn.execute(sa.text("update sync_state set lease_owner = 'someone-else' where run_id = :r"),
                               dict(r=ctx.run_id))
        top = await e.scalar("select coalesce(max(id), 0) from run_events")
        assert await asyncio.wait_for(run, 60) == "lost"
        await clients.aclose()
        assert await e.scalar("select count(*) from orders") == 0
        # its events are fenced too: none after the lease passed (the flusher's write found it gone)
        assert await e.scalar("select count(*) from run_events where run_id = :r and id > :t", r=ctx.run_id, t=top) == 0
    finally:
        await e.engine.dispose()


async def test_a_failed_background_write_fails_the_run_without_a_gap(tmp_path, db_url):
    """The flusher's write fails (here a real constraint violation from PostgreSQL): its error is handed to
    the run, which fails with it (the flusher does not swallow it and let later pages be stored past the lost
    ones); no position after the lost pages is saved, and the next run stores everything."""
    sim = make_sim(seller("gina", orders=150, days=25), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50")
    try:
        await e.add_account("gina")
        clients = Clients(e.settings, e.engine, transport=e.transport)
        async with e.engine.begin() as conn:
            await conn.execute(sa.text("alter table orders add constraint no_rows_yet check (false) not valid"))
        e.sim.set_faults(latency_ms=1500.0, only_paths=("/sell/fulfillment",))
        ctx = await _pair_ctx(e, "gina", "orders", clients)
        assert await ctx.execute() == "failed"
        assert isinstance(ctx.writer.error, Exception) and "no_rows_yet" in str(ctx.writer.error)
        assert await e.scalar("select count(*) from orders") == 0
        cp = await e.scalar("select checkpoint from sync_state where stream = 'orders'")
        assert "offset=" not in str(cp)  # nothing of the third window was recorded as done
        assert "no_rows_yet" in await e.scalar("select error from sync_runs where id = :r", r=ctx.run_id)

        async with e.engine.begin() as conn:
            await conn.execute(sa.text("alter table orders drop constraint no_rows_yet"))
        e.sim.set_faults(latency_ms=0.0)
        ctx2 = await _pair_ctx(e, "gina", "orders", clients)
        assert await ctx2.execute() == "succeeded"
        await clients.aclose()
        assert await e.scalar("select count(*) from orders") == 150
    finally:
        await e.engine.dispose()


async def test_events_of_a_slow_api_are_written_between_pages_once_each(tmp_path, db_url):
    """A slow eBay (0.7 s a call): the run's flusher writes the HTTP events in their own short transactions
    while the next call is under way, not only with the pages; each event is written once, in order."""
    sim = make_sim(seller("hank", orders=150, days=25), now=NOW)
    e = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="40")
    try:
        await e.add_account("hank")
        e.sim.set_faults(latency_ms=700, only_paths=["/sell/fulfillment"])
        status, ctx = await run_pair(e, "hank", "orders")
        assert status == "succeeded"
        run = ctx.run_id
        calls = await e.scalar("select api_calls from sync_runs where id = :r", r=run)
        http = await e.rows("select id, ts from run_events where run_id = :r and kind = 'http' order by id", r=run)
        assert calls >= 3 and len(http) == calls  # none lost, none twice
        page_ts = {r[0] for r in await e.rows("select ts from run_events where run_id = :r and kind = 'page'", r=run)}
        alone = [i for i, ts in http if ts not in page_ts]  # a transaction without a page: the flusher's
        assert alone, "every HTTP event waited for a page write"
        all_ts = [r[0] for r in await e.rows("select ts from run_events where run_id = :r order by id", r=run)]
        assert all_ts == sorted(all_ts)
    finally:
        await e.engine.dispose()
