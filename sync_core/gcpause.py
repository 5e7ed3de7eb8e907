"""``paused()``: a burst of allocations that create no cycles, kept out of the cyclic garbage collector.

Decoding an eBay page (orjson) and mapping its records allocate tens of thousands of dicts and lists in
a few milliseconds, and they stay alive for a while: a decoded page waits in its window's queue, mapped
rows wait for the next write (up to ``write_batch_rows``). CPython's generational collector walks every
tracked object that is alive when a collection starts, so each page was walked again and again: by the
young collection right after it was decoded (all 50k objects were young), by middle collections while it
waited, by full ones. Measured in a 30,000-order first sync: 1.1-1.2 s of 6 s of the process's CPU in
the collector (gc.callbacks), ~20% (docs/performance.md, issue 10). Pausing the collector during the burst
alone did not help: the collection it had deferred ran right after it and walked the whole page.

JSON values and the rows mapped from them hold no reference cycles, so reference counting frees them as
soon as they are dropped; the collector would never find anything among them. So when a burst ends,
everything the collector tracks is moved to its permanent generation (``gc.freeze()``, which only splices
lists: constant time) and the collector goes on with an empty young generation. Frozen objects are still
freed by reference counting. *Cyclic* garbage must not be frozen with them: a burst starts with a
collection of the two young generations, which hold only what was allocated since the previous burst
(everything older is frozen), so it is cheap and the cycles made by the machinery between two pages (an
exception and its traceback, say) are freed there. What was alive at a freeze and becomes cyclic garbage
later (a finished task) is left, so at most every ``RELEASE_S`` seconds a burst's end also **releases**:
``gc.unfreeze()``, one full collection (the cyclic garbage of the last interval is freed), then
``gc.freeze()`` again of what survived. That full collection walks everything alive (modules included,
~50-100 ms), once per interval: cyclic garbage lives at most ``RELEASE_S`` seconds longer than without this.
Such garbage is made by objects that live across an ``await`` while a burst freezes them. Most of it
was tenacity's ``AsyncRetrying`` around every database unit and every eBay call (a cycle of ~35 objects
each, ~13,000 objects per 30,000-order sync); their first attempt now runs without it (sync_core/retry.py)
and such a sync leaves ~20 objects of cyclic garbage (gc.collect() after it, releases off).

Process-wide, as the collector is. The console (with workers in its process: ``baysync demo``, the
console's own pool) runs full collections when nobody is typing (console/tuning.py); it calls
:func:`defer_release` and releases at those idle moments itself (:func:`release_due`, :func:`release`),
so a burst's end never makes a keypress wait behind a full collection. A release keeps the console's
shape (what survives is frozen again, as its tuning froze what was alive after its first load). An
application that runs with the collector disabled keeps it disabled and nothing is frozen.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from typing import Iterator

RELEASE_S = 10.0  # the longest cyclic garbage frozen at a burst's end waits for a collection

_last_release = time.monotonic()
_deferred = False  # the application releases at its own quiet moments (the console)
_frozen_since_release = False  # a burst froze something since the last release


def defer_release(on: bool = True) -> None:
    """Bursts stop releasing (``on``): the caller runs :func:`release` itself when :func:`release_due`
    says one is due. ``on=False`` hands it back to the bursts."""
    global _deferred
    _deferred = on


def release_due(after: float = RELEASE_S) -> bool:
    """A burst froze something since the last release, which is at least ``after`` seconds old."""
    return _frozen_since_release and time.monotonic() - _last_release >= after


def release() -> int:
    """Unfreeze, collect everything (what the collector found unreachable is freed: returned), freeze the
    survivors again."""
    global _last_release, _frozen_since_release
    _last_release, _frozen_since_release = time.monotonic(), False
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


@contextmanager
def paused() -> Iterator[None]:
    """Run a burst of cycle-free allocations with the collector off; at its end, freeze what is alive (and
    release every ``RELEASE_S`` seconds). See the module docstring."""
    global _frozen_since_release
    was = gc.isenabled()
    if was:
        # garbage made since the last burst is collected now, before it could be frozen with this burst:
        # the two young generations hold only what was allocated since then (the rest is frozen), so this
        # walks a few thousand objects, not the pages
        gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            _frozen_since_release = True
            if not _deferred and release_due():
                release()
            gc.enable()
