"""End to end: the real `baysync console` in tmux at 80x24 against a seeded test database.
(To become `baysync demo` once the demo runs the console.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.console.conftest import sql

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def send(session: str, *keys: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)
    time.sleep(0.15)  # keep an Escape from merging with the next key (alt+key)


def wait_screen(session: str, *needles: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = capture(session)
        if all(n in out for n in needles):
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{needles} not on screen:\n{out}")
        time.sleep(0.1)


def test_console_in_tmux(cli_env, seeded_url, tmp_path):
    baysync = Path(sys.executable).parent / "baysync"
    session = f"bsc-{uuid.uuid4().hex[:8]}"
    env = dict(cli_env, TERM="xterm-256color")
    cmd = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("BAYSYNC_", "PATH",
                                                                                            "HOME", "TERM", "PYTHON")))
    cmd += f" {shlex.quote(str(baysync))} console; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        out = wait_screen(session, "acme", "▶ running", "✗ failed", "⚠ reauth needed")
        assert "baysync" in out.splitlines()[0]
        # logs, then a search filter
        send(session, "l")
        wait_screen(session, "run_started", "showing everything")
        send(session, "/")
        send(session, *list("invalid_grant"))
        send(session, "Enter")
        out = wait_screen(session, "1 lines", "invalid_grant")
        assert "run_started" not in out
        # back to the dashboard; STOP the running stream (3rd row: acme/orders), confirmed
        send(session, "d")
        wait_screen(session, "acme/disputes")
        send(session, "Down")
        send(session, "Down")
        wait_screen(session, "acme/orders ▶ running")
        send(session, "x")
        wait_screen(session, "STOP acme/orders?")
        send(session, "y")
        deadline = time.monotonic() + 10
        while sql(seeded_url, "select cancel_requested from sync_state where account_id = 1 and stream = 'orders'") \
                != [(True,)]:
            assert time.monotonic() < deadline, capture(session)
            time.sleep(0.1)
        wait_screen(session, "■ stopping")
        # help
        send(session, "?")
        out = wait_screen(session, "Keys (esc closes)", "STOP")
        send(session, "Escape")
        time.sleep(0.3)
        send(session, "q")
        deadline = time.monotonic() + 10
        while "Keys (esc closes)" in capture(session) or "acme" in capture(session):
            assert time.monotonic() < deadline, capture(session)
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
