"""Sell Feed task outcomes of the active_inventory stream, end to end against the simulator and a real
database (spec tests/ebay_specs/sell_feed_v1_oas3.json; FACTS §8, §13; docs/ebay-api.md "Sell Feed:
inventory tasks")."""

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from sync_core.config import load_settings
from sync_core.worker import Clients
from tests.support.env import test_settings
from tests.test_sync_e2e import NOW, run_pair, seller
from tests.support.simenv import make_env, make_sim


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=50), now=NOW)
    e = make_env(tmp_path, db_url, sim)
    await e.add_account("alice")
    yield e
    await e.engine.dispose()


async def drive(env, **kw):
    """run_pair for alice/active_inventory while the simulator clock moves on (report tasks complete)."""
    task = asyncio.create_task(run_pair(env, "alice", "active_inventory", **kw))
    deadline = asyncio.get_running_loop().time() + 60
    while not task.done():
        assert asyncio.get_running_loop().time() < deadline, "run did not end"
        await asyncio.sleep(0.1)
        env.sim.advance(2)
    return (await task)[0]


async def orphan_task(env, **faults) -> str:
    """A report task created outside baysync (with ``faults`` in force while it is created)."""
    old = env.sim.set_faults()
    env.sim.set_faults(**faults)
    clients = Clients(env.settings, env.engine, transport=env.transport)
    try:
        aid = await env.scalar("select id from accounts where name = 'alice'")
        return await (await clients.client(aid, "alice", None)).create_inventory_task()
    finally:
        await clients.aclose()
        env.sim.set_faults(old)


async def checkpoint_task(env, task_id: str) -> None:
    async with env.engine.begin() as conn:
        from sqlalchemy import text
        await conn.execute(text("update sync_state set checkpoint = cast(:c as jsonb) where stream = 'active_inventory'"),
                           dict(c=json.dumps({"task_id": task_id})))


async def feed_events(env) -> list[str]:
    return [r[0] for r in await env.rows(
        "select message from run_events where kind in ('feed_task', 'feed_report') order by id")]


def truth_count(env) -> int:
    return len(env.sim.truth("alice", "active_inventory"))


async def state(env):
    return (await env.rows("select status, last_error, checkpoint, next_run_at, last_success_at from sync_state "
                           "where stream = 'active_inventory'"))[0]


async def test_a_checkpointed_task_the_simulator_does_not_know_is_replaced(env):
    """`baysync demo` twice on one home: the checkpoint names a task of the first demo's simulator.  Spec
    getInventoryTask 404 errorId 160003 "Task does not exist" -> drop it, create a new one, succeed."""
    await checkpoint_task(env, "task-11-from-another-simulator")
    assert await drive(env) == "succeeded"
    msgs = await feed_events(env)
    assert any("task-11-from-another-simulator dropped" in m and "160003" in m for m in msgs), msgs
    assert any("created" in m for m in msgs)
    assert await env.scalar("select count(*) from active_inventory where inactive_since is null") == truth_count(env)
    st = await state(env)
    assert st.status == "idle" and st.last_error is None and st.checkpoint is None


@pytest.mark.parametrize("outcome,why", [("FAILED", "FAILED"), ("NO_FILE", "160014")])
async def test_a_failed_or_fileless_task_is_dropped_and_a_new_one_made(env, outcome, why):
    """FeedStatusEnum FAILED [DOC] / spec getResultFile 404 errorId 160014 "No file found for task ID": the
    checkpointed task is dropped with an event saying why, and the run makes a new task at once."""
    tid = await orphan_task(env, report_delay_s=1, report_outcome=outcome)
    env.sim.advance(5)
    await checkpoint_task(env, tid)
    assert await drive(env) == "succeeded"
    msgs = await feed_events(env)
    assert any(f"{tid} dropped" in m and why in m for m in msgs), msgs
    assert await env.scalar("select count(*) from active_inventory") == truth_count(env)


async def test_tasks_that_keep_failing_fail_the_run_without_staying_in_the_checkpoint(env):
    env.sim.set_faults(report_outcome="FAILED")
    assert await drive(env) == "failed"
    st = await state(env)
    assert st.status == "failed" and "dropped twice" in st.last_error
    assert not (st.checkpoint or {}).get("task_id")
    env.sim.set_faults(report_outcome="COMPLETED")  # eBay recovers: the next run starts afresh
    assert await drive(env) == "succeeded"
    assert await env.scalar("select count(*) from active_inventory") == truth_count(env)


