"""The health server of `baysync run` over real HTTP: /healthz/db answers 503 while the database is
unreachable (a real server behind a proxy that cuts it) and recovers; /metrics after real runs of a worker
pool against the simulator: lag, last success, failures in a row (reset by a success), reauth_needed,
the configured interval and the run-duration histogram, in valid Prometheus text."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy.engine import make_url

from sync_core import coordination as co, db
from sync_core.sim import SellerSpec
from sync_core.health import DURATION_BUCKETS, serve
from sync_core.worker import WorkerPool
from tests.support.env import test_settings
from tests.support.proxy import FaultProxy
from tests.support.simenv import make_env, make_sim
from tests.support.simproc import free_port

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=2)
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                     r'(-?[0-9.eE+-]+|\+Inf|NaN)$')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of a Prometheus text exposition, checking its format: every sample belongs to a family
    announced by HELP and TYPE lines before it, no series twice."""
    typed, out = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram") and name not in typed, line
            typed[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        name = m.group(1)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert fam in typed, f"no TYPE for {name}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        assert (name, labels) not in out, f"duplicate series {line!r}"
        out[(name, labels)] = float(m.group(3))
    return out


def get(samples, name, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def wait_http(base: str) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(200):
            try:
                await c.get(base + "/healthz", timeout=2)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    raise AssertionError("health server did not start")


async def test_healthz_db_503_while_the_database_is_unreachable(tmp_path, db_url):
    u = make_url(db_url)
    host = u.query.get("host") or u.host
    with FaultProxy(host if isinstance(host, str) else host[0], int(u.query.get("port") or u.port or 5432)) as proxy:
        s = test_settings(tmp_path, proxy.url_for(u.database, u.username or "postgres"))
        engine = db.make_async_engine(s, "worker")
        pool = WorkerPool(s, engine)
        base = f"http://127.0.0.1:{free_port()}"
        health = await serve(pool, base.removeprefix("http://"))
        try:
            await wait_http(base)
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                assert (await c.get("/healthz/db")).json() == {"ok": True}
                proxy.refuse = True  # the server is gone: open connections cut, new ones refused
                proxy.drop_all()
                r = await c.get("/healthz/db")
                assert r.status_code == 503 and r.json()["ok"] is False and r.json()["error"]
                assert (await c.get("/healthz")).status_code == 200  # the process itself is alive
                m = await c.get("/metrics")
                assert m.status_code == 200 and "# database unavailable" in m.text
                assert get(parse(m.text), "baysync_active_runs") == 0
                proxy.refuse = False
                r = await c.get("/healthz/db")
                assert r.status_code == 200 and r.json() == {"ok": True}
        finally:
            await health.stop()
            await pool.clients.aclose()
            await engine.dispose()


OFF = {f"BAYSYNC_STREAMS_{n.upper()}_ENABLED": "false"
       for n in ("transactions", "disputes", "messages", "inventory_items", "offers", "active_inventory",
                 "returns", "inquiries", "cases", "cancellations", "shipping_fulfillments")}


async def test_metrics_after_real_runs(tmp_path, db_url):
    sim = make_sim(SellerSpec("alice", orders=40, payouts=5, days=20), SellerSpec("bob", orders=5, payouts=2, days=20),
                   now=NOW)
    env = make_env(tmp_path, db_url, sim, BAYSYNC_STREAMS_ORDERS_INTERVAL_S="1",
                   BAYSYNC_STREAMS_PAYOUTS_INTERVAL_S="3600", BAYSYNC_API_RETRY_ATTEMPTS="1", **OFF)
    alice = await env.add_account("alice")
    await env.add_account("bob")
    sim.set_faults(revoke_refresh_tokens=["bob"], rate_5xx=1.0, only_paths=["/sell/fulfillment"])
    pool = WorkerPool(env.settings, env.engine, concurrency=4, transport=env.transport)
    base = f"http://127.0.0.1:{free_port()}"
    health = await serve(pool, base.removeprefix("http://"))
    await pool.start()
    c = httpx.AsyncClient(base_url=base, timeout=30)

    async def until(sql: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not await env.scalar(sql):
            assert time.monotonic() < deadline, sql
            await asyncio.sleep(0.1)

    async def idle(stream: str) -> None:  # paused and not running: its numbers stay put while we compare
        async with env.engine.begin() as conn:
            await co.set_paused(conn, alice, stream, True)
        await until(f"select lease_owner is null from sync_state where account_id = {alice} and stream = '{stream}'")

    try:
        await wait_http(base)
        await until("select count(*) >= 3 from sync_runs r join accounts a on a.id = r.account_id "
                    "where a.name = 'alice' and r.stream = 'orders' and r.status = 'failed'")
        await until("select bool_and(s.last_success_at is not null) from sync_state s join accounts a "
                    "on a.id = s.account_id where a.name = 'alice' and s.stream = 'payouts'")
        await until("select status = 'reauth_needed' from accounts where name = 'bob'")
        await idle("orders")
        failed = await env.scalar(f"select count(*) from sync_runs where account_id = {alice} and stream = 'orders' "
                                  "and status = 'failed'")
        m = parse((await c.get("/metrics")).text)
        assert get(m, "baysync_consecutive_failures", account="alice", stream="orders") == failed >= 3
        assert get(m, "baysync_consecutive_failures", account="alice", stream="payouts") == 0
        assert get(m, "baysync_last_success_timestamp_seconds", account="alice", stream="orders") is None
        last = await env.scalar("select extract(epoch from last_success_at) from sync_state "
                                f"where account_id = {alice} and stream = 'payouts'")
        assert get(m, "baysync_last_success_timestamp_seconds", account="alice", stream="payouts") == float(last)
        lag = get(m, "baysync_lag_seconds", account="alice", stream="payouts")
        assert lag is not None and 0 <= lag < 600  # the cursor is the window end of a run moments ago
        assert get(m, "baysync_reauth_needed", account="bob") == 1
        assert get(m, "baysync_reauth_needed", account="alice") == 0
        assert get(m, "baysync_interval_seconds", stream="orders") == 1
        assert get(m, "baysync_interval_seconds", stream="payouts") == 3600
        assert get(m, "baysync_interval_seconds", stream="transactions") is None  # disabled
        # the histogram: every orders run this pool finished, cumulative buckets ending in +Inf = count
        n = await env.scalar(f"select count(*) from sync_runs where stream = 'orders' and owner = '{pool.owner}' "
                             "and status <> 'running'")
        assert get(m, "baysync_run_duration_seconds_count", stream="orders") == n
        buckets = [get(m, "baysync_run_duration_seconds_bucket", stream="orders", le=repr(b)) for b in DURATION_BUCKETS]
        assert buckets == sorted(buckets) and buckets[-1] <= n
        assert get(m, "baysync_run_duration_seconds_bucket", stream="orders", le="+Inf") == n
        assert 0 < get(m, "baysync_run_duration_seconds_sum", stream="orders") < 60 * n
        assert get(m, "baysync_runs_total", status="failed") >= failed
        # eBay recovers: the next run succeeds and the count of failures in a row starts again
        sim.set_faults(rate_5xx=0.0)
        async with env.engine.begin() as conn:
            await co.set_paused(conn, alice, "orders", False)
        await until("select last_success_at is not null from sync_state "
                    f"where account_id = {alice} and stream = 'orders'")
        await idle("orders")
        m = parse((await c.get("/metrics")).text)
        assert get(m, "baysync_consecutive_failures", account="alice", stream="orders") == 0
        assert get(m, "baysync_last_success_timestamp_seconds", account="alice", stream="orders") is not None
    finally:
        await c.aclose()
        await pool.stop()
        await health.stop()
        await env.engine.dispose()


def test_label_values_are_escaped():
    """Backslash, double quote and newline in a label value are escaped as the text format requires; the
    result parses back to the original value."""
    from sync_core.health import family

    nasty = 'a"b\\c\nd'
    lines = family("baysync_x", "gauge", "A test family.", [(dict(account=nasty, stream="orders"), 1)])
    assert lines[2] == 'baysync_x{account="a\\"b\\\\c\\nd",stream="orders"} 1'
    ((name, labels), v), = parse("\n".join(lines)).items()
    raw = dict(labels)["account"]
    assert raw.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\") == nasty and v == 1


async def test_health_server_leaves_the_signal_handlers_to_the_pool():
    """`baysync run` handles SIGTERM/SIGINT itself (stop, then cancel); the health server must not take them
    over while it serves. uvicorn >= 0.29 replaces them in Server.serve() unless capture_signals is
    overridden (the former install_signal_handlers override was a silent no-op: this failed then)."""
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    port = free_port()
    health = await serve(None, f"127.0.0.1:{port}")  # no request reaches the pool
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 30
            while True:  # wait until the server answers: it is inside serve() then
                try:
                    await http.get(f"http://127.0.0.1:{port}/nowhere", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "health server did not start"
                    await asyncio.sleep(0.05)
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        await health.stop(30)
