"""The page writer: the one place a run's pages, positions and events reach the database.

Every page a stream yields (:class:`~sync_core.streams.base.StreamPage`) is mapped here, once, and stored
with its position in ONE fenced transaction: the fence (the run still holds its lease; a STOP request is
read), the rows (upsert), their children (replaced for changed parents), quarantined records, the
absent-marking of a completed listing, the checkpoint (+ cursor, progress, run counts) and the pending
events.  Data and position commit together or not at all, so a crash loses pages and their position
together and the next run fetches them again.

State machine (``PageWriter.state``)::

    IDLE ──put(plain page, small)──▶ HOLDING ──put(plain page, small, young)──▶ HOLDING
    IDLE|HOLDING ──put(anything else) / flush() / timer (first held page WRITE_HOLD_S old)──▶ WRITING
    WRITING ──committed──▶ IDLE   (write-behind: put() returns once WRITING starts; later pages are held meanwhile)
    WRITING ──fence says another owner holds the lease──▶ LOST   (held pages dropped, LeaseLost raised)
    WRITING ──any other error (after the database retries)──▶ FAILED (error kept; every later call raises it)
    IDLE ──flush_events() (timer, oldest event EVENT_FLUSH_S old)──▶ IDLE (events written alone, fenced)

A "plain page" has a position and nothing else (no cursor, no absent-marking, no backfill end): it may be
held and written with the following ones while they total fewer than ``write_batch_rows`` records (while
a write-behind is in flight: HOLD_BEHIND times as many) and the first is younger than WRITE_HOLD_S; the
last one's position is saved with all of them.  While a write-behind is in flight, a page that also moves
the cursor (it finished a window) is held the same way:
the write that takes it saves the latest cursor of its pages (a cursor only moves forward), so the windows
of a pipelined run do not each cost a transaction of their own (a 25-window first sync: 42-44 writes -> 29).
Anything else writes what is held at once, with it.  The timer (:meth:`PageWriter.run_timer`, one task per run) writes
held pages once the first is WRITE_HOLD_S old even if no page follows (a slow API), and otherwise pending
events once the oldest is EVENT_FLUSH_S old.  A failure of the timer's page write is handed to the run:
its next :meth:`put` or :meth:`flush` raises it (no page is stored past a lost one).  A failed event-only
write keeps the events pending (logged); a lost lease stops everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from . import coordination as co
from . import db, gcpause, upserts
from .config import Settings
from .events import Event, emit_many
from .streams.base import Invalid, Stream, StreamPage

log = logging.getLogger("baysync.writer")

# Held pages are written at the latest when the next page arrives this long after the first (a slow API
# still commits its progress every few seconds).
WRITE_HOLD_S = 2.0
# Events waiting for a page write (HTTP calls, retry and rate-limit waits) are written on their own once
# the oldest is this old (checked every EVENT_TICK_S), so a run that waits (report polling, a slow eBay, a
# long Retry-After) is visible in run_events, the console and `baysync logs --follow` within a second;
# events that a page write takes sooner cost no transaction of their own.
EVENT_FLUSH_S = 0.5
EVENT_TICK_S = 0.25
# While a write-behind is in flight, pages are held up to this many times ``write_batch_rows`` before the run
# waits for it. A run that waits stops taking pages from its fetchers, whose queue fills and stops them
# too: the database's slower moments (a checkpoint, a busy machine) became idle fetchers. Held pages are
# mapped rows (a third of the memory of the decoded page they came from), still bounded. Measured, c4 first
# sync at 50 ms, alternating: 4.26-4.45 s vs 4.51-4.67 s, the run's wait for writes 0.05-0.11 s vs 0.41-0.67 s,
# peak RSS +5-13 MB (docs/performance.md, issue 10, seventh pass).
HOLD_BEHIND = 2

IDLE, HOLDING, WRITING, FAILED, LOST = "idle", "holding", "writing", "failed", "lost"


@dataclass
class Counts:
    pages: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    api_calls: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Timing:
    """Where a run's time went, in seconds (the ``run_end`` event's ``timing``): waiting for eBay's pages
    (``pages_wait_s``, measured by the run), mapping them (``map_s``), waiting for the writer
    (``write_wait_s``: for the write in flight before the next can start, for its own write when it is not
    written behind, for the last one) and inside the page transactions (``write_s``; written behind, they
    overlap fetching and mapping). A run whose ``write_wait_s`` is large is bound by the database; one
    whose ``pages_wait_s`` is, by eBay (latency, rate budget)."""
    pages_wait_s: float = 0.0
    map_s: float = 0.0
    write_wait_s: float = 0.0
    write_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}

    def waited(self, t0: float) -> None:
        """The run waited for the writer since ``t0`` (``time.perf_counter()``)."""
        self.write_wait_s += time.perf_counter() - t0


@dataclass
class Mapped:
    """A page's records mapped: rows, (row, children) pairs, and (key, reason, record) of the bad ones.

    ``copy``: when the next write is expected to be all new (a backfill), the COPY data of the page's rows
    and of their children, per table (one chunk per page), formatted right after mapping, by the run's
    consumer, while the previous write is in flight: formatting a whole write's rows inside the write
    (~20 ms for 1,000 orders) lengthened the serial writer's every transaction and held the event loop
    from the fetchers' responses meanwhile. ``None`` when not formatted: the write formats what it needs
    (:func:`~sync_core.upserts.upsert` uses the chunks only when every row of the write is new)."""
    rows: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    bad: list = field(default_factory=list)
    copy: dict[str, list[bytes]] | None = None

    def extend(self, other: "Mapped") -> None:
        if other.rows:  # (a page of bad records only, or none: nothing to format)
            self.copy = None if self.copy is None or other.copy is None else \
                {t: self.copy.get(t, []) + other.copy.get(t, []) for t in {*self.copy, *other.copy}}
        self.rows += other.rows
        self.pairs += other.pairs
        self.bad += other.bad


def _later(a: Any, b: Any) -> Any:
    """The later of two cursors, either of which may be None (a cursor only moves forward)."""
    return b if a is None else a if b is None else max(a, b)


@dataclass
class _Held:
    """Pages mapped but not written yet (write batching): their rows and the last one's position."""
    m: Mapped = field(default_factory=lambda: Mapped(copy={}))  # copy: {} until a page without it
    records: int = 0
    pages: int = 0
    since: float = 0.0
    page: StreamPage | None = None  # the last held page (its position and progress are saved)
    cursor: Any = None  # the latest cursor of the held pages (a cursor only moves forward)

    def hold(self, m: Mapped, page: StreamPage) -> None:
        if not self.pages:
            self.since = time.monotonic()
        self.m.extend(m)
        self.records += len(page.records)
        self.pages += 1
        self.page = page
        self.cursor = _later(self.cursor, page.cursor)


