"""Run coordination: every statement that claims, leases, heartbeats, fences, releases or rescues a
run, and the operator requests (run now, stop, pause, backfill, clear error) that workers act on.

The unit of exclusivity is one ``sync_state`` row per (account, stream). A run exists only while its
row carries ``lease_owner``/``run_id`` with an unexpired ``lease_expires_at``:

* claim: one statement picks due rows ``FOR UPDATE SKIP LOCKED``, inserts their ``sync_runs`` rows and
  stamps the lease; a row whose previous lease expired is taken over and its old run marked abandoned.
* heartbeat: extends the lease only where owner and run id still match.
* fence: every write of a run starts its transaction by locking its state row *where it still holds
  the lease*; no row means the lease was lost and the transaction is rolled back, so a paused or zombie
  worker can never write after a rescue.
* requests from the console, the CLI or another host are columns on the same row; workers read them
  when they heartbeat or fence (cooperative STOP between pages). A request NOTIFYs ``baysync_control``
  (workers wake up); every other change of what a pair shows (claim, checkpoint, window, finish,
  rescue, release, clear error, new pairs) NOTIFYs ``baysync_state`` in the same transaction, so the
  console's dashboard follows within a second without polling (workers do not listen to it).

Every time comparison accepts an optional ``now`` so tests can move leases through time.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

CONTROL_CHANNEL = "baysync_control"
STATE_CHANNEL = "baysync_state"


class LeaseLost(RuntimeError):
    """This worker no longer holds the lease of its run: it must stop without writing."""


@dataclass(frozen=True)
class Claim:
    account_id: int
    account: str
    stream: str
    run_id: int
    kind: str
    cursor: datetime | None
    checkpoint: dict | None
    backfill_since: datetime | None
    abandoned_run: int | None


def new_owner(kind: str = "worker") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{kind}:{uuid.uuid4().hex[:6]}"


_NOW = "coalesce(cast(:now as timestamptz), now())"

_CLAIM = f"""
with picked as (
    select s.account_id, s.stream, s.run_id as old_run, s.lease_owner as old_owner
    from sync_state s join accounts a on a.id = s.account_id
    where s.enabled and not s.paused and not a.paused and a.status = 'active'
      and (s.lease_owner is null or s.lease_expires_at < {_NOW})
      and (s.next_run_at <= {_NOW} or s.run_now_requested or s.backfill_since is not null)
      {{pair_filter}}
    order by s.run_now_requested desc, s.next_run_at
    limit :limit
    for update of s skip locked
), abandoned as (
    update sync_runs r set status = 'abandoned', finished_at = {_NOW},
           error = 'lease expired (worker ' || coalesce(p.old_owner, '?') || ' stopped heartbeating)'
    from picked p where r.id = p.old_run and r.status = 'running'
    returning r.id
), runs as (
    insert into sync_runs (account_id, stream, kind, status, owner, host, started_at)
    select p.account_id, p.stream,
           case when s.backfill_since is not null then 'backfill' else :kind end,
           'running', :owner, :host, {_NOW}
    from picked p join sync_state s using (account_id, stream)
    returning id, account_id, stream, kind
)
update sync_state s set
    lease_owner = :owner, lease_expires_at = {_NOW} + make_interval(secs => :ttl),
    heartbeat_at = {_NOW}, run_id = r.id, status = 'running', run_now_requested = false,
    cancel_requested = false, updated_at = {_NOW}
from runs r, picked p, accounts a
where s.account_id = r.account_id and s.stream = r.stream and p.account_id = r.account_id
  and p.stream = r.stream and a.id = s.account_id
returning s.account_id, a.name as account, s.stream, r.id as run_id, r.kind, s.cursor, s.checkpoint,
          s.backfill_since, p.old_run, (select count(*) from abandoned) as n_abandoned
"""


def _claims(rows: Iterable[Any]) -> list[Claim]:
    return [Claim(r.account_id, r.account, r.stream, r.run_id, r.kind, r.cursor, r.checkpoint, r.backfill_since,
                  r.old_run) for r in rows]


async def claim_due(conn: AsyncConnection, owner: str, limit: int, ttl_s: int, *, kind: str = "incremental",
                    now: datetime | None = None) -> list[Claim]:
    """Claim up to ``limit`` due (account, stream) pairs for ``owner``; commit is the caller's."""
    sql = _CLAIM.format(pair_filter="")
    rows = (await conn.execute(sa.text(sql), dict(owner=owner, host=socket.gethostname(), limit=limit, ttl=ttl_s,
                                                  kind=kind, now=now))).all()
    if rows:
        await notify_state(conn, "claim")
    return _claims(rows)


