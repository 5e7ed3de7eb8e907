"""Full garbage collections run when nobody is typing (and never more than GC_FORCE apart); the app
restores the collector's settings when it exits; BAYSYNC_CONSOLE_TUNING=off changes nothing."""

from __future__ import annotations

import gc
import platform
import sys
import time
from types import SimpleNamespace

from console import tuning
from console.app import BaysyncApp, make_app
from console.widgets.log_view import make_entry
from tests.console.conftest import app_kwargs, wait_until


def middle_collections(n: int) -> None:
    for _ in range(n):
        gc.collect(1)  # each one counts towards the next full collection


def test_full_collection_waits_until_nobody_types(tmp_path):
    app = BaysyncApp(SimpleNamespace(home=tmp_path), feed=False)
    gc.collect()
    assert not app.collect_when_idle()  # nothing due
    middle_collections(app.GC_DUE)
    app.last_input = time.monotonic()  # a key just now
    assert not app.collect_when_idle()
    assert gc.get_count()[2] >= app.GC_DUE  # still due
    app.last_input = time.monotonic() - app.GC_IDLE_S
    assert app.collect_when_idle()
    assert gc.get_count()[2] == 0 and app.full_collections == 1
    middle_collections(app.GC_FORCE)
    app.last_input = time.monotonic()  # typing, but too long without one
    assert app.collect_when_idle()


async def test_console_defers_full_collections_and_restores_the_collector(console_settings):
    before, switch = gc.get_threshold(), sys.getswitchinterval()
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= 1000
        assert sys.getswitchinterval() == min(switch, tuning.SWITCH_INTERVAL_S)
        if platform.python_implementation() == "CPython":
            assert not gc.is_tracked(make_entry({"id": 1, "level": "info", "message": "m"}))
        app.last_input = 0.0
        middle_collections(app.GC_DUE)
        await wait_until(pilot, lambda: app.full_collections >= 1, what="idle full collection")
        await pilot.press("down")
        assert time.monotonic() - app.last_input < 5  # key presses are seen
    assert gc.get_threshold() == before and sys.getswitchinterval() == switch


async def test_tuning_off_changes_nothing(console_settings, monkeypatch):
    monkeypatch.setenv(tuning.ENV, "off")
    gc.collect()
    before, switch, frozen = gc.get_threshold(), sys.getswitchinterval(), gc.get_freeze_count()
    try:
        app = make_app(console_settings, **app_kwargs())
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
            assert not app.tuning.on and not app.tuning.frozen
            assert gc.get_threshold() == before and sys.getswitchinterval() == switch
            assert gc.get_freeze_count() <= frozen  # nothing frozen (frozen objects may have been freed)
            assert gc.is_tracked(make_entry({"id": 1, "level": "info", "message": "m"}))
            assert all(gc.is_tracked(e) for e in app.store.entries)
        assert gc.get_threshold() == before and sys.getswitchinterval() == switch
    finally:
        monkeypatch.delenv(tuning.ENV)
        tuning.configure()  # back to the default (on) for the tests that follow
    assert tuning.enabled_in_env({tuning.ENV: "on"}) and not tuning.enabled_in_env({tuning.ENV: " OFF "})


def test_workers_frozen_pages_are_released_when_nobody_types(tmp_path, monkeypatch):
    """Workers in the console's process (demo, the console's pool) freeze what they decode
    (sync_core/gcpause.py); the console releases it at its idle moments, or once GC_RELEASE_FORCE_S
    overdue while someone types, never at a burst's end."""
    from sync_core import gcpause

    app = BaysyncApp(SimpleNamespace(home=tmp_path), feed=False)
    app.tuning.on, app.tuning.frozen = True, True
    gcpause.defer_release()
    try:
        gc.collect()
        released = []
        monkeypatch.setattr(gcpause, "release", lambda: released.append(1) or 0)
        monkeypatch.setattr(gcpause, "_last_release", time.monotonic() - gcpause.RELEASE_S)
        monkeypatch.setattr(gcpause, "_frozen_since_release", True)
        app.last_input = time.monotonic()  # typing
        assert not app.collect_when_idle() and not released
        app.last_input = time.monotonic() - app.GC_IDLE_S
        assert app.collect_when_idle() and released == [1]
        monkeypatch.setattr(gcpause, "_last_release", time.monotonic() - tuning.GC_RELEASE_FORCE_S)
        app.last_input = time.monotonic()  # typing, but overdue
        assert app.collect_when_idle() and released == [1, 1]
    finally:
        gcpause.defer_release(False)
