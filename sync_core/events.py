"""Structured run events: rows in run_events (a trigger NOTIFYs ``baysync_events`` with the newest id
when a statement commits), read back by id by the console and `baysync logs --follow`.

NOTIFY is only a wake-up hint: readers always select ``id > last_seen``, so a missed notification
or a reconnect loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import EVENTS_CHANNEL

log = logging.getLogger("baysync.events")

LEVELS = ("debug", "info", "warning", "error")
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _redact(obj: Any) -> Any:
    try:
        from .ebay.redact import redact
    except Exception:
        return obj
    return redact(obj)


@dataclass
class Event:
    kind: str
    message: str = ""
    level: str = "info"
    run_id: int | None = None
    account_id: int | None = None
    stream: str | None = None
    data: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": _redact(self.message), "level": self.level, "run_id": self.run_id,
                "account_id": self.account_id, "stream": self.stream,
                "data": orjson.dumps(_redact(self.data), default=str).decode() if self.data is not None else None}


_INSERT = sa.text("""
    insert into run_events (kind, message, level, run_id, account_id, stream, data)
    select kind, message, level, run_id, account_id, stream, cast(data as jsonb)
    from unnest(cast(:kind as text[]), cast(:message as text[]), cast(:level as text[]), cast(:run_id as bigint[]),
                cast(:account_id as int[]), cast(:stream as text[]), cast(:data as text[]))
         as e(kind, message, level, run_id, account_id, stream, data)""")


_COLS = ("kind", "message", "level", "run_id", "account_id", "stream", "data")


async def emit_many(conn: AsyncConnection, events: Iterable[Event]) -> int:
    """Insert events in one statement (inside the caller's transaction)."""
    rows = [e.row() for e in events]
    if not rows:
        return 0
    await conn.execute(_INSERT, {c: [r[c] for r in rows] for c in _COLS})
    _log_rows(rows)
    return len(rows)


def emit_sync(conn: sa.Connection, event: Event) -> None:
    """The same insert on a synchronous connection (migrate runs synchronously)."""
    r = event.row()
    conn.execute(_INSERT, {c: [r[c]] for c in _COLS})
    _log_rows([r])


def _log_rows(rows: list[dict]) -> None:
    for r in rows:
        level = _LOG_LEVELS.get(r["level"], logging.INFO)
        if log.isEnabledFor(level):
            log.log(level, r["message"] or r["kind"], extra={"event": r["kind"], "run_id": r["run_id"],
                                                              "stream": r["stream"], "account_id": r["account_id"]})


async def emit(conn: AsyncConnection, kind: str, message: str = "", *, level: str = "info", run_id: int | None = None,
               account_id: int | None = None, stream: str | None = None, data: dict | None = None) -> None:
    await emit_many(conn, [Event(kind, message, level, run_id, account_id, stream, data)])


async def read_since(conn: AsyncConnection, last_id: int, *, limit: int = 1000, run_id: int | None = None,
                     account_id: int | None = None, stream: str | None = None, min_level: str | None = None,
                     kind: str | None = None, newest: bool = False) -> list[dict]:
    """Events after ``last_id`` in id order (``newest``: the newest ``limit`` of them)."""
    levels = list(LEVELS[LEVELS.index(min_level):]) if min_level else list(LEVELS)
    rows = (await conn.execute(sa.text("""
        select e.id, e.ts, e.run_id, e.account_id, a.name as account, e.stream, e.level, e.kind, e.message, e.data
        from run_events e left join accounts a on a.id = e.account_id
        where e.id > :last and (cast(:run as bigint) is null or e.run_id = :run)
          and (cast(:acc as int) is null or e.account_id = :acc)
          and (cast(:stream as text) is null or e.stream = :stream) and e.level = any(:levels)
          and (cast(:kind as text) is null or e.kind = :kind)
        order by e.id """ + ("desc" if newest else "") + " limit :limit"), dict(last=last_id, run=run_id, acc=account_id, stream=stream,
                                             levels=levels, kind=kind, limit=limit))).mappings().all()
    return [dict(r) for r in (reversed(rows) if newest else rows)]


async def last_id(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.text("select coalesce(max(id), 0) from run_events"))).scalar_one())


async def listen(conninfo: dict[str, Any], channels: Iterable[str] = (EVENTS_CHANNEL,),
                 timeout: float = 5.0) -> AsyncIterator[str | None]:
    """Yield NOTIFY payloads (or None every ``timeout`` seconds of silence, so callers can catch up by
    reading ids and notice a stop request). Reconnects after a dropped connection."""
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(**conninfo, autocommit=True) as conn:
                for ch in channels:
                    await conn.execute(f"listen {ch}")
                yield None  # (re)connected: let the caller catch up
                while True:
                    got = False
                    async for n in conn.notifies(timeout=timeout, stop_after=1):
                        got = True
                        yield n.payload
                    if not got:
                        yield None
        except (psycopg.OperationalError, OSError) as e:
            log.warning("event listener lost its connection (%s); reconnecting", e)
            await asyncio.sleep(1.0)
