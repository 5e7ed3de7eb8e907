"""One run of one (account, stream): plan windows, read pages, write each page with its checkpoint in
one fenced transaction, heartbeat, honour STOP, finish.

Windows: no cursor -> start ``initial_backfill_days`` back (per-stream override, capped by what eBay
serves); with a cursor -> start ``lookback_s`` before it (and at least ``rescan_days`` back for finances);
end ``safety_lag_s`` before now; split into chunks of the stream's maximum window, oldest first. The
plan is stored in the checkpoint, so a crashed or stopped run resumes the same plan at the same page.
The cursor advances only when a whole window has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import coordination as co
from . import db, upserts
from .config import Settings
from .ebay.errors import EbayError, ReauthNeeded, SignatureRequired
from .ebay.ratelimit import BudgetWaitInterrupted
from .events import Event, emit_many
from .streams.base import Invalid, Stream, Window

log = logging.getLogger("baysync.runner")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def plan_windows(start: datetime, end: datetime, max_window: timedelta) -> list[Window]:
    out = []
    cur = start
    while cur < end:
        nxt = min(cur + max_window, end)
        out.append(Window(cur, nxt))
        cur = nxt
    return out


def plan_start(settings: Settings, stream: Stream, claim: co.Claim, now: datetime) -> datetime:
    days = settings.stream(stream.name).initial_backfill_days or settings.initial_backfill_days
    earliest = now - timedelta(days=stream.max_history_days) + timedelta(hours=1) if stream.max_history_days else None
    if claim.backfill_since is not None:
        start = claim.backfill_since
    elif claim.kind == "full":
        start = earliest or now - timedelta(days=days)
    elif claim.cursor is None:
        start = now - timedelta(days=days)
    else:
        start = claim.cursor - timedelta(seconds=settings.lookback_s)
        if stream.rescan_days:
            start = min(start, now - timedelta(days=stream.rescan_days))
    if earliest is not None and start < earliest:
        start = earliest
    return start


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


class StopRun(Exception):
    """Cooperative stop (cancel or pause) observed between pages."""


class Deferred(Exception):
    """eBay says "not now" for a long time (e.g. the Sell Feed task quota, 409 errorId 160025): the run ends
    without failing, the stream stays idle with ``message`` in last_error and its next run after ``wait_s``."""

    def __init__(self, wait_s: int, message: str):
        super().__init__(message)
        self.wait_s, self.message = int(wait_s), message


# Held pages are written at the latest when the next page arrives this long after the first (a slow API
# still commits its progress every few seconds).
WRITE_HOLD_S = 2.0
# Events waiting for a page write (HTTP calls, retry and rate-limit waits) are written on their own once
# the oldest is this old (checked every EVENT_TICK_S), so a run that waits (report polling, a slow eBay, a
# long Retry-After) is visible in run_events, the console and `baysync logs --follow` within a second;
# events that a page write takes sooner cost no transaction of their own.
EVENT_FLUSH_S = 0.5
EVENT_TICK_S = 0.25


@dataclass
class _Held:
    """Pages mapped but not written yet (write batching): their rows and the last one's position."""
    rows: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    bad: list = field(default_factory=list)
    records: int = 0
    pages: int = 0
    since: float = 0.0
    checkpoint: dict | None = None
    windows_done: int | None = None
    windows_total: int | None = None

    def hold(self, mapped: tuple[list, list, list], n_records: int, checkpoint: dict, windows_done: int | None,
             windows_total: int | None) -> None:
        if not self.pages:
            self.since = time.monotonic()
        self.rows += mapped[0]
        self.pairs += mapped[1]
        self.bad += mapped[2]
        self.records += n_records
        self.pages += 1
        self.checkpoint = checkpoint
        if windows_done is not None:
            self.windows_done = windows_done
        if windows_total is not None:
            self.windows_total = windows_total


