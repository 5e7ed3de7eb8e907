"""eBay call budgets shared by every worker process, in PostgreSQL (table ``rate_budgets``).

eBay's quotas are per application (and some per user), whatever the number of hosts: N processes each
with its own in-memory :class:`~sync_core.ebay.ratelimit.RateBudget` would spend N times the quota.  Here
every bucket is one row ``(account, api)`` -- ``account = '(application)'`` for the application-wide
quota -- and every API call takes one call from both of its rows in **one statement** (rows locked in
key order, re-checked after the lock, both decremented or neither): the total taken across hosts never
exceeds ``call_limit - reserve``.  One round trip per eBay call (not a lease of K calls): a lease would
strand up to K calls per process at a window's end and make a small quota unusable by N hosts, while the
statement costs well under a millisecond against eBay's hundreds (docs/scaling.md).

* A row is created on first use from the published defaults (:data:`DEFAULT_DAILY_LIMITS`).
* Windows roll in the statement itself: a row whose ``reset_at`` has passed starts again at its limit.
* getRateLimits / getUserRateLimits correct it (:meth:`SharedRateBudget.update_from_rate_limits`): the
  reported limit always wins; the reported remaining replaces a guessed (``default``) row or a new
  window, otherwise the lower of ours and eBay's is kept (calls in flight are not yet in eBay's count).
* A 429 blocks the account's row: until Retry-After when eBay sent one, otherwise for a back-off that
  starts at :data:`BACKOFF_START_S` and doubles (up to :data:`BACKOFF_MAX_S`) while 429s keep coming.
* When a row cannot give a call, ``acquire`` emits the usual ``rate_wait`` event and sleeps -- at most
  ``poll_s`` at a time, so a correction made by another host is seen.

Times are the database's ``now()``: one clock for every host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .ebay.ratelimit import (
    APP,
    BACKOFF_MAX_S,
    BACKOFF_START_S,
    DAY_S,
    daily_limits,
    FALLBACK_DAILY_LIMIT,
    BudgetWaitInterrupted,
    RateBudgetExhausted,
    normalize_api,
    parse_reset,
    tightest_rates,
)

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("baysync.budgets")

POLL_S = 30.0  # a waiting call looks at its rows again at least this often

_ENSURE = """
insert into rate_budgets (account, api, call_limit, remaining, window_s, reset_at, source)
values (:account, :api, :limit, :limit, :window, now() + make_interval(secs => :window), 'default')
on conflict (account, api) do nothing
"""

# Both rows (or the one, for the application's own calls) or nothing.  FOR UPDATE re-checks the
# conditions on the latest row version after waiting for a lock, so two hosts never both take the last call.
_ELIGIBLE = """(blocked_until is null or blocked_until <= now())
  and (case when reset_at <= now() then call_limit else remaining end) > floor(call_limit * cast(:reserve as float8))"""
_TAKE = f"""
with cand as (
    select account from rate_budgets
    where api = :api and account in (:app, :account) and {_ELIGIBLE}
    order by account
    for update
), n as (select count(*) as n from cand)
update rate_budgets r set
    remaining = (case when r.reset_at <= now() then r.call_limit else r.remaining end) - 1,
    reset_at = case when r.reset_at <= now()
                    then now() + make_interval(secs => r.window_s) else r.reset_at end,
    updated_at = now()
from n
where r.api = :api and r.account in (select account from cand) and n.n = :want
returning r.account, r.call_limit, r.remaining, extract(epoch from r.reset_at - now()) as reset_in, r.source
"""

_STATE = """
select account, call_limit, remaining, source, floor(call_limit * cast(:reserve as float8)) as reserve,
       extract(epoch from reset_at - now()) as reset_in,
       extract(epoch from blocked_until - now()) as blocked_in
from rate_budgets where api = :api and account in (:app, :account)
"""

_UPDATE = """
insert into rate_budgets as b (account, api, call_limit, remaining, window_s, reset_at, source)
values (:account, :api, :limit, :remaining, :window,
        case when cast(:reset as timestamptz) > now() then cast(:reset as timestamptz)
             else now() + make_interval(secs => :window) end, 'getRateLimits')
