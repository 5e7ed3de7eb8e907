"""kill -9 of `baysync run` at random moments during a multi-stream backfill, restarting each time:
the final tables equal the simulator's truth (nothing lost, nothing duplicated) and, after every kill,
no cursor is ahead of the data it claims to cover. BAYSYNC_SLOW=1 runs the issue's 20 kills."""

import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from sync_core.config import STREAM_NAMES
from tests.support.simproc import baysync_env, mint, sim_process, truth

NOW = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
SELLERS = [dict(name="alice", orders=1500, transactions=2500, payouts=20, disputes=10, conversations=10,
                inventory_items=40, days=100),
           dict(name="bob", orders=800, transactions=1200, payouts=10, disputes=5, conversations=6,
                inventory_items=20, days=100)]
AFTER_SALE = ("returns", "inquiries", "cases", "cancellations", "shipping_fulfillments")
KILLS = 20 if os.environ.get("BAYSYNC_SLOW") else 5
DATE_FIELDS = {"orders": ("orders", "order_id", "orderId", "lastModifiedDate", "last_modified_date"),
               "transactions": ("transactions", "transaction_id || '/' || transaction_type", None, "transactionDate",
                                "transaction_date"),
               "payouts": ("payouts", "payout_id", "payoutId", "payoutDate", "payout_date")}


def _ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _key(stream, rec):
    if stream == "transactions":
        return f"{rec['transactionId']}/{rec['transactionType']}"
    return rec[DATE_FIELDS[stream][2]]


def _stored(eng, stream, seller):
    table, keyexpr = DATE_FIELDS[stream][:2]
    with eng.connect() as c:
        return set(c.execute(sa.text(f"select {keyexpr} from {table} t join accounts a on a.id = t.account_id "
                                     f"where a.name = :s"), dict(s=seller)).scalars())


def _start_claiming_worker(eng, env, workers: int) -> subprocess.Popen:
    """Ask every pair to run now (keeps work available in every round: runs of done pairs re-read their
    lookback), start a real `baysync run`, and return once it has claimed a run (or after 60 s)."""
    with eng.begin() as c:
        c.execute(sa.text("update sync_state set run_now_requested = true"))
        before = c.execute(sa.text("select coalesce(max(id), 0) from sync_runs")).scalar()
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", str(workers)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with eng.connect() as c:
            if c.execute(sa.text("select count(*) from sync_runs where id > :b"), dict(b=before)).scalar():
                break
        time.sleep(0.05)
    return p


def test_kill9_at_random_moments_then_resume(cli_env, db_url):
    rnd = random.Random(20261125)
    env = baysync_env(cli_env, "")
    env.update(BAYSYNC_LEASE_TTL_S="6", BAYSYNC_HEARTBEAT_S="2", BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="100",
               BAYSYNC_STREAMS_TRANSACTIONS_PAGE_SIZE="100",
               **{f"BAYSYNC_STREAMS_{s.upper()}_ENABLED": "false" for s in AFTER_SALE})  # their own test below
    eng = sa.create_engine(db_url)
    truths = {(s["name"], st): truth(SELLERS, NOW, s["name"], st) for s in SELLERS for st in DATE_FIELDS}
    with sim_process(SELLERS, NOW, faults={"latency_ms": 5, "report_delay_s": 0}) as base:
        env = baysync_env(env, base)
        for s in SELLERS:
            r = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", s["name"], "--refresh-token-stdin"],
                               env=env, input=mint(base, s["name"]), capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        since = datetime.now(timezone.utc) - timedelta(days=90) + timedelta(hours=1)
        for i in range(KILLS):
            p = _start_claiming_worker(eng, env, 6)
            time.sleep(rnd.uniform(0.0, 1.5))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            # invariant after every kill: a cursor never claims data that is not stored
            with eng.connect() as c:
                cursors = c.execute(sa.text("select a.name, s.stream, s.cursor from sync_state s join accounts a "
                                            "on a.id = s.account_id where s.cursor is not null")).all()
            for seller, stream, cursor in cursors:
                if stream not in DATE_FIELDS:
                    continue
                field = DATE_FIELDS[stream][3]
                must = {_key(stream, r) for r in truths[(seller, stream)] if since <= _ts(r[field]) <= cursor}
                missing = must - _stored(eng, stream, seller)
                assert not missing, f"kill {i}: {seller}/{stream} cursor {cursor} ahead of data: {len(missing)} missing"
        # final run to completion (killed workers' leases expire and are rescued)
        p = subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", "8"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 150
            t_final = time.monotonic()
            while time.monotonic() < deadline:
                time.sleep(1)
                with eng.connect() as c:
                    left = c.execute(sa.text("select count(*) from sync_state where last_success_at is null "
                                             "or status <> 'idle'")).scalar()
                if left == 0:
                    break
            print(f"final run took {time.monotonic() - t_final:.1f}s")
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=40)
        finally:
            if p.poll() is None:
                p.kill()
    with eng.connect() as c:
        states = c.execute(sa.text("select stream, status, last_error from sync_state where status <> 'idle'")).all()
        abandoned = c.execute(sa.text("select count(*) from sync_runs where status = 'abandoned'")).scalar()
    assert not states, states
    assert abandoned >= 1  # the kills really interrupted runs, and they were rescued
    for (seller, stream), recs in truths.items():
        field = DATE_FIELDS[stream][3]
        want = {_key(stream, r) for r in recs if _ts(r[field]) >= since}
        got = _stored(eng, stream, seller)
        assert want <= got, f"{seller}/{stream}: {len(want - got)} lost"
        # nothing outside what eBay has (no invented or duplicated keys)
        assert got <= {_key(stream, r) for r in recs}
    with eng.connect() as c:
        li = c.execute(sa.text("select count(*) from order_line_items")).scalar()
        orders = c.execute(sa.text("select count(*), sum(jsonb_array_length(raw->'lineItems')) from orders")).first()
    assert li == orders[1]
    eng.dispose()