async def claim_pair(conn: AsyncConnection, owner: str, account_id: int, stream: str, ttl_s: int, *,
                     kind: str = "incremental", now: datetime | None = None) -> Claim | None:
    """Claim one specific pair now (``baysync sync``), due or not. None if another worker holds it."""
    await conn.execute(sa.text("update sync_state set run_now_requested = true where account_id = :a and stream = :s "
                               "and (lease_owner is null or lease_expires_at < " + _NOW + ")"),
                       dict(a=account_id, s=stream, now=now))
    sql = _CLAIM.format(pair_filter="and s.account_id = :account_id and s.stream = :stream")
    rows = (await conn.execute(sa.text(sql), dict(owner=owner, host=socket.gethostname(), limit=1, ttl=ttl_s,
                                                  kind=kind, now=now, account_id=account_id, stream=stream))).all()
    c = _claims(rows)
    if c:
        await notify_state(conn, "claim")
    return c[0] if c else None


async def lease_holder(conn: AsyncConnection, account_id: int, stream: str, now: datetime | None = None) -> str | None:
    return (await conn.execute(sa.text(
        f"select lease_owner from sync_state where account_id = :a and stream = :s and lease_expires_at >= {_NOW}"),
        dict(a=account_id, s=stream, now=now))).scalar()


async def heartbeat(conn: AsyncConnection, owner: str, run_ids: list[int], ttl_s: int,
                    now: datetime | None = None) -> dict[int, bool]:
    """Extend the leases this owner still holds. Returns {run_id: cancel_requested} for the runs still
    held; a run missing from the answer has lost its lease."""
    if not run_ids:
        return {}
    rows = (await conn.execute(sa.text(f"""
        with mine as (  -- lock in a fixed order: multi-row updates elsewhere use the same order
            select account_id, stream from sync_state
            where lease_owner = :owner and run_id = any(:runs) and lease_expires_at >= {_NOW}
            order by account_id, stream for no key update)
        update sync_state s set lease_expires_at = {_NOW} + make_interval(secs => :ttl), heartbeat_at = {_NOW}
        from mine m where s.account_id = m.account_id and s.stream = m.stream
        returning s.run_id, s.cancel_requested or s.paused as stop"""), dict(owner=owner, runs=run_ids, ttl=ttl_s, now=now))).all()
    return {r.run_id: r.stop for r in rows}


async def fence(conn: AsyncConnection, owner: str, run_id: int, now: datetime | None = None) -> bool:
    """Lock this run's state row inside the caller's transaction if the lease is still ours.

    Returns whether a stop (cancel or pause) was requested. Raises LeaseLost otherwise."""
    row = (await conn.execute(sa.text(f"""
        select cancel_requested or paused as stop from sync_state
        where run_id = :run and lease_owner = :owner and lease_expires_at >= {_NOW}
        for no key update"""), dict(run=run_id, owner=owner, now=now))).first()
    if row is None:
        raise LeaseLost(f"run {run_id} lost its lease")
    return bool(row.stop)


async def save_checkpoint(conn: AsyncConnection, run_id: int, checkpoint: dict[str, Any] | None, *,
                          cursor: datetime | None = None, windows_done: int | None = None,
                          windows_total: int | None = None, records: int = 0, counts: dict[str, int] | None = None,
                          clear_backfill: bool = False, backfill_started: datetime | None = None) -> None:
    """Within a fenced transaction: the paging position (and, when a window completed, the cursor)."""
    await conn.execute(sa.text("""
        update sync_state set checkpoint = coalesce(cast(:cp as jsonb), checkpoint),  -- None keeps it
            cursor = case when cast(:cursor as timestamptz) is null then cursor
                          else greatest(coalesce(cursor, cast(:cursor as timestamptz)), cast(:cursor as timestamptz)) end,
            windows_done = coalesce(:wd, windows_done), windows_total = coalesce(:wt, windows_total),
            records_total = records_total + :records,
            backfill_since = case when :clear_bf and backfill_since is not distinct from cast(:bf as timestamptz)
                                  then null else backfill_since end,  -- a newer request survives
            updated_at = now()
        where run_id = :run"""),
        dict(cp=None if checkpoint is None else _json(checkpoint), cursor=cursor, wd=windows_done,
             wt=windows_total, records=records, run=run_id, clear_bf=clear_backfill, bf=backfill_started))
    await add_run_counts(conn, run_id, counts or {}, windows_done=windows_done, windows_total=windows_total)
    await notify_state(conn, "checkpoint")


