"""Run coordination against real PostgreSQL: exclusivity, leases, rescue, fencing, requests."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from sync_core import coordination as co, db


@pytest.fixture
async def engine(settings):
    eng = db.make_async_engine(settings, "test", pool_size=20, max_overflow=40)
    yield eng
    await eng.dispose()


async def _account(engine, name="acme", streams=("orders", "transactions")) -> int:
    async with engine.begin() as conn:
        aid = (await conn.execute(sa.text("insert into accounts (name) values (:n) returning id"), dict(n=name))).scalar_one()
        await co.ensure_pairs(conn, aid, streams)
    return aid


async def test_fifty_concurrent_claims_of_one_pair_give_one_run(engine):
    aid = await _account(engine)

    async def claim(i):
        async with engine.begin() as conn:
            return await co.claim_pair(conn, f"w{i}", aid, "orders", 60)

    results = await asyncio.gather(*(claim(i) for i in range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    async with engine.connect() as conn:
        runs = (await conn.execute(sa.text("select count(*) from sync_runs where stream = 'orders'"))).scalar()
    assert runs == 1


async def test_claim_due_skips_locked_and_leased(engine):
    await _account(engine, streams=("orders", "transactions", "payouts"))
    async with engine.begin() as conn:
        a = await co.claim_due(conn, "w1", 2, 60)
    async with engine.begin() as conn:
        b = await co.claim_due(conn, "w2", 10, 60)
    assert len(a) == 2 and len(b) == 1
    assert {c.stream for c in a} | {c.stream for c in b} == {"orders", "transactions", "payouts"}
    async with engine.begin() as conn:
        assert await co.claim_due(conn, "w3", 10, 60) == []


async def test_expired_lease_is_rescued_and_the_zombie_cannot_write(engine):
    aid = await _account(engine)
    t0 = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        zombie = await co.claim_pair(conn, "zombie", aid, "orders", 30, now=t0)
        await co.save_checkpoint(conn, zombie.run_id, {"windows": [], "i": 3, "next": "http://x/next"})
    later = t0 + timedelta(seconds=31)
    async with engine.begin() as conn:
        # the zombie's heartbeat comes too late
        assert await co.heartbeat(conn, "zombie", [zombie.run_id], 30, now=later) == {}
    async with engine.begin() as conn:
        rescuer = await co.claim_pair(conn, "rescuer", aid, "orders", 30, now=later)
    assert rescuer is not None and rescuer.abandoned_run == zombie.run_id
    assert rescuer.checkpoint["i"] == 3  # resumes from the last checkpoint
    with pytest.raises(co.LeaseLost):
        async with engine.begin() as conn:
            await co.fence(conn, "zombie", zombie.run_id, now=later)
    async with engine.connect() as conn:
        status = (await conn.execute(sa.text("select status from sync_runs where id = :r"), dict(r=zombie.run_id))).scalar()
    assert status == "abandoned"
    async with engine.begin() as conn:
        assert await co.fence(conn, "rescuer", rescuer.run_id, now=later) is False
        assert await co.finish(conn, "zombie", zombie.run_id, "succeeded", interval_s=60) is False  # refused


async def test_rescue_expired_marks_abandoned_and_requeues(engine):
    aid = await _account(engine)
    t0 = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        c = await co.claim_pair(conn, "dead", aid, "orders", 10, now=t0)
    async with engine.begin() as conn:
        assert await co.rescue_expired(conn, now=t0 + timedelta(seconds=5)) == []
    async with engine.begin() as conn:
        assert await co.rescue_expired(conn, now=t0 + timedelta(seconds=11)) == [c.run_id]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text("select status, lease_owner from sync_state where stream='orders'"))).first()
    assert row.status == "queued" and row.lease_owner is None


async def test_stop_pause_and_requests(engine):
    aid = await _account(engine)
    async with engine.begin() as conn:
        c = await co.claim_pair(conn, "w", aid, "orders", 60)
        assert await co.fence(conn, "w", c.run_id) is False
    async with engine.begin() as conn:
        assert await co.request_stop(conn, aid, "orders") == 1
    async with engine.begin() as conn:
        assert await co.fence(conn, "w", c.run_id) is True  # seen between pages
        assert (await co.heartbeat(conn, "w", [c.run_id], 60)) == {c.run_id: True}
        await co.finish(conn, "w", c.run_id, "cancelled", interval_s=60)
    async with engine.begin() as conn:
        await co.set_paused(conn, aid, None, True)
        assert await co.claim_due(conn, "w", 10, 60) == []
        await co.request_run_now(conn, aid, "orders")
        assert await co.claim_due(conn, "w", 10, 60) == []  # paused wins
        await co.set_paused(conn, aid, None, False)
        got = await co.claim_due(conn, "w", 10, 60)
    assert {g.stream for g in got} == {"orders", "transactions"}


async def test_finish_moves_schedule_and_records_errors(engine):
    aid = await _account(engine, streams=("orders",))
    async with engine.begin() as conn:
        c = await co.claim_pair(conn, "w", aid, "orders", 60)
        await co.finish(conn, "w", c.run_id, "failed", interval_s=600, error="boom")
    async with engine.connect() as conn:
        s = (await conn.execute(sa.text("select status, last_error, next_run_at > now() + interval '5 minutes' as later "
                                        "from sync_state"))).first()
        r = (await conn.execute(sa.text("select status, error from sync_runs"))).first()
    assert (s.status, s.last_error, s.later) == ("failed", "boom", True)
    assert (r.status, r.error) == ("failed", "boom")
    async with engine.begin() as conn:
        await co.clear_error(conn, aid, "orders")
        assert len(await co.claim_due(conn, "w", 10, 60)) == 1


async def test_reauth_needed_stops_only_that_account(engine):
    a = await _account(engine, "a")
    await _account(engine, "b")
    async with engine.begin() as conn:
        await co.mark_reauth_needed(conn, a, "invalid_grant")
        got = await co.claim_due(conn, "w", 10, 60)
    assert {g.account for g in got} == {"b"}


async def test_config_decides_enabled_streams(engine):
    await _account(engine, streams=("orders", "transactions"))
    async with engine.begin() as conn:
        await co.sync_enabled_streams(conn, ["orders", "payouts"])
        rows = dict((await conn.execute(sa.text("select stream, enabled from sync_state"))).all())
        got = await co.claim_due(conn, "w", 10, 60)
    assert rows == {"orders": True, "transactions": False, "payouts": True}
    assert {g.stream for g in got} == {"orders", "payouts"}