CARL = [dict(name="carl", orders=4800, transactions=0, payouts=0, disputes=0, conversations=0, inventory_items=0,
             days=200, future_days=0)]


def test_kill9_during_concurrent_windows_while_orders_change(cli_env, db_url):
    """kill -9 while up to 3 windows of a 180-day orders backfill are fetched at once and orders are modified
    on eBay during it (at eBay's "now", like real changes: after the plan of any run already going). After
    every kill no cursor claims an order it has not stored in the version eBay has at or before it; in
    the end the table is exactly eBay's orders of the period (keys and versions), line items included."""
    from sync_core.sim import Simulator
    from tests.support.simproc import sim_config

    import httpx

    rnd = random.Random(20261201)
    now = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
    replica = Simulator(sim_config(CARL, now))  # the same seller, touched the same way: eBay's truth here
    env = baysync_env(cli_env, "")
    env.update(BAYSYNC_LEASE_TTL_S="6", BAYSYNC_HEARTBEAT_S="2", BAYSYNC_STREAMS_ORDERS_PAGE_SIZE="50",
               BAYSYNC_INITIAL_BACKFILL_DAYS="180", BAYSYNC_RUN_CONCURRENCY="3",
               **{f"BAYSYNC_STREAMS_{s.upper()}_ENABLED": "false" for s in STREAM_NAMES if s != "orders"})
    eng = sa.create_engine(db_url)
    since = datetime.now(timezone.utc) - timedelta(days=180) + timedelta(hours=1)

    def stored_versions():
        with eng.connect() as c:
            return dict(c.execute(sa.text("select order_id, last_modified_date from orders")).all())

    # a jittered latency: windows finish out of order, so a later window is often done before an earlier one
    with sim_process(CARL, now, faults={"latency_ms": 10, "latency_jitter_ms": 40}) as base:
        env = baysync_env(env, base)
        r = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", "carl", "--refresh-token-stdin"],
                           env=env, input=mint(base, "carl"), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

        def touch():  # eBay modifies 4 orders now; the replica the same ones, at the same instant
            at = datetime.now(timezone.utc).replace(microsecond=0)
            httpx.post(f"{base}/sim/clock", json={"now": at.isoformat().replace("+00:00", "Z")}, timeout=10)
            ids = httpx.post(f"{base}/sim/sellers/carl/touch", params={"kind": "order", "n": 4}, timeout=10).json()["ids"]
            replica.set_now(at)
            assert replica.touch("carl", "order", 4) == ids
            return at

        def check(label):  # no cursor claims an order it has not stored in eBay's version at or before it
            with eng.connect() as c:
                cursor = c.execute(sa.text("select cursor from sync_state where stream = 'orders'")).scalar()
                cp = c.execute(sa.text("select checkpoint from sync_state where stream = 'orders'")).scalar()
            if cursor is None:
                return
            have = stored_versions()
            for o in replica.truth("carl", "orders"):
                mod = _ts(o["lastModifiedDate"])
                if since <= mod <= cursor:
                    assert have.get(o["orderId"]) == mod, \
                        f"{label}: cursor {cursor} (checkpoint {cp}) claims {o['orderId']} at {mod}: " \
                        f"stored {have.get(o['orderId'])}"

        last_touch = None
        for i in range(3):
            p = _start_claiming_worker(eng, env, 2)
            for j in range(3):  # while the run goes on ...
                time.sleep(rnd.uniform(0.1, 0.4))
                check(f"round {i}, while running ({j})")
            touch()
            time.sleep(rnd.uniform(0.0, 0.8))
            last_touch = touch()  # right before the kill: the resumed run meets a moved window
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            check(f"after kill {i}")  # ... and after kill -9
        # runs until one whose plan reaches past the last change has succeeded (a run resuming a killed run's
        # plan ends where that plan ended; the next one reads on from the cursor)
        p = subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", "2"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with eng.begin() as c:
                    c.execute(sa.text("update sync_state set run_now_requested = true"))
                time.sleep(0.5)
                with eng.connect() as c:
                    ok = c.execute(sa.text("select count(*) from sync_runs where stream = 'orders' and status = "
                                           "'succeeded' and window_to > :t"), dict(t=last_touch)).scalar()
                if ok:
                    break
            assert ok, "no run read past the last change"
            p.send_signal(signal.SIGTERM)
            p.wait(40)
        finally:
            if p.poll() is None:
                p.kill()
    with eng.connect() as c:
        abandoned = c.execute(sa.text("select count(*) from sync_runs where status = 'abandoned'")).scalar()
        li = c.execute(sa.text("select count(*) from order_line_items")).scalar()
        want_li = c.execute(sa.text("select coalesce(sum(jsonb_array_length(raw->'lineItems')), 0) from orders")).scalar()
    assert abandoned >= 1
    truth_all = {o["orderId"]: _ts(o["lastModifiedDate"]) for o in replica.truth("carl", "orders")}
    have = stored_versions()
    want = {k: v for k, v in truth_all.items() if v >= since}
    assert {k: have.get(k) for k in want} == want  # every order of the period, in eBay's current version
    assert set(have) <= set(truth_all)  # nothing eBay does not have
    assert li == want_li
    eng.dispose()


