"""Upsert throughput: baysync's upsert path vs raw COPY vs a row-per-commit loop, in one run.

``python -m bench.upsert [--rows N] [--rounds R] [--quick] [--profile]``

100k order-like records (about 1 KB of JSON each, eBay getOrders shape) are mapped as the runner maps
them (orders stream ``map`` + orjson payload + blake2b hash), then written, on the same server in the
same process, interleaved round by round:

* ``copy``: ``COPY orders_copy FROM STDIN`` of the same rows (one COPY, one transaction) into an empty
  table created ``LIKE orders INCLUDING ALL`` (same primary key and indexes): the ceiling.
* ``copy_pages``: the same COPY, but one COPY + commit per page of 200 (what a page-at-a-time sync
  could at best do).
* ``upsert``: :func:`sync_core.upserts.upsert` into the empty ``orders`` table the way the runner writes
  a backfill with the default config: pages of 200 (eBay's maximum for orders) grouped into one
  transaction per ``write_batch_rows`` (1,000) records, all rows new.
* ``upsert_page``: one page of 200 per transaction (``write_batch_rows = 1``), all rows new.
* ``resync`` / ``resync_page``: the same rows again, nothing changed (the re-sync path), in both shapes.
* ``upsert_5000``: batches of 5,000, all rows new.
* ``row_loop``: ``INSERT`` one row, ``COMMIT``, repeat, on a subset (``--loop-rows``, default 2000),
  rows/s extrapolated linearly from that subset.

The serialisation share is measured separately: map, orjson vs stdlib json, hash, decode, and the
parameter-building/adaptation cost of one upsert (``--profile`` adds a cProfile of a pass).
Ratios are computed per round (baseline and candidate measured seconds apart) and the median is reported.
Only the upsert statement is timed (no children, checkpoint or events: those are the runner's).
"""

from __future__ import annotations

import asyncio
import cProfile
import hashlib
import io
import json
import pstats
import random
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from bench.common import Timer, emit_json, parser, say, server, settings
from sync_core import db, upserts
from sync_core.streams import STREAMS

PAGE = 200
S = STREAMS["orders"]
COLS = [c.name for c in S.table.columns if c.name not in ("first_seen_at", "synced_at")]


# ---------------------------------------------------------------- data

WORDS = ("vintage camera lens brass steel leather wallet cotton shirt ceramic mug walnut desk lamp usb cable "
         "charger wireless mouse keyboard silver ring gold chain watch strap denim jacket wool scarf").split()


def money(cents: int) -> dict:
    return {"value": f"{cents // 100}.{cents % 100:02d}", "currency": "USD"}


