"""sync_core/gcpause.py: the collector is paused for a burst and left as it was found."""

import gc

import pytest

from sync_core.gcpause import paused


def test_paused_restores_the_collector_state():
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with paused():
            raise ValueError("a malformed page")
    assert gc.isenabled()
    gc.disable()  # an application that runs without the collector keeps it off
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
