"""The shared call budget alone: takes per second, CPU and latency per take (sync_core/budgets.py).

``python -m bench.budget [--tasks 4] [--takes 400] [--rounds 3]``

One ``SharedRateBudget`` on a fresh database of a throwaway embedded PostgreSQL (or
``BAYSYNC_BENCH_DATABASE_URL``); ``--tasks`` coroutines take ``--takes`` calls in all from one account's
row and the application's row (what every eBay call of a run does before it is sent), after one take that
creates the rows. Reported per round: takes/s (wall), this process's CPU per take, mean latency of a take,
and the ratio of that latency to one plain round trip (``select 1`` on a pooled connection, the same tasks,
measured in the same round): how far a take is from the floor of one statement.
No eBay, no simulator: the figure is the PostgreSQL round trip(s) of a take and our side of it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import emit_json, parser, say, server, settings
from sync_core import db
from sync_core.budgets import SharedRateBudget


async def run(args) -> dict:
    out: list[dict] = []
    with server() as srv:
        url = srv.create_db("bench_budget")
        s = settings(Path(tempfile.mkdtemp(prefix="bsbud-", dir="/tmp")), url)
        engine = db.make_async_engine(s, "worker")
        try:
            budget = SharedRateBudget(engine, settings=s)
            await budget.acquire("acct", "fulfillment")  # creates the rows (the first use of a process)
            for r in range(args.rounds):
                lat: list[float] = []
                trips: list[float] = []

                async def taker(n: int) -> None:
                    for _ in range(n):
                        t = time.perf_counter()
                        await budget.acquire("acct", "fulfillment")
                        lat.append(time.perf_counter() - t)

                async def tripper(n: int) -> None:
                    for _ in range(n):
                        t = time.perf_counter()
                        async with engine.connect() as conn:
                            await conn.execute(sa.text("select 1"))
                        trips.append(time.perf_counter() - t)

                per = args.takes // args.tasks
                await asyncio.gather(*(tripper(per) for _ in range(args.tasks)))
                c0, t0 = time.process_time(), time.perf_counter()
                await asyncio.gather(*(taker(per) for _ in range(args.tasks)))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                n = per * args.tasks
                trip = sum(trips) / len(trips)
                res = {"takes": n, "takes_per_s": round(n / wall), "cpu_ms_per_take": round(cpu * 1000 / n, 3),
                       "latency_ms": round(sum(lat) / len(lat) * 1000, 2), "round_trip_ms": round(trip * 1000, 2),
                       "take_vs_round_trip": round(sum(lat) / len(lat) / trip, 2)}
                out.append(res)
                say(f"round {r + 1}: {n} takes by {args.tasks} tasks: {res['takes_per_s']} takes/s, "
                    f"CPU {res['cpu_ms_per_take']} ms per take, latency {res['latency_ms']} ms = "
                    f"x{res['take_vs_round_trip']} one plain round trip ({res['round_trip_ms']} ms)")
        finally:
            await engine.dispose()
    return {"tasks": args.tasks, "rounds": out}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--takes", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.quick:
        args.takes, args.rounds = 100, 1
    emit_json("budget", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
