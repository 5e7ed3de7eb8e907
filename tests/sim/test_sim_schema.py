"""Every simulator response body validates against the official eBay schema of its operation (strict mode:
no properties the schema does not declare), and every error uses eBay's error envelope."""

from __future__ import annotations

from simfixtures import app_authed
from simschema import to_jsonschema, validate_error, validate_response

FUL, FIN, MSG, INV, FEED, ANA = "fulfillment", "finances", "message", "inventory", "feed", "analytics"


def test_helper_is_strict_and_resolves_refs():
    from simschema import validator

    v = validator(FUL, "/order")
    assert not list(v.iter_errors({"orders": [{"orderId": "1", "pricingSummary": {"total": {"value": "1.00"}}}]}))
    bad = {"orders": [{"orderId": 5, "pricingSummary": {"total": 12.3}, "bogusField": 1}]}
    msgs = " ".join(e.message for e in v.iter_errors(bad))
    assert "is not of type 'string'" in msgs and "is not of type 'object'" in msgs and "bogusField" in msgs
    assert to_jsonschema({"type": "string", "nullable": True})["type"] == ["string", "null"]
    assert to_jsonschema({"type": "integer", "format": "int32"})["maximum"] == 2**31 - 1


async def test_orders_and_order(client, sim):
    r = await client.get("/sell/fulfillment/v1/order", params={"limit": 200})
    body = r.json()
    assert r.status_code == 200 and body["orders"]
    validate_response(FUL, "/order", body)
    for o in body["orders"][:20]:
        r = await client.get(f"/sell/fulfillment/v1/order/{o['orderId']}")
        validate_response(FUL, "/order/{orderId}", r.json())
    # a cancelled order's detail carries cancel requests; a refunded one carries refunds
    cancelled = [o for o in sim.truth("alice", "orders") if o["cancelStatus"]["cancelState"] == "CANCELED"]
    assert cancelled
    r = await client.get(f"/sell/fulfillment/v1/order/{cancelled[0]['orderId']}")
    validate_response(FUL, "/order/{orderId}", r.json())
    assert r.json()["cancelStatus"]["cancelRequests"]


async def test_all_truth_records_validate(sim):
    """Not just one page: every visible record of every stream validates (covers all record variants)."""
    for rec in sim.truth("alice", "orders"):
        validate_response(FUL, "/order/{orderId}", rec)
    for rec in sim.truth("alice", "disputes", detail=True):
        validate_response(FUL, "/payment_dispute/{payment_dispute_id}", rec)
    validate_response(FIN, "/transaction", {"transactions": sim.truth("alice", "transactions")})
    validate_response(FIN, "/payout", {"payouts": sim.truth("alice", "payouts")})
    validate_response(MSG, "/conversation", {"conversations": sim.truth("alice", "conversations")})
    validate_response(MSG, "/conversation/{conversation_id}", {"messages": sim.truth("alice", "messages")})
    validate_response(INV, "/inventory_item", {"inventoryItems": sim.truth("alice", "inventory_items")})
    validate_response(INV, "/offer", {"offers": sim.truth("alice", "offers")})


async def test_disputes(client):
    r = await client.get("/sell/fulfillment/v1/payment_dispute_summary")
    body = r.json()
    assert r.status_code == 200 and body["paymentDisputeSummaries"]
    validate_response(FUL, "/payment_dispute_summary", body)
    for d in body["paymentDisputeSummaries"]:
        r = await client.get(f"/sell/fulfillment/v1/payment_dispute/{d['paymentDisputeId']}")
        validate_response(FUL, "/payment_dispute/{payment_dispute_id}", r.json())


