"""The console's data service: one asyncio worker (run by the App) that does every background read.

It owns, with ONE back-off for all of them:

* the LISTEN connection: ``baysync_events`` (new run_events, payload = newest id), ``baysync_control``
  (operator requests) and ``baysync_state`` (coordination changed pairs: claim, checkpoint, finish, ...;
  see sync_core/coordination.py). NOTIFY is only a hint: a (re)connect and a fallback poll catch up;
* the event feed: run_events read by id (``id > last_id``, never lost nor duplicated), at most every
  ``min_interval_s``, so many notifies make one read;
* the state overview (:func:`sync_core.status.overview`): read when a ``baysync_state``/``baysync_control``
  notify arrives or a screen asks (:meth:`refresh_state`), else every ``poll_s`` (the fallback: lag and
  ages move with time, and changes written outside coordination have no notify); only while a screen
  wants it (``state_wanted()``: the dashboard is shown), and paced by how long the dashboard takes to
  apply a snapshot (``apply_s``) so it never hogs the UI;
* the status checks: database reachable, schema revision and pending migrations, live workers, every
  ``status_s`` or when poked.

A failed cycle (any of the above) posts ``DbStatus(error)`` (once per outage), closes the listener and
retries after 0.5, 1, 2, 4, 8, 8, ... s (notifies and pokes do not cut a back-off short); the first good
cycle posts ``DbStatus(None)`` and resets the back-off.

It touches no widget: it posts messages (console/messages.py) through ``post`` -- the App's
``post_message`` -- and the App publishes them to the screens (see the App's API in console/app.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from sync_core import coordination, db, events, migrate, status
from sync_core.tables import EVENTS_CHANNEL

from .messages import DataChanged, DbStatus, EventsArrived, SchemaChecked, StateRefreshed

log = logging.getLogger("baysync.console.data")

CHANNELS = (EVENTS_CHANNEL, coordination.CONTROL_CHANNEL, coordination.STATE_CHANNEL)
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 8.0


class DataService:
    def __init__(self, engine: AsyncEngine, conninfo: dict[str, Any], head: str | None, *,
                 post: Callable[[Any], Any], state_wanted: Callable[[], bool] = lambda: True,
                 poll_s: float = 1.0, events_poll_s: float = 2.0, status_s: float = 3.0,
                 min_refresh_s: float = 0.2, min_interval_s: float = 0.1, backlog: int = 2000,
                 batch: int = 5000, feed: bool = True, transform: Callable[[list[dict]], Any] | None = None) -> None:
        self.engine, self.conninfo, self.head = engine, conninfo, head
        self.post, self.state_wanted = post, state_wanted
        self.poll_s, self.events_poll_s, self.status_s = poll_s, events_poll_s, status_s
        self.min_refresh_s, self.min_interval_s = min_refresh_s, min_interval_s
        self.backlog, self.batch, self.feed = backlog, batch, feed  # feed False: no LISTEN, no events
        self.transform = transform  # run in a thread on each event batch (formatting stays off the UI loop)
        self.apply_s = 0.0  # how long the dashboard took to apply the last snapshot (paces the refresh)
        self.last_id: int | None = None
        self.error: str | None = None
        self.schema_ok = False
        # counters (tests, benchmark)
        self.reads = self.refreshes = self.notifies = self.state_notifies = self.failures = 0
        self.waits: list[float] = []  # the back-off waits after failures, in order
        self._wake = asyncio.Event()
        self._events_due = self._state_due = self._status_due = True
        self._events_at = self._state_at = self._status_at = 0.0  # next fallback read (monotonic)
        self._events_ok_at = self._state_ok_at = 0.0  # pacing: no read before
        self._pending: dict[str | None, list[str]] = {}
        self._listener: asyncio.Task | None = None

    # ------------------------------------------------------------ what screens (through the App) ask
    def refresh_state(self) -> None:
        """Read the state overview now (paced), e.g. after an action or when the dashboard is shown again."""
        self._state_due = True
        self._wake.set()

    def applied(self, seconds: float) -> None:
        """The dashboard applied a snapshot, taking ``seconds`` of UI time: the next read waits at least 4x
        that (or min_refresh_s), and the fallback poll counts from now (not from the read)."""
        self.apply_s = seconds
        now = time.monotonic()
        self._state_at = max(self._state_at, now + self.poll_s)
        self._state_ok_at = max(self._state_ok_at, now + max(self.min_refresh_s, 4 * seconds))

    def poke_status(self) -> None:
        """Check the database and schema now (after a screen saw an error, or applied migrations)."""
        self._status_due = True
        self._wake.set()

    # ------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Run until cancelled."""
        backoff = BACKOFF_MIN_S
        try:
            while True:
                try:
                    wait = await self._cycle()
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self._failed(e)
                    self.waits.append(backoff)
                    await asyncio.sleep(backoff)  # notifies and pokes meanwhile wait for the back-off
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_MIN_S
                if self.error is not None:
                    self.error = None
                    self.post(DbStatus(None))
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, wait))
                except (asyncio.TimeoutError, TimeoutError):
                    pass
        finally:
            await self._close_listener()

    def _failed(self, e: BaseException) -> None:
        self.failures += 1
        self._status_due = self._events_due = self._state_due = True  # everything again once it is back
        if self._listener is not None:
            self._listener.cancel()  # it may hang on a dead connection; it reconnects with the next cycle
        if self.error is None:  # once per outage (the next failures may word it differently)
            self.error = db.describe(e)
            log.warning("console lost the database: %s", self.error)
            self.post(DbStatus(self.error))

    async def _cycle(self) -> float:
        """One pass: whatever is due. Returns how long to sleep (a notify or a poke wakes it earlier)."""
        self._wake.clear()
        now = time.monotonic()
        if self._status_due or now >= self._status_at:
            self._status_due = False
            await self._check_status()
            self._status_at = time.monotonic() + self.status_s
        if not self.schema_ok:
            return max(0.0, self._status_at - time.monotonic())
        now = time.monotonic()
        wanted = self.state_wanted()
        if wanted and (self._state_due or now >= self._state_at) and now >= self._state_ok_at:
            self._state_due = False  # first: the dashboard's first paint waits for nothing else
            await self._refresh_state()
            now = time.monotonic()
            self._state_at = now + self.poll_s
            self._state_ok_at = now + max(self.min_refresh_s, 4 * self.apply_s)
        if self.feed and (self._listener is None or self._listener.done()):
            await self._open_listener()
        if self.feed and (self._events_due or now >= self._events_at) and now >= self._events_ok_at:
            self._events_due = False
            await self._read_events()
            now = time.monotonic()
            self._events_at, self._events_ok_at = now + self.events_poll_s, now + self.min_interval_s
        due = [self._status_at]
        if self.feed:
            due.append(self._events_ok_at if self._events_due else self._events_at)
        if wanted:
            due.append(self._state_ok_at if self._state_due else max(self._state_at, self._state_ok_at))
        return max(0.0, min(due) - now)

    # ------------------------------------------------------------ the parts
    async def _check_status(self) -> None:
        # the first time, alembic's head is read in a thread while the first connection is made (first paint)
        head_task = asyncio.ensure_future(asyncio.to_thread(migrate.head)) if self.head is None else None
        try:
            async with self.engine.connect() as conn:
                current = await conn.run_sync(migrate.current_revision)
                if head_task is not None:
                    self.head = await head_task
                workers = await coordination.live_workers(conn) if current == self.head else []
        finally:
            if head_task is not None and not head_task.done():
                head_task.add_done_callback(lambda t: t.cancelled() or t.exception())  # result dropped, no warning
        unknown = not migrate.is_known(current)
        if current not in self._pending:
            self._pending[current] = await asyncio.to_thread(
                migrate.pending_revisions, current) if current != self.head and not unknown else []
        self.schema_ok = current == self.head
        self.post(SchemaChecked(current, self.head, self._pending[current], workers, unknown))

    async def _read_events(self) -> None:
        """Every event after last_id (the newest ``backlog`` first time), in batches."""
        async with self.engine.connect() as conn:
            if self.last_id is None:
                rows = await events.read_since(conn, 0, limit=self.backlog, newest=True)
                self.last_id = int(rows[-1]["id"]) if rows else await events.last_id(conn)
                if rows:
                    await self._post_events(rows)
            while True:
                rows = await events.read_since(conn, self.last_id, limit=self.batch)
                self.reads += 1
                if rows:
                    self.last_id = int(rows[-1]["id"])
                    await self._post_events(rows)
                if len(rows) < self.batch:
                    break

    async def _post_events(self, rows: list[dict]) -> None:
        self.post(EventsArrived(await asyncio.to_thread(self.transform, rows) if self.transform else rows))

    async def _refresh_state(self) -> None:
        async with self.engine.connect() as conn:
            rows = await conn.run_sync(status.overview)
        self.refreshes += 1
        self.post(StateRefreshed(rows, time.monotonic()))

    # ------------------------------------------------------------ LISTEN
    async def _open_listener(self) -> None:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(**self.conninfo, autocommit=True)
        try:
            for ch in CHANNELS:
                await conn.execute(f"listen {ch}")
        except BaseException:
            await conn.close()
            raise
        self._listener = asyncio.create_task(self._listen(conn), name="console listener")
        self._events_due = self._state_due = True  # (re)connected: catch up on what was missed

    async def _listen(self, conn: Any) -> None:
        try:
            async with conn:
                async for n in conn.notifies():
                    self.notifies += 1
                    if n.channel == EVENTS_CHANNEL:
                        if not n.payload.isdigit() or self.last_id is None or int(n.payload) > self.last_id:
                            self._events_due = True
                    else:
                        self.state_notifies += 1
                        self._state_due = True
                        self.post(DataChanged())
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the connection went away: the next cycle reconnects (or backs off)
            log.info("console listener stopped: %s", db.describe(e))
        finally:
            self._wake.set()

    async def _close_listener(self) -> None:
        task, self._listener = self._listener, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
