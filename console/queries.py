"""The database reads the console needs (async SQLAlchemy), and its only writes: the operator actions,
each one a request through :mod:`sync_core.control` (the same path as the CLI and every other host;
the request and its audit event commit together).

Nothing here touches the UI; every function takes an engine or connection and returns plain data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sync_core import control, coordination, migrate

ORIGIN = "console"

# ---------------------------------------------------------------- schema and workers


async def schema_state(engine: AsyncEngine, head: str) -> dict[str, Any]:
    """Current revision, head and pending revisions (current is None on an empty database)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(migrate.current_revision)
        history = await conn.run_sync(migrate.history) if current else []
    pending = migrate.pending_revisions(current) if current != head and migrate.is_known(current) else []
    return {"current": current, "head": head, "pending": pending, "history": history}


async def live_workers(engine: AsyncEngine) -> list[dict]:
    async with engine.connect() as conn:
        return await coordination.live_workers(conn)


# ---------------------------------------------------------------- dashboard

_DASHBOARD = sa.text("""
    select a.id as account_id, a.name as account, a.status as account_status, a.paused as account_paused,
           s.stream, s.status, s.enabled, s.paused, s.cursor, s.backfill_since, s.lease_owner, s.run_id,
           s.cancel_requested, s.run_now_requested, s.last_error, s.last_error_at, s.last_success_at,
           s.records_total, s.windows_done, s.windows_total, s.next_run_at,
           r.kind as run_kind, r.window_from, r.window_to, r.started_at as run_started_at
    from sync_state s
    join accounts a on a.id = s.account_id
    left join sync_runs r on r.id = s.run_id
    order by a.name, s.stream""")


async def dashboard_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_DASHBOARD)).mappings().all()
    return [dict(r) for r in rows]


async def last_run_id(engine: AsyncEngine, account_id: int, stream: str) -> int | None:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(
            "select coalesce((select run_id from sync_state where account_id = :a and stream = :s),"
            " (select id from sync_runs where account_id = :a and stream = :s order by started_at desc, id desc"
            "  limit 1))"), dict(a=account_id, s=stream))).scalar()


# ---------------------------------------------------------------- run detail


async def run_detail(engine: AsyncEngine, run_id: int, *, event_limit: int = 5000,
                     quarantine_limit: int = 500) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        run = (await conn.execute(sa.text("""
            select r.*, a.name as account from sync_runs r join accounts a on a.id = r.account_id
            where r.id = :id"""), dict(id=run_id))).mappings().first()
        if run is None:
            return None
        events = (await conn.execute(sa.text("""
            select * from (
                select e.id, e.ts, e.run_id, e.account_id, a.name as account, e.stream, e.level, e.kind,
                       e.message, e.data
                from run_events e left join accounts a on a.id = e.account_id
                where e.run_id = :id order by e.id desc limit :lim) x order by id"""),
            dict(id=run_id, lim=event_limit))).mappings().all()
        quarantined = (await conn.execute(sa.text("""
            select id, created_at, record_key, reason from quarantine where run_id = :id
            order by id limit :lim"""), dict(id=run_id, lim=quarantine_limit))).mappings().all()
        http = (await conn.execute(sa.text("""
            select count(*) as calls,
                   count(*) filter (where (data->>'status')::int >= 400) as errors,
                   count(*) filter (where (data->>'status')::int = 429) as throttled,
                   avg((data->>'duration_ms')::float) as avg_ms,
                   max((data->>'duration_ms')::float) as max_ms
            from run_events where run_id = :id and kind = 'http'"""), dict(id=run_id))).mappings().first()
    return {"run": dict(run), "events": [dict(e) for e in events], "quarantine": [dict(q) for q in quarantined],
            "http": dict(http) if http else {}}


# ---------------------------------------------------------------- logs


async def recent_events(engine: AsyncEngine, limit: int = 2000) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("""
            select * from (
                select e.id, e.ts, e.run_id, e.account_id, a.name as account, e.stream, e.level, e.kind,
                       e.message, e.data
                from run_events e left join accounts a on a.id = e.account_id
                order by e.id desc limit :lim) x order by id"""), dict(lim=limit))).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- accounts

_ACCOUNTS = sa.text("""
    select a.id, a.name, a.ebay_user, a.status, a.paused, a.created_at,
           c.access_expires_at, c.refresh_expires_at,
           (c.refresh_token_ct is not null) as has_refresh, (c.access_token_ct is not null) as has_access,
           (select count(*) from sync_state s where s.account_id = a.id) as streams,
           (select count(*) from sync_state s where s.account_id = a.id and s.status = 'failed') as failed
    from accounts a left join credentials c on c.account_id = a.id
    order by a.name""")


async def accounts(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Accounts with their token state (expiry times only: tokens themselves are never read)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_ACCOUNTS)).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- actions (the only writes)
# Each is one sync_core.control request (the coordination call and its audit event, origin console).


async def run_now(engine: AsyncEngine, account_id: int, stream: str | None) -> int:
    return await control.perform(engine, "run-now", account_id, stream, origin=ORIGIN)


async def stop(engine: AsyncEngine, account_id: int, stream: str | None) -> int:
    return await control.perform(engine, "stop", account_id, stream, origin=ORIGIN)


async def set_paused(engine: AsyncEngine, account_id: int, stream: str | None, paused: bool) -> int:
    return await control.perform(engine, "pause" if paused else "resume", account_id, stream, origin=ORIGIN)


async def backfill(engine: AsyncEngine, account_id: int, streams: str | list[str], since: datetime) -> int:
    return await control.perform(engine, "backfill", account_id, streams, since=since, origin=ORIGIN)


async def clear_error(engine: AsyncEngine, account_id: int, stream: str | None) -> int:
    return await control.perform(engine, "clear-error", account_id, stream, origin=ORIGIN)


async def is_paused(conn: AsyncConnection, account_id: int, stream: str | None) -> bool:
    if stream is None:
        return bool((await conn.execute(sa.text("select paused from accounts where id = :a"),
                                        dict(a=account_id))).scalar())
    return bool((await conn.execute(sa.text("select paused from sync_state where account_id = :a and stream = :s"),
                                    dict(a=account_id, s=stream))).scalar())