async def add_run_counts(conn: AsyncConnection, run_id: int, c: dict[str, int], *, windows_done: int | None = None,
                         windows_total: int | None = None) -> None:
    await conn.execute(sa.text("""
        update sync_runs set pages = pages + :pages, records_inserted = records_inserted + :ins,
            records_updated = records_updated + :upd, records_unchanged = records_unchanged + :unch,
            records_quarantined = records_quarantined + :quar, api_calls = api_calls + :calls,
            retries = retries + :retries, windows_done = coalesce(:wd, windows_done),
            windows_total = coalesce(:wt, windows_total)
        where id = :run"""),
        dict(pages=c.get("pages", 0), ins=c.get("inserted", 0), upd=c.get("updated", 0),
             unch=c.get("unchanged", 0), quar=c.get("quarantined", 0), calls=c.get("api_calls", 0),
             retries=c.get("retries", 0), wd=windows_done, wt=windows_total, run=run_id))


async def set_run_window(conn: AsyncConnection, run_id: int, window_from: datetime | None,
                         window_to: datetime | None, windows_total: int) -> None:
    await conn.execute(sa.text("update sync_runs set window_from = :f, window_to = :t, windows_total = :n where id = :run"),
                       dict(f=window_from, t=window_to, n=windows_total, run=run_id))
    await conn.execute(sa.text("update sync_state set windows_total = :n, windows_done = 0 where run_id = :run"),
                       dict(n=windows_total, run=run_id))
    await notify_state(conn, "window")


async def finish(conn: AsyncConnection, owner: str, run_id: int, status: str, *, interval_s: int,
                 error: str | None = None, now: datetime | None = None) -> bool:
    """End a run and release its lease (only if still held). Status: succeeded | failed | cancelled | deferred
    (eBay said "not now": the stream stays idle, ``error`` is kept in last_error as a note saying until when,
    its checkpoint is cleared, so the next run starts over, and last_success_at is not moved)."""
    state = {"succeeded": "idle", "cancelled": "idle", "deferred": "idle", "failed": "failed",
             "reauth_needed": "reauth_needed"}[status]
    run_status = "failed" if status == "reauth_needed" else status
    held = (await conn.execute(sa.text(f"""
        update sync_state set lease_owner = null, lease_expires_at = null, run_id = null,
            status = case when paused then 'paused' else :state end,
            cancel_requested = false,
            checkpoint = case when :status in ('succeeded', 'deferred') then null else checkpoint end,
            next_run_at = case when run_now_requested then {_NOW} else {_NOW} + make_interval(secs => :interval) end,
            last_error = case when :status in ('failed', 'reauth_needed', 'deferred') then :error
                              when :status = 'succeeded' then null else last_error end,
            last_error_at = case when :status in ('failed', 'reauth_needed', 'deferred') then {_NOW}
                                 else last_error_at end,
            last_success_at = case when :status = 'succeeded' then {_NOW} else last_success_at end,
            updated_at = {_NOW}
        where run_id = :run and lease_owner = :owner
        returning 1"""), dict(state=state, status=status, interval=interval_s, error=error, run=run_id, owner=owner,
                              now=now))).first() is not None
    await conn.execute(sa.text(f"""
        update sync_runs set status = :rs, finished_at = {_NOW}, error = :error
        where id = :run and status = 'running'"""), dict(rs=run_status if held else "abandoned", error=error,
                                                          run=run_id, now=now))
    await notify_state(conn, "finish")
    return held