class PageWriter:
    """See the module docstring.  ``stop_requested`` (set by the fence, the heartbeat, the pool or a signal)
    and ``lease_lost`` are the run's flags; ``totals`` its counts; ``pending_events`` its unwritten events."""

    def __init__(self, settings: Settings, engine: AsyncEngine, stream: Stream, claim: co.Claim, owner: str):
        self.settings, self.engine, self.stream, self.claim, self.owner = settings, engine, stream, claim, owner
        self.totals = Counts()
        self.timing = Timing()
        self.pending_events: list[Event] = []
        self.stopping = asyncio.Event()  # set with stop_requested: a run waiting for pages wakes up
        self.lease_lost = False
        self.error: BaseException | None = None  # a write failed: the run must not go on past it
        self.expect_new = False  # the last write was all new: try the next one as a COPY (upserts.upsert)
        # keys of a full listing collected so far (StreamPage.snapshot), resumed from the position
        self.seen: list[str] = list((claim.checkpoint or {}).get("seen") or [])
        self._held = _Held()
        self._lock = asyncio.Lock()  # one write at a time: put/flush vs the timer vs a write-behind in flight
        # write-behind (pipelined runs): put() returns once a write has started; the run maps and holds the
        # next pages while it commits. The next write waits for it; its error is raised by the next call.
        self.write_behind = False
        self._inflight: asyncio.Task | None = None
        self._events_since = 0.0  # monotonic time by which the oldest pending event was added

    @property
    def stop_requested(self) -> bool:
        return self.stopping.is_set()

    @stop_requested.setter
    def stop_requested(self, v: bool) -> None:
        if v:
            self.stopping.set()
        else:
            self.stopping.clear()

    @property
    def run_id(self) -> int:
        return self.claim.run_id

    @property
    def account_id(self) -> int:
        return self.claim.account_id

    @property
    def state(self) -> str:
        if self.lease_lost:
            return LOST
        if self.error is not None:
            return FAILED
        if self._lock.locked():
            return WRITING
        return HOLDING if self._held.pages else IDLE

    # -- events (collected; written with the next page's transaction, or by the timer)
    def on_http_event(self, ev: dict) -> None:
        kind = ev.get("type", "http")
        if kind == "http":
            self.totals.api_calls += 1
            if (ev.get("attempt") or 1) > 1:
                self.totals.retries += 1
        level = "warning" if kind in ("rate_wait", "retry", "window_reread") or (ev.get("status") or 200) >= 400 else \
            "info" if kind == "window_sliced" else "debug"
        msg = (f"{ev.get('method', '')} {ev.get('path', '')} -> {ev.get('status', '')} "
               f"{ev.get('duration_ms', '')}ms {ev.get('records', '')} rec").strip() if kind == "http" else str(ev.get("reason", kind))
        self._pend(Event(kind, msg, level, self.run_id, self.account_id, self.stream.name, ev))

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None:
        self._pend(Event(kind, message, level, self.run_id, self.account_id, self.stream.name, data or None))

    def _pend(self, event: Event) -> None:
        if not self.pending_events:
            self._events_since = time.monotonic()
        self.pending_events.append(event)

    def _written(self, n: int, taken_at: float) -> None:
        """The first ``n`` pending events, taken at ``taken_at``, are committed: the rest came after."""
        del self.pending_events[:n]
        self._events_since = taken_at

    def events_due(self) -> bool:
        return bool(self.pending_events) and time.monotonic() - self._events_since >= EVENT_FLUSH_S

    # -- mapping (once per record)
    def _map_one(self, rec: dict) -> tuple[dict, bytes]:
        """(the record's row, its payload as stored: canonical JSON bytes without the excluded keys)."""
        excl = self.stream.raw_exclude
        return self.stream.map(rec), upserts.payload_bytes({k: v for k, v in rec.items() if k not in excl} if excl else rec)

    def map_records(self, records: Sequence[Any]) -> Mapped:
        with gcpause.paused():  # rows and children of JSON records: no cycles (sync_core/gcpause.py)
            return self._map_records(records)

    def _map_records(self, records: Sequence[Any]) -> Mapped:
        m = Mapped()
        for rec in records:
            try:
                if not isinstance(rec, dict):
                    raise Invalid(f"record is a {type(rec).__name__}, not an object")
                row, data = self._map_one(rec)
                # PostgreSQL's text and jsonb cannot hold NUL: replace it, map again. Most records have no
                # backslash at all, and looking for one byte (memchr) is 5x cheaper than for the escape
                if b"\\" in data and b"\\u0000" in data:
                    rec = upserts.without_nul(rec)
                    row, data = self._map_one(rec)
                row["account_id"] = self.account_id
                # UTF-8 JSON bytes, written as they are (upserts._copy_data). A copy: orjson's own result is
                # a buffer grown and then shrunk in place, and keeping thousands of those alive until the
                # write left the heap fragmented (peak RSS of a 30,000-order sync +10-14 MB).
                row["raw"] = bytes(memoryview(data))
                row["payload_hash"] = upserts.payload_hash(data)
                row["run_id"] = self.run_id
                children = {c.table.name: c.rows(rec, row) for c in self.stream.children}
                for ch in children.values():
                    for cr in ch:
                        cr["account_id"] = self.account_id
                m.rows.append(row)
                m.pairs.append((row, children))
            except Invalid as e:
                m.bad.append((self.stream.record_key(rec), str(e), rec))
        if self.expect_new and m.rows:
            s = self.stream
            m.copy = {s.table.name: [upserts.copy_data(s.table, m.rows)]}
            for c in s.children:
                child_rows = [cr for _, ch in m.pairs for cr in ch[c.table.name]]
                m.copy[c.table.name] = [upserts.copy_data(c.table, child_rows)]
        return m

    # -- the one write path
    async def put(self, page: StreamPage) -> bool:
        """Store ``page`` (held or written, see the module docstring). Returns whether the run should stop."""
        t0 = time.perf_counter()
        m = self.map_records(page.records)
        t1 = time.perf_counter()
        self.timing.map_s += t1 - t0
        try:
            return await self._store(m, page)
        finally:  # the write in flight waited for, or this write when not behind
            self.timing.waited(t1)

    async def _store(self, m: Mapped, page: StreamPage) -> bool:
        if page.snapshot:
            col = self.stream.absent_key
            self.seen.extend(str(r[col]) for r in m.rows)
        self._raise_error()
        held = self._held
        behind = self.write_behind and self._lock.locked()  # a write-behind is in flight
        if (page.position is not None and not page.mark_absent and not page.clear_backfill
                and (page.cursor is None or behind)
                and self.settings.write_batch_rows > 1
                and held.records + len(page.records) < self.settings.write_batch_rows * (HOLD_BEHIND if behind else 1)
                and (not held.pages or time.monotonic() - held.since < WRITE_HOLD_S)):
            held.hold(m, page)  # (also while a write-behind is in flight: these pages go with the next write)
            return self.stop_requested
        await self._lock.acquire()  # after the write in flight, if any
        try:
            self._raise_error()
            commit = self._prepare(m, page)
        except BaseException:
            self._lock.release()
            raise
        if self.write_behind:
            self._inflight = asyncio.create_task(self._commit_behind(commit))
            return self.stop_requested
        try:
            return await commit()
        finally:
            self._lock.release()

    async def _commit_behind(self, commit: Callable[[], Awaitable[bool]]) -> None:
        """A write-behind commit: it owns the lock taken by :meth:`put` and releases it when done; its error
        is kept (state FAILED/LOST) and raised by the run's next call."""
        try:
            await commit()
        except Exception:
            pass  # kept in self.error by commit()
        finally:
            self._lock.release()

    async def drain(self) -> None:
        """Wait for a write-behind in flight (raising its error): what was handed over is in the database."""
        async with self._lock:
            self._raise_error()

    def abort(self) -> None:
        """The run is being cancelled: a write-behind in flight is cancelled too (its transaction rolls back)."""
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()

    async def flush(self, *, older_than: float = 0.0) -> bool:
        """Write the held pages, if any (end of a run, STOP, an API error after some pages; with
        ``older_than``, only if the first was held that many seconds ago: the timer)."""
        async with self._lock:
            self._raise_error()
            if not self._held.pages or time.monotonic() - self._held.since < older_than:
                return self.stop_requested
            return await self._write(Mapped(), None)

    async def flush_held(self) -> None:
        """Keep what was fetched before a run ends early (STOP, an API error): write the held pages, if
        any; a failure is logged (the next run fetches them again)."""
        pages = self._held.pages
        if self.lease_lost or not pages or self.error is not None:
            return
        try:
            await self.flush()
        except asyncio.CancelledError:
            raise
        except co.LeaseLost:
            self.lease_lost = True
        except Exception as e:
            log.warning("run %s: %d held page(s) not written (%s: %s); the next run fetches them again",
                        self.run_id, pages, type(e).__name__, e)

    async def flush_events(self) -> int:
        """Write the pending events on their own, in one short fenced transaction (the timer, when no page
        write is under way; a page write in progress takes them itself). Returns how many were written.

        Fenced like a page: a run that lost its lease writes no more events (they are dropped with it, as
        its held pages are) and stops at its next page. A failed write (the database is away) keeps the
        events pending for the next page or the next try: the run goes on, its pages decide its fate (if the
        connection broke during COMMIT itself, those events may then be written twice; nothing is lost)."""
        async with self._lock:
            self._raise_error()
            n, taken_at = len(self.pending_events), time.monotonic()
            if not n:
                return 0
            try:
                async with self.engine.begin() as conn:
                    stop = await co.fence(conn, self.owner, self.run_id)
                    await emit_many(conn, self.pending_events[:n])
            except co.LeaseLost:
                self.pending_events.clear()
                self.lease_lost = True
                raise
            self._written(n, taken_at)
            if stop:
                self.stop_requested = True
            return n

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    async def _write(self, m: Mapped, page: StreamPage | None) -> bool:
        return await self._prepare(m, page)()

    def _prepare(self, m: Mapped, page: StreamPage | None) -> Callable[[], Awaitable[bool]]:
        """Take the held pages and ``page`` as one write (synchronously: pages held from now on belong to the
        next write); returns the coroutine function that commits it."""
        held, self._held = self._held, _Held()  # taken even if the write fails: a failed write is not retried twice
        if held.pages:
            held.m.extend(m)
            m = held.m
        rows, pairs, bad, copy = m.rows, m.pairs, m.bad, m.copy
        n_records = held.records + (len(page.records) if page is not None else 0)
        n_pages = held.pages + (1 if page is not None else 0)
        last = page if page is not None and (page.position is not None or held.page is None) else held.page
        position = last.position if last is not None else None
        windows_done = page.windows_done if page is not None and page.windows_done is not None else \
            (held.page.windows_done if held.page is not None else None)
        windows_total = page.windows_total if page is not None and page.windows_total is not None else \
            (held.page.windows_total if held.page is not None else None)
        # a held page that completed a window: its cursor goes with this write
        cursor = _later(page.cursor if page is not None else None, held.cursor)
        clear_backfill = page.clear_backfill if page is not None else False
        mark_absent = page is not None and page.mark_absent
        s = self.stream
        snapshot = page.snapshot if page is not None else (held.page is not None and held.page.snapshot)
        if position is not None and snapshot and not mark_absent:
            position = dict(position, seen=list(self.seen))  # the listing's keys so far, to resume it
        if s.children:
            # a record seen twice in this write (it moved while paging: on two held pages, or twice on one):
            # its last version wins, children too (upsert collapses the rows the same way)
            pairs = list({tuple(row[k] for k in s.key): (row, ch) for row, ch in pairs}.values())
            if len(pairs) < len(rows):
                copy = None  # the pages' COPY data holds both versions
        chunks = copy or {}  # pre-formatted COPY data per table, if any
        counts = Counts(pages=n_pages, api_calls=self.totals.api_calls, retries=self.totals.retries)
        self.totals.api_calls = self.totals.retries = 0
        n_events, taken_at = len(self.pending_events), time.monotonic()  # later ones go with the next write
        present = list(self.seen) if mark_absent else None

        async def unit() -> tuple[bool, upserts.UpsertResult, int]:
            async with self.engine.begin() as conn:
                stop = await co.fence(conn, self.owner, self.run_id)
                res = await upserts.upsert(conn, s.table, s.key, rows, reactivate=s.absent_col,
                                           expect_new=self.expect_new, formatted=chunks.get(s.table.name))
                if s.children and res.changed_keys:
                    key_idx = s.key.index(s.children[0].parent_key)
                    changed = {k[key_idx] for k in res.changed_keys}
                    all_new = res.inserted == len(pairs)  # every parent is new: all the children are written
                    for child in s.children:
                        child_rows = [cr for row, ch in pairs if row[child.parent_key] in changed
                                      for cr in ch[child.table.name]]
                        await upserts.replace_children(conn, child.table, self.account_id, child.parent_key,
                                                       sorted(changed), child_rows,
                                                       formatted=chunks.get(child.table.name) if all_new else None)
                q = await upserts.quarantine(conn, self.run_id, self.account_id, s.name, bad)
                absent = 0
                if present is not None and s.absent_col:
                    absent = await upserts.mark_absent(conn, s.table, self.account_id, s.absent_key, present,
                                                       s.absent_col)
                c = dict(counts.as_dict(), inserted=res.inserted, updated=res.updated, unchanged=res.unchanged,
                         quarantined=q)
                await co.save_checkpoint(conn, self.run_id, position, cursor=cursor, windows_done=windows_done,
                                         windows_total=windows_total, records=res.inserted, counts=c,
                                         clear_backfill=clear_backfill, backfill_started=self.claim.backfill_since)
                evs = self.pending_events[:n_events]
                pages = f" ({n_pages} pages)" if n_pages > 1 else ""
                evs.append(Event("page", f"{n_records} records{pages}: +{res.inserted} ~{res.updated} ={res.unchanged}"
                                 + (f" quarantined {q}" if q else ""), "info", self.run_id, self.account_id,
                                 s.name, {"records": n_records, "pages": n_pages, "inserted": res.inserted,
                                          "updated": res.updated, "unchanged": res.unchanged,
                                          "quarantined": q, "cursor": cursor}))
                if absent:
                    evs.append(Event("absent", f"{absent} {s.table.name} row(s) no longer listed: {s.absent_col} set",
                                     "info", self.run_id, self.account_id, s.name, {"absent": absent}))
                await emit_many(conn, evs)
                return stop, res, absent

        async def commit() -> bool:
            t0 = time.perf_counter()
            try:
                stop, res, _ = await db.run_retrying(self.settings, "store page", unit)
            except co.LeaseLost as e:
                self.lease_lost = True
                self.error = e
                raise
            except Exception as e:  # FAILED: nothing after these pages may be stored by this run
                self.error = e
                raise
            finally:
                self.timing.write_s += time.perf_counter() - t0
            self._written(n_events, taken_at)
            if mark_absent:
                self.seen = []
            # a write that was all new (a backfill) makes the next one try COPY without probing first
            self.expect_new = res.inserted > 0 and not res.updated and not res.unchanged
            self.totals.pages += n_pages
            self.totals.inserted += res.inserted
            self.totals.updated += res.updated
            self.totals.unchanged += res.unchanged
            self.totals.quarantined += len(bad)
            if stop:
                self.stop_requested = True
            return self.stop_requested
        return commit

    async def run_timer(self) -> None:
        """The run's timer task. Every EVENT_TICK_S: write held pages once the first is WRITE_HOLD_S old
        even if no page follows (a slow API, a long rate-limit wait), so progress is committed every few
        seconds whatever the API does; otherwise write pending events on their own once the oldest is
        EVENT_FLUSH_S old, unless a page write is under way (it takes them). A pooled connection is taken
        only for that short write, so at most one event transaction per EVENT_FLUSH_S.

        A failed page write is handed to the run (state FAILED: its next put raises it). A failed event
        write is only logged (the events stay pending); a lost lease stops the timer (state LOST)."""
        while True:
            await asyncio.sleep(EVENT_TICK_S)
            if self._lock.locked():
                continue  # a page is being written: its transaction carries the events
            try:
                if self._held.pages and time.monotonic() - self._held.since >= WRITE_HOLD_S:
                    await self.flush(older_than=WRITE_HOLD_S)
                elif self.events_due():
                    try:
                        await self.flush_events()
                    except (asyncio.CancelledError, co.LeaseLost):
                        raise
                    except Exception as e:
                        log.warning("run %s: events not written yet (%s); retrying", self.run_id, db.describe(e))
                        await asyncio.sleep(WRITE_HOLD_S)
            except asyncio.CancelledError:
                raise
            except co.LeaseLost as e:
                self.lease_lost = True
                self.error = e
                return
            except Exception as e:
                self.error = e
                return

    async def stop_timer(self, task: asyncio.Task) -> None:
        """Cancel the timer between writes (never in the middle of one: cancelling it then loses nothing)."""
        async with self._lock:
            task.cancel()
