"""Paging per endpoint: max page size, minimum calls, resume from next_url, page-index offsets, 204."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from tests.ebay.conftest import ACCESS1, API, APIZ, assert_no_secrets
from sync_core.ebay.client import EbayClient
from sync_core.ebay.oauth import StaticTokenSource
from sync_core.ebay.ratelimit import RateBudget

T0 = datetime(2024, 5, 1, 0, 0, 0, 123000, tzinfo=timezone.utc)
T1 = datetime(2024, 5, 20, 12, 30, 5, tzinfo=timezone.utc)


def offset_pager(base_url: str, key: str, total: int, *, page_index: bool = False, give_next: bool = True,
                 id_field: str = "id"):
    """A respx side effect answering like eBay's offset paging over ``total`` synthetic records."""

    def handler(request: httpx.Request) -> httpx.Response:
        q = parse_qs(request.url.query.decode())
        limit = int(q.get("limit", ["25"])[0])
        off = int(q.get("offset", ["0"])[0])
        start = off * limit if page_index else off
        recs = [{id_field: f"r{i}"} for i in range(start, min(start + limit, total))]
        body = {"href": str(request.url), "limit": limit, "offset": off, "total": total, key: recs}
        if give_next and start + limit < total:
            nxt = off + 1 if page_index else off + limit
            rest = "&".join(p for p in request.url.query.decode().split("&") if not p.startswith("offset="))
            body["next"] = f"{base_url}?{rest}&offset={nxt}"
        return httpx.Response(200, json=body)

    return handler


async def collect(it):
    return [p async for p in it]


async def test_orders_max_page_size_minimum_calls(client, mock, events):
    route = mock.get(f"{API}/sell/fulfillment/v1/order").mock(
        side_effect=offset_pager(f"{API}/sell/fulfillment/v1/order", "orders", 450, id_field="orderId"))
    pages = await collect(client.get_orders(T0, T1))
    assert [len(p.records) for p in pages] == [200, 200, 50]
    assert route.call_count == 3
    assert pages[-1].next_url is None and pages[0].next_url == pages[1].url
    assert all(p.total == 450 for p in pages)
    first = route.calls[0].request
    raw_query = first.url.query.decode()
    assert "filter=lastmodifieddate:%5B2024-05-01T00:00:00.123Z..2024-05-20T12:30:05.000Z%5D" in raw_query
    assert "limit=200" in raw_query
    for call in route.calls:
        assert call.request.headers["X-EBAY-C-MARKETPLACE-ID"] == "EBAY_US"
        assert call.request.headers["Authorization"] == f"Bearer {ACCESS1}"
    http_events = [e for e in events if e["type"] == "http" and e["api"] == "fulfillment"]
    assert [e["records"] for e in http_events] == [200, 200, 50]
    assert all(e["status"] == 200 and e["host"] == "api.ebay.com" and e["path"] == "/sell/fulfillment/v1/order"
               and e["attempt"] == 1 and e["bytes"] > 0 and e["duration_ms"] >= 0 for e in http_events)
    assert "lastmodifieddate" in http_events[0]["query"]
    assert_no_secrets(events)


async def test_orders_exact_multiple_no_extra_call(client, mock):
    route = mock.get(f"{API}/sell/fulfillment/v1/order").mock(
        side_effect=offset_pager(f"{API}/sell/fulfillment/v1/order", "orders", 400))
    pages = await collect(client.get_orders(T0, T1))
    assert [len(p.records) for p in pages] == [200, 200]
    assert route.call_count == 2


async def test_orders_open_end_and_limit_validation(client, mock):
    route = mock.get(f"{API}/sell/fulfillment/v1/order").mock(return_value=httpx.Response(200, json={"orders": [], "total": 0}))
    pages = await collect(client.get_orders(T0, None))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].next_url is None
    assert "%5B2024-05-01T00:00:00.123Z..%5D" in route.calls[0].request.url.query.decode()
    with pytest.raises(ValueError):
        client.get_orders(T0, T1, limit=201)
    with pytest.raises(ValueError):
        client.get_orders(T1, T0)
    with pytest.raises(ValueError, match="naive"):
        client.get_orders(datetime(2024, 1, 1), None)


