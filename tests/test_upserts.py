"""Batched upserts: set-based, change detection, children, quarantine; statement counts prove batching."""

import asyncio
import json

import pytest
import sqlalchemy as sa

from sync_core import db, upserts
from sync_core.streams import STREAMS
from sync_core.streams.base import Invalid


def order(i, modified="2026-10-01T00:00:00.000Z", total="10.00", items=2):
    return {"orderId": f"O-{i}", "creationDate": "2026-09-30T00:00:00.000Z", "lastModifiedDate": modified,
            "orderFulfillmentStatus": "NOT_STARTED", "orderPaymentStatus": "PAID", "buyer": {"username": f"b{i}"},
            "pricingSummary": {"total": {"value": total, "currency": "USD"}},
            "lineItems": [{"lineItemId": f"L-{i}-{j}", "sku": f"SKU-{j}", "legacyItemId": "123", "title": "t",
                           "quantity": 1, "total": {"value": "5.00", "currency": "USD"}} for j in range(items)]}


def rows_for(stream, aid, records):
    out = []
    for r in records:
        row = stream.map(r)
        data = upserts.payload_bytes(r)
        row.update(account_id=aid, raw=data.decode(), payload_hash=upserts.payload_hash(data), run_id=None)
        out.append(row)
    return out


@pytest.fixture
async def engine(settings):
    eng = db.make_async_engine(settings, "test")
    yield eng
    await eng.dispose()


async def test_insert_update_unchanged_counts(engine):
    s = STREAMS["orders"]
    recs = [order(i) for i in range(300)]
    async with engine.begin() as conn:
        r1 = await upserts.upsert(conn, s.table, s.key, rows_for(s, 1, recs))
    assert (r1.inserted, r1.updated, r1.unchanged) == (300, 0, 0)
    recs[5] = order(5, total="11.00")
    recs[7] = order(7, modified="2026-10-02T00:00:00.000Z")
    async with engine.begin() as conn:
        r2 = await upserts.upsert(conn, s.table, s.key, rows_for(s, 1, recs))
    assert (r2.inserted, r2.updated, r2.unchanged) == (0, 2, 298)
    assert sorted(k[1] for k in r2.changed_keys) == ["O-5", "O-7"]
    async with engine.connect() as conn:
        v = (await conn.execute(sa.text("select total_value, total_currency from orders where order_id='O-5'"))).first()
        n = (await conn.execute(sa.text("select count(*) from orders"))).scalar()
    assert str(v.total_value) == "11.00" and v.total_currency == "USD" and n == 300


async def test_duplicate_keys_in_one_batch_collapse(engine):
    s = STREAMS["orders"]
    async with engine.begin() as conn:
        r = await upserts.upsert(conn, s.table, s.key, rows_for(s, 1, [order(1), order(1, total="2.00")]))
    assert r.inserted == 1


async def test_statement_count_is_constant_per_page(engine, monkeypatch):
    """The number of statements (and COPYs) per page does not grow with the page: no per-row loop, whether the
    page's rows are all new (probe + COPY under a savepoint) or already stored and unchanged (probe only)."""
    import psycopg

    s = STREAMS["orders"]
    counts: list[int] = []

    def count(*a, **k):
        counts[-1] += 1

    real_copy = psycopg.AsyncCursor.copy

    def counting_copy(self, *a, **k):
        counts[-1] += 1
        return real_copy(self, *a, **k)

    monkeypatch.setattr(psycopg.AsyncCursor, "copy", counting_copy)
    sizes = (50, 200, 500)
    pages = {n: [order(10_000 * n + i) for i in range(n)] for n in sizes}
    results = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        for again in (False, True):
            for n in sizes:
                counts.append(0)
                async with engine.begin() as conn:
                    rows = rows_for(s, 2, pages[n])
                    res = await upserts.upsert(conn, s.table, s.key, rows)
                    child = [dict(cr, account_id=2) for r, rec in zip(rows, pages[n])
                             for cr in s.children[0].rows(rec, r)]
                    await upserts.replace_children(conn, s.children[0].table, 2, "order_id",
                                                   [k[1] for k in res.changed_keys], child)
                results.append((res.inserted, res.unchanged))
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert results == [(50, 0), (200, 0), (500, 0), (0, 50), (0, 200), (0, 500)]
    # new: probe, savepoint, COPY, release, delete children, COPY children
    assert counts[:3] == [6, 6, 6], counts
    # stored and unchanged: the probe of keys and hashes only (nothing else to write, no children to replace)
    assert counts[3:] == [1, 1, 1], counts
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("select count(*) from order_line_items"))).scalar() == 2 * 750
        assert (await conn.execute(sa.text("select count(*) from orders"))).scalar() == 750


