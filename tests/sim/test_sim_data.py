"""Generated data: determinism, realism invariants, activity over time, touch, truth == API."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from simfixtures import NOW, authed, follow_all, make_sim

from sync_core.sim import SellerSpec, SimConfig, Simulator
from sync_core.sim.data import STREAMS
from sync_core.sim.util import fmt_ms

ORDERS = "/sell/fulfillment/v1/order"


def ts(dt) -> str:
    return fmt_ms(int(dt.timestamp() * 1000))


def test_same_seed_same_data_different_seed_different_data():
    a, b, c = make_sim(), make_sim(), make_sim(seed=8)
    for stream in STREAMS:
        assert a.truth("alice", stream) == b.truth("alice", stream), stream
    assert a.truth("alice", "orders") != c.truth("alice", "orders")
    assert a.truth("alice", "orders") != a.truth("bob", "orders")


def test_volume_knobs_are_exact_at_the_anchor(sim):
    assert len(sim.truth("alice", "orders")) == 500
    assert len(sim.truth("alice", "transactions")) == 1000
    assert len(sim.truth("alice", "payouts")) == 30
    assert len(sim.truth("alice", "disputes")) == 20
    assert len(sim.truth("alice", "conversations")) == 40
    assert len(sim.truth("alice", "inventory_items")) == 120
    assert len(sim.truth("bob", "orders")) == 60


def test_realistic_shapes_and_consistency(sim):
    orders = sim.truth("alice", "orders")
    money_re = re.compile(r"^-?\d+\.\d\d$")
    for o in orders:
        assert re.match(r"^\d\d-\d{5}-\d{5}$", o["orderId"])
        assert o["creationDate"] <= o["lastModifiedDate"] <= ts(NOW)
        ps = o["pricingSummary"]
        for k in ("priceSubtotal", "deliveryCost", "tax", "total"):
            assert money_re.match(ps[k]["value"]) and ps[k]["currency"] == "USD"
        assert Decimal(ps["total"]["value"]) == sum(Decimal(ps[k]["value"]) for k in ("priceSubtotal", "deliveryCost", "tax"))
        assert Decimal(ps["total"]["value"]) == sum(Decimal(li["total"]["value"]) for li in o["lineItems"])
        assert o["lineItems"] and o["buyer"]["username"]
    # late modifications exist (lastModifiedDate well after creation), and some orders are not shipped yet
    assert any(o["lastModifiedDate"] > ts(NOW - timedelta(days=400)) and
               o["creationDate"] < ts(NOW - timedelta(days=400)) for o in orders) or \
        sum(o["lastModifiedDate"] != o["creationDate"] for o in orders) > 400
    assert {"FULFILLED", "NOT_STARTED"} <= {o["orderFulfillmentStatus"] for o in orders}
    assert {"PAID", "PARTIALLY_REFUNDED", "FULLY_REFUNDED"} <= {o["orderPaymentStatus"] for o in orders}
    # SKUs are shared between orders, inventory items, offers and the active inventory report
    order_skus = {li.get("sku") for o in orders for li in o["lineItems"]} - {None}
    item_skus = {i["sku"] for i in sim.truth("alice", "inventory_items")}
    offer_skus = {o["sku"] for o in sim.truth("alice", "offers")}
    report_skus = {r.get("SKU") for r in sim.truth("alice", "active_inventory")} - {None}
    assert offer_skus <= item_skus and order_skus & item_skus and order_skus - item_skus
    assert report_skus & offer_skus and report_skus - item_skus  # listings made outside the Inventory API
    assert any("SKU" not in r for r in sim.truth("alice", "active_inventory"))
    # SALE transactions reference real orders (transactionId == orderId); statuses vary
    tx = sim.truth("alice", "transactions")
    ids = {o["orderId"] for o in orders}
    sales = [t for t in tx if t["transactionType"] == "SALE"]
    assert sales and all(t["orderId"] in ids and t["transactionId"] == t["orderId"] for t in sales)
    assert {"SALE", "REFUND", "SHIPPING_LABEL", "DISPUTE"} <= {t["transactionType"] for t in tx}
    assert {"PAYOUT", "FUNDS_AVAILABLE_FOR_PAYOUT"} <= {t["transactionStatus"] for t in tx}
    payouts = {p["payoutId"]: p for p in sim.truth("alice", "payouts")}
    assert all(t["payoutId"] in payouts for t in tx if t["transactionStatus"] == "PAYOUT")
    # payout amount and count equal the sum of its transactions
    for pid, p in list(payouts.items())[:5]:
        mine = [t for t in tx if t.get("payoutId") == pid]
        if len(mine) == p["transactionCount"]:  # all of it visible in our history window
            total = sum(Decimal(t["amount"]["value"]) * (1 if t["bookingEntry"] == "CREDIT" else -1) for t in mine)
            assert total == Decimal(p["amount"]["value"])
    disputes = sim.truth("alice", "disputes")
    assert all(d["orderId"] in ids for d in disputes)


async def test_truth_equals_api(client, sim):
    recs, _, _ = await follow_all(client, ORDERS, "orders",
                                  {"filter": f"lastmodifieddate:[{ts(NOW - timedelta(days=800))}..]", "limit": 200})
    assert recs == sim.truth("alice", "orders")


async def test_clock_advance_reveals_new_records_and_changes():
    sim = make_sim(sellers=[SellerSpec("alice", orders=3000, transactions=5000, payouts=50, days=365)])
    c = await authed(sim)
    try:
        flt = {"filter": f"creationdate:[{ts(NOW - timedelta(days=1))}..]", "limit": 200}
        before = (await c.get(ORDERS, params=flt)).json()["total"]
        n_tx = len(sim.truth("alice", "transactions"))
        tx_status = {t["transactionId"] + t["transactionType"]: t["transactionStatus"] for t in sim.truth("alice", "transactions")}
        sim.advance(5 * 86400)
        assert (await c.get(ORDERS, params=flt)).status_code == 401  # 2 h access token expired meanwhile
        c.headers["Authorization"] = f"Bearer {sim.mint_access_token('alice')}"
        after = (await c.get(ORDERS, params=flt)).json()["total"]
        assert after > before
        assert len(sim.truth("alice", "orders")) > 3000
        assert len(sim.truth("alice", "transactions")) > n_tx
        # transactions change status without changing transactionDate
        changed = [t for t in sim.truth("alice", "transactions")
                   if t["transactionId"] + t["transactionType"] in tx_status
                   and tx_status[t["transactionId"] + t["transactionType"]] != t["transactionStatus"]]
        assert changed
        # incremental sync by lastmodifieddate sees orders shipped since
        r = await c.get(ORDERS, params={"filter": f"lastmodifieddate:[{ts(NOW)}..]", "limit": 200})
        body = r.json()
        old = [o for o in body["orders"] if o["creationDate"] < ts(NOW)]
        assert old and all(o["lastModifiedDate"] >= ts(NOW) for o in old)
    finally:
        await c.aclose()


async def test_touch_bumps_last_modified(client, sim):
    sim.advance(3600)
    now = ts(sim.now())
    ids = sim.touch("alice", "orders", n=3)
    assert len(ids) == 3
    r = await client.get(ORDERS, params={"filter": f"lastmodifieddate:[{now}..]"})
    got = {o["orderId"]: o for o in r.json()["orders"]}
    assert set(ids) <= set(got)
    for oid in ids:
        assert got[oid]["lastModifiedDate"] == now and got[oid]["buyerCheckoutNotes"].startswith("Order updated")
        assert got[oid]["creationDate"] < now
    # the admin endpoint does the same
    r = await client.post("/sim/sellers/alice/touch", params={"kind": "order", "n": 2})
    assert r.status_code == 200 and len(r.json()["ids"]) == 2
    # other kinds
    for kind in ("transactions", "disputes", "conversations", "inventory_items", "offers", "payouts"):
        assert sim.touch("alice", kind, n=1), kind
    # touching a conversation adds a new unread message now
    cid = sim.touch("alice", "conversations", n=1)[0]
    msgs = sim.truth("alice", "messages", conversation_id=cid)
    assert msgs[-1]["createdDate"] == ts(sim.now()) and msgs[-1]["readStatus"] is False


def test_touch_is_reproducible():
    a, b = make_sim(), make_sim()
    assert a.touch("alice", "orders", 5) == b.touch("alice", "orders", 5)


def test_real_clock_mode_and_lazy_build():
    sim = Simulator(SimConfig(seed=3, sellers=[SellerSpec("zed", orders=50, transactions=80, payouts=5)]))
    assert not sim.clock.frozen
    assert sim._data == {}
    orders = sim.truth("zed", "orders")
    assert 45 <= len(orders) <= 60  # anchor = start of today; today's orders so far are visible too
    sim.set_now(NOW)
    assert sim.clock.frozen and sim.now() == NOW


def test_big_volume_builds_quickly():
    import time

    t0 = time.perf_counter()
    sim = Simulator(SimConfig(seed=1, now=NOW, sellers=[SellerSpec("big", orders=20_000, transactions=60_000,
                                                                     payouts=100, disputes=50, conversations=100,
                                                                     inventory_items=500)]))
    sim.prepare()
    assert time.perf_counter() - t0 < 10
    d = sim.data("big")
    assert d.n_orders >= 20_000 and d.n_tx >= 60_000
