"""End to end: the real `baysync demo` in tmux at 80x24, driven with the keyboard only: data moves,
logs open and filter, a running stream is STOPped, help opens; the demo stays alive (record counts of
streams that had already finished a run keep growing between 30 s and 90 s: accelerated arrivals); no
token ever appears on screen."""

from __future__ import annotations

import re
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

COUNT = re.compile(r"(\d+(?:\.\d)?)([kMG]?)")


def dashboard_counts(screen: str) -> dict[tuple[str, str], tuple[float, bool]]:
    """{(account, stream): (records shown, finished a run and idle now)} of the dashboard rows on screen."""
    out = {}
    for line in screen.splitlines():
        tok = line.split()
        if len(tok) < 4 or not tok[0].startswith("demo-"):
            continue
        nums = [m for t in tok[2:] if (m := COUNT.fullmatch(t))]
        if not nums:
            continue
        value = float(nums[0][1]) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[nums[0][2]]
        i = tok.index("idle") if "idle" in tok else -1
        out[(tok[0], tok[1])] = (value, i > 0 and i + 1 < len(tok) and tok[i + 1] != "-")
    return out


def test_demo_in_tmux_80x24(cli_env, migrated_demo_db_url, tmp_path):
    db_url = migrated_demo_db_url  # the demo's own database
    baysync = Path(sys.executable).parent / "baysync"
    # small transaction pages keep demo-large's first transactions backfill running long enough to STOP it
    env = dict(cli_env, TERM="xterm-256color", BAYSYNC_STREAMS_TRANSACTIONS_PAGE_SIZE="10")
    tm = Tmux(f"{shlex.quote(str(baysync))} demo", env, key_pause=0.2)
    started = time.monotonic()
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
        # the demo stays alive: at 30 s, the streams that have finished a run (idle, with a lag); by 90 s
        # some of them show more records (new orders, payments, disputes, messages keep arriving). At
        # --speed 1 (the seeded pace) this fails: at most one such count moves in a minute.
        while time.monotonic() < started + 30:
            time.sleep(0.5)
        deadline = time.monotonic() + 90
        while True:
            first = capture()
            done = {k: v for k, (v, finished) in dashboard_counts(first).items() if finished}
            if len(done) >= 4:
                break
            assert time.monotonic() < deadline, first
            time.sleep(1)
        while time.monotonic() < started + 90:
            time.sleep(0.5)
        deadline = time.monotonic() + 60  # a loaded machine
        while True:
            later = capture()
            grew = [k for k, (v, _) in dashboard_counts(later).items() if k in done and v > done[k]]
            if len(grew) >= 2:
                break
            assert time.monotonic() < deadline, f"no growth in {sorted(done)}:\n{first}\n{later}"
            time.sleep(1)
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
