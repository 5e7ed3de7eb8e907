"""Call budgets per (account, eBay API), so a sync waits politely instead of hammering eBay into 429s.

eBay quotas are daily call counts per application (some per user), reset once per time window.  The
:class:`RateBudget` keeps one bucket per ``(account, api)``:

* it starts from :data:`DEFAULT_DAILY_LIMITS` (or the ``limits=`` given to the constructor),
* it is decremented by :meth:`RateBudget.acquire`, which :class:`~sync_core.ebay.client.EbayClient` calls
  before every request attempt,
* it is corrected by :meth:`RateBudget.update_from_rate_limits` with the body of eBay's getRateLimits /
  getUserRateLimits (``rateLimits[].resources[].rates[]{limit, remaining, reset, timeWindow}``),
* when ``remaining`` falls to the reserve (``reserve_fraction`` of the limit, default 1%), ``acquire``
  emits ``{"type": "rate_wait", "api", "account", "seconds", "reason"}`` and sleeps until the bucket
  resets.  ``max_wait_s`` (optional) turns a too-long wait into :class:`RateBudgetExhausted` instead.

This in-memory budget is per process (``rate_budget = "process"``); the worker pool normally uses
:class:`sync_core.budgets.SharedRateBudget`, the same interface on rows in PostgreSQL that every host
spends together.  A 429 blocks the bucket until its Retry-After, or for :data:`BACKOFF_START_S` doubling
up to :data:`BACKOFF_MAX_S` while 429s keep coming when eBay sends none.

DEFAULT_DAILY_LIMITS are the per-application daily limits eBay publishes on its "API call limits" page
for the default (non-Growth-Check) tier, as remembered at the time of writing -- they are **UNVERIFIED
here and deliberately overridable**: pass ``RateBudget(limits={"finances": 50_000})`` or, better, call
``EbayClient.get_rate_limits()`` once per run so the live numbers replace them.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

from .errors import EbayRateLimited

DAY_S = 86400.0

# API name -> calls per day.  [UNVERIFIED defaults, override freely; see module docstring]
DEFAULT_DAILY_LIMITS: dict[str, int] = {
    "fulfillment": 100_000,   # Sell Fulfillment (orders + payment disputes)
    "finances": 100_000,      # Sell Finances (transactions, payouts)
    "inventory": 2_000_000,   # Sell Inventory (inventory items, offers)
    "feed": 100_000,          # Sell Feed (inventory tasks, result files)
    "message": 5_000,         # Commerce Message (conversations, messages)
    "analytics": 5_000,       # Developer Analytics (getRateLimits itself)
}
FALLBACK_DAILY_LIMIT = 5_000  # an API not listed above
# A 429 without Retry-After (eBay does not document sending one: docs/ebay-api.md "Errors, retries and 429") blocks its bucket
# this long, doubling (up to BACKOFF_MAX_S) while 429s keep coming.
BACKOFF_START_S = 60
BACKOFF_MAX_S = 3600


@dataclass
class Bucket:
    limit: int
    remaining: int
    window_s: float
    reset_at: float  # epoch seconds
    source: str = "default"  # "default" | "getRateLimits"
    backoff_s: float = 0.0  # the last back-off after a 429 without Retry-After
    throttled_until: float = 0.0

    def reserve(self, fraction: float) -> int:
        return int(math.floor(self.limit * fraction))


class RateBudgetExhausted(EbayRateLimited):
    """The local call budget is exhausted and the reset is further away than ``max_wait_s``."""


class BudgetWaitInterrupted(RateBudgetExhausted):
    """The process is stopping while a call waited for its budget: the run stops like on STOP."""


def normalize_api(name: str) -> str:
    n = (name or "").strip().lower()
    for prefix in ("sell.", "commerce.", "developer.", "buy."):
        if n.startswith(prefix):
            n = n[len(prefix):]
    n = n.split(".")[0]
    aliases = {"developer_analytics": "analytics", "analytics": "analytics", "messaging": "message",
               "finance": "finances"}
    return aliases.get(n, n)


def parse_reset(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def tightest_rates(payload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A getRateLimits / getUserRateLimits body -> {api: rate}; per API, the rate with the lowest
    ``remaining`` over its resources (``rateLimits[].resources[].rates[]``, developer_analytics spec)."""
    out: dict[str, Mapping[str, Any]] = {}
    for entry in payload.get("rateLimits") or []:
        if not isinstance(entry, Mapping):
            continue
        api = normalize_api(str(entry.get("apiName") or ""))
        if not api:
            continue
        for res in entry.get("resources") or []:
            for rate in (res.get("rates") or []) if isinstance(res, Mapping) else []:
                if not isinstance(rate, Mapping) or rate.get("limit") is None:
                    continue
                best = out.get(api)
                if best is None or int(rate.get("remaining", rate["limit"])) < int(best.get("remaining", best["limit"])):
                    out[api] = rate
    return dict(sorted(out.items()))


APP = "(application)"  # the bucket key of application-wide quotas (getRateLimits)