def make_order(i: int, rng: random.Random) -> dict[str, Any]:
    """An eBay getOrders-shaped record of about 1 KB."""
    created = f"2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.000Z"
    sub, ship = 500 + (i * 37) % 20000, 300 + i % 900
    tax = sub * 8 // 100
    title = " ".join(rng.choice(WORDS) for _ in range(6)).title()
    buyer = f"buyer_{(i * 7919) % 50000}"
    return {
        "orderId": f"{10 + i % 90:02d}-{10000 + i:05d}-{(i * 104729) % 100000:05d}",
        "creationDate": created,
        "lastModifiedDate": created,
        "orderFulfillmentStatus": "FULFILLED" if i % 3 else "NOT_STARTED",
        "orderPaymentStatus": "PAID",
        "sellerId": "bench-seller",
        "buyer": {"username": buyer, "taxAddress": {"city": "Springfield", "stateOrProvince": "IL",
                                                   "postalCode": f"{60000 + i % 999}", "countryCode": "US"}},
        "pricingSummary": {"priceSubtotal": money(sub), "deliveryCost": money(ship), "tax": money(tax),
                           "total": money(sub + ship + tax)},
        "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
        "paymentSummary": {"totalDueSeller": money(sub + ship), "refunds": []},
        "lineItems": [{
            "lineItemId": str(10_000_000_000 + i), "legacyItemId": str(300_000_000_000 + i % 5000),
            "sku": f"SKU-{i % 5000:05d}", "title": title, "quantity": 1 + i % 3,
            "lineItemCost": money(sub), "total": money(sub + ship + tax), "soldFormat": "FIXED_PRICE",
            "listingMarketplaceId": "EBAY_US", "lineItemFulfillmentStatus": "FULFILLED",
            "deliveryCost": {"shippingCost": money(ship)},
        }],
        "salesRecordReference": str(1000 + i),
        "totalMarketplaceFee": money((sub + ship + tax) * 13 // 100 + 30),
    }


def make_rows(records: list[dict], account_id: int = 1) -> list[dict]:
    """Exactly what PageWriter.map_records does for the upsert (minus children)."""
    rows = []
    for rec in records:
        row = S.map(rec)
        row["account_id"] = account_id
        data = upserts.payload_bytes(rec)
        row["raw"] = data.decode()
        row["payload_hash"] = upserts.payload_hash(data)
        row["run_id"] = 1
        rows.append(row)
    return rows


def serialisation_split(records: list[dict]) -> dict[str, float]:
    """Microseconds per record of each step of preparing a row (best of 3 over the sample)."""
    def best(fn) -> float:
        out = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return min(out) / len(records) * 1e6

    blobs = [upserts.payload_bytes(r) for r in records]
    return {
        "map_us": best(lambda: [S.map(r) for r in records]),
        "orjson_sorted_us": best(lambda: [upserts.payload_bytes(r) for r in records]),
        "orjson_plain_us": best(lambda: [orjson.dumps(r) for r in records]),
        "stdlib_json_sorted_us": best(lambda: [json.dumps(r, sort_keys=True, separators=(",", ":")).encode()
                                               for r in records]),
        "blake2b_us": best(lambda: [hashlib.blake2b(b, digest_size=16).digest() for b in blobs]),
        "decode_us": best(lambda: [b.decode() for b in blobs]),
        "json_bytes_avg": sum(map(len, blobs)) / len(blobs),
    }


# ---------------------------------------------------------------- writers

def _copy_tuple(r: dict) -> tuple:
    return tuple(r.get(c) for c in COLS)


async def copy_rows(engine, table: str, rows: list[dict], page: int | None) -> float:
    """COPY (text format via psycopg's C adapters) of the prepared rows; one commit per page or one in all."""
    t = Timer()
    pages = [rows[i:i + page] for i in range(0, len(rows), page)] if page else [rows]
    for chunk in pages:
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            pg = raw.driver_connection
            async with pg.cursor() as cur:
                async with cur.copy(f"copy {table} ({', '.join(COLS)}) from stdin") as cp:
                    for r in chunk:
                        await cp.write_row(_copy_tuple(r))
    return t.s


async def upsert_rows(engine, rows: list[dict], page: int, expect: str) -> tuple[float, upserts.UpsertResult]:
    total = upserts.UpsertResult()
    expect_new = False
    t = Timer()
    for i in range(0, len(rows), page):
        async with engine.begin() as conn:
            res = await upserts.upsert(conn, S.table, S.key, rows[i:i + page], expect_new=expect_new)
        expect_new = res.inserted > 0 and not res.updated and not res.unchanged  # as PageWriter._write
        total.add(res)
    secs = t.s
    n = len(rows)
    want = {"insert": (n, 0, 0), "unchanged": (0, 0, n)}[expect]
    got = (total.inserted, total.updated, total.unchanged)
    if got != want or (expect == "insert" and len(total.changed_keys) != n):
        raise AssertionError(f"upsert counts {got}, expected {want}")
    return secs, total


ROW_SQL = sa.text(f"insert into orders_loop ({', '.join(COLS)}) values ({', '.join(':' + c for c in COLS)})")
ROW_SQL_JSONB = sa.text(f"insert into orders_loop ({', '.join(COLS)}) values "
                        f"({', '.join(('cast(:raw as jsonb)' if c == 'raw' else ':' + c) for c in COLS)})")


async def row_loop(engine, rows: list[dict]) -> float:
    t = Timer()
    for r in rows:
        async with engine.begin() as conn:
            await conn.execute(ROW_SQL_JSONB, {c: r.get(c) for c in COLS})
    return t.s


async def reset(engine, *tables: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"truncate {', '.join(tables)}"))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            await conn.execute(sa.text("checkpoint"))  # start each timed phase with no dirty backlog
        except Exception:
            pass