DORA = [dict(name="dora", orders=3000, transactions=0, payouts=0, disputes=0, conversations=0, inventory_items=0,
             days=150, future_days=0)]


def test_kill9_during_a_returns_backfill_leaves_exactly_the_served_data(cli_env, db_url):
    """kill -9 during a Post-Order returns backfill (creation-date windows paged 5 at a time, then the open
    returns re-read by id): after every kill each stored return is exactly as eBay serves it and no cursor
    claims a return it has not stored; in the end the table is exactly eBay's returns of the period."""
    rnd = random.Random(20261202)
    now = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
    want_all = {r["returnId"]: (r["state"], r["status"], _ts(r["creationInfo"]["creationDate"]["value"]))
                for r in truth(DORA, now, "dora", "returns")}
    assert len(want_all) > 60
    env = baysync_env(cli_env, "")
    env.update(BAYSYNC_LEASE_TTL_S="6", BAYSYNC_HEARTBEAT_S="2", BAYSYNC_STREAMS_RETURNS_PAGE_SIZE="5",
               BAYSYNC_INITIAL_BACKFILL_DAYS="200",
               **{f"BAYSYNC_STREAMS_{s.upper()}_ENABLED": "false" for s in STREAM_NAMES if s != "returns"})
    eng = sa.create_engine(db_url)
    since = datetime.now(timezone.utc) - timedelta(days=200) + timedelta(hours=1)

    def stored():
        with eng.connect() as c:
            return {r[0]: tuple(r[1:]) for r in c.execute(sa.text(
                "select return_id, state, status, creation_date from returns")).all()}

    def run_until_done(timeout):
        p = subprocess.Popen([sys.executable, "-m", "console.cli", "run", "--workers", "2"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                time.sleep(0.3)
                with eng.connect() as c:
                    if c.execute(sa.text("select count(*) from sync_state where stream = 'returns' and status = "
                                         "'idle' and last_success_at is not null and not run_now_requested")).scalar():
                        break
            p.send_signal(signal.SIGTERM)
            p.wait(40)
        finally:
            if p.poll() is None:
                p.kill()

    with sim_process(DORA, now, faults={"latency_ms": 20}) as base:
        env = baysync_env(env, base)
        r = subprocess.run([sys.executable, "-m", "console.cli", "accounts", "add", "dora", "--refresh-token-stdin"],
                           env=env, input=mint(base, "dora"), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        for i in range(3):
            p = _start_claiming_worker(eng, env, 2)
            time.sleep(rnd.uniform(0.1, 1.0))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            have = stored()
            assert {k: v for k, v in have.items()} == {k: want_all[k] for k in have}, f"kill {i}: not as served"
            with eng.connect() as c:
                cursor = c.execute(sa.text("select cursor from sync_state where stream = 'returns'")).scalar()
            if cursor is not None:
                must = {k for k, v in want_all.items() if since <= v[2] <= cursor}
                assert not must - set(have), f"kill {i}: cursor {cursor} ahead of data"
        with eng.begin() as c:
            c.execute(sa.text("update sync_state set run_now_requested = true"))
        run_until_done(90)
    with eng.connect() as c:
        abandoned = c.execute(sa.text("select count(*) from sync_runs where status = 'abandoned'")).scalar()
    assert abandoned >= 1
    assert stored() == {k: v for k, v in want_all.items() if v[2] >= since}
    eng.dispose()