on conflict (account, api) do update set
    call_limit = excluded.call_limit,
    window_s = excluded.window_s,
    remaining = case
        when b.source = 'default' or b.reset_at <= now()
             or (cast(:reset as timestamptz) > now()
                 and cast(:reset as timestamptz) > b.reset_at + interval '60 seconds')
        then excluded.remaining
        else least(b.remaining, excluded.remaining) end,
    reset_at = case when cast(:reset as timestamptz) > now() then cast(:reset as timestamptz)
                    when b.reset_at > now() then b.reset_at
                    else now() + make_interval(secs => :window) end,
    source = 'getRateLimits',
    updated_at = now()
returning b.account, b.call_limit, b.remaining, extract(epoch from b.reset_at - now()) as reset_in, b.source
"""

# A 429: block until Retry-After, or for a back-off that doubles while 429s keep coming (a 429 within
# the previous block plus its length counts as "still coming").
_THROTTLE = f"""
update rate_budgets set
    backoff_s = case when cast(:retry_after as float8) is not null then backoff_s
                     when blocked_until is not null and backoff_s is not null
                          and blocked_until + make_interval(secs => backoff_s) > now()
                     then least(backoff_s * 2, {BACKOFF_MAX_S})
                     else {BACKOFF_START_S} end,
    updated_at = now()
