"""End to end: one account's orders and transactions from a simulator on loopback into PostgreSQL.

``python -m bench.e2e [--orders N] [--transactions N] [--quick]``

The eBay simulator (zero latency, no faults) is served by a child process on 127.0.0.1 over real HTTP
(uvicorn), so this process's CPU and RSS are baysync's alone. One account, the ``orders`` stream then
the ``transactions`` stream, each one run of the real runner (``sync_core.runner.Run``: windows,
pages of the endpoint's maximum size, fenced page+checkpoint transactions, children, events) against a
throwaway embedded PostgreSQL. Reported:

* records/s per stream and overall (wall time of the runs, simulator rendering included: it runs on
  the other core, concurrently);
* API calls vs the minimum: sum over the run's windows of max(1, ceil(records in window / max page size));
* RSS after every page -> RSS at 10k records, at the end, peak (VmHWM), and the growth slope over
  10k..N records fitted by least squares, extrapolated to 1M records (stated as such unless N >= 1M).
"""

from __future__ import annotations

import asyncio
import gc
import math
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import SimProcess, emit_json, parser, peak_rss_mb, rss_mb, say, server, settings, sim_env
from sync_core import accounts, coordination as co, db
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
    await clients.for_run(ctx)
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
    status = await ctx.execute()
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
        stored = (await conn.execute(sa.text(f"select count(*) from {stream}"))).scalar()
    records = t.inserted + t.updated + t.unchanged
    return {"records": records, "stored": stored, "seconds": round(secs, 2), "records_per_s": round(records / secs),
            "store_seconds": round(spent["store"], 2), "fetch_seconds": round(secs - spent["store"], 2),
            "pages": t.pages, "api_calls": api_calls, "min_api_calls": minimum, "windows": len(windows)}


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
                    f"{r['api_calls']} API calls (minimum {r['min_api_calls']} over {r['windows']} windows); "
                    f"RSS {rss_mb():.0f} MB")
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
    calls_ok = all(r["api_calls"] <= r["min_api_calls"] for r in out.values())
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


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--orders", type=int, default=None, help="orders (default 100000; --quick 10000)")
    p.add_argument("--transactions", type=int, default=None, help="transactions (default 200000; --quick 20000)")
    args = p.parse_args()
    args.orders = args.orders if args.orders is not None else (10_000 if args.quick else 100_000)
    args.transactions = args.transactions if args.transactions is not None else (20_000 if args.quick else 200_000)
    emit_json("e2e", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