@dataclass
class RunContext:
    settings: Settings
    engine: AsyncEngine
    client: Any  # EbayClient
    stream: Stream
    claim: co.Claim
    owner: str
    now: datetime = field(default_factory=utcnow)
    totals: Counts = field(default_factory=Counts)
    pending_events: list[Event] = field(default_factory=list)
    plan_start: datetime | None = None
    stop_requested: bool = False
    lease_lost: bool = False
    shutdown: bool = False  # the process is stopping: the pair should be picked up again at once
    expect_new: bool = False  # the last page was all new: try the next one as a COPY (upserts.upsert)
    _held: "_Held" = field(default_factory=lambda: _Held())  # pages mapped, not written yet (store_page)
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # store_page vs the stale-page flusher
    _write_error: BaseException | None = None  # a background write failed: the run must not go on past it
    _events_since: float = 0.0  # monotonic time by which the oldest pending event was added

    @property
    def run_id(self) -> int:
        return self.claim.run_id

    @property
    def account_id(self) -> int:
        return self.claim.account_id

    def page_size(self) -> int:
        return self.settings.stream(self.stream.name).page_size or self.stream.max_page_size

    # -- events from the eBay client (collected; written with the next page's transaction, or by the run's
    #    flusher within EVENT_FLUSH_S when no page write comes: :meth:`flush_events`)
    def on_http_event(self, ev: dict) -> None:
        kind = ev.get("type", "http")
        if kind == "http":
            self.totals.api_calls += 1
            if (ev.get("attempt") or 1) > 1:
                self.totals.retries += 1
        level = "warning" if kind in ("rate_wait", "retry", "window_reread") or (ev.get("status") or 200) >= 400 else "debug"
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

    # -- mapping
    def _map_one(self, rec: dict) -> tuple[dict, bytes]:
        """(the record's row, its payload as stored: canonical JSON bytes without the excluded keys)."""
        excl = self.stream.raw_exclude
        return self.stream.map(rec), upserts.payload_bytes({k: v for k, v in rec.items() if k not in excl} if excl else rec)

    def map_records(self, records: Sequence[dict]) -> tuple[list[dict], list[tuple[dict, dict]], list[tuple]]:
        rows, pairs, bad = [], [], []
        for rec in records:
            try:
                if not isinstance(rec, dict):
                    raise Invalid(f"record is a {type(rec).__name__}, not an object")
                row, data = self._map_one(rec)
                if b"\\u0000" in data:  # PostgreSQL's text and jsonb cannot hold NUL: replace it, map again
                    rec = upserts.without_nul(rec)
                    row, data = self._map_one(rec)
                row["account_id"] = self.account_id
                row["raw"] = data.decode()
                row["payload_hash"] = upserts.payload_hash(data)
                row["run_id"] = self.run_id
                children = {c.table.name: c.rows(rec, row) for c in self.stream.children}
                rows.append(row)
                pairs.append((row, children))
            except Invalid as e:
                bad.append((self.stream.record_key(rec), str(e), rec))
        return rows, pairs, bad

    # -- the one write path: pages and their checkpoint, fenced, in one transaction
    async def store_page(self, records: Sequence[dict], checkpoint: dict | None, *, cursor: datetime | None = None,
                         windows_done: int | None = None, windows_total: int | None = None,
                         clear_backfill: bool = False, present_keys: Any = None) -> bool:
        """Store a page of records with the position after it (``checkpoint``; ``cursor`` when a window or
        listing is complete). Returns whether the run should stop.

        Write batching: a plain page (a checkpoint and nothing else) is mapped now but may be held and
        written with the following ones, in one transaction with the last one's checkpoint, while they total
        fewer than ``write_batch_rows`` records and the first is younger than WRITE_HOLD_S. Anything else
        (a cursor, a snapshot's present keys, records without a position) writes what is held at once; so does
        the end of the run (:func:`execute` calls :meth:`flush`). Data and position stay in one transaction,
        so a crash loses held pages and their position together: the next run fetches them again."""
        mapped = self.map_records(records)
        async with self._write_lock:
            self._raise_write_error()
            held = self._held
            if (checkpoint is not None and cursor is None and present_keys is None and not clear_backfill
                    and self.settings.write_batch_rows > 1
                    and held.records + len(records) < self.settings.write_batch_rows
                    and (not held.pages or time.monotonic() - held.since < WRITE_HOLD_S)):
                held.hold(mapped, len(records), checkpoint, windows_done, windows_total)
                return self.stop_requested
            return await self._write(mapped, len(records), 1, checkpoint, cursor=cursor, windows_done=windows_done,
                                     windows_total=windows_total, clear_backfill=clear_backfill,
                                     present_keys=present_keys)

    async def flush(self, *, older_than: float = 0.0) -> bool:
        """Write the held pages, if any (end of a run, STOP, an API error after some pages; with
        ``older_than``, only if the first was held that many seconds ago: the stale-page flusher)."""
        async with self._write_lock:
            self._raise_write_error()
            if not self._held.pages or time.monotonic() - self._held.since < older_than:
                return self.stop_requested
            return await self._write(([], [], []), 0, 0, None)

    async def flush_events(self) -> int:
        """Write the pending events on their own, in one short fenced transaction (the flusher, when no page
        write is under way; a page write in progress takes them itself). Returns how many were written.

        Fenced like a page: a run that lost its lease writes no more events (they are dropped with it, as
        its held pages are) and stops at its next page. A failed write (the database is away) keeps the
        events pending for the next page or the next try: the run goes on, its pages decide its fate (if the
        connection broke during COMMIT itself, those events may then be written twice; nothing is lost)."""
        async with self._write_lock:
            self._raise_write_error()
            n, taken_at = len(self.pending_events), time.monotonic()
            if not n:
                return 0
            try:
                async with self.engine.begin() as conn:
                    stop = await co.fence(conn, self.owner, self.run_id)
                    await emit_many(conn, self.pending_events[:n])
            except co.LeaseLost:
                self.pending_events.clear()
                raise
            self._written(n, taken_at)
            if stop:
                self.stop_requested = True
            return n

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            raise self._write_error

    async def _write(self, mapped: tuple[list, list, list], n_records: int, n_pages: int, checkpoint: dict | None, *,
                     cursor: datetime | None = None, windows_done: int | None = None, windows_total: int | None = None,
                     clear_backfill: bool = False, present_keys: Any = None) -> bool:
        held, self._held = self._held, _Held()  # taken even if the write fails: a failed write is not retried twice
        rows, pairs, bad = held.rows + mapped[0], held.pairs + mapped[1], held.bad + mapped[2]
        n_records += held.records
        n_pages += held.pages
        if checkpoint is None:
            checkpoint = held.checkpoint
        windows_done = held.windows_done if windows_done is None else windows_done
        windows_total = held.windows_total if windows_total is None else windows_total
        if held.pages and self.stream.children:
            # a record seen on two of the held pages (it moved while paging): its last version wins, children too
            pairs = list({tuple(row[k] for k in self.stream.key): (row, ch) for row, ch in pairs}.values())
        counts = Counts(pages=n_pages, api_calls=self.totals.api_calls, retries=self.totals.retries)
        self.totals.api_calls = self.totals.retries = 0
        n_events, taken_at = len(self.pending_events), time.monotonic()  # later ones go with the next write

        async def unit() -> tuple[bool, upserts.UpsertResult]:
            async with self.engine.begin() as conn:
                stop = await co.fence(conn, self.owner, self.run_id)
                res = await upserts.upsert(conn, self.stream.table, self.stream.key, rows,
                                           reactivate=self.stream.absent_col, expect_new=self.expect_new)
                if self.stream.children and res.changed_keys:
                    key_idx = self.stream.key.index(self.stream.children[0].parent_key)
                    changed = {k[key_idx] for k in res.changed_keys}
                    for child in self.stream.children:
                        child_rows = []
                        for row, ch in pairs:
                            if row[child.parent_key] in changed:
                                for cr in ch[child.table.name]:
                                    cr["account_id"] = self.account_id
                                    child_rows.append(cr)
                        await upserts.replace_children(conn, child.table, self.account_id, child.parent_key,
                                                       sorted(changed), child_rows)
                q = await upserts.quarantine(conn, self.run_id, self.account_id, self.stream.name, bad)
                if present_keys is not None:
                    await self.stream_mark_absent(conn, present_keys)
                c = dict(counts.as_dict(), inserted=res.inserted, updated=res.updated, unchanged=res.unchanged,
                         quarantined=q)
                await co.save_checkpoint(conn, self.run_id, checkpoint, cursor=cursor, windows_done=windows_done,
                                         windows_total=windows_total, records=res.inserted, counts=c,
                                         clear_backfill=clear_backfill, backfill_started=self.claim.backfill_since)
                evs = self.pending_events[:n_events]
                pages = f" ({n_pages} pages)" if n_pages > 1 else ""
                evs.append(Event("page", f"{n_records} records{pages}: +{res.inserted} ~{res.updated} ={res.unchanged}"
                                 + (f" quarantined {q}" if q else ""), "info", self.run_id, self.account_id,
                                 self.stream.name, {"records": n_records, "pages": n_pages, "inserted": res.inserted,
                                                    "updated": res.updated, "unchanged": res.unchanged,
                                                    "quarantined": q, "cursor": cursor}))
                await emit_many(conn, evs)
                return stop, res

        stop, res = await db.run_retrying(self.settings, "store page", unit)
        self._written(n_events, taken_at)
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

    async def store_records(self, records: Sequence[dict]) -> bool:
        """Write records without moving the checkpoint (e.g. re-fetched open disputes)."""
        return await self.store_page(records, None)

    async def stream_mark_absent(self, conn, present_keys) -> None:
        if self.stream.absent_col:
            await upserts.mark_absent(conn, self.stream.table, self.account_id, self.stream.key[1], present_keys,
                                      self.stream.absent_col)

    async def query_column(self, sql: str, **params: Any) -> list[Any]:
        async def read() -> list[Any]:
            async with self.engine.connect() as conn:
                return list((await conn.execute(sa.text(sql), dict(params, a=self.account_id))).scalars())
        return await db.run_retrying(self.settings, "read", read)