async def count(engine, table: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(f"select count(*) from {table}"))).scalar()


# ---------------------------------------------------------------- where the time of one upsert goes

async def time_split(engine, rows: list[dict]) -> dict[str, float]:
    """For a page of 200 new rows: client-side parameter building (_params), psycopg's adaptation of
    those parameters, and the remainder (round trip + server execution), in microseconds per row."""
    from psycopg.adapt import PyFormat

    page = rows[:PAGE]
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        params, _ = upserts._params(S.table, page)
    params_us = (time.perf_counter() - t) / reps / len(page) * 1e6

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg = raw.driver_connection
        from psycopg.adapt import Transformer
        tx = Transformer(pg)
        vals = list(params.values())
        t = time.perf_counter()
        for _ in range(reps):
            tx.dump_sequence(vals, [PyFormat.AUTO] * len(vals))
        adapt_us = (time.perf_counter() - t) / reps / len(page) * 1e6
    return {"params_us": params_us, "adapt_us": adapt_us}


def profile_summary(prof: cProfile.Profile, top: int = 12) -> list[str]:
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
    return lines[start:start + top + 1]


# ---------------------------------------------------------------- main

async def run(args) -> dict:
    n = args.rows
    rng = random.Random(7)
    say(f"building {n} order-like records ...")
    records = [make_order(i, rng) for i in range(n)]
    t = Timer()
    rows = make_rows(records)
    prep_s = t.s
    split = serialisation_split(records[:5000])
    avg_json = split["json_bytes_avg"]
    say(f"  {n} rows prepared in {prep_s:.2f}s ({prep_s / n * 1e6:.1f} us/row); payload {avg_json:.0f} B avg")

    with server() as srv:
        url = srv.create_db("bench_upsert")
        say(f"database: {srv.describe()}, PostgreSQL {srv.version()}, synchronous_commit="
            f"{srv.setting('synchronous_commit')}, fsync={srv.setting('fsync')}")
        s = settings(Path("/tmp"), url)
        engine = db.make_async_engine(s, "bench", pool_size=2, max_overflow=0)
        try:
            async with engine.begin() as conn:
                for tbl in ("orders_copy", "orders_loop"):
                    await conn.execute(sa.text(f"create table {tbl} (like orders including all)"))
            split.update(await time_split(engine, rows))

            batch = s.write_batch_rows  # the runner's default write batch (config)
            res: dict[str, list[float]] = {k: [] for k in
                                           ("copy", "copy_pages", "upsert", "resync", "upsert_page", "resync_page",
                                            "upsert_5000")}
            for rnd in range(args.rounds):
                say(f"round {rnd + 1}/{args.rounds}")
                # interleaved: baseline, candidate, baseline-variant, candidate-variants
                await reset(engine, "orders_copy")
                secs = await copy_rows(engine, "orders_copy", rows, None)
                assert await count(engine, "orders_copy") == n
                res["copy"].append(n / secs)
                say(f"  copy (one COPY)                 {n / secs:10.0f} rows/s  {secs:6.2f}s")

                for name, size in (("", batch), ("_page", PAGE)):
                    await reset(engine, "orders")
                    secs, _ = await upsert_rows(engine, rows, size, "insert")
                    res[f"upsert{name}"].append(n / secs)
                    say(f"  upsert, {size:>4} rows per transaction {n / secs:10.0f} rows/s  {secs:6.2f}s")
                    secs, _ = await upsert_rows(engine, rows, size, "unchanged")
                    res[f"resync{name}"].append(n / secs)
                    say(f"  re-sync unchanged, {size:>4} rows/tx {n / secs:10.0f} rows/s  {secs:6.2f}s")

                await reset(engine, "orders_copy")
                secs = await copy_rows(engine, "orders_copy", rows, PAGE)
                res["copy_pages"].append(n / secs)
                say(f"  copy, one COPY+commit per 200   {n / secs:10.0f} rows/s  {secs:6.2f}s")

                await reset(engine, "orders")
                secs, _ = await upsert_rows(engine, rows, 5000, "insert")
                res["upsert_5000"].append(n / secs)
                say(f"  upsert, 5000 rows per transaction {n / secs:8.0f} rows/s  {secs:6.2f}s")

            await reset(engine, "orders_loop")
            loop_n = min(args.loop_rows, n)
            secs = await row_loop(engine, rows[:loop_n])
            assert await count(engine, "orders_loop") == loop_n
            loop_rps = loop_n / secs
            say(f"  row-per-commit loop  {loop_rps:10.0f} rows/s  {secs:6.2f}s for {loop_n} rows "
                f"(extrapolated: {n} rows would take ~{n / loop_rps:.0f}s)")

            profile_lines: list[str] = []
            if args.profile:
                await reset(engine, "orders")
                prof = cProfile.Profile()
                prof.enable()
                await upsert_rows(engine, rows[:min(n, 20000)], batch, "insert")
                prof.disable()
                profile_lines = profile_summary(prof)
        finally:
            await engine.dispose()

    med = {k: statistics.median(v) for k, v in res.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(res[a], res[b]))

    ratios = {
        "insert_vs_copy": ratio("upsert", "copy"),
        "resync_vs_copy": ratio("resync", "copy"),
        "insert_page_vs_copy": ratio("upsert_page", "copy"),
        "insert_page_vs_copy_pages": ratio("upsert_page", "copy_pages"),
        "resync_page_vs_copy": ratio("resync_page", "copy"),
        "insert5000_vs_copy": ratio("upsert_5000", "copy"),
        "insert_vs_row_loop": med["upsert"] / loop_rps,
        "insert_page_vs_row_loop": med["upsert_page"] / loop_rps,
    }
    goals = {"insert_vs_copy>=0.70": ratios["insert_vs_copy"] >= 0.70,
             "resync_vs_copy>=0.85": ratios["resync_vs_copy"] >= 0.85,
             "insert_vs_row_loop>=15": ratios["insert_vs_row_loop"] >= 15}

    say("")
    say("where a row's client time goes (us/row):")
    say(f"  map (stream.map)            {split['map_us']:7.1f}")
    say(f"  orjson dumps, sorted keys   {split['orjson_sorted_us']:7.1f}   (unsorted {split['orjson_plain_us']:.1f}; "
        f"stdlib json sorted {split['stdlib_json_sorted_us']:.1f})")
    say(f"  blake2b-128                 {split['blake2b_us']:7.1f}")
    say(f"  bytes -> str decode         {split['decode_us']:7.1f}")
    say(f"  upsert _params (columns)    {split['params_us']:7.1f}")
    say(f"  psycopg adapts the arrays   {split['adapt_us']:7.1f}")
    say(f"  => preparing a row (runner side): {prep_s / n * 1e6:.1f} us = {n / prep_s:.0f} rows/s on one core")
    if profile_lines:
        say("cProfile of 20k rows through upsert (runner's batches), by own time:")
        for ln in profile_lines:
            say("  " + ln)
    say("")
    say("rows/s (median of rounds): " + ", ".join(f"{k} {v:.0f}" for k, v in med.items())
        + f", row_loop {loop_rps:.0f}")
    say("ratios (median of per-round ratios): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    say("goals: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in goals.items()))
    return {"rows": n, "rounds": args.rounds, "payload_bytes_avg": round(avg_json),
            "rows_per_s": {k: round(v) for k, v in med.items()} | {"row_loop": round(loop_rps)},
            "row_loop_rows": loop_n, "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "serialisation_us_per_row": {k: round(v, 2) for k, v in split.items()},
            "prepare_us_per_row": round(prep_s / n * 1e6, 2), "goals": goals}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rows", type=int, default=None, help="records (default 100000; --quick 20000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; --quick 1)")
    p.add_argument("--loop-rows", type=int, default=2000, help="rows for the row-per-commit loop")
    p.add_argument("--profile", action="store_true", help="also cProfile 20k rows through upsert")
    args = p.parse_args()
    args.rows = args.rows or (20000 if args.quick else 100000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.quick:
        args.loop_rows = min(args.loop_rows, 500)
    result = asyncio.run(run(args))
    emit_json("upsert", result)


if __name__ == "__main__":
    main()
