"""End to end: the real `baysync demo` in tmux at 80x24, driven with the keyboard only: data moves,
logs open and filter, a running stream is STOPped, help opens; no token ever appears on screen."""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from sync_core.crypto import Vault
from tests.support.env import q, test_settings
from tests.support.tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def test_demo_in_tmux_80x24(cli_env, db_url, tmp_path):
    baysync = Path(sys.executable).parent / "baysync"
    # small transaction pages keep demo-large's first transactions backfill running long enough to STOP it
    env = dict(cli_env, TERM="xterm-256color", BAYSYNC_STREAMS_TRANSACTIONS_PAGE_SIZE="10")
    tm = Tmux(f"{shlex.quote(str(baysync))} demo", env, key_pause=0.2)
    wait_screen, send, capture = tm.wait, tm.send, tm.capture
    try:
        out = wait_screen("demo-large", "streams", timeout=90)
        assert len(out.splitlines()) <= 24 and max(len(line) for line in out.splitlines()) <= 80
        # STOP the big transactions backfill while it runs: filter to it, STOP, confirm
        send("/")
        wait_screen("filter: words match")
        send(*list("demo-large transactions"))
        send("Enter")
        wait_screen("demo-large/transactions", "▶ running")
        send("x")
        wait_screen("STOP demo-large/transactions?")
        send("y")
        deadline = time.monotonic() + 30
        while not q(db_url, "select 1 from sync_runs r join accounts a on a.id = r.account_id where a.name = "
                            "'demo-large' and r.stream = 'transactions' and r.status = 'cancelled'"):
            assert time.monotonic() < deadline, capture()
            time.sleep(0.3)
        send("Escape")
        # data visibly moving: records stored for all three demo sellers (a run writes its pages in batches
        # held up to 2 s, so give the last seller's first batch a moment)
        deadline = time.monotonic() + 30
        while q(db_url, "select count(distinct account_id) from orders")[0][0] < 3:
            assert time.monotonic() < deadline, capture()
            time.sleep(0.3)
        # logs, live, then a search
        send("l")
        wait_screen("records")
        send("/")
        time.sleep(0.5)
        send(*list("run succeeded"))
        send("Enter")
        wait_screen("run succeeded")
        send("Escape")
        # help, from the dashboard, lists the bindings
        send("d")
        wait_screen("streams")
        send("?")
        wait_screen("Keys", "STOP")
        send("Escape")
        time.sleep(0.3)
        send("q")
        deadline = time.monotonic() + 40
        while "stopping the demo workers" not in capture():
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        tm.close()
    # no token on any captured screen
    vault = Vault.from_settings(test_settings(Path(cli_env["BAYSYNC_HOME"]), db_url), create=False)
    tokens = [vault.decrypt(bytes(ct)) for row in q(db_url, "select refresh_token_ct, access_token_ct from credentials")
              for ct in row if ct is not None]
    assert len(tokens) >= 3
    screens = "\n".join(tm.screens)
    assert all(t not in screens for t in tokens)
