"""Paging (``next`` to exactly ``total`` with the minimum number of calls), limit caps, 204s, filters."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from simfixtures import NOW, authed, follow_all
from simschema import validate_error

from sync_core.sim.util import fmt_ms, parse_ts

ORDERS = "/sell/fulfillment/v1/order"
TX = "/sell/finances/v1/transaction"
PAYOUTS = "/sell/finances/v1/payout"
DISPUTES = "/sell/fulfillment/v1/payment_dispute_summary"
CONVS = "/commerce/message/v1/conversation"
ITEMS = "/sell/inventory/v1/inventory_item"
OFFERS = "/sell/inventory/v1/offer"


def ts(dt) -> str:
    return fmt_ms(int(dt.timestamp() * 1000))


async def test_orders_paging_exact(client, sim):
    frm = ts(NOW - timedelta(days=730))
    flt = f"lastmodifieddate:[{frm}..]"
    recs, total, calls = await follow_all(client, ORDERS, "orders", {"filter": flt, "limit": 37})
    truth = sim.truth("alice", "orders")
    assert total == len(truth) == len(recs) == 500
    assert calls == math.ceil(total / 37)
    assert [o["orderId"] for o in recs] == [o["orderId"] for o in truth]
    assert len({o["orderId"] for o in recs}) == total
    # newest creationDate first
    created = [o["creationDate"] for o in recs]
    assert created == sorted(created, reverse=True)


async def test_next_is_absolute_on_request_host_and_only_when_more(sim):
    c = await authed(sim, base_url="http://my-sim-host:9999")
    try:
        r = await c.get(ORDERS, params={"limit": 10})
        body = r.json()
        assert body["next"].startswith("http://my-sim-host:9999/sell/fulfillment/v1/order?")
        assert "offset=10" in body["next"] and "limit=10" in body["next"]
        assert "prev" not in body
        r = await c.get(ORDERS, params={"limit": 200})
        body = r.json()
        assert body["total"] <= 200 and "next" not in body
        # the last page of a multi-page result has prev, not next
        total = body["total"]
        r = await c.get(ORDERS, params={"limit": 10, "offset": total - 3})
        body = r.json()
        assert len(body["orders"]) == 3 and "next" not in body and "prev" in body
    finally:
        await c.aclose()


async def test_exact_multiple_of_limit_needs_no_extra_call(sim):
    c = await authed(sim)
    try:
        total = (await c.get(TX, params={"limit": 1})).json()["total"]
        recs, t2, calls = await follow_all(c, TX, "transactions", {"limit": total})
        assert t2 == total and len(recs) == total and calls == 1
    finally:
        await c.aclose()


async def test_limit_caps(client):
    for path, params in [(ORDERS, {"limit": 201}), (ORDERS, {"limit": 0}), (ORDERS, {"limit": "x"}),
                         (DISPUTES, {"limit": 201}), (DISPUTES, {"limit": 0}),
                         (TX, {"limit": 201}), (PAYOUTS, {"limit": 201}),
                         (CONVS, {"conversation_type": "FROM_MEMBERS", "limit": 51}),
                         (ITEMS, {"limit": 201}), (ITEMS, {"limit": 0}),
                         (ORDERS, {"offset": -1})]:
        r = await client.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        validate_error(r.json())
    for path, params in [(ORDERS, {"limit": 200}), (TX, {"limit": 200}), (ITEMS, {"limit": 200}),
                         (CONVS, {"conversation_type": "FROM_MEMBERS", "limit": 50})]:
        assert (await client.get(path, params=params)).status_code == 200


async def test_defaults(client):
    assert (await client.get(ORDERS)).json()["limit"] == 50
    assert (await client.get(TX)).json()["limit"] == 20
    assert (await client.get(DISPUTES)).json()["limit"] == 200
    assert (await client.get(CONVS, params={"conversation_type": "FROM_MEMBERS"})).json()["limit"] == 25
    assert (await client.get(ITEMS)).json()["limit"] == 25


async def test_finances_204_when_empty(client):
    for path, flt in [(TX, "transactionDate:[2030-01-01T00:00:00.000Z..2030-02-01T00:00:00.000Z]"),
                      (TX, "transactionDate:[2010-01-01T00:00:00.000Z..2010-02-01T00:00:00.000Z]"),
                      (PAYOUTS, "payoutDate:[2010-01-01T00:00:00.000Z..2010-02-01T00:00:00.000Z]"),
                      (TX, "transactionDate:[2025-05-01T00:00:00.000Z..],transactionType:{DISPUTE},orderId:{00-00000-00000}")]:
        r = await client.get(path, params={"filter": flt})
        assert r.status_code == 204, r.text
        assert r.content == b""


async def test_transactions_descending_and_window(client, sim):
    frm = NOW - timedelta(days=90)
    recs, total, calls = await follow_all(client, TX, "transactions",
                                          {"filter": f"transactionDate:[{ts(frm)}..{ts(NOW)}]", "limit": 200})
    assert len(recs) == total
    dates = [t["transactionDate"] for t in recs]
    assert dates == sorted(dates, reverse=True)
    truth = [t for t in sim.truth("alice", "transactions") if t["transactionDate"] >= ts(frm)]
    assert [(t["transactionId"], t["transactionType"]) for t in recs] == \
           [(t["transactionId"], t["transactionType"]) for t in truth]
    r = await client.get(TX, params={"filter": f"transactionDate:[{ts(frm - timedelta(days=1))}..{ts(NOW)}]"})
    assert r.status_code == 400 and "90" in r.json()["errors"][0]["longMessage"]


async def test_all_transactions_via_90_day_windows(client, sim):
    got = []
    end = NOW
    while end > NOW - timedelta(days=740):
        start = end - timedelta(days=90)
        r = await client.get(TX, params={"filter": f"transactionDate:[{ts(start)}..{ts(end - timedelta(milliseconds=1))}]",
                                         "limit": 200})
        if r.status_code == 200:
            recs, total, _ = await follow_all(client, TX, "transactions",
                                              {"filter": f"transactionDate:[{ts(start)}..{ts(end - timedelta(milliseconds=1))}]",
                                               "limit": 200})
            got += recs
        else:
            assert r.status_code == 204
        end = start
    assert len(got) == len(sim.truth("alice", "transactions")) == 1000


async def test_payouts_ascending_default_and_sort(client):
    flt = {"filter": "payoutDate:[2025-01-01T00:00:00.000Z..2025-06-01T00:00:00.000Z]"}
    asc = [p["payoutDate"] for p in (await client.get(PAYOUTS, params=flt)).json()["payouts"]]
    assert asc == sorted(asc) and len(asc) > 2
    desc = [p["payoutDate"] for p in (await client.get(PAYOUTS, params={**flt, "sort": "payoutDate"})).json()["payouts"]]
    assert desc == sorted(asc, reverse=True)


@pytest.mark.parametrize("encode", [True, False])
async def test_filter_brackets_encoded_and_not(client, encode):
    frm = "2025-05-01T00:00:00.000Z"
    if encode:
        url = f"{ORDERS}?filter=lastmodifieddate:%5B{frm}..%5D&limit=200"
    else:
        url = f"{ORDERS}?filter=lastmodifieddate:[{frm}..]&limit=200"
    r = await client.get(url)
    assert r.status_code == 200, r.text
    orders = r.json()["orders"]
    assert orders and all(o["lastModifiedDate"] >= frm for o in orders)
    # both spellings give the same answer; so does httpx's own encoding of params
    r2 = await client.get(ORDERS, params={"filter": f"lastmodifieddate:[{frm}..]", "limit": 200})
    assert [o["orderId"] for o in r2.json()["orders"]] == [o["orderId"] for o in orders]
    # status filter with braces and pipe, encoded or not
    flt = "orderfulfillmentstatus:%7BNOT_STARTED%7CIN_PROGRESS%7D" if encode else "orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}"
    r = await client.get(f"{ORDERS}?filter=lastmodifieddate:%5B{frm}..%5D,{flt}&limit=200")
    assert r.status_code == 200
    assert all(o["orderFulfillmentStatus"] == "NOT_STARTED" for o in r.json()["orders"])


async def test_order_filters(client, sim):
    a, b = "2025-03-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z"
    recs, total, _ = await follow_all(client, ORDERS, "orders", {"filter": f"creationdate:[{a}..{b}]", "limit": 200})
    assert recs and all(a <= o["creationDate"] <= b for o in recs)
    assert total == sum(1 for o in sim.truth("alice", "orders") if a <= o["creationDate"] <= b)
    # creationdate wins over lastmodifieddate
    r = await client.get(ORDERS, params={"filter": f"lastmodifieddate:[2030-01-01T00:00:00.000Z..],creationdate:[{a}..{b}]"})
    assert r.json()["total"] == total
    # lastmodifieddate window [from..to]
    recs, total, _ = await follow_all(client, ORDERS, "orders", {"filter": f"lastmodifieddate:[{a}..{b}]", "limit": 200})
    assert all(a <= o["lastModifiedDate"] <= b for o in recs)
    assert total == sum(1 for o in sim.truth("alice", "orders") if a <= o["lastModifiedDate"] <= b)
    # no filter: last 90 days of creation
    body = (await client.get(ORDERS, params={"limit": 200})).json()
    cut = ts(NOW - timedelta(days=90))
    assert body["total"] == sum(1 for o in sim.truth("alice", "orders") if o["creationDate"] >= cut)
    # orderIds
    ids = [o["orderId"] for o in recs[:3]]
    body = (await client.get(ORDERS, params={"orderIds": ",".join(ids), "filter": "bogus"})).json()
    assert [o["orderId"] for o in body["orders"]] == ids
    for bad in ["lastmodifieddate:2025-01-01", "lastmodifieddate:[nope..]", "unknown:[..]", "lastmodifieddate:[..]",
                f"lastmodifieddate:[{b}..{a}]"]:
        r = await client.get(ORDERS, params={"filter": bad})
        assert r.status_code == 400, bad
        validate_error(r.json())


async def test_disputes_windows(client, sim):
    now_ms = int(NOW.timestamp() * 1000)
    r = await client.get(DISPUTES, params={"open_date_from": ts(NOW - timedelta(days=100)), "open_date_to": ts(NOW)})
    assert r.status_code == 400
    r = await client.get(DISPUTES, params={"open_date_from": ts(NOW - timedelta(days=600))})
    assert r.status_code == 400 and "18 months" in r.json()["errors"][0]["longMessage"]
    got = []
    start = NOW - timedelta(days=540)
    while start < NOW:
        end = min(start + timedelta(days=90), NOW)
        recs, total, _ = await follow_all(client, DISPUTES, "paymentDisputeSummaries",
                                          {"open_date_from": ts(start), "open_date_to": ts(end), "limit": 2})
        assert len(recs) == total
        got += recs
        start = end + timedelta(milliseconds=1)
    truth = [d for d in sim.truth("alice", "disputes") if parse_ts(d["openDate"]) >= now_ms - 540 * 86400000]
    assert sorted(d["paymentDisputeId"] for d in got) == sorted(d["paymentDisputeId"] for d in truth)
    # repeated status parameter
    r = await client.get(f"{DISPUTES}?payment_dispute_status=OPEN&payment_dispute_status=ACTION_NEEDED")
    assert all(d["paymentDisputeStatus"] in ("OPEN", "ACTION_NEEDED") for d in r.json()["paymentDisputeSummaries"])
    r = await client.get(DISPUTES, params={"payment_dispute_status": "CLOSED"})
    assert all(d["paymentDisputeStatus"] == "CLOSED" for d in r.json()["paymentDisputeSummaries"])


async def test_conversations_and_messages_paging(client, sim):
    all_convs = []
    for ct in ("FROM_MEMBERS", "FROM_EBAY"):
        recs, total, calls = await follow_all(client, CONVS, "conversations", {"conversation_type": ct, "limit": 7})
        assert len(recs) == total and calls == max(1, math.ceil(total / 7))
        assert all(c["conversationType"] == ct for c in recs)
        all_convs += recs
    assert sorted(c["conversationId"] for c in all_convs) == sorted(c["conversationId"] for c in sim.truth("alice", "conversations"))
    # messages of a conversation, paged by 2
    conv = max((c for c in all_convs if c["conversationType"] == "FROM_MEMBERS"),
               key=lambda c: len(sim.truth("alice", "messages", conversation_id=c["conversationId"])))
    cid = conv["conversationId"]
    msgs, total, calls = await follow_all(client, f"{CONVS}/{cid}", "messages",
                                          {"conversation_type": "FROM_MEMBERS", "limit": 2})
    assert msgs == sim.truth("alice", "messages", conversation_id=cid) and calls == math.ceil(total / 2)
    # conversation_type is required; time filters only for FROM_MEMBERS
    assert (await client.get(CONVS)).status_code == 400
    assert (await client.get(CONVS, params={"conversation_type": "OTHER"})).status_code == 400
    assert (await client.get(CONVS, params={"conversation_type": "FROM_EBAY",
                                            "start_time": "2025-01-01T00:00:00.000Z"})).status_code == 400
    r = await client.get(CONVS, params={"conversation_type": "FROM_MEMBERS", "start_time": "2025-04-01T00:00:00.000Z",
                                        "end_time": "2025-06-01T00:00:00.000Z"})
    assert r.status_code == 200
    # spec getConversation: 400 355007 "Invalid or unrecognized conversation_id value" (no 404 declared)
    r = await client.get(f"{CONVS}/{cid}", params={"conversation_type": "FROM_EBAY"})
    assert r.status_code == 400 and r.json()["errors"][0]["errorId"] == 355007


async def test_inventory_offset_is_page_index(client, sim):
    recs, total, calls = await follow_all(client, ITEMS, "inventoryItems", {"limit": 50})
    assert total == 120 and len(recs) == 120 and calls == 3
    assert [i["sku"] for i in recs] == [i["sku"] for i in sim.truth("alice", "inventory_items")]
    r = await client.get(ITEMS, params={"limit": 50, "offset": 1})
    body = r.json()
    assert [i["sku"] for i in body["inventoryItems"]] == [i["sku"] for i in recs[50:100]]
    assert "offset=2" in body["next"] and "offset=0" in body["prev"] and body["size"] == 3
    r = await client.get(ITEMS, params={"limit": 50, "offset": 2})
    assert len(r.json()["inventoryItems"]) == 20 and "next" not in r.json()


async def test_offers_per_sku(client, sim):
    items = sim.truth("alice", "inventory_items")
    offers = sim.truth("alice", "offers")
    by_sku: dict[str, list] = {}
    for o in offers:
        by_sku.setdefault(o["sku"], []).append(o)
    counts = [len(by_sku.get(i["sku"], [])) for i in items]
    assert 0 in counts and 1 in counts and max(counts) >= 2
    multi = next(s for s, v in by_sku.items() if len(v) >= 2)
    recs, total, calls = await follow_all(client, OFFERS, "offers", {"sku": multi, "limit": 1})
    assert total == len(by_sku[multi]) == len(recs) and calls == total
    none = next(i["sku"] for i, n in zip(items, counts) if n == 0)
    r = await client.get(OFFERS, params={"sku": none})
    assert r.status_code == 404 and r.json()["errors"][0]["errorId"] == 25713