async def rescue_expired(conn: AsyncConnection, now: datetime | None = None) -> list[int]:
    """Mark runs whose lease expired as abandoned and make their streams claimable again (they resume
    from their last checkpoint). Returns the abandoned run ids."""
    rows = (await conn.execute(sa.text(f"""
        with expired as (
            select account_id, stream, run_id, lease_owner from sync_state
            where lease_owner is not null and lease_expires_at < {_NOW}
            for update skip locked
        ), cleared as (
            update sync_state s set lease_owner = null, lease_expires_at = null, run_id = null,
                   status = case when s.paused then 'paused' else 'queued' end, next_run_at = {_NOW}
            from expired e where s.account_id = e.account_id and s.stream = e.stream
            returning e.run_id, e.lease_owner
        )
        update sync_runs r set status = 'abandoned', finished_at = {_NOW},
               error = 'lease expired (worker ' || c.lease_owner || ' stopped heartbeating)'
        from cleared c where r.id = c.run_id and r.status = 'running'
        returning r.id"""), dict(now=now))).all()
    if rows:
        await notify_state(conn, "rescue")
    return [r.id for r in rows]


async def release_all(conn: AsyncConnection, owner: str) -> int:
    """Graceful shutdown: give back every lease of this owner (runs end cancelled, resumable)."""
    rows = (await conn.execute(sa.text("""
        with mine as (
            update sync_state set lease_owner = null, lease_expires_at = null, run_id = null,
                   status = case when paused then 'paused' else 'queued' end, next_run_at = now()
            where lease_owner = :owner returning run_id)
        update sync_runs set status = 'cancelled', finished_at = now(), error = 'worker shut down'
        where id in (select run_id from mine) and status = 'running' returning id"""), dict(owner=owner))).all()
    if rows:
        await notify_state(conn, "release")
    return len(rows)


# ---------------------------------------------------------------- pairs and operator requests


async def ensure_pairs(conn: AsyncConnection, account_id: int, streams: Iterable[str],
                       enabled: dict[str, bool] | None = None) -> None:
    streams = list(streams)
    if not streams:
        return
    await conn.execute(sa.text("""
        insert into sync_state (account_id, stream, enabled, status)
        select :a, s, true, 'queued' from unnest(cast(:streams as text[])) s
        on conflict (account_id, stream) do nothing"""), dict(a=account_id, streams=streams))
    for stream, on in (enabled or {}).items():
        await conn.execute(sa.text("update sync_state set enabled = :on where account_id = :a and stream = :s"),
                           dict(on=on, a=account_id, s=stream))
    await notify_state(conn, "pairs")


async def sync_enabled_streams(conn: AsyncConnection, enabled: list[str]) -> None:
    """Make every account have a pair for every enabled stream, and mark the others disabled
    (configuration is the source of truth for which streams run)."""
    await conn.execute(sa.text("""
        insert into sync_state (account_id, stream, status)
        select a.id, s, 'queued' from accounts a, unnest(cast(:enabled as text[])) s
        on conflict (account_id, stream) do nothing"""), dict(enabled=enabled))
    await conn.execute(sa.text("update sync_state set enabled = (stream = any(:enabled)) "
                               "where enabled is distinct from (stream = any(:enabled))"), dict(enabled=enabled))
    await notify_state(conn, "pairs")


def _pair_where(stream: str | None) -> str:
    return "account_id = :a" + (" and stream = :s" if stream else "")


async def _notify(conn: AsyncConnection, what: str, channel: str = CONTROL_CHANNEL) -> None:
    await conn.execute(sa.text("select pg_notify(:ch, :what)"), dict(ch=channel, what=what))


async def notify_state(conn: AsyncConnection, what: str) -> None:
    """Tell listeners (the console) that pairs changed, when the caller's transaction commits
    (PostgreSQL folds equal notifies of one transaction into one)."""
    await _notify(conn, what, STATE_CHANNEL)


async def request_run_now(conn: AsyncConnection, account_id: int, stream: str | None = None) -> int:
    n = (await conn.execute(sa.text(f"""
        update sync_state set run_now_requested = true,
               status = case when lease_owner is null and status not in ('paused', 'reauth_needed') then 'queued' else status end,
               updated_at = now()
        where {_pair_where(stream)} returning 1"""), dict(a=account_id, s=stream))).all()
    await _notify(conn, "run_now")
    return len(n)


