"""Operator-facing behaviour of the real `baysync` in subprocesses: every schema state is one line,
`sync` never leaks its lease (no tokens, wrong key, revoked, SIGINT/SIGTERM), plain progress lines
when the output is not a terminal."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa

from sync_core import migrate
from tests.support.env import q
from tests.support.simproc import baysync_env, mint, sim_process, truth

NOW = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
SELLERS = [dict(name="alice", orders=300, transactions=300, payouts=5, disputes=3, conversations=4,
                inventory_items=10, days=60)]
FUTURE = "0042_from_a_newer_baysync"


def unknown_line(rev: str = FUTURE) -> str:
    return f"database schema at {rev}, which this baysync (head {migrate.head()}) does not know: upgrade baysync"


def start(env, *args):
    return subprocess.Popen([sys.executable, "-m", "console.cli", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bs(env, *args, timeout=120):
    p = start(env, *args)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


@pytest.fixture(scope="module")
def sim_base():
    with sim_process(SELLERS, NOW) as base:
        yield base


# ---------------------------------------------------------------- schema states


def test_unknown_revision_is_one_line_exit_3_everywhere(cli_env, db_url, migrated_demo_db_url):
    # the demo works in its own database (<name>_demo): an unknown revision there stops it the same way
    demo_eng = sa.create_engine(migrated_demo_db_url)
    with demo_eng.begin() as c:
        c.execute(sa.text("update alembic_version set version_num = :v"), {"v": FUTURE})
    demo_eng.dispose()  # an open connection would read as another demo using it
    with sa.create_engine(db_url).begin() as c:
        c.execute(sa.text("insert into accounts (name) values ('alice')"))
        before = c.execute(sa.text("select count(*) from migration_log")).scalar()
        c.execute(sa.text("update alembic_version set version_num = :v"), {"v": FUTURE})
    # one command per code path (stop, resume, run-now, backfill, keys share pause's / logs' gate)
    commands = [["sync", "-a", "alice", "-s", "orders"], ["run", "--workers", "2"], ["status"], ["status", "--json"],
                ["doctor"], ["logs"], ["pause", "-a", "alice"], ["accounts", "list"], ["migrate"], ["console"],
                ["demo", "--headless", "--seconds", "1"]]
    procs = [(args, start(cli_env, *args)) for args in commands]  # concurrently: each is mostly start-up
    for args, p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 3, (args, p.returncode, out, err)
        assert "Traceback" not in out + err, args
        if args == ["doctor"]:
            assert f"FAIL  schema     {unknown_line()}" in out.splitlines(), out
        elif args == ["status", "--json"]:
            import json
            assert json.loads(out)["database"]["schema_error"] == unknown_line()
        else:
            assert err.strip().splitlines() == [f"error: {unknown_line()}"], (args, err)
    with sa.create_engine(db_url).connect() as c:  # migrate (and everyone else) changed nothing
        assert c.execute(sa.text("select version_num from alembic_version")).scalar() == FUTURE
        assert c.execute(sa.text("select count(*) from migration_log")).scalar() == before
        assert c.execute(sa.text("select count(*) from sync_runs")).scalar() == 0
        assert c.execute(sa.text("select count(*) from sync_state where paused or lease_owner is not null")).scalar() == 0


def test_failing_revision_is_one_line_and_rolled_back(cli_env, empty_db_url):
    """0005_disputes creates payment_disputes, then two indexes: an index name taken by another table
    makes its second index fail, after the table was created in the same transaction."""
    eng = sa.create_engine(empty_db_url)
    with eng.begin() as c:
        c.execute(sa.text("create table decoy (x int)"))
        c.execute(sa.text("create index ix_payment_disputes_status on decoy (x)"))
    env = dict(cli_env, BAYSYNC_DATABASE_URL=empty_db_url)
    rc, out, err = bs(env, "migrate")
    assert rc == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: migration 0005_disputes failed: "), err
    assert 'relation "ix_payment_disputes_status" already exists' in lines[0]
    assert "database at 0004_payouts" in lines[0]
    assert "applied  0004_payouts" in out and "applied  0005" not in out
    with eng.connect() as c:
        assert migrate.current_revision(c) == "0004_payouts"
        assert c.execute(sa.text("select to_regclass('payment_disputes')")).scalar() is None  # nothing half-applied
        assert c.execute(sa.text("select to_regclass('ix_payment_disputes_open')")).scalar() is None
        assert [r for (r,) in c.execute(sa.text("select revision from migration_log order by id"))] == [
            "0001_core", "0002_orders", "0003_transactions", "0004_payouts"]
    with eng.begin() as c:  # the operator removes the conflict: the next migrate goes on from 0004
        c.execute(sa.text("drop table decoy"))
    rc, out, err = bs(env, "migrate")
    assert rc == 0 and "applying 0001_core" not in out and f"schema at head ({migrate.head()})" in out, err
    eng.dispose()


def test_embedded_auto_migration_prints_revisions_and_refuses_unknown(embedded_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYSYNC_")}
    env.update(BAYSYNC_HOME=str(embedded_home), PYTHONUNBUFFERED="1")
    rc, out, err = bs(env, "accounts", "list", "--json")
    assert rc == 0 and out.strip() == "[]", err  # stdout stays machine-readable
    applied = [line for line in err.splitlines() if line.startswith("applied  ")]
    assert [line.split()[1] for line in applied] == migrate.pending_revisions(None), err
    rc, out, err = bs(env, "accounts", "list", "--json")
    assert rc == 0 and "appl" not in err, err  # at head: nothing said
    rc, url, err = bs(env, "db", "url")
    assert rc == 0, err
    with sa.create_engine(url.strip()).begin() as c:
        c.execute(sa.text("update alembic_version set version_num = :v"), {"v": FUTURE})
    for args in (["sync", "-a", "alice", "-s", "orders"], ["console"], ["run"]):
        rc, out, err = bs(env, *args)
        assert rc == 3 and err.strip().splitlines() == [f"error: {unknown_line()}"], (args, out, err)
    with sa.create_engine(url.strip()).connect() as c:
        assert c.execute(sa.text("select version_num from alembic_version")).scalar() == FUTURE


# ---------------------------------------------------------------- sync never leaks its lease


def _lease_free(db_url) -> bool:
    return q(db_url, "select count(*) from sync_state where lease_owner is not null")[0][0] == 0


def test_sync_without_usable_tokens_fails_the_run_and_releases_the_lease(cli_env, sim_base, db_url):
    env = baysync_env(cli_env, sim_base)
    assert bs(env, "accounts", "add", "alice")[0] == 0  # never connected
    for attempt in (1, 2):  # the retry claims it again: the lease was released
        rc, out, err = bs(env, "sync", "-a", "alice", "-s", "payouts")
        assert rc == 1 and err.strip().splitlines()[-1] == (
            "error: run failed: eBay: account 'alice' has no tokens: baysync accounts connect alice"), err
        assert "Traceback" not in err and "already running" not in err
        assert _lease_free(db_url)
    assert q(db_url, "select status, error from sync_runs order by id") == [
        ("failed", "eBay: account 'alice' has no tokens: baysync accounts connect alice")] * 2

    # a wrong key: one line, the run failed with the reason, nothing leaked
    assert bs(env, "accounts", "remove", "alice", "--yes")[0] == 0
    p = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", "alice", "--refresh-token-stdin"], env=env,
                       input=mint(sim_base, "alice"), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    bad = dict(env, BAYSYNC_SECRET_KEY="x" * 44)
    rc, out, err = bs(bad, "sync", "-a", "alice", "-s", "payouts")
    assert rc == 1 and err.strip().splitlines()[-1].startswith("error: run failed: "), err
    assert "Traceback" not in err and _lease_free(db_url)
    last = q(db_url, "select status, error from sync_runs order by id desc limit 1")[0]
    assert last[0] == "failed" and last[1] and "key" in last[1].lower()
    rc, out, err = bs(env, "sync", "-a", "alice", "-s", "payouts")  # the right key: the next run works
    assert rc == 0 and "run succeeded" in out, err

    # revoked: the run fails (reauth needed), the lease is released
    httpx.post(f"{sim_base}/sim/sellers/alice/revoke", timeout=10).raise_for_status()
    rc, out, err = bs(env, "sync", "-a", "alice", "-s", "orders", "--full")
    assert rc == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("error: run reauth_needed: eBay refused the refresh token"), err
    assert _lease_free(db_url)
    assert q(db_url, "select status from sync_runs order by id desc limit 1") == [("failed",)]
    rc, out, err = bs(env, "sync", "-a", "alice", "-s", "orders")  # not "already running": parked for reauth
    assert rc == 1 and "needs reauth" in err and "already running" not in err


@pytest.mark.parametrize("sigs", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
                         ids=["SIGINT", "SIGTERM", "SIGINT-twice"])
def test_sync_signal_stops_at_checkpoint_and_next_sync_completes(cli_env, sim_base, db_url, sigs):
    """One signal: the run stops at its next page boundary; a second one: at once (the call in flight is
    abandoned). Either way the run ends cancelled, the lease is free and the next sync stores the rest."""
    sig = sigs[0]
    env = dict(baysync_env(cli_env, sim_base), BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="10", BAYSYNC_WRITE_BATCH_ROWS="1")
    p = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", "alice", "--refresh-token-stdin"], env=env,
                       input=mint(sim_base, "alice"), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    httpx.post(f"{sim_base}/sim/faults", json={"latency_ms": 300.0, "only_paths": ["/sell/fulfillment"]},
               timeout=10).raise_for_status()
    try:
        p = start(env, "sync", "-a", "alice", "-s", "orders")
        try:
            deadline = time.monotonic() + 90
            while q(db_url, "select count(*) from orders")[0][0] == 0:  # a page is written
                assert p.poll() is None and time.monotonic() < deadline, p.communicate()
                time.sleep(0.1)
            for one in sigs:
                p.send_signal(one)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
    finally:
        httpx.post(f"{sim_base}/sim/faults", json={"reset": True}, timeout=10).raise_for_status()
    assert p.returncode == 128 + sig, (p.returncode, err)
    assert f"run cancelled by {signal.Signals(sig).name}" in err and "Traceback" not in err, err
    stored = q(db_url, "select count(*) from orders")[0][0]
    want = len(truth(SELLERS, NOW, "alice", "orders"))
    assert 0 < stored < want
    assert q(db_url, "select status from sync_runs") == [("cancelled",)]
    assert _lease_free(db_url)
    rc, out, err = bs(env, "sync", "-a", "alice", "-s", "orders")  # claims it (not busy) and stores the rest
    assert rc == 0 and "run succeeded" in out, err
    assert q(db_url, "select count(*) from orders")[0][0] == want
    assert q(db_url, "select status from sync_runs order by id") == [("cancelled",), ("succeeded",)]


# ---------------------------------------------------------------- output that is not a terminal


def test_sync_progress_is_whole_lines_when_piped(cli_env, sim_base, db_url):
    env = dict(baysync_env(cli_env, sim_base), BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="10")
    p = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", "alice", "--refresh-token-stdin"], env=env,
                       input=mint(sim_base, "alice"), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "console.cli", "sync", "-a", "alice", "-s", "orders"], env=env,
                       capture_output=True, timeout=180)  # bytes: see every \r
    assert p.returncode == 0, p.stderr
    out, err = p.stdout.decode(), p.stderr.decode()
    assert "\r" not in out + err
    progress = [line for line in err.split("\n") if line.startswith("alice/orders: ")]
    n = q(db_url, "select count(*) from orders")[0][0]
    pages = -(-n // 10)
    assert progress and progress[-1] == f"alice/orders: {progress[-1].split()[1]} pages, +{n} ~0 =0", err
    assert int(progress[-1].split()[1]) >= pages
    assert all(line.startswith("alice/orders: ") and line.count("pages") == 1 for line in progress)
    assert out.strip().splitlines() == ["run succeeded"]