async def test_resume_from_next_url(client, mock):
    route = mock.get(f"{API}/sell/fulfillment/v1/order").mock(
        side_effect=offset_pager(f"{API}/sell/fulfillment/v1/order", "orders", 450))
    first = await client.get_orders(T0, T1).__anext__()
    checkpoint = first.next_url
    assert checkpoint and "offset=200" in checkpoint
    route.reset()
    rest = await collect(client.get_orders(T0, T1, resume_url=checkpoint))
    assert [len(p.records) for p in rest] == [200, 50]
    assert rest[0].records[0]["id"] == "r200"
    assert route.call_count == 2
    assert rest[0].url == checkpoint


async def test_resume_url_on_foreign_host_is_rebased(client, mock):
    route = mock.get(f"{API}/sell/fulfillment/v1/order").mock(
        side_effect=offset_pager(f"{API}/sell/fulfillment/v1/order", "orders", 450))
    evil = "https://evil.example.com/sell/fulfillment/v1/order?limit=200&offset=400"
    pages = await collect(client.get_orders(T0, T1, resume_url=evil))
    assert route.call_count == 1 and len(pages[0].records) == 50
    assert route.calls[0].request.url.host == "api.ebay.com"
    # relative next links too
    assert client.resolve_url("/sell/x?offset=2", API) == f"{API}/sell/x?offset=2"


async def test_inventory_offset_is_page_index(client, mock):
    route = mock.get(f"{API}/sell/inventory/v1/inventory_item").mock(
        side_effect=offset_pager(f"{API}/sell/inventory/v1/inventory_item", "inventoryItems", 450, page_index=True,
                                 id_field="sku"))
    pages = await collect(client.get_inventory_items())
    assert [len(p.records) for p in pages] == [200, 200, 50]
    offsets = [parse_qs(c.request.url.query.decode())["offset"][0] for c in route.calls]
    assert offsets == ["0", "1", "2"]
    assert pages[2].records[-1]["sku"] == "r449"


async def test_inventory_page_index_without_next(client, mock):
    """eBay omits next on a full page while total says more: the page index is computed (not a record offset)."""
    route = mock.get(f"{API}/sell/inventory/v1/inventory_item").mock(
        side_effect=offset_pager(f"{API}/sell/inventory/v1/inventory_item", "inventoryItems", 450, page_index=True,
                                 give_next=False))
    pages = await collect(client.get_inventory_items())
    assert [len(p.records) for p in pages] == [200, 200, 50]
    assert [parse_qs(c.request.url.query.decode())["offset"][0] for c in route.calls] == ["0", "1", "2"]


async def test_offers_per_sku_and_404_is_empty(client, mock):
    route = mock.get(f"{API}/sell/inventory/v1/offer").mock(side_effect=[
        httpx.Response(200, json={"offers": [{"offerId": "o1", "sku": "A B"}], "total": 1, "limit": 100, "size": 1}),
        httpx.Response(404, json={"errors": [{"errorId": 25713, "message": "This Offer is not available."}]}),
    ])
    pages = await collect(client.get_offers("A B"))
    assert pages[0].records == [{"offerId": "o1", "sku": "A B"}]
    assert parse_qs(route.calls[0].request.url.query.decode())["sku"] == ["A B"]
    assert "sku=A%20B" in route.calls[0].request.url.query.decode()
    pages = await collect(client.get_offers("gone"))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].status == 404


async def test_transactions_204_is_one_empty_page(client, mock, events):
    route = mock.get(f"{APIZ}/sell/finances/v1/transaction").mock(return_value=httpx.Response(204))
    pages = await collect(client.get_transactions(T0, T1))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].next_url is None and pages[0].status == 204
    assert route.call_count == 1
    q = route.calls[0].request.url.query.decode()
    assert "filter=transactionDate:%5B2024-05-01T00:00:00.123Z..2024-05-20T12:30:05.000Z%5D" in q and "limit=200" in q
    assert events[-1]["status"] == 204 and events[-1]["records"] == 0 and events[-1]["api"] == "finances"


