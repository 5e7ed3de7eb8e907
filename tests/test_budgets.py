"""Call budgets shared in PostgreSQL (sync_core/budgets.py): the atomic take under concurrency, the
corrections from getRateLimits / getUserRateLimits, 429 back-off, and three `baysync run` processes that
together never exceed a quota of the simulator (run in its own process)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa

from sync_core import db
from sync_core.budgets import BACKOFF_START_S, SharedRateBudget
from sync_core.ebay.ratelimit import APP
from tests.support.simproc import baysync_env, mint, sim_process


def _rates(api_name: str, limit: int, remaining: int, reset: str | None = None) -> dict:
    """A getRateLimits body (developer_analytics spec, RateLimitsResponse)."""
    rate = {"count": limit - remaining, "limit": limit, "remaining": remaining, "timeWindow": 86400}
    if reset:
        rate["reset"] = reset
    return {"rateLimits": [{"apiContext": "sell", "apiName": api_name, "apiVersion": "v1",
                            "resources": [{"name": f"sell.{api_name.lower()}", "rates": [rate]}]}]}


async def _row(engine, account: str, api: str):
    async with engine.connect() as c:
        return (await c.execute(sa.text("select * from rate_budgets where account = :a and api = :api"),
                                dict(a=account, api=api))).one()


async def test_concurrent_takes_never_exceed_the_limit(settings):
    """Many coroutines over three engines (separate connections, like hosts) take from one application
    bucket of 40 and per-account buckets of 1000: exactly 40 calls are given, never more."""
    engines = [db.make_async_engine(settings, "test", pool_size=8, max_overflow=0) for _ in range(3)]
    try:
        budgets = [SharedRateBudget(e, {"fulfillment": 1000}, reserve_fraction=0.0) for e in engines]
        await budgets[0].update_from_rate_limits(APP, _rates("Fulfillment", 40, 40))
        taken: list[str] = []

        async def worker(b: SharedRateBudget, account: str) -> None:
            while True:
                wait, _ = await b.try_take(account, "fulfillment")
                if wait > 0:
                    return
                taken.append(account)

        await asyncio.gather(*(worker(budgets[i % 3], f"acct{i % 4}") for i in range(24)))
        assert len(taken) == 40
        app = await _row(engines[0], APP, "fulfillment")
        assert app.remaining == 0 and app.call_limit == 40
        async with engines[0].connect() as c:
            per_account = (await c.execute(sa.text(
                "select sum(1000 - remaining) from rate_budgets where api = 'fulfillment' and account <> :app"),
                dict(app=APP))).scalar()
        assert per_account == 40  # a call is taken from both rows or from neither
    finally:
        for e in engines:
            await e.dispose()


async def test_corrections_from_rate_limits(settings):
    engine = db.make_async_engine(settings, "test")
    try:
        b = SharedRateBudget(engine, reserve_fraction=0.0)
        for _ in range(3):
            assert (await b.try_take("alice", "finances"))[0] == 0
        row = await _row(engine, APP, "finances")
        assert row.source == "default" and row.remaining == row.call_limit - 3
        reset = (datetime.now(timezone.utc) + timedelta(hours=5)).isoformat()
        # a guessed row takes eBay's numbers as they are
        await b.update_from_rate_limits(APP, _rates("Finances", 500, 400, reset))
        row = await _row(engine, APP, "finances")
        assert (row.call_limit, row.remaining, row.source) == (500, 400, "getRateLimits")
        assert abs(row.reset_at.timestamp() - datetime.fromisoformat(reset).timestamp()) < 1
        # same window: the lower count wins (our calls in flight are not in eBay's count yet)
        await b.update_from_rate_limits(APP, _rates("Finances", 500, 450, reset))
        assert (await _row(engine, APP, "finances")).remaining == 400
        await b.update_from_rate_limits(APP, _rates("Finances", 500, 390, reset))
        assert (await _row(engine, APP, "finances")).remaining == 390
        # a later reset = a new window: eBay's remaining again
        later = (datetime.now(timezone.utc) + timedelta(hours=29)).isoformat()
        await b.update_from_rate_limits(APP, _rates("Finances", 500, 499, later))
        assert (await _row(engine, APP, "finances")).remaining == 499
        assert b.snapshot()[f"{APP}/finances"]["source"] == "getRateLimits"
    finally:
        await engine.dispose()


async def test_429_blocks_the_bucket_with_backoff_or_retry_after(settings):
    engine = db.make_async_engine(settings, "test")
    try:
        b = SharedRateBudget(engine, reserve_fraction=0.0)
        assert (await b.try_take("alice", "fulfillment"))[0] == 0
        # Retry-After is used as given
        await b.note_throttled("alice", "fulfillment", 30.0)
        wait, _ = await b.try_take("alice", "fulfillment")
        assert 25 < wait <= 30
        async with engine.begin() as c:  # the block is over
            await c.execute(sa.text("update rate_budgets set blocked_until = now() - interval '1 second'"))
        assert (await b.try_take("alice", "fulfillment"))[0] == 0
        # without Retry-After: 60 s, then doubling while 429s keep coming
        await b.note_throttled("alice", "fulfillment", None)
        wait, _ = await b.try_take("alice", "fulfillment")
        assert BACKOFF_START_S - 5 < wait <= BACKOFF_START_S
        await b.note_throttled("alice", "fulfillment", None)
        wait, _ = await b.try_take("alice", "fulfillment")
        assert 2 * BACKOFF_START_S - 5 < wait <= 2 * BACKOFF_START_S
        # other accounts are not blocked
        assert (await b.try_take("bob", "fulfillment"))[0] == 0
        # the wait is announced (rate_wait) and bounded by max_wait_s
        events: list[dict] = []
        b.max_wait_s = 1
        from sync_core.ebay.ratelimit import RateBudgetExhausted

        with pytest.raises(RateBudgetExhausted):
            await b.acquire("alice", "fulfillment", on_event=events.append)
        b.max_wait_s = None
        b.poll_s = 0.05
        task = asyncio.create_task(b.acquire("alice", "fulfillment", on_event=events.append))
        for _ in range(200):
            if events:
                break
            await asyncio.sleep(0.05)
        assert events and events[0]["type"] == "rate_wait" and "429" in events[0]["reason"], events
        assert not task.done()
        async with engine.begin() as c:
            await c.execute(sa.text("update rate_budgets set blocked_until = null"))
        await asyncio.wait_for(task, 30)
    finally:
        await engine.dispose()


QUOTA = 24
SELLERS = [dict(name=n, orders=400, transactions=5, payouts=2, disputes=2, conversations=2, inventory_items=2,
                days=20) for n in ("alice", "bob", "carol")]


def test_three_processes_share_one_quota(cli_env, db_url):
    """Three `baysync run` processes (one slot each, one seller each) against one simulator process whose
    Fulfillment quota is QUOTA calls a day: together they make at most QUOTA calls, eBay never has to
    answer 429, and the runs wait visibly (rate_wait events) instead of failing."""
    now = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
    env = baysync_env(cli_env, "")
    for s in ("transactions", "payouts", "disputes", "messages", "inventory_items", "offers", "active_inventory",
              "returns", "inquiries", "cases", "cancellations", "shipping_fulfillments"):
        env[f"BAYSYNC_STREAMS_{s.upper()}_ENABLED"] = "false"
    env.update(BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="10", BAYSYNC_LEASE_TTL_S="30", BAYSYNC_HEARTBEAT_S="2")
    with sim_process(SELLERS, now, daily_limits={"sell.fulfillment": QUOTA}) as base:
        env = baysync_env(env, base)
        for s in SELLERS:
            r = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", s["name"],
                                "--refresh-token-stdin"], input=mint(base, s["name"]), env=env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        procs = [subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", "1"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        eng = sa.create_engine(db_url)
        try:
            deadline = time.monotonic() + 90
            waits = owners = 0
            while time.monotonic() < deadline:
                with eng.connect() as c:
                    waits = c.execute(sa.text("select count(distinct run_id) from run_events "
                                              "where kind = 'rate_wait'")).scalar()
                    owners = c.execute(sa.text("select count(distinct owner) from sync_runs")).scalar()
                if waits >= 2 and owners == 3:
                    break
                assert all(p.poll() is None for p in procs), [p.stderr.read()[-2000:] for p in procs if p.poll()]
                time.sleep(0.5)
            stats = httpx.get(base + "/sim/stats", timeout=10).json()
            assert waits >= 2 and owners == 3, (waits, owners, stats)
            fulfillment = sum(n for op, n in stats["by_endpoint"].items() if op == "getOrders")
            assert 0 < fulfillment <= QUOTA, stats
            assert "quota_429" not in stats["faults"], stats
            with eng.connect() as c:
                failed = c.execute(sa.text("select count(*) from sync_runs where status = 'failed'")).scalar()
                row = c.execute(sa.text("select call_limit, remaining, source from rate_budgets "
                                        "where account = :a and api = 'fulfillment'"), dict(a=APP)).one()
                reason = c.execute(sa.text("select message from run_events where kind = 'rate_wait' "
                                           "limit 1")).scalar()
            assert failed == 0
            assert row.call_limit == QUOTA and row.source == "getRateLimits" and row.remaining == 0, row
            assert "shared by all hosts" in reason
            # a stop does not wait for the budget: the waiting runs end as cancelled, none as failed
            for p in procs:
                p.terminate()
            assert [p.wait(30) for p in procs] == [0, 0, 0]
            with eng.connect() as c:
                statuses = c.execute(sa.text("select status, count(*) from sync_runs group by status")).all()
            assert "failed" not in dict(statuses) and dict(statuses).get("cancelled", 0) >= 1, statuses
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
            eng.dispose()


async def test_app_token_is_cached_and_minted_again_before_expiry(tmp_path, db_url):
    """AppTokenSource (client_credentials grant, base scope: developer_analytics spec, getRateLimits
    security): one mint serves many calls; a token within ``margin_s`` of its expiry is replaced."""
    from sync_core.ebay.client import make_http_client
    from sync_core.ebay.oauth import AppTokenSource
    from sync_core.sim import SellerSpec
    from tests.support.simenv import make_env, make_sim

    sim = make_sim(SellerSpec("alice", orders=5, days=5))
    env = make_env(tmp_path, db_url, sim)
    http = make_http_client(env.settings, transport=env.transport)
    try:
        src = AppTokenSource(http, env.settings)
        tokens = {await src.access_token() for _ in range(3)}
        assert len(tokens) == 1 and sim.stats["tokens"]["client_credentials"] == 1
        # after eBay rejected it (401), one new mint, shared by callers that report the same token
        old = tokens.pop()
        new = await src.access_token(force_refresh=True, rejected=old)
        assert new != old and await src.access_token(force_refresh=True, rejected=old) == new
        assert sim.stats["tokens"]["client_credentials"] == 2
        expiring = AppTokenSource(http, env.settings, margin_s=7200 + 60)  # every token is "about to expire"
        await expiring.access_token()
        await expiring.access_token()
        assert sim.stats["tokens"]["client_credentials"] == 4
    finally:
        await http.aclose()
        await env.engine.dispose()


async def test_worker_reads_app_limits_with_the_app_token_and_user_limits_with_the_user_token(tmp_path, db_url):
    """Clients: getRateLimits with the application token (the simulator, like eBay's spec, refuses the
    seller's token there), getUserRateLimits with the seller's, for the sell and commerce contexts; the
    shared rows carry eBay's numbers before the first run's client is handed out."""
    from sync_core.sim import SellerSpec
    from sync_core.worker import Clients
    from tests.support.simenv import make_env, make_sim

    sim = make_sim(SellerSpec("alice", orders=5, days=5))
    sim.rates.limits["sell.fulfillment"] = 777
    env = make_env(tmp_path, db_url, sim)
    account_id = await env.add_account("alice")
    clients = Clients(env.settings, env.engine, transport=env.transport)
    try:
        await clients.client(account_id, "alice", None)
        stats = sim.stats
        assert stats["tokens"]["client_credentials"] == 1
        assert stats["by_endpoint"]["getRateLimits"] == 2 and stats["by_endpoint"]["getUserRateLimits"] == 2
        assert "403" not in stats["by_status"], stats
        rows = {(r.account, r.api): r for r in await env.rows("select * from rate_budgets")}
        assert rows[(APP, "fulfillment")].call_limit == 777
        assert rows[(APP, "fulfillment")].source == rows[("alice", "fulfillment")].source == "getRateLimits"
        assert rows[(APP, "message")].source == "getRateLimits"  # the commerce context
        # once per process and account
        await clients.client(account_id, "alice", None)
        assert sim.stats["by_endpoint"]["getRateLimits"] == 2
    finally:
        await clients.aclose()
        await env.engine.dispose()


async def test_in_process_budget_backs_off_after_a_429_without_retry_after():
    """rate_budget = "process": the same rule as the shared rows (60 s, doubling while 429s keep coming,
    Retry-After used as given when eBay sends one)."""
    from sync_core.ebay.ratelimit import RateBudget

    now = [1000.0]
    slept: list[float] = []

    async def sleep(s):
        slept.append(s)
        now[0] += s

    b = RateBudget({"fulfillment": 100}, reserve_fraction=0.0, clock=lambda: now[0], sleep=sleep)
    b.note_throttled("a", "fulfillment", None)
    await b.acquire("a", "fulfillment")
    assert slept == [BACKOFF_START_S]
    b.note_throttled("a", "fulfillment", None)  # right after the block: the 429s keep coming
    await b.acquire("a", "fulfillment")
    assert slept[-1] == 2 * BACKOFF_START_S
    now[0] += 10 * BACKOFF_START_S  # quiet for long: start again at 60 s
    b.note_throttled("a", "fulfillment", None)
    await b.acquire("a", "fulfillment")
    assert slept[-1] == BACKOFF_START_S
    b.note_throttled("a", "fulfillment", 7)
    await b.acquire("a", "fulfillment")
    assert slept[-1] == 7
