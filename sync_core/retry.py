"""``first_then_retrying``: a unit of work whose first attempt runs bare, retried by tenacity only after it failed.

Every database unit (a rate-budget take per eBay call, every page write) and every eBay call is retried
with tenacity, and almost all of them succeed on the first try. Building an ``AsyncRetrying`` for each
costs ~17 us and leaves a reference cycle of ~35 objects (the retrying object, its retry state, the
attempt manager) that only the cyclic garbage collector frees: a 30,000-order sync made ~13,000 such
objects, which sync_core/gcpause.py had to collect with full collections. So the first attempt is made
without tenacity; a failure the policy would retry builds the retry loop, which takes that failure as its
attempt 1: the same number of attempts, the same waits and the same ``before_sleep`` calls (log lines,
retry events) as a loop that made every attempt itself.
"""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from tenacity import AsyncRetrying

T = TypeVar("T")


async def first_then_retrying(fn: Callable[[], Awaitable[T]], retryable: Callable[[BaseException], bool],
                              retrying: Callable[[], AsyncRetrying]) -> T:
    """``await fn()``; if it raises an exception ``retryable`` accepts, go on in ``retrying()`` (a tenacity
    loop whose ``retry`` predicate is ``retryable``), counting that failure as its first attempt."""
    try:
        return await fn()
    except Exception as e:
        if not retryable(e):
            raise
        failed: BaseException | None = e
    async for attempt in retrying():
        with attempt:
            if failed is not None:  # attempt 1, made above
                first, failed = failed, None
                raise first
            return await fn()
    raise AssertionError("unreachable: tenacity reraises the last failure")
