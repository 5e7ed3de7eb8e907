"""End to end: one account's orders and transactions from a simulator on loopback into PostgreSQL.

``python -m bench.e2e [--orders N] [--transactions N] [--quick]``
``python -m bench.e2e --latency 50,300 [--orders 30000]``: the first-sync comparison (see :func:`compare`).

The eBay simulator (zero latency, no faults) is served by a child process on 127.0.0.1 over real HTTP
(uvicorn), so this process's CPU and RSS are baysync's alone. One account, the ``orders`` stream then
the ``transactions`` stream, each one run of the real runner (``sync_core.runner.Run``: windows,
pages of the endpoint's maximum size, fenced page+checkpoint transactions, children, events) against a
throwaway embedded PostgreSQL. Reported:

* records/s per stream and overall (wall time of the runs, simulator rendering included: it runs on
  the other core, concurrently);
* API calls vs the minimum: sum over the run's windows of max(1, ceil(records in window / max page size)),
  plus, for an orders window read in k time slices, its first page and one partly filled page per slice;
* RSS after every page -> RSS at 10k records, at the end, peak (VmHWM), and the growth slope over
  10k..N records fitted by least squares, extrapolated to 1M records (stated as such unless N >= 1M).
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

import httpx

from bench.common import (SimProcess, emit_json, host_loop_s, machine_busy_s, parser, peak_rss_mb, proc_cpu_s,
                          reset_peak_rss, rss_mb, say, server, settings, sim_env)
from sync_core import accounts, coordination as co, db
from sync_core.ebay.paging import build_url, range_filter
from sync_core.runner import Run, plan_windows
from sync_core.streams import STREAMS
from sync_core.worker import Clients

FILTER_COL = {"orders": "last_modified_date", "transactions": "transaction_date"}
GOAL_GROWTH_MB = 50.0


def slope_mb_per_record(samples: list[tuple[int, float]]) -> float:
    xs = [x for x, _ in samples]
    ys = [y for _, y in samples]
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


async def run_stream(s, engine, clients, aid: int, stream: str, samples: list, base: int) -> dict:
    owner = co.new_owner("bench")
    async with engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, stream, s.lease_ttl_s)
    ctx = Run(s, engine, claim, owner)
    orig = ctx.writer.put
    spent = {"store": 0.0}

    async def put(page):
        t1 = time.perf_counter()
        r = await orig(page)
        spent["store"] += time.perf_counter() - t1
        t = ctx.totals
        samples.append((base + t.inserted + t.updated + t.unchanged, rss_mb()))
        return r
    ctx.writer.put = put
    t0 = time.perf_counter()
    status = await ctx.execute(clients)
    secs = time.perf_counter() - t0
    assert status == "succeeded", status
    t = ctx.totals
    # API calls as recorded for the run, and the minimum for the windows it read
    async with engine.connect() as conn:
        api_calls = (await conn.execute(sa.text("select api_calls from sync_runs where id = :r"),
                                        dict(r=ctx.run_id))).scalar()
        end = ctx.now - timedelta(seconds=s.safety_lag_s)
        windows = plan_windows(ctx.plan_start, end, STREAMS[stream].max_window)
        col = FILTER_COL[stream]
        minimum = 0
        for w in windows:
            n = (await conn.execute(sa.text(f"select count(*) from {stream} where account_id = :a and {col} "
                                            f"between :f and :t"), dict(a=aid, f=w.start, t=w.end))).scalar()
            minimum += max(1, math.ceil(n / STREAMS[stream].max_page_size))
        # an orders window of more than SLICE_ORDERS is read in k time slices (docs/ebay-api.md "Orders
        # paging"): its first page (not used) and at most one partly filled last page per slice come on top
        sliced = (await conn.execute(sa.text("select (data->>'slices')::int from run_events "
                                             "where run_id = :r and kind = 'window_sliced'"), dict(r=ctx.run_id))).scalars().all()
        slicing = sum(1 + k for k in sliced)
        stored = (await conn.execute(sa.text(f"select count(*) from {stream}"))).scalar()
    records = t.inserted + t.updated + t.unchanged
    return {"records": records, "stored": stored, "seconds": round(secs, 2), "records_per_s": round(records / secs),
            "store_seconds": round(spent["store"], 2), "fetch_seconds": round(secs - spent["store"], 2),
            "pages": t.pages, "api_calls": api_calls, "min_api_calls": minimum, "windows": len(windows),
            "sliced_windows": len(sliced), "slicing_calls_allowed": slicing}


async def run(args) -> dict:
    spec = {"seed": 11, "sellers": [dict(name="bench", orders=args.orders, transactions=args.transactions, payouts=10,
                                         disputes=0, conversations=0, inventory_items=10, days=85, future_days=0)]}
    say(f"simulator child: {args.orders} orders, {args.transactions} transactions over 85 days (building data) ...")
    with SimProcess(spec) as sim, server() as srv:
        say(f"simulator on {sim.base_url} (HTTP over loopback, zero latency); database: {srv.describe()}")
        url = srv.create_db("bench_e2e")
        home = Path(tempfile.mkdtemp(prefix="bse2e-", dir="/tmp"))
        off = {f"BAYSYNC_STREAMS_{x.upper()}_ENABLED": "false" for x in STREAMS if x not in ("orders", "transactions")}
        s = settings(home, url, **sim_env(sim.base_url), BAYSYNC_INITIAL_BACKFILL_DAYS="90", **off)
        engine = db.make_async_engine(s, "worker")
        clients = Clients(s, engine)
        try:
            async with engine.begin() as conn:
                aid = await accounts.add_account(conn, s, "bench", sim.refresh_token("bench"))
            gc.collect()
            rss0 = rss_mb()
            samples: list[tuple[int, float]] = [(0, rss0)]
            out = {}
            t0 = time.perf_counter()
            base = 0
            for stream in ("orders", "transactions"):
                out[stream] = await run_stream(s, engine, clients, aid, stream, samples, base)
                base += out[stream]["records"]
                r = out[stream]
                say(f"  {stream:<13} {r['records']:>8} records in {r['seconds']:7.2f}s = {r['records_per_s']:>6} rec/s; "
                    f"{r['api_calls']} API calls (minimum {r['min_api_calls']} over {r['windows']} windows"
                    + (f", +{r['slicing_calls_allowed']} allowed for {r['sliced_windows']} sliced" if r['sliced_windows']
                       else "") + f"); RSS {rss_mb():.0f} MB")
                say(f"  {'':<13} time split: {r['store_seconds']}s mapping+writing pages (writer.put), "
                    f"{r['fetch_seconds']}s waiting for/decoding API pages (simulator rendering included)")
            wall = time.perf_counter() - t0
        finally:
            await clients.aclose()
            await engine.dispose()
        sim_stats = sim.stats()

    total = sum(r["records"] for r in out.values())
    peak = peak_rss_mb()
    at10k = next((m for n, m in samples if n >= 10_000), samples[-1][1])
    tail = [(n, m) for n, m in samples if n >= 10_000]
    slope = slope_mb_per_record(tail)
    growth_obs = samples[-1][1] - at10k
    growth_1m = slope * (1_000_000 - 10_000)
    measured_1m = total >= 1_000_000
    say("")
    say(f"total {total} records in {wall:.1f}s = {total / wall:.0f} records/s "
        f"(simulator served {sim_stats['requests']} requests)")
    say(f"RSS: start {rss0:.0f} MB, at 10k records {at10k:.0f} MB, at {total} records {samples[-1][1]:.0f} MB, "
        f"peak {peak:.0f} MB")
    say(f"RSS growth 10k..{total}: {growth_obs:+.1f} MB observed; least-squares slope {slope * 1e5:+.2f} MB per 100k "
        f"records over {len(tail)} samples -> {growth_1m:+.1f} MB for 10k..1M "
        + ("(measured)" if measured_1m else "(EXTRAPOLATED linearly from the slope, not measured)"))
    calls_ok = all(r["api_calls"] <= r["min_api_calls"] + r["slicing_calls_allowed"] for r in out.values())
    goals = {"rss_growth_10k_to_1M<50MB": growth_1m < GOAL_GROWTH_MB, "api_calls==minimum": calls_ok}
    say("goals: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in goals.items()))
    # RSS curve, thinned for the JSON line
    step = max(1, len(samples) // 20)
    return {"orders": args.orders, "transactions": args.transactions, "transport": "http-loopback-child-process",
            "streams": out, "records": total, "seconds": round(wall, 2), "records_per_s": round(total / wall),
            "rss_mb": {"start": round(rss0, 1), "at_10k": round(at10k, 1), "end": round(samples[-1][1], 1),
                       "peak": round(peak, 1)},
            "rss_growth_mb": {"observed_10k_to_end": round(growth_obs, 1),
                              "slope_per_100k": round(slope * 1e5, 3),
                              "to_1M": round(growth_1m, 1), "to_1M_extrapolated": not measured_1m},
            "rss_curve": [(n, round(m, 1)) for n, m in samples[::step]],
            "goals": goals}


async def first_sync(s, engine, clients, aid: int) -> dict:
    """One first sync of the orders stream (the real runner): wall and CPU seconds of this process, calls."""
    owner = co.new_owner("bench")
    async with engine.begin() as conn:
        claim = await co.claim_pair(conn, owner, aid, "orders", s.lease_ttl_s)
    ctx = Run(s, engine, claim, owner)
    gc.collect()
    reset_peak_rss()
    c0, t0 = time.process_time(), time.perf_counter()
    status = await ctx.execute(clients)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert status == "succeeded", status
    async with engine.connect() as conn:
        api_calls = (await conn.execute(sa.text("select api_calls from sync_runs where id = :r"),
                                        dict(r=ctx.run_id))).scalar()
        stored = (await conn.execute(sa.text("select count(*) from orders"))).scalar()
    windows = plan_windows(ctx.plan_start, ctx.now - timedelta(seconds=s.safety_lag_s), STREAMS["orders"].max_window)
    return {"seconds": round(secs, 2), "cpu_s": round(cpu, 2), "stored": stored, "api_calls": api_calls,
            "cpu_ms_per_order": round(cpu * 1000 / max(stored, 1), 4), "peak_rss_mb": round(peak_rss_mb(), 1),
            "timing": ctx.writer.timing.as_dict(), "windows": windows}


async def raw_fetch(base_url: str, refresh_token: str, windows, concurrency: int) -> dict:
    """The same pages fetched by a bare httpx loop with the same concurrency (windows at once, pages of a
    window one after another, following ``next``): the floor a sync can approach."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency + 2)) as http:
        r = await http.post(base_url + "/identity/v1/oauth2/token", auth=("sim-client", "sim-secret"),
                            data={"grant_type": "refresh_token", "refresh_token": refresh_token})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        todo = iter(windows)
        calls = 0

        async def worker() -> None:
            nonlocal calls
            for w in todo:
                url = build_url(base_url, "/sell/fulfillment/v1/order", [
                    ("filter", range_filter("lastmodifieddate", w.start, w.end)), ("limit", 200), ("offset", 0)])
                while url:
                    resp = await http.get(url, headers=headers)
                    resp.raise_for_status()
                    calls += 1
                    url = resp.json().get("next")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"seconds": round(time.perf_counter() - t0, 2), "api_calls": calls}