async def _set_window(ctx: RunContext, start: datetime | None, end: datetime | None, total: int) -> None:
    async def unit() -> None:
        async with ctx.engine.begin() as conn:
            await co.set_run_window(conn, ctx.run_id, start, end, total)
    await db.run_retrying(ctx.settings, "record run plan", unit)


async def _run_windowed(ctx: RunContext) -> None:
    s, claim = ctx.stream, ctx.claim
    cp = claim.checkpoint or {}
    since = claim.backfill_since.isoformat() if claim.backfill_since else None
    if cp.get("windows") and cp.get("since") != since:
        cp = {}  # a backfill requested after this plan was made: plan it now
    if cp.get("windows"):
        windows = [Window.from_json(w) for w in cp["windows"]]
        idx, next_url = int(cp.get("i", 0)), cp.get("next")
        ctx.plan_start = windows[0].start if windows else ctx.now
        ctx.event("resume", f"resuming window {idx + 1}/{len(windows)}" + (" mid-window" if next_url else ""))
    else:
        start = plan_start(ctx.settings, s, claim, ctx.now)
        end = ctx.now - timedelta(seconds=ctx.settings.safety_lag_s)
        windows = plan_windows(start, end, s.max_window)
        idx, next_url = 0, None
        ctx.plan_start = start
        ctx.event("plan", f"{len(windows)} window(s) from {start.isoformat(timespec='seconds')} "
                  f"to {end.isoformat(timespec='seconds')}", windows=len(windows), run_kind=claim.kind)
    await _set_window(ctx, windows[0].start if windows else None, windows[-1].end if windows else None, len(windows))
    wjson = [w.as_json() for w in windows]
    size = ctx.page_size()
    while idx < len(windows):
        w = windows[idx]
        got_page = False
        async for page in s.fetch_window(ctx.client, w, next_url, size):
            got_page = True
            last = page.next_url is None
            done = idx + 1 if last else idx
            cp = {"windows": wjson, "i": done if last else idx, "next": None if last else page.next_url, "since": since}
            stop = await ctx.store_page(page.records, cp, cursor=w.end if last else None, windows_done=done,
                                        windows_total=len(windows),
                                        clear_backfill=last and done == len(windows))
            if stop and not last:
                raise StopRun()
            if stop:
                idx += 1
                raise StopRun()
        if not got_page:  # nothing at all for the window
            cp = {"windows": wjson, "i": idx + 1, "next": None, "since": since}
            if await ctx.store_page([], cp, cursor=w.end, windows_done=idx + 1, windows_total=len(windows),
                                    clear_backfill=idx + 1 == len(windows)):
                raise StopRun()
        idx += 1
        next_url = None
    if s.after_complete:
        await s.after_complete(ctx)