async def test_transactions_and_payouts_paging_apiz(client, mock):
    tr = mock.get(f"{APIZ}/sell/finances/v1/transaction").mock(
        side_effect=offset_pager(f"{APIZ}/sell/finances/v1/transaction", "transactions", 201))
    po = mock.get(f"{APIZ}/sell/finances/v1/payout").mock(
        side_effect=offset_pager(f"{APIZ}/sell/finances/v1/payout", "payouts", 3))
    assert [len(p.records) for p in await collect(client.get_transactions(T0, T1))] == [200, 1]
    assert [len(p.records) for p in await collect(client.get_payouts(T0, T1))] == [3]
    assert tr.call_count == 2 and po.call_count == 1
    assert "payoutDate:%5B" in po.calls[0].request.url.query.decode()
    with pytest.raises(ValueError, match="90"):
        client.get_transactions(T0, T0 + timedelta(days=91))
    with pytest.raises(ValueError, match="90"):
        client.get_payouts(T0, T0 + timedelta(days=90, seconds=1))
    client.get_payouts(T0, T0 + timedelta(days=90))  # exactly 90 days is fine


async def test_transactions_extra_filters(client, mock):
    route = mock.get(f"{APIZ}/sell/finances/v1/transaction").mock(return_value=httpx.Response(204))
    await collect(client.get_transactions(T0, T1, extra_filters=["transactionType:{SALE|REFUND}"]))
    assert ",transactionType:%7BSALE%7CREFUND%7D" in route.calls[0].request.url.query.decode()


async def test_disputes_apiz_and_window(client, mock):
    route = mock.get(f"{APIZ}/sell/fulfillment/v1/payment_dispute_summary").mock(
        side_effect=offset_pager(f"{APIZ}/sell/fulfillment/v1/payment_dispute_summary", "paymentDisputeSummaries", 250))
    pages = await collect(client.get_payment_dispute_summaries(T0, T1))
    assert [len(p.records) for p in pages] == [200, 50]
    q = parse_qs(route.calls[0].request.url.query.decode())
    assert q["open_date_from"] == ["2024-05-01T00:00:00.123Z"] and q["limit"] == ["200"]
    with pytest.raises(ValueError, match="90"):
        client.get_payment_dispute_summaries(T0, T0 + timedelta(days=91))
    detail = mock.get(f"{APIZ}/sell/fulfillment/v1/payment_dispute/5-123").mock(
        return_value=httpx.Response(200, json={"paymentDisputeId": "5-123", "revision": 2}))
    assert (await client.get_payment_dispute("5-123"))["revision"] == 2
    assert detail.called


async def test_conversations_and_messages(client, mock):
    conv = mock.get(f"{API}/commerce/message/v1/conversation").mock(
        side_effect=offset_pager(f"{API}/commerce/message/v1/conversation", "conversations", 120))
    pages = await collect(client.get_conversations("FROM_MEMBERS", T0, T1))
    assert [len(p.records) for p in pages] == [50, 50, 20]
    q = parse_qs(conv.calls[0].request.url.query.decode())
    assert q["conversation_type"] == ["FROM_MEMBERS"] and q["start_time"] == ["2024-05-01T00:00:00.123Z"]
    assert q["limit"] == ["50"]
    conv.reset()
    await collect(client.get_conversations("FROM_EBAY"))
    q = parse_qs(conv.calls[0].request.url.query.decode())
    assert "start_time" not in q and q["conversation_type"] == ["FROM_EBAY"]
    with pytest.raises(ValueError):
        client.get_conversations("FROM_EBAY", T0, T1)
    with pytest.raises(ValueError):
        client.get_conversations("BOTH")
    msgs = mock.get(f"{API}/commerce/message/v1/conversation/c%2F1").mock(
        return_value=httpx.Response(200, json={"conversationTitle": "hi", "messages": [{"messageId": "m1"}],
                                               "total": 1, "limit": 50, "offset": 0}))
    pages = await collect(client.get_conversation_messages("c/1", "FROM_MEMBERS"))
    assert pages[0].records == [{"messageId": "m1"}] and pages[0].raw["conversationTitle"] == "hi"
    assert msgs.called


