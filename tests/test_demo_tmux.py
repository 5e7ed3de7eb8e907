"""End to end: the real `baysync demo` in tmux at 80x24, driven with the keyboard only: data moves,
logs open and filter, a running stream is STOPped, help opens; no token ever appears on screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync_core.crypto import Vault
from tests.support.env import test_settings

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

SCREENS: list[str] = []


def capture(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
    SCREENS.append(out)
    return out


def send(session: str, *keys: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)
    time.sleep(0.2)


def wait_screen(session: str, *needles: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = capture(session)
        if all(n in out for n in needles):
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{needles} not on screen:\n{out}")
        time.sleep(0.2)


def q(url: str, sql: str):
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(sa.text(sql)).all()
    finally:
        eng.dispose()


def test_demo_in_tmux_80x24(cli_env, db_url, tmp_path):
    baysync = Path(sys.executable).parent / "baysync"
    session = f"bsd-{uuid.uuid4().hex[:8]}"
    # small transaction pages keep demo-large's first transactions backfill running long enough to STOP it
    env = dict(cli_env, TERM="xterm-256color", BAYSYNC_STREAMS_TRANSACTIONS_PAGE_SIZE="10")
    cmd = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                            if k.startswith(("BAYSYNC_", "PATH", "HOME", "TERM", "PYTHON")))
    cmd += f" {shlex.quote(str(baysync))} demo; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        out = wait_screen(session, "demo-large", "streams", timeout=90)
        assert len(out.splitlines()) <= 24 and max(len(line) for line in out.splitlines()) <= 80
        # STOP the big transactions backfill while it runs: filter to it, STOP, confirm
        send(session, "/")
        wait_screen(session, "filter: words match")
        send(session, *list("demo-large transactions"))
        send(session, "Enter")
        wait_screen(session, "demo-large/transactions", "▶ running")
        send(session, "x")
        wait_screen(session, "STOP demo-large/transactions?")
        send(session, "y")
        deadline = time.monotonic() + 30
        while not q(db_url, "select 1 from sync_runs r join accounts a on a.id = r.account_id where a.name = "
                            "'demo-large' and r.stream = 'transactions' and r.status = 'cancelled'"):
            assert time.monotonic() < deadline, capture(session)
            time.sleep(0.3)
        send(session, "Escape")
        # data visibly moving: records stored for all three demo sellers
        assert q(db_url, "select count(distinct account_id) from orders")[0][0] == 3
        # logs, live, then a search
        send(session, "l")
        wait_screen(session, "records")
        send(session, "/")
        time.sleep(0.5)
        send(session, *list("run succeeded"))
        send(session, "Enter")
        wait_screen(session, "run succeeded")
        send(session, "Escape")
        # help, from the dashboard, lists the bindings
        send(session, "d")
        wait_screen(session, "streams")
        send(session, "?")
        wait_screen(session, "Keys", "STOP")
        send(session, "Escape")
        time.sleep(0.3)
        send(session, "q")
        deadline = time.monotonic() + 40
        while "stopping the demo workers" not in capture(session):
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    # no token on any captured screen
    vault = Vault.from_settings(test_settings(Path(cli_env["BAYSYNC_HOME"]), db_url), create=False)
    tokens = [vault.decrypt(bytes(ct)) for row in q(db_url, "select refresh_token_ct, access_token_ct from credentials")
              for ct in row if ct is not None]
    assert len(tokens) >= 3
    screens = "\n".join(SCREENS)
    assert all(t not in screens for t in tokens)