async def warm_up(sim, srv) -> None:
    """One short sync (the last 30 days, no latency), not measured: the modules a run imports on first use,
    the statement caches and the simulator's first pages are paid here, not by whichever sync runs first."""
    url = srv.create_db("bench_warm")
    home = Path(tempfile.mkdtemp(prefix="bse2e-", dir="/tmp"))
    s = settings(home, url, **sim_env(sim.base_url), BAYSYNC_INITIAL_BACKFILL_DAYS="30")
    engine = db.make_async_engine(s, "worker")
    clients = Clients(s, engine)
    try:
        async with engine.begin() as conn:
            aid = await accounts.add_account(conn, s, "bench", sim.refresh_token("bench"))
        await first_sync(s, engine, clients, aid)
    finally:
        await clients.aclose()
        await engine.dispose()


class Load:
    """CPU seconds used meanwhile by this process, the simulator child, PostgreSQL (postmaster and backends,
    embedded server only) and the whole machine (/proc/stat): on a shared 2-core machine the three compete
    for the cores, and how much they took explains most of a sync's spread from one run to the next."""

    def __init__(self, sim: SimProcess, pg_pid: int | None):
        self.sim_pid, self.pg_pid = sim.proc.pid, pg_pid

    def _now(self) -> tuple[float, ...]:
        busy, total = machine_busy_s()
        return (time.process_time(), proc_cpu_s(self.sim_pid), proc_cpu_s(self.pg_pid) if self.pg_pid else 0.0,
                busy, total, time.perf_counter())

    def start(self) -> None:
        self._t0 = self._now()

    async def quiet(self, srv, keep: str | None = None, *, idle_s: float = 0.5, cpu_share: float = 0.03,
                    timeout_s: float = 30.0) -> float:
        """Before a measurement: the databases of earlier syncs are dropped and PostgreSQL checkpointed, then
        this waits (at most ``timeout_s``) until the server used under ``cpu_share`` of a core for ``idle_s``:
        otherwise autovacuum and the checkpointer, still busy with the previous sync's 30,000 rows, take
        the cores during the next measurement (measured: PostgreSQL's CPU during three identical syncs in
        a row 2.5, 3.2, 4.6 s, and 1.2 s during a raw loop that writes nothing). Returns the seconds waited."""
        srv.drop_all(keep)
        if not self.pg_pid:
            return 0.0
        t0 = time.perf_counter()
        srv.checkpoint()
        while time.perf_counter() - t0 < timeout_s:
            a = proc_cpu_s(self.pg_pid)
            await asyncio.sleep(idle_s)
            if proc_cpu_s(self.pg_pid) - a < cpu_share * idle_s:
                break
        return time.perf_counter() - t0

    def stop(self) -> dict:
        d = [b - a for a, b in zip(self._t0, self._now())]
        ours, sim, pg, busy, total, _wall = d
        return {"ours_cpu_s": round(ours, 2), "sim_cpu_s": round(sim, 2),
                "pg_cpu_s": round(pg, 2) if self.pg_pid else None,
                "machine_busy": round(busy / total, 2) if total else None,
                "other_cpu_s": round(max(0.0, busy - ours - sim - pg), 2) if self.pg_pid else None}