async def test_copy_fast_path_falls_back_when_a_key_appears(engine):
    """A page whose keys were all new when probed, one of which another writer stores before the COPY ends,
    still ends with every row stored once: the COPY waits for the other transaction, fails with a unique
    violation when it commits, rolls back to its savepoint, and the upsert statement takes over."""
    s = STREAMS["orders"]
    rows = rows_for(s, 3, [order(i) for i in range(100)])

    async def page():
        async with engine.begin() as conn:
            return await upserts.upsert(conn, s.table, s.key, rows)

    async with engine.connect() as other:
        await other.begin()
        await upserts.upsert(other, s.table, s.key, rows_for(s, 3, [order(0, total="99.00")]))  # not committed
        task = asyncio.create_task(page())
        await asyncio.sleep(1.0)
        assert not task.done()  # the COPY waits on the other writer's key
        await other.commit()
    res = await asyncio.wait_for(task, 30)
    assert (res.inserted, res.updated, res.unchanged) == (99, 1, 0)
    async with engine.connect() as conn:
        n = (await conn.execute(sa.text("select count(*) from orders where account_id = 3"))).scalar()
        v = (await conn.execute(sa.text("select total_value from orders where account_id = 3 and order_id = 'O-0'"))).scalar()
    assert n == 100 and str(v) == "10.00"


async def test_children_replaced_atomically(engine):
    s = STREAMS["orders"]
    child = s.children[0]
    rec = order(1, items=3)
    for items in (3, 1):
        rec = order(1, items=items, total=str(items))
        async with engine.begin() as conn:
            rows = rows_for(s, 1, [rec])
            res = await upserts.upsert(conn, s.table, s.key, rows)
            await upserts.replace_children(conn, child.table, 1, "order_id", [k[1] for k in res.changed_keys],
                                           [dict(c, account_id=1) for c in child.rows(rec, rows[0])])
    async with engine.connect() as conn:
        ids = (await conn.execute(sa.text("select line_item_id from order_line_items order by 1"))).scalars().all()
    assert ids == ["L-1-0"]


def test_mappers_reject_malformed_records():
    m = STREAMS["orders"].map
    bad = [{}, {"orderId": "x"}, dict(order(1), pricingSummary={"total": 12.5}),
           dict(order(1), lastModifiedDate="yesterday"), dict(order(1), orderId={"a": 1})]
    for rec in bad:
        with pytest.raises(Invalid):
            m(rec)
    assert m(order(1))["total_value"] is not None


async def test_quarantine_and_mark_absent(engine):
    s = STREAMS["inventory_items"]
    recs = [{"sku": f"S{i}", "product": {"title": "x"}} for i in range(5)]
    async with engine.begin() as conn:
        await upserts.upsert(conn, s.table, s.key, rows_for(s, 1, recs), reactivate="removed_at")
        n = await upserts.mark_absent(conn, s.table, 1, "sku", ["S0", "S1"], "removed_at")
        q = await upserts.quarantine(conn, None, None, "inventory_items", [("S9", "missing sku", {"x": 1})])
    assert n == 3 and q == 1
    async with engine.begin() as conn:  # S2 comes back
        r = await upserts.upsert(conn, s.table, s.key, rows_for(s, 1, recs[2:3]), reactivate="removed_at")
    assert r.updated == 1
    async with engine.connect() as conn:
        gone = (await conn.execute(sa.text("select sku from inventory_items where removed_at is not null order by 1"))).scalars().all()
    assert gone == ["S3", "S4"]