async def test_get_order_detail_quotes_id(client, mock, events):
    route = mock.get(f"{API}/sell/fulfillment/v1/order/12-34567-89012").mock(
        return_value=httpx.Response(200, json={"orderId": "12-34567-89012", "cancelStatus": {"cancelRequests": []}}))
    order = await client.get_order("12-34567-89012")
    assert order["orderId"] == "12-34567-89012" and route.called
    assert events[-1]["records"] == 1 and events[-1]["op"] == "getOrder"


async def test_loop_guard_and_empty_page_stop(client, mock):
    """A next link pointing back at the same page, or a next on an empty page, ends the iteration."""
    url = f"{API}/sell/inventory/v1/inventory_item"
    route = mock.get(url).mock(return_value=httpx.Response(200, json={
        "inventoryItems": [{"sku": "x"}], "total": 999, "limit": 200, "next": f"{url}?limit=200&offset=0"}))
    pages = await collect(client.get_inventory_items())
    assert len(pages) == 1 and route.call_count == 1


async def test_the_next_pages_budget_is_taken_while_a_page_is_in_flight(settings, http, mock):
    """Once a page's total says the page after the one being requested exists, that page's call budget is taken
    while the request is in flight (the shared budget's round trip to PostgreSQL is then off the paging
    chain); a listing that ends as its total said leaves no take unused: takes == calls."""
    budget = RateBudget()
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="s1", budget=budget)
    url = f"{API}/sell/fulfillment/v1/order"
    pager = offset_pager(url, "orders", 1000, id_field="orderId")  # 5 pages of 200
    limit = budget.bucket("s1", "fulfillment").limit
    taken_when_answered: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # the request in flight
        taken_when_answered.append(limit - budget.bucket("s1", "fulfillment").remaining)
        return pager(request)

    route = mock.get(url).mock(side_effect=handler)
    pages = await collect(client.get_orders(T0, T1))
    assert [len(p.records) for p in pages] == [200] * 5 and route.call_count == 5
    # page 1: its own take (no total known yet); page 2: its own and page 3's; pages 3, 4: the next one's;
    # page 5 is the last by the total: nothing taken ahead
    assert taken_when_answered == [1, 3, 4, 5, 5]
    assert limit - budget.bucket("s1", "fulfillment").remaining == 5


async def test_a_take_ahead_is_left_unused_only_when_the_listing_shrinks(settings, http, mock):
    """The total fell while the listing was paged (records left it): the take made for the page that no longer
    exists is the one call counted and not made (the safe side); stopping early leaves at most one too."""
    budget = RateBudget()
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="s1", budget=budget)
    url = f"{API}/sell/fulfillment/v1/order"
    big, small = offset_pager(url, "orders", 1000, id_field="orderId"), offset_pager(url, "orders", 500,
                                                                                     id_field="orderId")
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return big(request) if len(calls) <= 2 else small(request)

    mock.get(url).mock(side_effect=handler)
    limit = budget.bucket("s1", "fulfillment").limit
    pages = await collect(client.get_orders(T0, T1))
    assert [p.total for p in pages] == [1000, 1000, 500] and len(calls) == 3
    assert limit - budget.bucket("s1", "fulfillment").remaining == 4  # 3 calls + page 4's take, unused

    budget2 = RateBudget()
    client2 = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="s2", budget=budget2)
    calls.clear()

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # the request in flight: the take ahead is made meanwhile
        return handler(request)

    mock.get(url).mock(side_effect=slow)
    async with contextlib.aclosing(client2.get_orders(T0, T1)) as it:
        async for page in it:
            if page.offset == 200:
                break  # the run stops after page 2 (page 3's budget was taken ahead)
    assert len(calls) == 2 and limit - budget2.bucket("s2", "fulfillment").remaining == 3