async def request_stop(conn: AsyncConnection, account_id: int, stream: str | None = None) -> int:
    """Cooperative STOP: running pairs finish their current page, checkpoint and end cancelled."""
    n = (await conn.execute(sa.text(f"""
        update sync_state set cancel_requested = (lease_owner is not null), run_now_requested = false,
               status = case when lease_owner is not null then 'stopping' else status end, updated_at = now()
        where {_pair_where(stream)} returning 1"""), dict(a=account_id, s=stream))).all()
    await _notify(conn, "stop")
    return len(n)


async def set_paused(conn: AsyncConnection, account_id: int, stream: str | None, paused: bool) -> int:
    if stream is None:
        await conn.execute(sa.text("update accounts set paused = :p, updated_at = now() where id = :a"),
                           dict(p=paused, a=account_id))
    n = (await conn.execute(sa.text(f"""
        update sync_state set paused = :p,
               status = case when :p and lease_owner is null then 'paused'
                             when :p then 'stopping'
                             when not :p and status = 'paused' then 'queued' else status end,
               next_run_at = case when not :p then least(next_run_at, now()) else next_run_at end,
               updated_at = now()
        where {_pair_where(stream)} returning 1"""), dict(a=account_id, s=stream, p=paused))).all()
    await _notify(conn, "pause" if paused else "resume")
    return len(n)


async def request_backfill(conn: AsyncConnection, account_id: int, stream: str, since: datetime) -> int:
    n = (await conn.execute(sa.text("""
        update sync_state set backfill_since = :since,
               checkpoint = case when lease_owner is null then null else checkpoint end,
               status = case when lease_owner is null and status not in ('paused', 'reauth_needed') then 'queued' else status end,
               updated_at = now()
        where account_id = :a and stream = :s returning 1"""), dict(a=account_id, s=stream, since=since))).all()
    await _notify(conn, "backfill")
    return len(n)


async def clear_error(conn: AsyncConnection, account_id: int, stream: str | None = None) -> int:
    n = (await conn.execute(sa.text(f"""
        update sync_state set last_error = null, last_error_at = null,
               status = case when status = 'failed' then 'queued' else status end, next_run_at = now()
        where {_pair_where(stream)} returning 1"""), dict(a=account_id, s=stream))).all()
    await notify_state(conn, "clear_error")
    return len(n)


async def mark_reauth_needed(conn: AsyncConnection, account_id: int, reason: str) -> None:
    """The account's refresh token is no longer accepted: its workers stop; others are unaffected."""
    await conn.execute(sa.text("update accounts set status = 'reauth_needed', updated_at = now() where id = :a"),
                       dict(a=account_id))
    await conn.execute(sa.text("""
        with rows as (select account_id, stream from sync_state where account_id = :a
                      order by account_id, stream for no key update)
        update sync_state s set status = 'reauth_needed', last_error = :r, last_error_at = now(),
               cancel_requested = (s.lease_owner is not null)
        from rows where s.account_id = rows.account_id and s.stream = rows.stream"""), dict(a=account_id, r=reason))
    await _notify(conn, "reauth")


# ---------------------------------------------------------------- worker registry (who is alive)


async def register_worker(conn: AsyncConnection, owner: str, kind: str, info: dict | None = None) -> None:
    await conn.execute(sa.text("""
        insert into workers (id, host, pid, kind, info) values (:id, :host, :pid, :kind, cast(:info as jsonb))
        on conflict (id) do update set heartbeat_at = now()"""),
        dict(id=owner, host=socket.gethostname(), pid=os.getpid(), kind=kind, info=_json(info or {})))


async def worker_heartbeat(conn: AsyncConnection, owner: str) -> None:
    await conn.execute(sa.text("update workers set heartbeat_at = now() where id = :id"), dict(id=owner))


async def unregister_worker(conn: AsyncConnection, owner: str) -> None:
    await conn.execute(sa.text("delete from workers where id = :id"), dict(id=owner))


async def live_workers(conn: AsyncConnection, max_age_s: int = 60, kind: str | None = None) -> list[dict]:
    rows = (await conn.execute(sa.text("""
        select id, host, pid, kind, started_at, heartbeat_at from workers
        where heartbeat_at > now() - make_interval(secs => :age) and (cast(:kind as text) is null or kind = :kind)
        order by started_at"""), dict(age=max_age_s, kind=kind))).mappings().all()
    return [dict(r) for r in rows]


def _json(v: Any) -> str:
    import orjson

    return orjson.dumps(v, default=str).decode()