async def test_409_160024_never_reuses_a_finished_snapshot(env):
    """Spec createInventoryTask 409 errorId 160024 (too many tasks queued or in process): only an in-flight
    task may be adopted; an older COMPLETED task is a stale snapshot and is never taken as fresh."""
    done = await orphan_task(env, report_delay_s=1)
    env.sim.advance(5)  # COMPLETED
    env.sim.config.feed_max_in_flight = 0  # eBay answers 160024 although nothing of ours is in flight
    assert await drive(env) == "failed"
    st = await state(env)
    assert "160024" in st.last_error and "lists no recent one in progress" in st.last_error
    assert not any(done in m for m in await feed_events(env))
    assert await env.scalar("select count(*) from active_inventory") == 0


async def test_409_160025_defers_the_stream_until_the_quota_window_passes(env):
    """Spec createInventoryTask 409 errorId 160025 (task quota of the hour or day spent): the run ends
    'deferred', not failed; the stream is idle, says until when, and waits a day (period unverified)."""
    await drive(env)
    before = await env.rows("select listing_key, inactive_since from active_inventory order by 1")
    env.sim.config.feed_hourly_tasks = 0
    t0 = datetime.now(timezone.utc)
    assert await drive(env) == "deferred"
    st = await state(env)
    assert st.status == "idle" and "quota" in st.last_error and "160025" in st.last_error
    assert "waiting until" in st.last_error and st.checkpoint is None
    assert st.next_run_at >= t0 + timedelta(hours=23)
    assert await env.scalar("select status from sync_runs order by id desc limit 1") == "deferred"
    assert await env.rows("select listing_key, inactive_since from active_inventory order by 1") == before
    # `baysync status` says until when
    import os
    import subprocess
    import sys
    cli = {k: v for k, v in os.environ.items() if not k.startswith("BAYSYNC_")}
    cli.update(BAYSYNC_HOME=str(env.settings.home), BAYSYNC_DATABASE_URL=env.settings.database_url)
    out = subprocess.run([sys.executable, "-m", "console.cli", "status"], env=cli, capture_output=True, text=True,
                         timeout=60).stdout
    assert "note: eBay's report task quota is spent" in out and "waiting until" in out, out
    # a success later clears the note
    env.sim.config.feed_hourly_tasks = 20
    assert await drive(env) == "succeeded"
    assert (await state(env)).last_error is None


@pytest.mark.parametrize("outcome", ["ACK_FAILURE", "EMPTY"])
async def test_a_failed_or_empty_report_never_marks_listings_inactive(env, outcome):
    """ActiveInventoryReport Ack=Failure (AbstractResponseType) or a report without any SKUDetails is not
    a trustworthy snapshot: no listing is marked inactive, the run is deferred to the next interval."""
    assert await drive(env) == "succeeded"
    n = truth_count(env)
    assert n > 0 and await env.scalar("select count(*) from active_inventory where inactive_since is null") == n
    first_success = (await state(env)).last_success_at
    env.sim.set_faults(report_outcome=outcome)
    assert await drive(env) == "deferred"
    assert await env.scalar("select count(*) from active_inventory where inactive_since is null") == n
    st = await state(env)
    assert st.status == "idle" and "listings kept" in st.last_error and st.checkpoint is None
    assert st.last_success_at == first_success
    assert any("snapshot not applied" in m for m in await feed_events(env))


async def test_multi_variation_listings_keep_one_row_per_variation_sku(env):
    """ActiveInventoryReport XML reference: SKUDetails/Variations/Variation{SKU, Price, Quantity}."""
    env.sim.set_faults(report_variations=True)
    assert await drive(env) == "succeeded"
    rows = await env.rows("select listing_key, sku, price_value, quantity from active_inventory "
                          "where item_id = '190000000001' order by sku")
    assert [(r.listing_key, r.sku, str(r.price_value), r.quantity) for r in rows] == [
        ("190000000001/VAR-BLUE", "VAR-BLUE", "11.50", 0), ("190000000001/VAR-GREEN", "VAR-GREEN", "12.25", 7),
        ("190000000001/VAR-RED", "VAR-RED", "10.00", 3)]
    assert await env.scalar("select count(*) from active_inventory") == truth_count(env) + 3
    assert any("multi-variation" in m for m in await feed_events(env))