def _load_text(ld: dict) -> str:
    pg = f"PostgreSQL {ld['pg_cpu_s']}s, " if ld["pg_cpu_s"] is not None else ""
    other = f", rest of the machine {ld['other_cpu_s']}s" if ld["other_cpu_s"] is not None else ""
    return f"[CPU: simulator {ld['sim_cpu_s']}s, {pg}machine {ld['machine_busy']:.0%} busy{other}]"


async def compare(args) -> dict:
    """A first sync of ``--orders`` orders over two years (25 windows of 30 days) at each ``--latency`` (ms
    per eBay call, the simulator's latency fault on getOrders): the runner with ``run_concurrency`` 4 and 1,
    and a bare httpx loop fetching the same pages with concurrency 4. Each sync gets a fresh database; one
    short unmeasured sync runs first (:func:`warm_up`). With ``--repeat N`` the ``run_concurrency`` 4 sync
    and the raw loop run N times, alternating (sync, raw, sync, raw, ...: a change in the machine's load
    hits both), and the goals are checked on the medians of the N ratios and of the N CPU figures.
    Reported: wall seconds, the ratios, this process's CPU per stored order and its peak RSS, and the CPU
    taken meanwhile by the simulator, PostgreSQL and the rest of the machine (:class:`Load`)."""
    spec = {"seed": 11, "sellers": [dict(name="bench", orders=args.orders, transactions=0, payouts=0, disputes=0,
                                         conversations=0, inventory_items=0, days=730, future_days=0)]}
    say(f"simulator child: {args.orders} orders over 730 days (building data) ...")
    out: dict = {"orders": args.orders, "repeat": args.repeat, "latencies": {}, "host_loop_s": [host_loop_s()]}
    with SimProcess(spec) as sim, server() as srv:
        say(f"simulator on {sim.base_url}; database: {srv.describe()}")
        load = Load(sim, srv.postmaster_pid())
        await warm_up(sim, srv)

        async def sync(lat: int, conc: int) -> dict:
            url = srv.create_db(f"bench_lat_{lat}_{conc}")
            home = Path(tempfile.mkdtemp(prefix="bse2e-", dir="/tmp"))
            s = settings(home, url, **sim_env(sim.base_url), BAYSYNC_INITIAL_BACKFILL_DAYS="730",
                         BAYSYNC_RUN_CONCURRENCY=str(conc))
            engine = db.make_async_engine(s, "worker")
            clients = Clients(s, engine)
            try:
                async with engine.begin() as conn:
                    aid = await accounts.add_account(conn, s, "bench", sim.refresh_token("bench"))
                await load.quiet(srv, keep=url)
                load.start()
                r = await first_sync(s, engine, clients, aid)
                r["load"] = load.stop()
            finally:
                await clients.aclose()
                await engine.dispose()
            say(f"  {lat:>4} ms  run_concurrency={conc}: {r['stored']} orders in {r['seconds']:6.2f}s, "
                f"{r['api_calls']} calls, CPU {r['cpu_s']}s = {r['cpu_ms_per_order']} ms/order, "
                f"peak RSS {r['peak_rss_mb']} MB {_load_text(r['load'])}; the run waited "
                f"{r['timing']['pages_wait_s']:.1f}s for pages, {r['timing']['write_wait_s']:.1f}s for writes")
            return r

        async def raw(lat: int, windows) -> dict:
            await load.quiet(srv)
            load.start()
            r = await raw_fetch(sim.base_url, sim.refresh_token("bench"), windows, 4)
            r["load"] = load.stop()
            say(f"  {lat:>4} ms  raw httpx loop, 4 at once: {r['api_calls']} calls in {r['seconds']:6.2f}s "
                f"{_load_text(r['load'])}")
            return r

        for lat in args.latency:
            sim.admin("POST", "/sim/faults", {"latency_ms": float(lat), "only_paths": ["/sell/fulfillment"]})
            res: dict = {"concurrency_4_runs": [], "raw_fetch_4_runs": []}
            for _ in range(args.repeat):
                r4 = await sync(lat, 4)
                windows = r4.pop("windows")
                res["concurrency_4_runs"].append(r4)
                res["raw_fetch_4_runs"].append(await raw(lat, windows))
            r1 = await sync(lat, 1)
            r1.pop("windows")
            res["concurrency_1"] = r1
            runs4, raws = res["concurrency_4_runs"], res["raw_fetch_4_runs"]
            ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs4, raws)]
            c4 = statistics.median(r["seconds"] for r in runs4)
            res["concurrency_4"] = {"seconds": round(c4, 2),
                                    "cpu_ms_per_order": round(statistics.median(r["cpu_ms_per_order"] for r in runs4), 4),
                                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs4),
                                    "api_calls": max(r["api_calls"] for r in runs4)}
            res["raw_fetch_4"] = {"seconds": round(statistics.median(r["seconds"] for r in raws), 2),
                                  "api_calls": max(r["api_calls"] for r in raws)}
            res["speedup_4_vs_1"] = round(r1["seconds"] / c4, 2)
            res["ratio_4_vs_raw"] = round(statistics.median(ratios), 2)
            res["ratios_4_vs_raw"] = [round(x, 2) for x in ratios]
            each = f" (each: {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else ""
            med = "median " if len(ratios) > 1 else ""
            say(f"  {lat:>4} ms  speedup x{res['speedup_4_vs_1']} (goal >= 3), runner/raw {med}"
                f"{res['ratio_4_vs_raw']}{each} (goal <= 1.3)")
            out["latencies"][str(lat)] = res
    out["host_loop_s"].append(host_loop_s())
    before, after = out["host_loop_s"]
    say(f"host: adding up 20M integers in a Python loop took {before} s before, {after} s after "
        "(absolute figures such as CPU per order move with it)")
    c = out["latencies"]
    out["goals"] = {
        "speedup>=3": all(v["speedup_4_vs_1"] >= 3 for v in c.values()),
        "runner/raw<=1.3": all(v["ratio_4_vs_raw"] <= 1.3 for v in c.values()),
        "cpu<=0.12ms/order": all(v["concurrency_4"]["cpu_ms_per_order"] <= 0.12 for v in c.values()),
        "peak_rss<200MB": all(v[k]["peak_rss_mb"] < 200 for v in c.values() for k in ("concurrency_4", "concurrency_1")),
        "api_calls==raw": all(r4["api_calls"] == rw["api_calls"] for v in c.values()
                              for r4, rw in zip(v["concurrency_4_runs"], v["raw_fetch_4_runs"])),
    }
    say("goals: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in out["goals"].items()))
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--orders", type=int, default=None, help="orders (default 100000; --quick 10000)")
    p.add_argument("--transactions", type=int, default=None, help="transactions (default 200000; --quick 20000)")
    p.add_argument("--latency", default="", help="comma-separated ms per call: the first-sync comparison")
    p.add_argument("--repeat", type=int, default=1,
                   help="with --latency: run the concurrency-4 sync and the raw loop N times, alternating; "
                        "goals on the medians (default 1)")
    args = p.parse_args()
    if args.repeat < 1:
        p.error(f"--repeat must be at least 1 (got {args.repeat})")
    if args.latency:
        args.latency = [int(x) for x in args.latency.split(",")]
        args.orders = args.orders or (6_000 if args.quick else 30_000)
        emit_json("e2e_latency", asyncio.run(compare(args)))
        return
    args.orders = args.orders if args.orders is not None else (10_000 if args.quick else 100_000)
    args.transactions = args.transactions if args.transactions is not None else (20_000 if args.quick else 200_000)
    emit_json("e2e", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
