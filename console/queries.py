"""The database reads the console's screens need (async SQLAlchemy). The dashboard's rows are
:func:`sync_core.status.overview` and the event feed is :mod:`sync_core.events`, both read by the data
service (console/data.py); the console's writes (operator actions, account changes) all go through
:mod:`sync_core.control`, like the CLI's.

Nothing here touches the UI; every function takes an engine and returns plain data.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sync_core import migrate

ORIGIN = "console"

# ---------------------------------------------------------------- schema


async def schema_state(engine: AsyncEngine, head: str) -> dict[str, Any]:
    """Current revision, head and pending revisions (current is None on an empty database)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(migrate.current_revision)
        history = await conn.run_sync(migrate.history) if current else []
    pending = migrate.pending_revisions(current) if current != head and migrate.is_known(current) else []
    return {"current": current, "head": head, "pending": pending, "history": history}


# ---------------------------------------------------------------- dashboard (the rows: sync_core.status.overview)


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
