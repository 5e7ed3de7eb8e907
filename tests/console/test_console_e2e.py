"""End to end: the real `baysync console` in tmux at 80x24 against a seeded test database.
(To become `baysync demo` once the demo runs the console.)"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.console.conftest import sql
from tests.support.tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def test_console_in_tmux(cli_env, seeded_url, tmp_path):
    baysync = Path(sys.executable).parent / "baysync"
    tm = Tmux(f"{shlex.quote(str(baysync))} console", dict(cli_env, TERM="xterm-256color"))
    wait_screen, send, capture = tm.wait, tm.send, tm.capture
    try:
        out = wait_screen("acme", "▶ running", "✗ failed", "⚠ reauth needed")
        assert "baysync" in out.splitlines()[0]
        # logs, then a search filter
        send("l")
        wait_screen("run_started", "showing everything")
        send("/")
        send(*list("invalid_grant"))
        send("Enter")
        out = wait_screen("1 lines", "invalid_grant")
        assert "run_started" not in out
        # back to the dashboard; STOP the running stream (3rd row: acme/orders), confirmed
        send("d")
        wait_screen("acme/disputes")
        send("Down")
        send("Down")
        wait_screen("acme/orders ▶ running")
        send("x")
        wait_screen("STOP acme/orders?")
        send("y")
        deadline = time.monotonic() + 10
        while sql(seeded_url, "select cancel_requested from sync_state where account_id = 1 and stream = 'orders'") \
                != [(True,)]:
            assert time.monotonic() < deadline, capture()
            time.sleep(0.1)
        wait_screen("■ stopping")
        # help
        send("?")
        out = wait_screen("Keys (esc closes)", "STOP")
        send("Escape")
        time.sleep(0.3)
        send("q")
        deadline = time.monotonic() + 10
        while "Keys (esc closes)" in capture() or "acme" in capture():
            assert time.monotonic() < deadline, capture()
            time.sleep(0.1)
    finally:
        tm.close()
