"""One run of one claimed (account, stream): the one entry used by the worker pool, `baysync sync`, the
benches and the tests (:class:`Run`: ``await Run(settings, engine, claim, owner).execute(clients)``).

The run reads its stream's pages (sync_core/streams/base.py: windows, a full listing, or the stream's own
``fetch``) and hands each to its page writer (sync_core/writer.py), which stores it with its position in
one fenced transaction; the run heartbeats, honours STOP, and finishes.

Windows: no cursor -> start ``initial_backfill_days`` back (per-stream override, capped by what eBay
serves); with a cursor -> start ``lookback_s`` before it (and at least ``rescan_days`` back for finances);
end ``safety_lag_s`` before now; split into chunks of the stream's maximum window, oldest first. The
plan is stored in the checkpoint, so a crashed or stopped run resumes the same plan.

Concurrent windows: up to ``run_concurrency`` windows are fetched at once (every call still spends the
account's rate budget), each by a fetcher task that requests its next page while the previous one is
mapped and written (a bounded queue between fetchers and the one writer).  The position is honest: ``i``
is the contiguous prefix of finished windows (the cursor advances only to the end of window ``i - 1``),
``next`` the resume URL of window ``i``, ``open`` the resume URLs of later windows under way and ``done``
the later windows already finished, so a restart fetches none of those again.  The position saved with a
page covers exactly the pages handed to the writer before it (they commit with it or before it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncGenerator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from . import coordination as co
from . import db
from .config import Settings
from .ebay.errors import EbayError, EbayRequestError, ReauthNeeded, SignatureRequired
from .ebay.ratelimit import BudgetWaitInterrupted
from .events import emit_many
from .streams import STREAMS
from .streams.base import Deferred, StopRun, Stream, StreamPage, Window
from .writer import EVENT_FLUSH_S, EVENT_TICK_S, WRITE_HOLD_S, Counts, PageWriter

__all__ = ["Run", "StopRun", "Deferred", "Counts", "plan_windows", "plan_start",
           "WRITE_HOLD_S", "EVENT_FLUSH_S", "EVENT_TICK_S"]

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


class Run:
    """One run of a claimed pair: the :class:`~sync_core.streams.base.StreamContext` its stream sees.

    ``stop_requested``/``shutdown`` may be set from outside (the pool, a signal handler); ``totals`` are the
    counts written so far; ``writer`` is the run's page writer."""

    def __init__(self, settings: Settings, engine: AsyncEngine, claim: co.Claim, owner: str, *,
                 now: datetime | None = None, stream: Stream | None = None):
        self.settings, self.engine, self.claim, self.owner = settings, engine, claim, owner
        self.stream: Stream = stream or STREAMS[claim.stream]  # ``stream``: another declaration of the same tables
        self.now = now or utcnow()
        self.client: Any = None  # EbayClient, given by Clients.for_run in execute()
        self.plan_start: datetime | None = None
        self.shutdown = False  # the process is stopping: the pair should be picked up again at once
        self.writer = PageWriter(settings, engine, self.stream, claim, owner)
        # pipelined windows: the next pages are mapped while the previous write commits
        self.writer.write_behind = settings.run_concurrency > 1 and self.stream.mode == "windowed"
        self.status: str | None = None  # the final status, once executed

    @property
    def run_id(self) -> int:
        return self.claim.run_id

    @property
    def account_id(self) -> int:
        return self.claim.account_id

    @property
    def totals(self) -> Counts:
        return self.writer.totals

    @property
    def stop_requested(self) -> bool:
        return self.writer.stop_requested

    @stop_requested.setter
    def stop_requested(self, v: bool) -> None:
        self.writer.stop_requested = v

    @property
    def lease_lost(self) -> bool:
        return self.writer.lease_lost

    @lease_lost.setter
    def lease_lost(self, v: bool) -> None:
        self.writer.lease_lost = v

    def page_size(self) -> int:
        return self.settings.stream(self.stream.name).page_size or self.stream.max_page_size

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None:
        self.writer.event(kind, message, level, **data)

    def on_http_event(self, ev: dict) -> None:
        self.writer.on_http_event(ev)

    async def read(self, query: Callable[..., Awaitable[Any]], **params: Any) -> Any:
        """Run a read of stored rows (sync_core/stored.py) for this account, with the database retries, once
        every page handed to the writer is written."""
        await self.writer.drain()

        async def unit() -> Any:
            async with self.engine.connect() as conn:
                return await query(conn, self.account_id, **params)
        return await db.run_retrying(self.settings, "read", unit)

    async def execute(self, clients: Any = None) -> str:
        """Run to completion; returns the final status (succeeded | cancelled | deferred | failed |
        reauth_needed | lost).  The run gets its eBay client from ``clients`` (worker.Clients.for_run: without
        usable tokens, a stand-in that fails the run with the reason) unless one was given."""
        if self.client is None and clients is not None:
            await clients.for_run(self)
        self.status = await _execute(self)
        return self.status

    # -- the pages of the run
    async def _drive(self) -> None:
        s = self.stream
        if s.mode == "windowed":
            pages = self._windowed()
        elif s.mode == "full":
            pages = self._full()
        else:
            assert s.fetch is not None, f"custom stream {s.name} declares no fetch"
            pages = s.fetch(self)
        await self._consume(pages)
        if s.refetch is not None:
            await self._consume(s.refetch(self))

    async def _consume(self, pages: AsyncGenerator[StreamPage, None]) -> None:
        """Hand each page to the writer; stop after a page once a STOP is seen, unless that page completed
        the run (its plan is done and nothing follows)."""
        timing = self.writer.timing
        async with aclosing(pages) as it:
            t = time.perf_counter()
            async for page in it:
                timing.pages_wait_s += time.perf_counter() - t
                stop = await self.writer.put(page)
                t = time.perf_counter()
                if stop:
                    complete = (page.cursor is not None and page.windows_done == page.windows_total
                                and self.stream.refetch is None)
                    if not complete:
                        raise StopRun()

    async def _set_window(self, start: datetime | None, end: datetime | None, total: int) -> None:
        async def unit() -> None:
            async with self.engine.begin() as conn:
                await co.set_run_window(conn, self.run_id, start, end, total)
        await db.run_retrying(self.settings, "record run plan", unit)

    async def _windowed(self) -> AsyncGenerator[StreamPage, None]:
        s, claim = self.stream, self.claim
        cp = claim.checkpoint or {}
        since = claim.backfill_since.isoformat() if claim.backfill_since else None
        if cp.get("windows") and cp.get("since") != since:
            cp = {}  # a backfill requested after this plan was made: plan it now
        nexts: dict[int, str] = {}  # resume URL of each window under way
        done: set[int] = set()  # finished windows beyond the contiguous prefix
        if cp.get("windows"):
            windows = [Window.from_json(w) for w in cp["windows"]]
            i = int(cp.get("i", 0))
            if cp.get("next"):
                nexts[i] = cp["next"]
            nexts.update({int(k): v for k, v in (cp.get("open") or {}).items()})
            done = {int(k) for k in cp.get("done") or []}
            self.plan_start = windows[0].start if windows else self.now
            self.event("resume", f"resuming window {i + 1}/{len(windows)}" + (" mid-window" if nexts else "")
                       + (f", {len(done)} later window(s) already done" if done else ""))
        else:
            start = plan_start(self.settings, s, claim, self.now)
            end = self.now - timedelta(seconds=self.settings.safety_lag_s)
            windows = plan_windows(start, end, s.max_window)
            i = 0
            self.plan_start = start
            self.event("plan", f"{len(windows)} window(s) from {start.isoformat(timespec='seconds')} "
                       f"to {end.isoformat(timespec='seconds')}", windows=len(windows), run_kind=claim.kind)
        n = len(windows)
        await self._set_window(windows[0].start if windows else None, windows[-1].end if windows else None, n)
        wjson = [w.as_json() for w in windows]
        todo = [k for k in range(i, n) if k not in done]
        if not todo:
            return
        size = self.page_size()
        conc = max(1, min(self.settings.run_concurrency, len(todo)))
        # run_concurrency = 1: one request at a time, the next only once the page before is written (the
        # engine before concurrent windows); more: pages are fetched ahead, at most 2 per fetcher waiting
        pipelined = self.settings.run_concurrency > 1
        queue: asyncio.Queue = asyncio.Queue(maxsize=2 * conc)  # pages fetched ahead: bounded memory
        windows_left = iter(todo)  # shared: each window is taken by one fetcher, oldest first
        fetch_window = s.fetch_window
        assert fetch_window is not None, f"windowed stream {s.name} declares no fetch_window"

        async def fetcher() -> None:
            try:
                for k in windows_left:
                    got = False
                    async with aclosing(fetch_window(self.client, windows[k], nexts.get(k), size)) as it:
                        async for page in it:
                            got = True
                            await queue.put((k, page, None))
                            if not pipelined:
                                await queue.join()
                    if not got:  # nothing at all in the window
                        await queue.put((k, None, None))
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # handed to the run, which fails with it
                await queue.put((None, None, e))

        def position() -> dict[str, Any]:
            return {"windows": wjson, "i": i, "next": nexts.get(i),
                    "open": {str(k): u for k, u in sorted(nexts.items()) if k != i}, "done": sorted(done),
                    "since": since}

        tasks = [asyncio.create_task(fetcher(), name=f"run-{self.run_id}-fetch-{j}") for j in range(conc)]
        remaining = len(todo)
        stopping = asyncio.ensure_future(self.writer.stopping.wait())
        try:
            while remaining:
                if queue.empty():  # wait for a page, or a STOP (a slow call does not delay it)
                    got = asyncio.ensure_future(queue.get())
                    await asyncio.wait((got, stopping), return_when=asyncio.FIRST_COMPLETED)
                    if not got.done():
                        got.cancel()
                        raise StopRun()
                    k, page, err = got.result()
                else:
                    k, page, err = queue.get_nowait()
                if err is not None:
                    raise err
                finished = page is None or page.next_url is None
                advanced = False
                if finished:
                    remaining -= 1
                    nexts.pop(k, None)
                    done.add(k)
                    while i in done:
                        done.discard(i)
                        i += 1
                        advanced = True
                else:
                    nexts[k] = page.next_url
                yield StreamPage(page.records if page is not None else [], position(),
                                 cursor=windows[i - 1].end if advanced else None, windows_done=i + len(done),
                                 windows_total=n, clear_backfill=finished and i == n)
                queue.task_done()  # handed to the writer (held or written)
        finally:
            stopping.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _full(self) -> AsyncGenerator[StreamPage, None]:
        """A full listing (no date filter): page through everything; then mark what vanished."""
        s = self.stream
        next_url = (self.claim.checkpoint or {}).get("next")
        if not next_url:
            self.writer.seen = []
        await self._set_window(None, None, 1)
        assert s.fetch_all is not None, f"full stream {s.name} declares no fetch_all"
        async with aclosing(s.fetch_all(self.client, next_url, self.page_size())) as it:
            async for page in it:
                last = page.next_url is None
                yield StreamPage(page.records, {"next": page.next_url}, cursor=self.now if last else None,
                                 windows_done=1 if last else 0, windows_total=1, snapshot=True, mark_absent=last,
                                 clear_backfill=last)


