"""The real `baysync` in subprocesses: accounts, sync exit codes, demo --headless, run + SIGTERM."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from sync_core.config import STREAM_NAMES
from tests.support.env import q
from tests.support.simproc import baysync_env, mint, sim_process

NOW = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
SELLERS = [dict(name="alice", orders=600, transactions=800, payouts=10, disputes=6, conversations=8,
                inventory_items=25, days=100)]


def bs(env, *args, input=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True,
                          input=input, timeout=timeout)


@pytest.fixture(scope="module")
def sim_base():
    with sim_process(SELLERS, NOW) as base:
        yield base


def test_accounts_add_list_remove(cli_env, sim_base, db_url):
    env = baysync_env(cli_env, sim_base)
    token = mint(sim_base, "alice")
    r = bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=token + "\n")
    assert r.returncode == 0, r.stderr
    assert token not in r.stdout + r.stderr
    r = bs(env, "accounts", "list", "--json")
    data = json.loads(r.stdout)
    assert data[0]["name"] == "alice" and data[0]["token_state"] == "ok" and data[0]["streams"] == len(STREAM_NAMES)
    assert token not in r.stdout
    ct = q(db_url, "select refresh_token_ct from credentials")[0][0]
    assert token.encode() not in bytes(ct)
    r = bs(env, "accounts", "add", "bad name!")
    assert r.returncode == 2 and "account name" in r.stderr
    r = bs(env, "accounts", "remove", "alice")  # no tty, no --yes
    assert r.returncode == 2 and "--yes" in r.stderr
    r = bs(env, "accounts", "remove", "alice", "--yes")
    assert r.returncode == 0 and q(db_url, "select count(*) from accounts")[0][0] == 0


def test_sync_one_pair_and_exit_codes(cli_env, sim_base, db_url, empty_db_url):
    env = baysync_env(cli_env, sim_base)
    assert bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(sim_base, "alice")).returncode == 0
    r = bs(env, "sync", "--account", "alice", "--stream", "orders")
    assert r.returncode == 0, r.stderr
    assert "run succeeded" in r.stdout
    n = q(db_url, "select count(*) from orders")[0][0]
    assert n > 0
    # held by someone else -> 4
    with sa.create_engine(db_url).begin() as c:
        c.execute(sa.text("update sync_state set lease_owner = 'otherhost:1:headless:x', "
                          "lease_expires_at = now() + interval '5 minutes', run_id = 999 where stream = 'orders'"))
    r = bs(env, "sync", "--account", "alice", "--stream", "orders")
    assert r.returncode == 4 and "already running (owner otherhost:1:headless:x)" in r.stderr
    # bad input -> 2
    for args in (["sync", "--account", "alice", "--stream", "nope"],
                 ["sync", "--account", "nobody", "--stream", "orders"],
                 ["sync", "--account", "alice", "--stream", "orders", "--since", "yesterday"],
                 ["backfill", "--account", "alice", "--stream", "orders", "--since", "2999-01-01"],
                 ["logs", "--level", "loud"],
                 ["run", "--health", "nowhere"],
                 ["run", "--workers", "0"],
                 ["sim", "--host", "0.0.0.0"]):
        r = bs(env, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    # schema behind -> 3, nothing written
    env3 = dict(env, BAYSYNC_DATABASE_URL=empty_db_url)
    r = bs(env3, "sync", "--account", "alice", "--stream", "orders")
    assert r.returncode == 3 and "run baysync migrate" in r.stderr
    assert q(empty_db_url, "select to_regclass('accounts')")[0][0] is None


def test_logs_show_run_events(cli_env, sim_base):
    env = baysync_env(cli_env, sim_base)
    bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(sim_base, "alice"))
    assert bs(env, "sync", "--account", "alice", "--stream", "payouts").returncode == 0
    r = bs(env, "logs", "--account", "alice", "--stream", "payouts")
    assert r.returncode == 0 and "run_end" in r.stdout and "run succeeded" in r.stdout


def test_logs_follow_shows_a_retry_wait_while_the_run_waits(cli_env, sim_base, db_url):
    """eBay answers 429 with Retry-After: 20: the real `baysync logs --follow` shows the 429 and the retry
    wait while the run is still waiting (no page written, no second attempt made), seconds after they
    happened, not when the next page is written."""
    env = baysync_env(cli_env, sim_base)
    assert bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(sim_base, "alice")).returncode == 0
    jenv = dict(env, BAYSYNC_LOG_FORMAT="json")
    lines: queue.Queue = queue.Queue()
    follow = subprocess.Popen([sys.executable, "-m", "console.cli", "logs", "--follow", "--limit", "0"], env=jenv,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: [lines.put(json.loads(x)) for x in follow.stdout if x.startswith("{")],
                     daemon=True).start()
    sync = None

    def wait_line(pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = lines.get(timeout=0.5)
            except queue.Empty:
                assert follow.poll() is None, follow.stderr.read()[-2000:]
                continue
            if pred(e):
                return e
        raise AssertionError("line not seen")

    try:
        # the follower is live once it prints an event inserted after it started
        deadline = time.monotonic() + 60
        while True:
            with sa.create_engine(db_url).begin() as c:
                c.execute(sa.text("insert into run_events (kind, message) values ('marker', 'follow test')"))
            try:
                wait_line(lambda e: e["kind"] == "marker", timeout=2)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "logs --follow never showed the marker"
        httpx.post(sim_base + "/sim/faults", json={"rate_429": 1.0, "retry_after_s": 20,
                                                   "only_paths": ["/sell/finances"]}, timeout=10).raise_for_status()
        sync = subprocess.Popen([sys.executable, "-m", "console.cli", "sync", "--account", "alice", "--stream",
                                 "payouts"], env=dict(env, BAYSYNC_API_RETRY_ATTEMPTS="2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        http429 = wait_line(lambda e: e["kind"] == "http" and "-> 429" in e["message"])
        retry = wait_line(lambda e: e["kind"] == "retry")
        assert "Retry-After 20s" in retry["message"] and "attempt 2/2" in retry["message"]
        assert retry["run_id"] == http429["run_id"] and retry["id"] > http429["id"]
        # seen while the run still waits: no page written, no second attempt, the process still running
        age, pages, calls = q(db_url, f"""select extract(epoch from now() - ts),
            (select count(*) from run_events where run_id = {retry['run_id']} and kind = 'page'),
            (select count(*) from run_events where run_id = {retry['run_id']} and kind = 'http'
             and data->>'path' like '/sell/finances%') from run_events where id = {retry['id']}""")[0]
        assert sync.poll() is None and pages == 0 and calls == 1
        assert age < 15  # well inside the 20 s wait (a loaded machine may be slow to print)
    finally:
        httpx.post(sim_base + "/sim/faults", json={"reset": True}, timeout=10)
        for p in (sync, follow):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


def test_run_sigterm_exits_cleanly_and_releases_leases(cli_env, sim_base, db_url):
    env = baysync_env(cli_env, sim_base)
    bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(sim_base, "alice"))
    from tests.support.simproc import free_port

    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", "8", "--log-format", "json",
                          "--health", f"127.0.0.1:{port}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if q(db_url, "select count(*) from sync_runs where status = 'succeeded'")[0][0] > 0:
                break
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz", timeout=5).json()["ok"] is True
        assert httpx.get(base + "/healthz/db", timeout=5).json()["ok"] is True
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert "baysync_runs_total" in metrics and 'baysync_lag_seconds{account="alice"' in metrics
        assert "baysync_api_calls_total" in metrics
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=35)
        assert p.returncode == 0, err[-2000:]
        assert time.monotonic() - t0 < 30
    finally:
        if p.poll() is None:
            p.kill()
    assert q(db_url, "select count(*) from sync_state where lease_owner is not null")[0][0] == 0
    assert q(db_url, "select count(*) from sync_runs where status = 'running'")[0][0] == 0
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines and all("level" in x and "msg" in x for x in lines)
    assert q(db_url, "select count(*) from workers")[0][0] == 0


def _demo(env, *args, timeout=180):
    raw = subprocess.run([sys.executable, "-m", "console.cli", "demo", "--headless", *args], env=env,
                         capture_output=True, timeout=timeout)  # bytes: text mode would turn a \r into \n
    return subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())


def test_demo_headless(cli_env, db_url, migrated_demo_db_url):
    """The demo syncs its three sellers in a database of its own (<db>_demo), emptied at the start (what an
    earlier run left is gone); the operator's database keeps its accounts and gets none of the demo's."""
    import re

    demo_url = migrated_demo_db_url
    # an operator account in the operator's database; leftovers of an earlier demo run in the demo's
    assert bs(cli_env, "accounts", "add", "shop-1", "--refresh-token-stdin", input="tok-shop-1\n").returncode == 0
    eng = sa.create_engine(demo_url)
    with eng.begin() as c:
        c.execute(sa.text("insert into accounts (name) values ('demo-medium'), ('old-demo-seller')"))
        c.execute(sa.text("insert into run_events (kind, message) values ('note', 'left by an earlier run')"))
    eng.dispose()
    # orders only, until each demo seller's first run has finished (a fixed number of seconds is not enough
    # for all three on a loaded machine); --seconds is only the cap
    env = dict(cli_env, **{f"BAYSYNC_STREAMS_{s.upper()}_ENABLED": "false" for s in STREAM_NAMES if s != "orders"})
    r = _demo(env, "--until-synced", "--seconds", "150")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[demo]" in r.stdout
    assert "\r" not in r.stdout + r.stderr  # piped: whole progress lines, no terminal fragments
    progress = [line for line in r.stdout.split("\n") if "[demo]" in line]
    assert all(re.fullmatch(r"\[demo\] \d+ records stored, \d+ stream\(s\) running: .*", line) for line in progress)
    assert q(demo_url, "select count(*) from orders")[0][0] > 0
    assert q(demo_url, "select count(distinct account_id) from orders")[0][0] == 3
    runs = q(demo_url, "select account_id, status, error from sync_runs where stream = 'orders' order by id")
    assert sum(r.status == "succeeded" for r in runs) >= 3, (runs, r.stdout[-3000:])
    assert q(demo_url, "select count(*) from sync_runs where stream <> 'orders'")[0][0] == 0
    # started cleanly: exactly the three demo sellers, numbered afresh, the earlier run's event gone
    assert sorted(q(demo_url, "select id, name from accounts")) == [(1, "demo-small"), (2, "demo-medium"),
                                                                    (3, "demo-large")]
    assert q(demo_url, "select count(*) from run_events where message = 'left by an earlier run'")[0][0] == 0
    # the operator's database: its own account only, no demo data
    assert q(db_url, "select name from accounts") == [("shop-1",)]
    assert q(db_url, "select count(*) from orders")[0][0] == 0
    assert q(db_url, "select count(*) from sync_runs")[0][0] == 0


def test_demo_refusals_bad_speed_busy_or_no_createdb(cli_env, db_url, demo_db_url):
    for bad in ("-3", "fast"):  # (0 and nan: the same check)
        r = _demo(cli_env, "--speed", bad, "--seconds", "1")
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "--speed" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert not q(db_url, "select 1 from pg_database where datname = current_database() || '_demo'")
    # another demo holds the demo database: refused, one line, nothing emptied
    r = _demo(cli_env, "--seconds", "1")  # creates and migrates it
    assert r.returncode == 0, r.stderr[-2000:]
    eng = sa.create_engine(demo_db_url)
    try:
        with eng.connect():
            r = _demo(cli_env, "--seconds", "1")
    finally:
        eng.dispose()
    assert r.returncode == 1 and "another baysync demo is using" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert q(demo_db_url, "select count(*) from accounts")[0][0] == 3
    # a user who may not create databases: refused, one line saying what to do, no password shown
    import uuid

    from sqlalchemy.engine import make_url

    role = f"nocreate_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"create role {role} login nocreatedb password 'pw-{role}'"))
    try:
        other = make_url(db_url).database + "_x"  # (db_url's own _demo twin exists by now)
        url = make_url(db_url).set(username=role, password=f"pw-{role}", database=other)
        env = dict(cli_env, BAYSYNC_DATABASE_URL=url.render_as_string(hide_password=False))
        with eng.connect() as c:
            c.execute(sa.text(f'create database "{other}"'))
        r = _demo(env, "--seconds", "1")
        assert r.returncode == 1 and "may not create" in r.stderr and "CREATEDB" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and f"pw-{role}" not in r.stdout + r.stderr
        with eng.connect() as c:
            assert not c.execute(sa.text("select 1 from pg_database where datname = :n"),
                                 {"n": other + "_demo"}).first()
            c.execute(sa.text(f'drop database "{other}" with (force)'))
    finally:
        with eng.connect() as c:
            c.execute(sa.text(f"drop role if exists {role}"))
        eng.dispose()


def test_status_json_and_doctor_after_sync(cli_env, sim_base):
    env = baysync_env(cli_env, sim_base)
    bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=mint(sim_base, "alice"))
    assert bs(env, "sync", "--account", "alice", "--stream", "orders").returncode == 0
    data = json.loads(bs(env, "status", "--json").stdout)
    acc = data["accounts"][0]
    assert acc["name"] == "alice" and acc["reauth_needed"] is False
    orders = next(s for s in acc["streams"] if s["stream"] == "orders")
    assert orders["records"] > 0 and orders["cursor"] and orders["last_run"]["status"] == "succeeded"
    assert orders["lag_s"] is not None and orders["last_run"]["api_calls"] >= 1
    r = bs(env, "doctor")
    assert r.returncode == 0, r.stdout
    assert "OK    ebay" in r.stdout and "OK    tokens" in r.stdout


def test_accounts_connect_over_ssh_style_paste(cli_env, sim_base, db_url):
    """Consent URL printed; the user opens it elsewhere and pastes the redirected URL back."""
    env = baysync_env(cli_env, sim_base)
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "accounts", "connect", "alice"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    for line in p.stdout:
        if line.startswith("http"):
            url = line.strip()
            break
    assert url and "state=" in url and "response_type=code" in url and "scope=" in url
    r = httpx.get(url + "&sim_user=alice", follow_redirects=False, timeout=10)
    assert r.status_code in (302, 303, 307)
    redirected = r.headers["location"]
    out, err = p.communicate(redirected + "\n", timeout=60)
    assert p.returncode == 0, err
    assert "connected" in out
    code = redirected.split("code=")[1].split("&")[0]
    assert code not in out + err
    rows = q(db_url, "select c.refresh_token_ct is not null, a.status from credentials c join accounts a on a.id = c.account_id")
    assert rows == [(True, "active")]
    audit = q(db_url, "select data->>'action', data->>'origin', data::text || message from run_events where kind = 'audit'")
    assert [a[:2] for a in audit] == [("account_connect", "cli")] and code not in audit[0][2]
    # a pasted URL with the wrong state is refused with one line
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "accounts", "connect", "alice"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate("https://example.invalid/accept?code=abc&state=forged\n", timeout=60)
    assert p.returncode == 2 and "state" in err.lower() and len(err.strip().splitlines()) == 1
    # a code eBay refuses (invalid_grant) fails the token exchange: one line, exit 1, nothing stored
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "accounts", "connect", "alice"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = next(line.strip() for line in p.stdout if line.startswith("http"))
    state = parse_qs(urlsplit(url).query)["state"][0]
    out, err = p.communicate(f"https://example.invalid/accept?code=c0debogus&state={state}\n", timeout=60)
    assert p.returncode == 1 and "token exchange failed" in err and len(err.strip().splitlines()) == 1, err
    assert "c0debogus" not in out + err
    assert [a[:2] for a in q(db_url, "select data->>'action', data->>'origin' from run_events where kind = 'audit'")] == [
        ("account_connect", "cli")]


def test_keys_rotate_reencrypts_and_sync_still_works(cli_env, sim_base, db_url):
    env = baysync_env(cli_env, sim_base)
    token = mint(sim_base, "alice")
    assert bs(env, "accounts", "add", "alice", "--refresh-token-stdin", input=token).returncode == 0
    key_file = os.path.join(env["BAYSYNC_HOME"], "secret.key")
    old_key = open(key_file).read()
    old_ct = bytes(q(db_url, "select refresh_token_ct from credentials")[0][0])
    r = bs(env, "keys", "rotate")
    assert r.returncode == 0 and "re-encrypted tokens of 1 account" in r.stdout, r.stderr
    assert open(key_file).read() != old_key and oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    rotated = bytes(q(db_url, "select refresh_token_ct from credentials")[0][0])
    assert rotated != old_ct
    assert bs(env, "sync", "--account", "alice", "--stream", "payouts").returncode == 0
    # a wrong key is a clear error and overwrites nothing
    bad = dict(env, BAYSYNC_SECRET_KEY="x" * 44)
    r = bs(bad, "keys", "rotate")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert bytes(q(db_url, "select refresh_token_ct from credentials")[0][0]) == rotated


def test_remove_keeps_data_unless_purge(cli_env, sim_base, db_url):
    env = baysync_env(cli_env, sim_base)
    for name in ("alice", "alice2"):
        bs(env, "accounts", "add", name, "--refresh-token-stdin", input=mint(sim_base, "alice"))
        assert bs(env, "sync", "--account", name, "--stream", "payouts").returncode == 0
    n = q(db_url, "select count(*) from payouts")[0][0]
    assert n > 0 and n % 2 == 0
    assert bs(env, "accounts", "remove", "alice", "--yes").returncode == 0
    assert q(db_url, "select count(*) from payouts")[0][0] == n  # kept
    assert bs(env, "accounts", "remove", "alice2", "--purge", "--yes").returncode == 0
    assert q(db_url, "select count(*) from payouts")[0][0] == n // 2  # only alice2's rows went
    assert q(db_url, "select count(*) from credentials")[0][0] == 0
