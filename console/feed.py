"""EventFeed: the console's one LISTEN connection.

A listener task turns NOTIFYs into a wake-up flag (many notifies between two reads count as one);
the reader loop then selects ``run_events`` by id (``id > last_seen``) in batches and hands them to
``on_events``. NOTIFY is only a hint: the listener also wakes the reader on every (re)connect and
after ``poll_s`` of silence, so a missed notify or a dropped connection loses nothing (the reader
catches up from the last id it saw). Control-channel notifies (operator requests from any host)
call ``on_control`` so screens refresh promptly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from sync_core import coordination, db, events
from sync_core.tables import EVENTS_CHANNEL

log = logging.getLogger("baysync.console.feed")

Listener = Callable[..., AsyncIterator[str | None]]


class EventFeed:
    def __init__(self, engine: AsyncEngine, conninfo: dict[str, Any], *,
                 on_events: Callable[[list[dict]], None],
                 on_status: Callable[[str | None], None] = lambda e: None,
                 on_control: Callable[[], None] = lambda: None,
                 start_id: int | None = None, batch: int = 5000, min_interval_s: float = 0.1,
                 poll_s: float = 2.0, listener: Listener | None = None,
                 transform: Callable[[list[dict]], Any] | None = None) -> None:
        self.engine = engine
        self.conninfo = conninfo
        self.on_events, self.on_status, self.on_control = on_events, on_status, on_control
        self.last_id = start_id
        self.batch = batch
        self.min_interval_s = min_interval_s
        self.poll_s = poll_s
        self.listener = listener or events.listen
        self.transform = transform  # run in a thread on each batch (formatting stays off the UI loop)
        self.reads = 0
        self.notifies = 0
        self._wake = asyncio.Event()
        self._error: str | None = None

    async def run(self) -> None:
        """Run until cancelled."""
        task = asyncio.create_task(self._listen())
        try:
            backoff = 0.5
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
                except (asyncio.TimeoutError, TimeoutError):
                    pass
                self._wake.clear()
                if await self.catch_up():
                    backoff = 0.5
                    await asyncio.sleep(self.min_interval_s)  # coalesce: notifies meanwhile only set the flag
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 8.0)
                    self._wake.set()
        finally:
            task.cancel()
            try:
                await task
            except BaseException:
                pass

    async def _listen(self) -> None:
        try:
            async for payload in self.listener(self.conninfo, (EVENTS_CHANNEL, coordination.CONTROL_CHANNEL),
                                               timeout=self.poll_s):
                if payload is None:
                    self._wake.set()
                    continue
                self.notifies += 1
                if payload.isdigit():
                    if self.last_id is None or int(payload) > self.last_id:
                        self._wake.set()
                else:
                    self.on_control()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the listener never should die; fall back to polling if it does
            log.warning("event listener stopped: %s", e)

    async def catch_up(self) -> bool:
        """Read every event after last_id. False if the database could not be reached."""
        try:
            async with self.engine.connect() as conn:
                if self.last_id is None:
                    self.last_id = await events.last_id(conn)
                while True:
                    rows = await events.read_since(conn, self.last_id, limit=self.batch)
                    self.reads += 1
                    if rows:
                        self.last_id = int(rows[-1]["id"])
                        self.on_events(await asyncio.to_thread(self.transform, rows) if self.transform else rows)
                    if len(rows) < self.batch:
                        break
        except asyncio.CancelledError:
            raise
        except Exception as e:
            msg = db.describe(e)
            if msg != self._error:
                self._error = msg
                self.on_status(msg)
            return False
        if self._error is not None:
            self._error = None
            self.on_status(None)
        return True
