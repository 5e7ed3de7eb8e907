"""Retention: the only SQL that deletes operations history.

* ``run_events`` older than ``events_retention_days`` (audit events included);
* ``sync_runs`` that finished more than ``runs_retention_days`` ago, never a running run and never
  the run a ``sync_state`` row points at, together with their ``quarantine`` rows (a quarantined
  record is reported per run; without its run it would be an orphan);
* ``migration_log``, accounts, sync state and synced data are never touched. 0 days = keep forever.

Deletes go in bounded batches (``BATCH`` rows per statement, each its own transaction), so no lock is
held for long and concurrent syncs keep writing. A session advisory lock lets only one process prune
at a time; the others skip. The worker pool's housekeeping prunes every few minutes; ``baysync prune``
does the same on demand (``--dry-run`` only counts).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import events

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("baysync.retention")

BATCH = 5000
PRUNE_LOCK_KEY = 0x62617973796E70  # "baysynp"

_EVENTS_OLD = "ts < :cutoff"
_RUNS_OLD = """r.status <> 'running' and r.finished_at < :cutoff
    and not exists (select 1 from sync_state s where s.run_id = r.id)"""

_DELETE_EVENTS = sa.text(f"delete from run_events where id in (select id from run_events where {_EVENTS_OLD} limit :batch)")
_DELETE_RUNS = sa.text(f"""
    with doomed as (select r.id from sync_runs r where {_RUNS_OLD} limit :batch for update skip locked),
         q as (delete from quarantine where run_id in (select id from doomed) returning 1),
         gone as (delete from sync_runs where id in (select id from doomed) returning 1)
    select (select count(*) from gone) as runs, (select count(*) from q) as quarantine""")
_COUNT_EVENTS = sa.text(f"select count(*) from run_events where {_EVENTS_OLD}")
_COUNT_RUNS = sa.text(f"""
    with doomed as (select r.id from sync_runs r where {_RUNS_OLD})
    select (select count(*) from doomed) as runs,
           (select count(*) from quarantine where run_id in (select id from doomed)) as quarantine""")


@dataclass
class PruneResult:
    events: int = 0
    runs: int = 0
    quarantine: int = 0
    dry_run: bool = False
    skipped: bool = False  # another process was pruning

    def counts(self) -> dict[str, int]:
        return {"run_events": self.events, "sync_runs": self.runs, "quarantine": self.quarantine}

    @property
    def total(self) -> int:
        return self.events + self.runs + self.quarantine

    def summary(self) -> str:
        return f"{self.events} event(s), {self.runs} finished run(s), {self.quarantine} quarantined record(s)"


async def _cutoff(conn: AsyncConnection, days: int) -> datetime | None:
    if not days:
        return None
    return (await conn.execute(sa.text("select now() - make_interval(days => :d)"), dict(d=days))).scalar_one()


async def prune(engine: AsyncEngine, settings: Settings, *, dry_run: bool = False, batch: int = BATCH,
                origin: str | None = None) -> PruneResult:
    """Prune (or with ``dry_run`` count) what is older than the retention settings.

    ``origin`` (an operator asked: cli, console, http) records an audit event with the counts; the
    housekeeping prune records a ``retention`` event when it deleted something."""
    res = PruneResult(dry_run=dry_run)
    async with engine.connect() as conn:
        ev_cut = await _cutoff(conn, settings.events_retention_days)
        run_cut = await _cutoff(conn, settings.runs_retention_days)
        if dry_run:
            if ev_cut is not None:
                res.events = (await conn.execute(_COUNT_EVENTS, dict(cutoff=ev_cut))).scalar_one()
            if run_cut is not None:
                row = (await conn.execute(_COUNT_RUNS, dict(cutoff=run_cut))).one()
                res.runs, res.quarantine = row.runs, row.quarantine
            await conn.rollback()
            return res
        got = (await conn.execute(sa.text("select pg_try_advisory_lock(:k)"), dict(k=PRUNE_LOCK_KEY))).scalar_one()
        await conn.commit()
        if not got:
            res.skipped = True
            return res
        try:
            while ev_cut is not None:
                n = (await conn.execute(_DELETE_EVENTS, dict(cutoff=ev_cut, batch=batch))).rowcount
                await conn.commit()
                res.events += n
                if n < batch:
                    break
                await asyncio.sleep(0)  # let this process's runs have the event loop between batches
            while run_cut is not None:
                row = (await conn.execute(_DELETE_RUNS, dict(cutoff=run_cut, batch=batch))).one()
                await conn.commit()
                res.runs += row.runs
                res.quarantine += row.quarantine
                if row.runs < batch:
                    break
                await asyncio.sleep(0)
            if origin is not None:
                from .control import audit

                counts: dict[str, Any] = res.counts()  # audit's **details (mypy: not its account_id/stream)
                await audit(conn, "prune", origin, f"prune: deleted {res.summary()}", **counts,
                            events_retention_days=settings.events_retention_days,
                            runs_retention_days=settings.runs_retention_days)
                await conn.commit()
            elif res.total:
                await events.emit(conn, "retention", f"retention: deleted {res.summary()}", data=res.counts())
                await conn.commit()
        finally:
            await _unlock(conn)
    return res


async def _unlock(conn: AsyncConnection) -> None:
    """Give the session lock back before the connection returns to the pool (or drop the connection)."""
    try:
        await conn.rollback()
        await conn.execute(sa.text("select pg_advisory_unlock(:k)"), dict(k=PRUNE_LOCK_KEY))
        await conn.commit()
    except BaseException as e:
        try:
            await conn.invalidate()
        except BaseException:
            pass
        if not isinstance(e, Exception):
            raise