async def _run_full(ctx: RunContext) -> None:
    """A full listing (no date filter): page through everything; then mark what vanished."""
    s = ctx.stream
    cp = ctx.claim.checkpoint or {}
    next_url = cp.get("next")
    seen: list[str] = list(cp.get("seen", [])) if next_url else []
    await _set_window(ctx, None, None, 1)
    async for page in s.fetch_all(ctx.client, next_url, ctx.page_size()):
        last = page.next_url is None
        rows, _, _ = ctx.map_records(page.records)
        seen.extend(str(r[s.key[1]]) for r in rows)
        cp = {"next": page.next_url, "seen": seen if not last else []}
        stop = await ctx.store_page(page.records, cp, cursor=ctx.now if last else None, windows_done=1 if last else 0,
                                    windows_total=1, present_keys=seen if last else None, clear_backfill=last)
        if stop and not last:
            raise StopRun()
    if s.after_complete:
        await s.after_complete(ctx)


async def execute(ctx: RunContext) -> str:
    """Run to completion; returns the final status (succeeded | cancelled | deferred | failed | reauth_needed |
    lost)."""
    t0 = time.monotonic()
    stream = ctx.stream
    status, error = "succeeded", None
    signing_required = False
    defer_s: int | None = None
    hb = asyncio.create_task(_heartbeat(ctx))
    flusher = asyncio.create_task(_flush_stale(ctx))
    try:
        try:
            if stream.mode == "windowed":
                await _run_windowed(ctx)
            elif stream.mode == "full":
                await _run_full(ctx)
            else:
                await stream.run_custom(ctx)
        finally:
            async with ctx._write_lock:  # not in the middle of a write: cancelling it loses nothing
                flusher.cancel()
        if ctx.lease_lost:
            raise co.LeaseLost("lease lost")
        await ctx.flush()
    except (StopRun, BudgetWaitInterrupted):  # the latter: the process stopped while a call waited for budget
        status = "cancelled"
        await _flush_held(ctx)
    except Deferred as e:
        status, error, defer_s = "deferred", e.message, e.wait_s
        await _flush_held(ctx)
    except co.LeaseLost:
        status = "lost"
    except ReauthNeeded as e:
        status, error = "reauth_needed", f"eBay refused the refresh token: reconnect the account ({e.message})"
        await _flush_held(ctx)
    except SignatureRequired as e:  # an EU/UK seller's Finances call without a (valid) signature: docs/ebay-api.md "Digital Signatures"
        e.account = ctx.claim.account
        status, error, signing_required = "failed", e.advice(), True
        await _flush_held(ctx)
    except EbayError as e:
        status, error = "failed", str(e)
        await _flush_held(ctx)
    except asyncio.CancelledError:
        hb.cancel()
        flusher.cancel()
        raise
    except Exception as e:  # a bug or an unexpected payload: record it, do not crash the pool
        log.exception("run %s failed", ctx.run_id)
        status, error = "failed", f"{type(e).__name__}: {e}"
        await _flush_held(ctx)
    finally:
        hb.cancel()
    if status == "lost" or ctx.lease_lost:
        status = "lost"
        log.warning("run %s (%s/%s) lost its lease; stopped without writing", ctx.run_id, ctx.claim.account, stream.name)
        return status
    t = ctx.totals
    ctx.event("run_end", f"run {status}: {t.pages} pages, +{t.inserted} ~{t.updated} ={t.unchanged}"
              + (f", quarantined {t.quarantined}" if t.quarantined else "") + (f": {error}" if error else ""),
              "error" if status in ("failed", "reauth_needed") else "info",
              status=status, seconds=round(time.monotonic() - t0, 3), **t.as_dict())

    async def fin() -> None:
        async with ctx.engine.begin() as conn:
            if status == "reauth_needed":
                await co.mark_reauth_needed(conn, ctx.account_id, error or "reauth needed")
            if signing_required:
                from .accounts import mark_signing_required

                await mark_signing_required(conn, ctx.account_id)
            interval = defer_s if defer_s is not None else ctx.settings.stream(stream.name).interval_s
            await co.finish(conn, ctx.owner, ctx.run_id, status, interval_s=0 if ctx.shutdown else interval,
                            error=error)
            await co.add_run_counts(conn, ctx.run_id, {"api_calls": t.api_calls, "retries": t.retries})
            await emit_many(conn, ctx.pending_events)
    await db.run_retrying(ctx.settings, "finish run", fin)
    ctx.pending_events.clear()
    return status


