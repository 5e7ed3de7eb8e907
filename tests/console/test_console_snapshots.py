"""SVG snapshots at 80x24 (an SSH terminal) and 160x48. Deterministic: seeded rows with fixed
timestamps, a frozen clock, a fixed database label, no clocks or spinners on screen.
Update with: pytest tests/console/test_console_snapshots.py --snapshot-update"""

from __future__ import annotations

import pytest

from console.app import make_app
from tests.console.conftest import app_kwargs, wait_until
from tests.support.env import test_settings

SIZES = [(80, 24), (160, 48)]


async def _loaded(pilot):
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="dashboard")
    await pilot.pause()


def _app(settings, **kw):
    return make_app(settings, **app_kwargs(poll_interval=30.0, status_interval=30.0, **kw))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_dashboard(snap_compare, console_settings, size):
    assert snap_compare(_app(console_settings), terminal_size=size, run_before=_loaded)


def test_snapshot_dashboard_monochrome(snap_compare, console_settings, monkeypatch):
    """NO_COLOR at 80x24: every state must still read (symbol + word), with no colour at all."""
    monkeypatch.setenv("NO_COLOR", "1")  # read (and removed) by App.__init__
    app = _app(console_settings)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=_loaded)


def test_snapshot_dashboard_grouped_read_only(snap_compare, console_settings):
    async def before(pilot):
        await _loaded(pilot)
        await pilot.press("g", "down", "down")
        await pilot.pause()
    assert snap_compare(_app(console_settings, read_only=True), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_logs(snap_compare, console_settings, size):
    async def before(pilot):
        await _loaded(pilot)
        await pilot.press("l")
        await wait_until(pilot, lambda: len(pilot.app.screen.view.lines) == 8, what="logs")
        await pilot.pause()
    assert snap_compare(_app(console_settings), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_run_detail(snap_compare, console_settings, size):
    async def before(pilot):
        await _loaded(pilot)
        pilot.app.open_run(1)
        await pilot.pause()
        await wait_until(pilot, lambda: pilot.app.screen.loaded, what="run detail")
        await pilot.pause()
    assert snap_compare(_app(console_settings), terminal_size=size, run_before=before)


def test_snapshot_schema_behind(snap_compare, tmp_path, empty_db_url):
    async def before(pilot):
        await wait_until(pilot, lambda: pilot.app.status.checked, what="schema check")
        await pilot.press("m")
        await wait_until(pilot, lambda: pilot.app.screen.state is not None, what="migrations")
        await pilot.pause()
    assert snap_compare(_app(test_settings(tmp_path, empty_db_url)), terminal_size=(80, 24), run_before=before)


def test_snapshot_help_and_backfill_dialog(snap_compare, console_settings):
    async def before(pilot):
        await _loaded(pilot)
        await pilot.press("b", *"2024-02-30", "enter")
        await pilot.pause()
    assert snap_compare(_app(console_settings), terminal_size=(80, 24), run_before=before)


def test_snapshot_help(snap_compare, console_settings):
    async def before(pilot):
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
    assert snap_compare(_app(console_settings), terminal_size=(80, 24), run_before=before)
