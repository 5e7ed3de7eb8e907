"""sync_core/gcpause.py: a burst's objects are kept out of the collector's generations (frozen), cyclic
garbage frozen with them is freed by the next release, and the collector is left as it was found."""

import gc
import weakref

import pytest

from sync_core import gcpause
from sync_core.gcpause import paused


@pytest.fixture(autouse=True)
def _unfrozen():
    yield
    gc.unfreeze()  # leave the test process as the other tests expect it
    gc.collect()


def test_paused_restores_the_collector_state():
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with paused():
            raise ValueError("a malformed page")
    assert gc.isenabled()
    gc.disable()  # an application that runs without the collector keeps it off, and nothing is frozen
    try:
        before = gc.get_freeze_count()
        with paused():
            page = [{"orderId": str(i), "lineItems": [{"sku": "x"}]} for i in range(100)]
        assert not gc.isenabled()
        assert gc.get_freeze_count() == before
        del page
    finally:
        gc.enable()


def _in_generations(obj) -> bool:
    return any(o is obj for gen in range(3) for o in gc.get_objects(generation=gen))


def test_a_burst_is_frozen_and_still_freed_by_reference_counting():
    with paused():
        page = [{"orderId": str(i), "lineItems": [{"sku": "x"}]} for i in range(2000)]
    # the young collection that follows a burst has nothing of it to walk
    assert gc.get_count()[0] < 100
    assert not _in_generations(page) and not _in_generations(page[0])
    frozen = gc.get_freeze_count()
    assert frozen >= 4000  # the list, 2,000 orders and their line-item lists (atomic-only dicts are untracked)
    del page  # no cycles: reference counting frees it at once, frozen or not
    assert gc.get_freeze_count() <= frozen - 4000


class _Node:
    pass


def test_cyclic_garbage_frozen_at_a_burst_end_is_freed_by_the_next_release(monkeypatch):
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle, alive when the burst ends
    gone = weakref.ref(a)
    monkeypatch.setattr(gcpause, "_last_release", gcpause.time.monotonic())
    with paused():
        pass
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: a full collection does not see it
    monkeypatch.setattr(gcpause, "_last_release", gcpause.time.monotonic() - gcpause.RELEASE_S)
    with paused():  # RELEASE_S later: this burst's end releases
        survivor = [{"still": "alive"}]
    assert gone() is None
    assert not _in_generations(survivor)  # what survived the release is frozen again


def test_a_deferred_release_is_left_to_the_application(monkeypatch):
    """The console releases at its idle moments: with release deferred, a burst's end never collects, and
    release_due says when the application should."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    monkeypatch.setattr(gcpause, "_last_release", gcpause.time.monotonic() - gcpause.RELEASE_S)
    gcpause.defer_release()
    try:
        with paused():
            pass
        del a, b
        with paused():
            pass
        assert gone() is not None  # overdue, but deferred: not collected by the burst
        assert gcpause.release_due() and not gcpause.release_due(after=10 * gcpause.RELEASE_S)
        assert gcpause.release() >= 2 and gone() is None
        assert not gcpause.release_due(after=0)  # nothing frozen since
    finally:
        gcpause.defer_release(False)


def test_garbage_made_between_bursts_is_not_frozen():
    """Cycles that became garbage before a burst are collected when it starts, not frozen with it (the
    machinery between two pages makes some: without this, worker processes held them until a release)."""
    with paused():
        pass
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b  # unreachable, not collected yet
    with paused():
        page = [{"orderId": str(i), "lineItems": []} for i in range(100)]
    assert gone() is None
    assert not _in_generations(page)