async def _flush_held(ctx: RunContext) -> None:
    """Keep what was fetched before a run ends early (STOP, an API error): write the held pages, if any."""
    pages = ctx._held.pages
    if ctx.lease_lost or not pages or ctx._write_error is not None:
        return
    try:
        await ctx.flush()
    except asyncio.CancelledError:
        raise
    except co.LeaseLost:
        ctx.lease_lost = True
    except Exception as e:
        log.warning("run %s: %d held page(s) not written (%s: %s); the next run fetches them again",
                    ctx.run_id, pages, type(e).__name__, e)


async def _flush_stale(ctx: RunContext) -> None:
    """The run's flusher. Every EVENT_TICK_S: write held pages once the first is WRITE_HOLD_S old even if
    no page follows (a slow API, a long rate-limit wait), so progress is committed every few seconds
    whatever the API does; otherwise write pending events on their own once the oldest is EVENT_FLUSH_S
    old (:meth:`RunContext.flush_events`), unless a page write is under way (it takes them). A pooled
    connection is taken only for that short write, so at most one event transaction per EVENT_FLUSH_S.

    A failed page write is handed to the run (its next store_page raises it): the run must not store later
    pages past a gap. A failed event write is only logged (the events stay pending); a lost lease stops it."""
    while True:
        await asyncio.sleep(EVENT_TICK_S)
        if ctx._write_lock.locked():
            continue  # a page is being written: its transaction carries the events
        try:
            if ctx._held.pages and time.monotonic() - ctx._held.since >= WRITE_HOLD_S:
                await ctx.flush(older_than=WRITE_HOLD_S)
            elif ctx.events_due():
                try:
                    await ctx.flush_events()
                except (asyncio.CancelledError, co.LeaseLost):
                    raise
                except Exception as e:
                    log.warning("run %s: events not written yet (%s); retrying", ctx.run_id, db.describe(e))
                    await asyncio.sleep(WRITE_HOLD_S)
        except asyncio.CancelledError:
            raise
        except co.LeaseLost as e:
            ctx.lease_lost = True
            ctx._write_error = e
            return
        except Exception as e:
            ctx._write_error = e
            return


async def _heartbeat(ctx: RunContext) -> None:
    period = ctx.settings.heartbeat_s
    while True:
        await asyncio.sleep(period)
        try:
            async with ctx.engine.begin() as conn:
                held = await co.heartbeat(conn, ctx.owner, [ctx.run_id], ctx.settings.lease_ttl_s)
            if ctx.run_id not in held:
                ctx.lease_lost = True
                return
            if held[ctx.run_id]:
                ctx.stop_requested = True
        except Exception as e:  # a missed heartbeat is survivable while the lease lasts
            log.warning("heartbeat for run %s failed: %s", ctx.run_id, db.describe(e))