async def test_copy_path_stores_values_exactly(engine):
    """Rows written by the COPY path read back equal to what was given: text with tabs, newlines, backslashes
    and non-ASCII, NULLs, numerics, timestamps, booleans, bytea hashes and JSON with escapes."""
    s = STREAMS["orders"]
    tricky = ["tab\there", "new\nline", "cr\rx", "back\\slash \\N", "quote\"d 'x'", "ünïcødé ✓", "\\", ""]
    recs = []
    for i in range(40):
        rec = order(i, total=f"{i}.{i % 100:02d}")
        rec["buyer"] = {"username": tricky[i % len(tricky)]}
        rec["note"] = tricky[(i + 3) % len(tricky)] + "\u00e9\\\"\n"
        recs.append(rec)
    rows = rows_for(s, 4, recs)
    rows[1]["payment_status"] = None
    # raw as the writer hands it (UTF-8 bytes), as text, and as JSON text with whitespace between tokens
    for i, r in enumerate(rows):
        if i % 3 == 1:
            r["raw"] = r["raw"].encode() if isinstance(r["raw"], str) else r["raw"]
        elif i % 3 == 2:
            r["raw"] = json.dumps(recs[i], indent="\t") + "\r\n"
    async with engine.begin() as conn:
        res = await upserts.upsert(conn, s.table, s.key, rows)
    assert res.inserted == 40
    async with engine.connect() as conn:
        got = {r.order_id: r for r in (await conn.execute(sa.text(
            "select order_id, buyer, payment_status, total_value, last_modified_date, payload_hash, raw "
            "from orders where account_id = 4"))).all()}
    for row, rec in zip(rows, recs):
        g = got[row["order_id"]]
        assert g.buyer == rec["buyer"]["username"]
        assert g.payment_status == row["payment_status"]
        assert g.total_value == row["total_value"]
        assert g.last_modified_date == row["last_modified_date"]
        assert bytes(g.payload_hash) == row["payload_hash"]
        assert g.raw == rec
    # the same records again: every one is recognised as unchanged (hashes stored exactly)
    async with engine.begin() as conn:
        again = await upserts.upsert(conn, s.table, s.key, rows_for(s, 4, recs))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 40)


async def test_expect_new_guess_wrong_falls_back(engine):
    """``expect_new`` on a page whose keys are partly stored: the COPY's unique violation rolls back to its
    savepoint and the page is upserted normally in the same transaction (counts and values right)."""
    s = STREAMS["orders"]
    recs = [order(i) for i in range(60)]
    async with engine.begin() as conn:
        first = await upserts.upsert(conn, s.table, s.key, rows_for(s, 5, recs[:30]), expect_new=True)
    assert (first.inserted, first.updated, first.unchanged) == (30, 0, 0)
    recs[3] = order(3, total="42.00")
    async with engine.begin() as conn:
        res = await upserts.upsert(conn, s.table, s.key, rows_for(s, 5, recs), expect_new=True)
        n = (await conn.execute(sa.text("select count(*) from orders where account_id = 5"))).scalar()
    assert (res.inserted, res.updated, res.unchanged) == (30, 1, 29) and n == 60
    assert sorted(k[1] for k in res.changed_keys) == sorted(["O-3", *(f"O-{i}" for i in range(30, 60))])


def test_payload_bytes_is_canonical_whatever_the_keys():
    """Sorted keys (the hash does not depend on eBay's key order); a dict with non-str keys (not JSON, but a
    record built in code may have one) is still serialised, as with OPT_NON_STR_KEYS."""
    a = {"b": 1, "a": {"y": [1, {"d": None, "c": "é"}], "x": 2}}
    b = {"a": {"x": 2, "y": [1, {"c": "é", "d": None}]}, "b": 1}
    assert upserts.payload_bytes(a) == upserts.payload_bytes(b) == \
        b'{"a":{"x":2,"y":[1,{"c":"\xc3\xa9","d":null}]},"b":1}'
    assert upserts.payload_bytes({1: "x", "a": {2: True}}) == b'{"1":"x","a":{"2":true}}'


async def test_engines_never_keep_a_generic_plan(engine):
    """A backfill fills an empty (or truncated) table. psycopg prepares a statement after 5 runs on a
    connection, and PostgreSQL may then keep one generic plan for it, made when it re-plans: the probe run on
    the empty table at the start of a backfill left a plan that seq-scanned the table for every key of every
    later page until autovacuum's ANALYZE (bench.upsert "re-sync unchanged, 200 rows/tx": 0.6 s per 200-row
    page of 20,000 rows instead of 3 ms; docs/performance.md "Upsert"). Every engine's sessions force custom
    plans, planned with each page's own arrays; and the probe of a page is then index lookups only."""
    s = STREAMS["orders"]
    rows = rows_for(s, 9, [order(i) for i in range(400)])
    scans = sa.text("select seq_scan, idx_scan from pg_stat_xact_user_tables where relname = 'orders'")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("show plan_cache_mode"))).scalar() == "force_custom_plan"
        await conn.commit()
        async with conn.begin():
            await upserts.upsert(conn, s.table, s.key, rows)
        for i in range(0, len(rows), 200):
            async with conn.begin():  # (the view also shows this backend's counts not yet flushed: deltas)
                seq0, idx0 = (await conn.execute(scans)).one()
                res = await upserts.upsert(conn, s.table, s.key, rows[i:i + 200])
                seq1, idx1 = (await conn.execute(scans)).one()
            assert res.unchanged == 200
            assert seq1 == seq0 and idx1 - idx0 == 200, f"page {i // 200}: {seq1 - seq0} seq scans of orders"