async def test_rate_limits_refresh_budget(settings, http, mock, events):
    budget = RateBudget()
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="s1", on_event=events.append,
                        budget=budget)
    route = mock.get(f"{API}/developer/analytics/v1_beta/rate_limit/").mock(return_value=httpx.Response(200, json={
        "rateLimits": [{"apiContext": "sell", "apiName": "sell.fulfillment", "apiVersion": "v1", "resources": [
            {"name": "sell.fulfillment", "rates": [{"count": 10, "limit": 100000, "remaining": 99990,
                                                     "reset": "2030-01-01T00:00:00.000Z", "timeWindow": 86400}]}]}]}))
    mock.get(f"{API}/developer/analytics/v1_beta/user_rate_limit/").mock(return_value=httpx.Response(200, json={
        "rateLimits": [{"apiContext": "sell", "apiName": "Finances", "resources": [
            {"name": "a", "rates": [{"limit": 500, "remaining": 400, "timeWindow": 86400}]},
            {"name": "b", "rates": [{"limit": 900, "remaining": 50, "timeWindow": 86400}]}]}]}))
    data = await client.get_rate_limits(api_name="fulfillment")
    assert data["rateLimits"][0]["apiName"] == "sell.fulfillment"
    q = parse_qs(route.calls[0].request.url.query.decode())
    assert q == {"api_context": ["sell"], "api_name": ["fulfillment"]}
    snap = budget.snapshot()
    # getRateLimits reports the application's quota: it is shared by every account
    app = "(application)/fulfillment"
    assert snap[app]["remaining"] == 99990 and snap[app]["source"] == "getRateLimits"
    await client.get_user_rate_limits()
    snap = budget.snapshot()
    assert snap["s1/finances"]["limit"] == 900 and snap["s1/finances"]["remaining"] == 50


async def test_resume_url_for_other_endpoint_rejected(client):
    with pytest.raises(ValueError, match="resume_url is for /sell/finances/v1/transaction"):
        client.get_orders(T0, T1, resume_url=f"{APIZ}/sell/finances/v1/transaction?offset=200")



async def test_page_body_freed_without_the_cycle_collector(settings):
    """A page's response is freed by reference counting as soon as it is dropped. httpx's response and its
    (read) stream refer to each other, so each page body (600 KB for 200 orders) used to wait for a full
    collection of the cyclic GC, and a sync held dozens of them (docs/performance.md, issue 10)."""
    handler = offset_pager(f"{API}/sell/fulfillment/v1/order", "orders", 450, id_field="orderId")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="seller1")
        gc.collect()
        gc.disable()
        try:
            pages = await collect(client.get_orders(T0, T1))
            assert [len(p.records) for p in pages] == [200, 200, 50]
            del pages
            alive = sum(isinstance(o, httpx.Response) for o in gc.get_objects())
        finally:
            gc.enable()
    assert alive == 0


def test_parse_range_filter_reads_back_what_range_filter_wrote():
    """A checkpointed getOrders URL names its window (the orders stream resumes a time slice from it)."""
    from datetime import datetime, timezone

    from sync_core.ebay.paging import build_url, parse_range_filter, range_filter

    a = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    b = datetime(2026, 1, 31, tzinfo=timezone.utc)
    url = build_url("https://api.ebay.com", "/sell/fulfillment/v1/order",
                    [("filter", range_filter("lastmodifieddate", a, b) + ",orderfulfillmentstatus:{NOT_STARTED}"),
                     ("limit", 200), ("offset", 400)])
    assert parse_range_filter(url, "lastmodifieddate") == (a, b)
    assert parse_range_filter(url, "creationdate") is None
    open_end = build_url("https://api.ebay.com", "/x", [("filter", range_filter("lastmodifieddate", a, None))])
    assert parse_range_filter(open_end, "lastmodifieddate") is None
    assert parse_range_filter("https://api.ebay.com/x?filter=lastmodifieddate:[nonsense..2026]", "lastmodifieddate") is None