where account = :account and api = :api
returning backoff_s
"""
_BLOCK = """
update rate_budgets set blocked_until = greatest(coalesce(blocked_until, now()), now() + make_interval(secs => :s))
where account = :account and api = :api
"""


class SharedRateBudget:
    """The :class:`~sync_core.ebay.ratelimit.RateBudget` interface (``acquire``, ``note_throttled``,
    ``update_from_rate_limits``, ``snapshot``) on the shared ``rate_budgets`` rows.  See the module doc."""

    def __init__(self, engine: AsyncEngine, limits: Mapping[str, int] | None = None, *, settings: Settings | None = None,
                 window_s: float = DAY_S, reserve_fraction: float = 0.01, max_wait_s: float | None = None,
                 poll_s: float = POLL_S):
        self.engine, self.settings = engine, settings
        self.limits = daily_limits(limits)
        self.window_s = int(window_s)
        self.reserve_fraction = float(reserve_fraction)
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self._ensured: set[tuple[str, str]] = set()
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}  # last row state seen by this process
        self._stopping = asyncio.Event()

    def interrupt(self) -> None:
        """The process is stopping: every waiting (and later) ``acquire`` raises BudgetWaitInterrupted."""
        self._stopping.set()

    def _note(self, rows: Any, api: str) -> None:
        now = time.time()
        for r in rows:
            self._seen[(r.account, api)] = {"limit": r.call_limit, "remaining": r.remaining,
                                                  "reset_at": now + float(r.reset_in or 0), "source": r.source}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The rows as this process last saw them: {"account/api": {limit, remaining, reset_in_s, source}}."""
        now = time.time()
        return {f"{a}/{api}": {"limit": v["limit"], "remaining": v["remaining"],
                               "reset_in_s": max(0.0, v["reset_at"] - now), "source": v["source"]}
                for (a, api), v in self._seen.items()}

    async def _db(self, what: str, fn):
        """One unit of work; retried on a lost connection like the runs' own writes (a take whose commit
        was lost in flight may count one call twice: the safe side)."""
        if self.settings is None:
            return await fn()
        from . import db

        return await db.run_retrying(self.settings, what, fn)

    async def _ensure(self, conn, accounts: tuple[str, ...], api: str) -> None:
        """Rows are created on first use (this process remembers which it has seen)."""
        for a in accounts:
            if (a, api) not in self._ensured:
                await conn.execute(sa.text(_ENSURE), dict(account=a, api=api, window=self.window_s,
                                                          limit=self.limits.get(api, FALLBACK_DAILY_LIMIT)))

    async def try_take(self, account: str, api: str) -> tuple[float, list[Any]]:
        """Take one call from the application's and ``account``'s rows: ``(0.0, [])`` when taken, else the
        seconds until the blocking row resets or unblocks and the rows' state (nothing taken)."""
        api = normalize_api(api)
        keys = tuple(dict.fromkeys((APP, account)))
        p = dict(api=api, app=APP, account=account, reserve=self.reserve_fraction, want=len(keys))

        async def take_or_state(conn):
            rows = (await conn.execute(sa.text(_TAKE), p)).all()
            if len(rows) == len(keys):
                return rows, True
            return (await conn.execute(sa.text(_STATE), p)).all(), False

        async def take():
            if all((a, api) in self._ensured for a in keys):
                # The take is one statement, atomic on its own: run in autocommit it needs one round trip
                # instead of three (BEGIN, statement, COMMIT): a quarter less CPU per take on both sides,
                # a third less latency (docs/performance.md)
                async with self.engine.connect() as conn:
                    return await take_or_state(await conn.execution_options(isolation_level="AUTOCOMMIT"))
            async with self.engine.begin() as conn:  # the rows' first use by this process: create them first
                await self._ensure(conn, keys, api)
                return await take_or_state(conn)

        rows, taken = await self._db("take call budget", take)
        self._ensured.update((a, api) for a in keys)
        self._note(rows, api)
        if taken:
            return 0.0, []
        state = rows
        self._ensured.difference_update((a, api) for a in set(keys) - {s.account for s in state})
        waits = [max(float(s.blocked_in or 0), 0.0 if s.remaining > s.reserve else float(s.reset_in or 0))
                 for s in state]
        return max([w for w in waits if w > 0] or [0.001]), state

    async def acquire(self, account: str, api: str, *, on_event: Callable[[dict], None] | None = None) -> None:
        """Take one call (application and account); when either row is exhausted or blocked, wait visibly."""
        announced = None
        while True:
            if self._stopping.is_set():
                raise BudgetWaitInterrupted(None, None, "BUDGET", "the process is stopping",
                                            api=normalize_api(api), account=account)
            wait, rows = await self.try_take(account, api)
            if wait <= 0:
                return
            state = {s.account: s for s in rows}
            blocked = [s for s in state.values() if s.blocked_in and s.blocked_in > 0]
            if blocked:
                reason = (f"{normalize_api(api)}: eBay answered 429; calls for {blocked[0].account} resume in "
                          f"{wait:.0f}s (shared budget)")
            else:
                s = min(state.values(), key=lambda s: s.remaining - s.reserve)
                reason = (f"{normalize_api(api)} call budget nearly used: {s.remaining} of {s.call_limit} left "
                          f"for {s.account} (reserve {int(s.reserve)}, {s.source}, shared by all hosts); "
                          "resumes at reset")
            if self.max_wait_s is not None and wait > self.max_wait_s:
                raise RateBudgetExhausted(None, None, "BUDGET", reason + f" in {wait:.0f}s (> max_wait_s)",
                                          retry_after=wait, api=normalize_api(api), account=account)
            if on_event is not None and announced != reason:
                from .ebay.client import emit_event

                emit_event(on_event, {"type": "rate_wait", "api": normalize_api(api), "account": account,
                                      "seconds": round(wait, 3), "reason": reason})
                announced = reason
            try:
                await asyncio.wait_for(self._stopping.wait(), min(wait, self.poll_s))
            except asyncio.TimeoutError:
                pass

    async def note_throttled(self, account: str, api: str, retry_after: float | None = None) -> None:
        """eBay answered 429: block the account's row for Retry-After, or for the doubling back-off."""
        api = normalize_api(api)
        p = dict(account=account, api=api, retry_after=retry_after)

        async def block():
            async with self.engine.begin() as conn:
                await self._ensure(conn, (account,), api)
                backoff = (await conn.execute(sa.text(_THROTTLE), p)).scalar()
                seconds = float(retry_after) if retry_after is not None else float(backoff or BACKOFF_START_S)
                await conn.execute(sa.text(_BLOCK), dict(account=account, api=api, s=seconds))

        await self._db("note a 429 in the call budget", block)
        self._ensured.add((account, api))

    async def update_from_rate_limits(self, account: str, payload: Mapping[str, Any]) -> int:
        """Apply a getRateLimits (``account=APP``) or getUserRateLimits body; returns the rows updated."""
        rates = tightest_rates(payload)  # sorted by api: two hosts lock rows in the same order

        async def update():
            async with self.engine.begin() as conn:
                out = []
                for api, rate in rates.items():
                    limit = int(rate["limit"])
                    window = int(float(rate.get("timeWindow") or self.window_s))
                    reset = parse_reset(rate.get("reset"))
                    p = dict(account=account, api=api, limit=limit, remaining=int(rate.get("remaining", limit)),
                             window=window, reset=None if reset is None else _ts(reset))
                    out.append((api, (await conn.execute(sa.text(_UPDATE), p)).all()))
                return out

        for api, rows in await self._db("apply rate limits", update):
            self._note(rows, api)
            self._ensured.add((account, api))
        return len(rates)


def _ts(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc)