def test_the_report_runs_every_6_hours_by_default(tmp_path):
    s = test_settings(tmp_path)
    assert s.stream("active_inventory").interval_s == 6 * 3600 and s.stream("orders").interval_s == 900
    assert load_settings({"BAYSYNC_HOME": str(tmp_path)}).report_poll_s == 30.0
    s = test_settings(tmp_path, BAYSYNC_STREAMS_ACTIVE_INVENTORY_INTERVAL_S="3600")
    assert s.stream("active_inventory").interval_s == 3600


def test_variation_records_expand_to_one_row_each():
    """SKUDetails with Variations (one or several Variation elements; a Variation without its own SKU)."""
    from sync_core.streams.active_inventory import expand_variations, map_row

    one = {"ItemID": "9", "Variations": {"Variation": {"SKU": "A", "Price": "1.00", "Quantity": "2"}}}
    many = {"ItemID": "8", "SKU": "P", "Variations": {"Variation": [{"Price": "1.00", "Quantity": "1"},
                                                                    {"Price": "2.00", "Quantity": "0"}]}}
    plain = {"ItemID": "7", "Price": "3.00", "Quantity": "4"}
    keys = [map_row(r)["listing_key"] for r in expand_variations([one, many, plain])]
    assert keys == ["9/A", "8/#0", "8/#1", "7/"]


def test_demo_twice_on_one_home_ends_with_no_failed_stream(cli_env, db_url, demo_db_url):
    """`baysync demo` run twice on one home: the second demo starts from an emptied database of its own
    (``<name>_demo``), so report tasks the first demo checkpointed (unknown to the second simulator) are
    never resumed; every stream ends its runs without failing. (A checkpointed task a simulator does not
    know is test_a_checkpointed_task_the_simulator_does_not_know_is_replaced above: getInventoryTask 404 errorId 160003.)"""
    import subprocess
    import sys

    from tests.support.env import q

    def demo(seconds):
        r = subprocess.run([sys.executable, "-m", "console.cli", "demo", "--headless", "--seconds", str(seconds)],
                           env=cli_env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]

    demo(2)
    # whatever the first demo left, make every report stream look as if it had a task of the first simulator
    eng = sa.create_engine(demo_db_url)
    try:
        with eng.begin() as c:
            c.execute(sa.text("""update sync_state set checkpoint = '{"task_id": "task-10-of-the-first-demo"}'::jsonb,
                                 next_run_at = now() - interval '1 minute' where stream = 'active_inventory'"""))
    finally:
        eng.dispose()
    assert q(demo_db_url, "select count(*) from sync_state where stream = 'active_inventory' "
                          "and checkpoint->>'task_id' = 'task-10-of-the-first-demo'")[0][0] == 3
    demo(12)
    failed = q(demo_db_url, "select stream, status, last_error from sync_state where status <> 'idle' "
                            "or (stream = 'active_inventory' and last_error is not null)")
    assert failed == [], failed
    assert q(demo_db_url, "select count(*) from run_events where message like '%task-10-of-the-first-demo%'")[0][0] == 0
    assert q(demo_db_url, "select count(*) from sync_state where stream = 'active_inventory' "
                          "and last_success_at > now() - interval '1 minute'")[0][0] == 3
    assert q(db_url, "select count(*) from accounts")[0][0] == 0  # the operator's database has no demo sellers


async def test_report_polls_back_off(env):
    """Polls of a task still in progress: at once, then after report_poll_s (0.2 s in tests), x1.5 each
    time.  Measured on the requests reaching the simulator; a loaded machine only makes the gaps longer."""
    import httpx

    from sync_core import coordination as co

    polls: list[float] = []

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if request.method == "GET" and "/sell/feed/v1/inventory_task/" in request.url.path:
                polls.append(asyncio.get_running_loop().time())
            return await env.transport.handle_async_request(request)

    env.sim.set_faults(report_delay_s=3600)  # the frozen sim clock: the task never completes
    clients = Clients(env.settings, env.engine, transport=Recording())
    task = asyncio.create_task(run_pair(env, "alice", "active_inventory", clients=clients))
    deadline = asyncio.get_running_loop().time() + 60
    while len(polls) < 6:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    aid = await env.scalar("select id from accounts where name = 'alice'")
    async with env.engine.begin() as conn:
        await co.request_stop(conn, aid, "active_inventory")
    status, _ = await asyncio.wait_for(task, 30)
    await clients.aclose()
    assert status == "cancelled"
    gaps = [b - a for a, b in zip(polls, polls[1:])][:5]
    for k, gap in enumerate(gaps):
        assert gap >= 0.2 * 1.5 ** k * 0.95, (k, gaps)
    assert gaps[4] > gaps[0] * 3
