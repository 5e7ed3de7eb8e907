"""Batched upserts: set-based, change detection, children, quarantine; statement counts prove batching."""

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


async def test_statement_count_is_constant_per_page(engine):
    """One upsert statement whatever the page size (no per-row loop)."""
    s = STREAMS["orders"]
    counts = []

    def count(*a, **k):
        counts[-1] += 1

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        for n in (1, 50, 200):
            counts.append(0)
            async with engine.begin() as conn:
                rows = rows_for(s, 2, [order(1000 * n + i) for i in range(n)])
                res = await upserts.upsert(conn, s.table, s.key, rows)
                child = [dict(cr, account_id=2) for r, rec in zip(rows, [order(1000 * n + i) for i in range(n)])
                         for cr in s.children[0].rows(rec, r)]
                await upserts.replace_children(conn, s.children[0].table, 2, "order_id",
                                               [k[1] for k in res.changed_keys], child)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert counts[0] == counts[1] == counts[2] == 3  # upsert + delete children + insert children
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("select count(*) from order_line_items"))).scalar() == 2 * 251


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