async def _execute(ctx: Run) -> str:
    t0 = time.monotonic()
    stream, w = ctx.stream, ctx.writer
    status, error = "succeeded", None
    signing_required = False
    defer_s: int | None = None
    hb = asyncio.create_task(_heartbeat(ctx))
    timer = asyncio.create_task(w.run_timer())
    try:
        try:
            await ctx._drive()
        finally:
            await w.stop_timer(timer)
        if ctx.lease_lost:
            raise co.LeaseLost("lease lost")
        t_flush = time.perf_counter()
        await w.flush()
        w.timing.waited(t_flush)
    except (StopRun, BudgetWaitInterrupted):  # the latter: the process stopped while a call waited for budget
        status = "cancelled"
        await w.flush_held()
    except Deferred as e:
        status, error, defer_s = "deferred", e.message, e.wait_s
        await w.flush_held()
    except co.LeaseLost:
        status = "lost"
    except ReauthNeeded as e:
        status, error = "reauth_needed", f"eBay refused the refresh token: reconnect the account ({e.message})"
        await w.flush_held()
    except SignatureRequired as e:  # an EU/UK seller's Finances call without a (valid) signature: docs/ebay-api.md "Digital Signatures"
        e.account = ctx.claim.account
        status, error, signing_required = "failed", e.advice(), True
        await w.flush_held()
    except EbayError as e:
        status, error = "failed", str(e)
        if isinstance(e, EbayRequestError) and e.status == 403 and stream.scopes:  # a missing scope: say which
            error += (f": the {stream.name} stream needs the OAuth scope {' or '.join(stream.scopes)}; "
                      "reconnect the account to grant it (baysync accounts connect)")
        await w.flush_held()
    except asyncio.CancelledError:
        hb.cancel()
        timer.cancel()
        w.abort()
        raise
    except Exception as e:  # a bug or an unexpected payload: record it, do not crash the pool
        log.exception("run %s failed", ctx.run_id)
        status, error = "failed", f"{type(e).__name__}: {e}"
        await w.flush_held()
    finally:
        hb.cancel()
    if status == "lost" or ctx.lease_lost:
        status = "lost"
        log.warning("run %s (%s/%s) lost its lease; stopped without writing", ctx.run_id, ctx.claim.account, stream.name)
        return status
    t, tm = ctx.totals, w.timing
    ctx.event("run_end", f"run {status}: {t.pages} pages, +{t.inserted} ~{t.updated} ={t.unchanged}"
              + (f", quarantined {t.quarantined}" if t.quarantined else "")
              + (f"; waited {tm.pages_wait_s:.1f}s for eBay, {tm.write_wait_s:.1f}s for database writes"
                 if t.pages else "") + (f": {error}" if error else ""),
              "error" if status in ("failed", "reauth_needed") else "info",
              status=status, seconds=round(time.monotonic() - t0, 3), timing=tm.as_dict(), **t.as_dict())

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
            await emit_many(conn, w.pending_events)
    await db.run_retrying(ctx.settings, "finish run", fin)
    w.pending_events.clear()
    return status


async def _heartbeat(ctx: Run) -> None:
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