def daily_limits(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """DEFAULT_DAILY_LIMITS with ``overrides`` (API names normalized) applied."""
    limits = dict(DEFAULT_DAILY_LIMITS)
    limits.update({normalize_api(k): int(v) for k, v in (overrides or {}).items()})
    return limits


class RateBudget:
    """See the module docstring.  Safe for many coroutines of one event loop."""

    def __init__(self, limits: Mapping[str, int] | None = None, *, window_s: float = DAY_S,
                 reserve_fraction: float = 0.01, max_wait_s: float | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.limits = daily_limits(limits)
        self.window_s = float(window_s)
        self.reserve_fraction = float(reserve_fraction)
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], Bucket] = {}

    # ------------------------------------------------------------ state

    def bucket(self, account: str, api: str) -> Bucket:
        key = (account, normalize_api(api))
        b = self._buckets.get(key)
        if b is None:
            limit = self.limits.get(key[1], FALLBACK_DAILY_LIMIT)
            b = Bucket(limit, limit, self.window_s, self._clock() + self.window_s)
            self._buckets[key] = b
        return b

    def set_limit(self, account: str, api: str, limit: int, *, remaining: int | None = None,
                  reset_in_s: float | None = None) -> None:
        b = self.bucket(account, api)
        b.limit = int(limit)
        b.remaining = int(limit if remaining is None else remaining)
        if reset_in_s is not None:
            b.reset_at = self._clock() + reset_in_s

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Current buckets (for the console / metrics): {"account/api": {...}}."""
        now = self._clock()
        return {f"{a}/{api}": {"limit": b.limit, "remaining": b.remaining, "reset_in_s": max(0.0, b.reset_at - now),
                               "source": b.source}
                for (a, api), b in self._buckets.items()}

    def _roll(self, b: Bucket, now: float) -> None:
        if now >= b.reset_at:
            periods = max(1, math.ceil((now - b.reset_at) / b.window_s)) if b.window_s > 0 else 1
            b.reset_at += periods * b.window_s if b.window_s > 0 else 0
            if b.reset_at <= now:
                b.reset_at = now + b.window_s
            b.remaining = b.limit

    # ------------------------------------------------------------ use

    async def acquire(self, account: str, api: str, *, on_event: Callable[[dict], None] | None = None) -> None:
        """Take one call from the budget; when near exhaustion, wait (visibly) until the bucket resets.

        eBay's quotas are per application as well as per user: every call is taken from the shared
        application bucket (``APP``, all accounts of this process) and from the account's own."""
        await self._take(APP, api, on_event)
        await self._take(account, api, on_event)

    async def _take(self, account: str, api: str, on_event: Callable[[dict], None] | None) -> None:
        b = self.bucket(account, api)
        while True:
            now = self._clock()
            self._roll(b, now)
            if b.remaining > b.reserve(self.reserve_fraction):
                b.remaining -= 1
                return
            wait = max(0.0, b.reset_at - now)
            reason = (f"{normalize_api(api)} call budget nearly used: {b.remaining} of {b.limit} left "
                      f"(reserve {b.reserve(self.reserve_fraction)}, {b.source}); resumes at reset")
            if self.max_wait_s is not None and wait > self.max_wait_s:
                raise RateBudgetExhausted(None, None, "BUDGET", reason + f" in {wait:.0f}s (> max_wait_s)",
                                          retry_after=wait, api=normalize_api(api), account=account)
            if on_event is not None:
                from .client import emit_event

                emit_event(on_event, {"type": "rate_wait", "api": normalize_api(api), "account": account,
                                      "seconds": round(wait, 3), "reason": reason})
            await self._sleep(wait if wait > 0 else 0.001)

    def note_throttled(self, account: str, api: str, retry_after: float | None = None) -> None:
        """eBay answered 429: treat the bucket as exhausted until Retry-After, or for the back-off
        (:data:`BACKOFF_START_S`, doubling while 429s keep coming) when eBay sent none."""
        b = self.bucket(account, api)
        now = self._clock()
        if retry_after is None:
            again = b.backoff_s and now < b.throttled_until + b.backoff_s
            b.backoff_s = min(b.backoff_s * 2, BACKOFF_MAX_S) if again else BACKOFF_START_S
            retry_after = b.backoff_s
        b.throttled_until = now + retry_after
        b.remaining = min(b.remaining, b.reserve(self.reserve_fraction))
        b.reset_at = min(b.reset_at, now + retry_after) if b.reset_at > now else now + retry_after

    def update_from_rate_limits(self, account: str, payload: Mapping[str, Any]) -> int:
        """Apply a getRateLimits (pass ``account=APP``) or getUserRateLimits body; returns the number of
        buckets updated.

        Per API, the tightest rate (lowest ``remaining``) over its resources wins.
        """
        now = self._clock()
        updated = 0
        for api, best in tightest_rates(payload).items():
            b = self.bucket(account, api)
            b.limit = int(best["limit"])
            b.remaining = int(best.get("remaining", b.limit))
            if best.get("timeWindow"):
                b.window_s = float(best["timeWindow"])
            reset = parse_reset(best.get("reset"))
            b.reset_at = reset if reset is not None and reset > now else now + b.window_s
            b.source = "getRateLimits"
            updated += 1
        return updated
