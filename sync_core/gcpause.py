"""``paused()``: the cyclic garbage collector held off during a burst of allocations that create no cycles.

Decoding an eBay page (orjson) and mapping its records allocate tens of thousands of dicts, lists and
strings in a few milliseconds. Each 700 allocations start a young collection and, while a run holds
thousands of fetched and mapped records, older collections walk all of them again: measured on a 200-order
page (600 KB), ``orjson.loads`` took 6.9 ms with 3,000 orders alive and 2.9 ms with the collector paused
(docs/performance.md, issue 10). JSON values and the rows mapped from them hold no reference cycles, so
nothing is left for the collector to find that reference counting does not free; the pause ends with
the burst and the collector then runs as usual.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
