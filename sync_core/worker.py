"""The worker pool: claim due (account, stream) pairs, run them concurrently, rescue expired leases,
wake on NOTIFY (with a polling fallback), and shut down gracefully.

One asyncio process drives hundreds of runs: every run is a task; the HTTP connection pool, the rate
budget and each account's token source are shared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from . import accounts, coordination as co, db, events, retention
from .config import Settings
from .crypto import CryptoError, Vault
from .budgets import SharedRateBudget
from .ebay.client import EbayClient, make_http_client
from .ebay.oauth import AppTokenSource
from .ebay.ratelimit import APP, RateBudget
from .health import Histogram
from .runner import Run

log = logging.getLogger("baysync.worker")

POLL_S = 2.0
RESCUE_EVERY_S = 10.0
LISTEN_APP = "baysync/worker-listen"  # application_name of the one connection outside the pool
PRUNE_EVERY_S = 300.0  # retention runs at the first housekeeping tick, then at most this often


@dataclass
class PoolStats:
    started: float = field(default_factory=time.monotonic)
    claims: int = 0
    claim_seconds: float = 0.0
    runs: dict[str, int] = field(default_factory=dict)
    records: dict[tuple[str, str], int] = field(default_factory=dict)
    api_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: Histogram = field(default_factory=Histogram)  # run wall time by stream (/metrics)


# Developer Analytics contexts whose quotas a sync spends (Sell Fulfillment/Finances/Inventory/Feed,
# Commerce Message); ``api_context`` of getRateLimits / getUserRateLimits (developer_analytics spec).
LIMIT_CONTEXTS = ("sell", "commerce")


class Clients:
    """Per-process shared HTTP pool, rate budget, vault, application token and per-account token sources.

    The budget is the shared one in PostgreSQL (``rate_budget = "shared"``, every host spends from the
    same rows) or this process's own (``"process"``).  Before the first run of the process, the
    application's quotas are read with getRateLimits (application token); before an account's first run,
    its own with getUserRateLimits (its user token), for :data:`LIMIT_CONTEXTS`.  A failure keeps the
    published defaults (logged)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, *, transport: httpx.AsyncBaseTransport | None = None):
        self.settings, self.engine = settings, engine
        self.http = make_http_client(settings, transport=transport)
        self.budget: Any = SharedRateBudget(engine, settings=settings) if settings.rate_budget == "shared" else RateBudget()
        self.app_tokens = AppTokenSource(self.http, settings)
        self._vault: Vault | None = None
        self._tokens: dict[int, Any] = {}
        self._markets: dict[int, str] = {}  # account id -> X-EBAY-C-MARKETPLACE-ID
        self._limits: dict[Any, asyncio.Task] = {}  # APP / account id -> its one limits refresh
        self._lock = asyncio.Lock()
        self._side_tasks: set[asyncio.Task] = set()

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.from_settings(self.settings)
        return self._vault

    async def client(self, account_id: int, account: str, on_event) -> EbayClient:
        async with self._lock:
            tokens = self._tokens.get(account_id)
            if tokens is None:
                tokens = await accounts.token_source(self.engine, self.settings, account_id, account, self.http, self.vault)
                self._markets[account_id] = await accounts.marketplace_of(self.engine, self.settings, account_id)
                self._tokens[account_id] = tokens
                if APP not in self._limits:
                    self._limits[APP] = self._side_task(self._refresh_app_limits())
                if account_id not in self._limits:
                    self._limits[account_id] = self._side_task(
                        self._refresh_limits(account, tokens, self._markets[account_id]))
            pending = [self._limits[APP], self._limits[account_id]]
        await asyncio.wait(pending)  # spend only once the live quotas are known (never raises)
        signer, required = await accounts.signing_for(self.engine, self.settings, self.vault, account_id)
        return EbayClient(self.settings, http=self.http, tokens=tokens, account=account, on_event=on_event,
                          budget=self.budget, signer=signer, signing_required=required,
                          marketplace_id=self._markets.get(account_id))

    async def for_run(self, ctx: Run) -> None:
        """Give a claimed run its client. Without usable tokens (none stored, wrong key, ...) the run gets a
        stand-in that fails it with the reason: it is recorded as failed and its lease released like any run."""
        try:
            ctx.client = await self.client(ctx.claim.account_id, ctx.claim.account, ctx.on_http_event)
        except Exception as e:
            from .ebay.signing import SigningKeyError

            known = isinstance(e, (accounts.AccountError, CryptoError, SigningKeyError))
            ctx.client = _NoClient(str(e) if known else f"{type(e).__name__}: {e}")

    def _side_task(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return task

    async def _refresh_app_limits(self) -> None:
        """The application's quotas: getRateLimits with the application token (eBay refuses a user token
        there: developer_analytics spec, getRateLimits security = client credentials)."""
        c = EbayClient(self.settings, http=self.http, tokens=self.app_tokens, account=APP, budget=self.budget)
        await self._read_limits(c.get_rate_limits, APP)

    async def _refresh_limits(self, account: str, tokens: Any, marketplace_id: str | None = None) -> None:
        """This seller's quotas: getUserRateLimits with the seller's user token."""
        c = EbayClient(self.settings, http=self.http, tokens=tokens, account=account, budget=self.budget,
                       marketplace_id=marketplace_id)
        await self._read_limits(c.get_user_rate_limits, account)

    async def _read_limits(self, call, who: str) -> None:
        for ctx in LIMIT_CONTEXTS:
            try:
                await call(api_context=ctx)
            except Exception as e:
                log.info("%s rate limits for %s not read (%s); using defaults", ctx, who, type(e).__name__)

    def forget(self, account_id: int) -> None:
        self._tokens.pop(account_id, None)
        self._markets.pop(account_id, None)
        self._limits.pop(account_id, None)

    async def aclose(self) -> None:
        for t in list(self._side_tasks):
            t.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        await self.http.aclose()


class WorkerPool:
    def __init__(self, settings: Settings, engine: AsyncEngine, *, kind: str = "headless",
                 concurrency: int | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 url: str | None = None, owns_engine: bool = False):
        self.settings, self.engine, self.kind = settings, engine, kind
        self.owns_engine = owns_engine
        self.concurrency = concurrency or settings.workers
        self.owner = co.new_owner(kind)
        self.clients = Clients(settings, engine, transport=transport)
        self.url = url or engine.url.render_as_string(hide_password=False)
        self.stats = PoolStats()
        self.active: dict[int, tuple[asyncio.Task, Run]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._prune_task: asyncio.Task | None = None
        self._pruned_at: float | None = None

    # -- lifecycle
    async def start(self) -> None:
        async with self.engine.begin() as conn:
            await co.register_worker(conn, self.owner, self.kind, {"concurrency": self.concurrency})
            await co.sync_enabled_streams(conn, accounts.enabled_streams(self.settings))
        self._tasks = [asyncio.create_task(self._loop(), name="baysync-claim-loop"),
                       asyncio.create_task(self._listen(), name="baysync-control-listener"),
                       asyncio.create_task(self._housekeeping(), name="baysync-housekeeping")]
        log.info("worker pool %s started (%d slots)", self.owner, self.concurrency)

    async def stop(self, timeout: float = 25.0) -> None:
        """Stop claiming, let running pairs finish their current page and checkpoint, release leases."""
        self._stopping.set()
        self._wake.set()
        for _, ctx in self.active.values():
            if ctx is not None:
                ctx.stop_requested = True
                ctx.shutdown = True
        interrupt = getattr(self.clients.budget, "interrupt", None)
        if interrupt is not None:  # runs waiting for call budget (maybe for hours) stop now
            interrupt()
        running = [t for t, _ in self.active.values()]
        if running:
            done, pending = await asyncio.wait(running, timeout=timeout)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        side = self._tasks + ([self._prune_task] if self._prune_task else [])
        for t in side:
            t.cancel()
        await asyncio.gather(*side, return_exceptions=True)
        try:
            async with self.engine.begin() as conn:
                released = await co.release_all(conn, self.owner)
                await co.unregister_worker(conn, self.owner)
            if released:
                log.info("released %d lease(s)", released)
        except Exception as e:
            log.warning("could not release leases cleanly (%s); they expire in %ss", db.describe(e), self.settings.lease_ttl_s)
        await self.clients.aclose()
        if self.owns_engine:
            await self.engine.dispose()
        log.info("worker pool %s stopped", self.owner)

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.stop()

    # -- loops
    async def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self.active)
            claimed = 0
            if free > 0:
                try:
                    t0 = time.perf_counter()
                    async with self.engine.begin() as conn:
                        claims = await co.claim_due(conn, self.owner, min(free, 50), self.settings.lease_ttl_s)
                    self.stats.claim_seconds += time.perf_counter() - t0
                    self.stats.claims += len(claims)
                    for c in claims:
                        self._spawn(c)
                    claimed = len(claims)
                except Exception as e:
                    log.warning("claim failed: %s", db.describe(e))
            if claimed and claimed == min(free, 50) and len(self.active) < self.concurrency:
                continue  # more may be due right now
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except asyncio.TimeoutError:
                pass

    def _spawn(self, claim: co.Claim) -> None:
        task = asyncio.create_task(self._run(claim), name=f"run-{claim.run_id}")
        self.active[claim.run_id] = (task, None)  # type: ignore[assignment]

    async def _run(self, claim: co.Claim) -> None:
        ctx = Run(self.settings, self.engine, claim, self.owner)
        self.active[claim.run_id] = (asyncio.current_task(), ctx)  # type: ignore[assignment]
        status = "failed"
        t0 = time.monotonic()
        try:
            if claim.abandoned_run:
                ctx.event("rescue", f"took over from abandoned run {claim.abandoned_run}; resuming from its checkpoint",
                          "warning")
            status = await ctx.execute(self.clients)
            if status == "reauth_needed":
                self.clients.forget(claim.account_id)
        except Exception:
            log.exception("run %s crashed", claim.run_id)
        finally:
            self.active.pop(claim.run_id, None)
            key = (claim.account, claim.stream)
            self.stats.runs[status] = self.stats.runs.get(status, 0) + 1
            self.stats.durations.observe(claim.stream, time.monotonic() - t0)
            self.stats.records[key] = self.stats.records.get(key, 0) + ctx.totals.inserted + ctx.totals.updated
            if status in ("failed", "reauth_needed"):
                self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
            self._wake.set()

    async def _listen(self) -> None:
        conninfo = dict(db.psycopg_conninfo(self.url), application_name=LISTEN_APP)
        async for _ in events.listen(conninfo, (co.CONTROL_CHANNEL,), timeout=POLL_S):
            if self._stopping.is_set():
                return
            self._wake.set()
            # pass stop requests of running pairs on without waiting for the next heartbeat
            if self.active:
                try:
                    async with self.engine.begin() as conn:
                        held = await co.heartbeat(conn, self.owner, list(self.active), self.settings.lease_ttl_s)
                    for run_id, (_, ctx) in list(self.active.items()):
                        if ctx is not None and held.get(run_id):
                            ctx.stop_requested = True
                except Exception:
                    pass

    async def _housekeeping(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self.engine.begin() as conn:
                    await co.worker_heartbeat(conn, self.owner)
                    rescued = await co.rescue_expired(conn)
                if rescued:
                    log.warning("rescued %d run(s) whose worker stopped heartbeating: %s", len(rescued), rescued)
                    self._wake.set()
            except Exception as e:
                log.warning("housekeeping failed: %s", db.describe(e))
            self._maybe_prune()
            await asyncio.sleep(RESCUE_EVERY_S)

    def _maybe_prune(self) -> None:
        """Retention in its own task (a long prune never delays rescues); one process at a time prunes
        (retention's advisory lock), the others skip."""
        if self._prune_task is not None and not self._prune_task.done():
            return
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        self._prune_task = asyncio.create_task(self._prune(), name="baysync-retention")

    async def _prune(self) -> None:
        try:
            r = await retention.prune(self.engine, self.settings)
            if r.total:
                log.info("retention: deleted %s", r.summary())
        except Exception as e:
            log.warning("retention prune failed: %s", db.describe(e))


def worker_engine(settings: Settings, url: str | None = None):
    """The engine of a worker process. Its pool is the process's whole connection budget: at most
    ``db_pool_size + db_max_overflow`` connections, whatever the number of slots. Runs hold a
    connection only while they write (claims, heartbeats, housekeeping, token saves and /metrics use
    the same pool); a run that finds every connection busy waits for one (``db_pool_timeout_s`` per
    attempt, and page writes retry). The LISTEN connection (:meth:`WorkerPool._listen`) is the one
    connection outside the pool."""
    return db.make_async_engine(settings, "worker", url)


def console_pool_factory(settings: Settings):
    """What the console calls to run workers in its own process (its own engine, made on its loop)."""
    def make() -> WorkerPool:
        return WorkerPool(settings, worker_engine(settings), kind="console", owns_engine=True)
    return make


class _NoClient:
    """Stands in for a client when an account has no usable tokens: the run fails with the reason."""

    def __init__(self, reason: str):
        self.reason = reason

    def __getattr__(self, name: str):
        from .ebay.errors import EbayAuthError

        raise EbayAuthError(None, None, None, self.reason)