async def test_finances(client):
    r = await client.get("/sell/finances/v1/transaction", params={"limit": 200})
    assert r.status_code == 200
    validate_response(FIN, "/transaction", r.json())
    r = await client.get("/sell/finances/v1/payout", params={"filter": "payoutDate:[2024-06-01T00:00:00.000Z..]"})
    assert r.status_code == 200
    validate_response(FIN, "/payout", r.json())
    pid = r.json()["payouts"][0]["payoutId"]
    r = await client.get(f"/sell/finances/v1/payout/{pid}")
    validate_response(FIN, "/payout/{payout_Id}", r.json())


async def test_messages(client):
    for ct in ("FROM_MEMBERS", "FROM_EBAY"):
        r = await client.get("/commerce/message/v1/conversation", params={"conversation_type": ct, "limit": 50})
        body = r.json()
        assert r.status_code == 200 and body["conversations"]
        validate_response(MSG, "/conversation", body)
        cid = body["conversations"][0]["conversationId"]
        r = await client.get(f"/commerce/message/v1/conversation/{cid}", params={"conversation_type": ct})
        validate_response(MSG, "/conversation/{conversation_id}", r.json())


async def test_inventory(client, sim):
    r = await client.get("/sell/inventory/v1/inventory_item", params={"limit": 200})
    validate_response(INV, "/inventory_item", r.json())
    sku = next(o["sku"] for o in sim.truth("alice", "offers"))
    r = await client.get("/sell/inventory/v1/offer", params={"sku": sku})
    validate_response(INV, "/offer", r.json())


async def test_feed(client, sim):
    r = await client.post("/sell/feed/v1/inventory_task",
                          json={"schemaVersion": "1.0", "feedType": "LMS_ACTIVE_INVENTORY_REPORT",
                                "filterCriteria": {"listingFormat": "FIXED_PRICE"}})
    assert r.status_code == 202 and r.content == b""
    loc = r.headers["location"]
    r = await client.get(loc)
    validate_response(FEED, "/inventory_task/{task_id}", r.json())
    sim.advance(10)
    r = await client.get(loc)
    validate_response(FEED, "/inventory_task/{task_id}", r.json())
    r = await client.get("/sell/feed/v1/inventory_task", params={"feed_type": "LMS_ACTIVE_INVENTORY_REPORT"})
    validate_response(FEED, "/inventory_task", r.json())
    assert r.json()["total"] == 1


async def test_rate_limits(client, sim):
    # getRateLimits takes an application token, getUserRateLimits a user token (developer_analytics spec)
    app = await app_authed(sim)
    try:
        for c, path in ((app, "/rate_limit/"), (client, "/user_rate_limit/")):
            r = await c.get(f"/developer/analytics/v1_beta{path}")
            assert r.status_code == 200
            validate_response(ANA, path, r.json())
    finally:
        await app.aclose()


async def test_error_envelopes(client):
    cases = [
        ("/sell/fulfillment/v1/order", {"limit": 201}, FUL, 400),
        ("/sell/fulfillment/v1/order/99-99999-99999", {}, FUL, 404),
        ("/sell/fulfillment/v1/payment_dispute_summary", {"limit": 0}, FUL, 400),
        ("/sell/finances/v1/transaction", {"filter": "transactionDate:[2025-01-01T00:00:00.000Z..2025-05-01T00:00:00.000Z]"}, FIN, 400),
        ("/commerce/message/v1/conversation", {}, MSG, 400),
        ("/sell/inventory/v1/inventory_item", {"limit": 500}, INV, 400),
        ("/sell/inventory/v1/offer", {"sku": "NO-SUCH-SKU"}, INV, 404),
        ("/sell/feed/v1/inventory_task/task-0-0", {}, FEED, 404),
        ("/no/such/path", {}, FUL, 404),
    ]
    for path, params, spec, status in cases:
        r = await client.get(path, params=params)
        assert r.status_code == status, (path, r.status_code, r.text)
        validate_error(r.json(), spec)
    r = await client.get("/sell/fulfillment/v1/order", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    validate_error(r.json())
    assert r.json()["errors"][0]["errorId"] == 1001
