"""The client's Post-Order calls (docs/ebay-api.md "Post-Order API and shipping fulfillments"): the
`Authorization: IAF <token>` header (hendt SDK src/auth/index.ts; unverified by an eBay page), paging by
`offset` = 1-based page number up to `paginationOutput.totalPages` or an empty page (PO types
PaginationOutput / PO Search Cancellations), the `{"errorMessage": {"error": [...]}}` envelope (PO Error
Response) mapped to the typed errors, the token kept out of every event and error; and the Post-Order
field helpers (PO types Amount: `value` is a JSON number; DateTime: `{"value": ISO}`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from sync_core.ebay.errors import EbayAuthError, EbayRequestError
from sync_core.ebay.redact import redact, redact_text
from sync_core.streams.base import Invalid, po_money, po_ts
from tests.ebay.conftest import ACCESS1, API, assert_no_secrets

T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T2 = T1 + timedelta(days=90)
SEARCH = f"{API}/post-order/v2/cancellation/search"


def _page(n, total_pages, offset):
    return {"cancellations": [{"cancelId": f"{offset}-{i}"} for i in range(n)], "total": 7,
            "paginationOutput": {"offset": offset, "limit": 3, "totalEntries": 7, "totalPages": total_pages}}


async def test_search_pages_by_page_number_with_iaf_until_total_pages(client, mock, events):
    seen = []

    def answer(request):
        seen.append(request)
        off = int(request.url.params["offset"])
        return httpx.Response(200, json=_page(3 if off < 3 else 1, 3, off))
    mock.get(SEARCH).mock(side_effect=answer)
    pages = [p async for p in client.search_post_order("cancellations", T1, T2, 3)]
    assert [p.offset for p in pages] == [1, 2, 3] and [len(p) for p in pages] == [3, 3, 1]
    assert pages[-1].next_url is None and pages[0].next_url.endswith("offset=2")
    q = seen[0].url.params
    assert q["creation_date_range_from"] == "2026-01-01T00:00:00.000Z" and q["limit"] == "3"
    assert all(r.headers["authorization"] == f"IAF {ACCESS1}" for r in seen)
    # resume from a saved next URL: only the pages after it
    resumed = [p async for p in client.search_post_order("cancellations", T1, T2, 3, resume_url=pages[0].next_url)]
    assert [p.offset for p in resumed] == [2, 3]
    assert_no_secrets(events)
    assert {e["api"] for e in events if e.get("type") == "http"} == {"oauth", "post-order"}


async def test_search_stops_at_an_empty_page_when_total_pages_is_missing(client, mock):
    def answer(request):
        off = int(request.url.params["offset"])
        body = {"cancellations": [{"cancelId": "x"}] if off == 1 else []}  # FindCancelResponse: no paginationOutput
        return httpx.Response(200, json=body)
    route = mock.get(SEARCH).mock(side_effect=answer)
    pages = [p async for p in client.search_post_order("cancellations", T1, T2, 3)]
    assert [len(p) for p in pages] == [1, 0] and route.call_count == 2


async def test_post_order_error_envelope_maps_to_typed_errors(client, mock):
    envelope = {"errorMessage": {"error": [{"errorId": 1230, "domain": "cancelErrorDomain", "severity": "ERROR",
                                            "category": "REQUEST", "message": "Invalid date range.",
                                            "longMessage": "The date range can be at most 90 days.",
                                            "parameter": [{"name": "creation_date_range_from", "value": "x"}]}]}}
    mock.get(SEARCH).mock(return_value=httpx.Response(400, json=envelope))
    with pytest.raises(EbayRequestError) as e:
        [p async for p in client.search_post_order("cancellations", T1, T2, 3)]
    assert e.value.status == 400 and e.value.error_id == 1230 and e.value.domain == "cancelErrorDomain"
    assert "at most 90 days" in str(e.value)
    mock.get(f"{API}/post-order/v2/return/5001").mock(return_value=httpx.Response(401, json={
        "errorMessage": {"error": [{"errorId": 1001, "category": "REQUEST", "message": "Invalid access token"}]}}))
    with pytest.raises(EbayAuthError) as a:
        await client.get_post_order("returns", "5001", "SUMMARY")
    assert a.value.error_id == 1001 and ACCESS1 not in str(a.value)


async def test_a_window_over_90_days_is_refused_before_calling(client, mock):
    route = mock.get(SEARCH)
    with pytest.raises(ValueError, match="90-day"):
        client.search_post_order("cancellations", T1, T1 + timedelta(days=91), 3)
    assert route.call_count == 0


def test_the_iaf_form_is_redacted_everywhere():
    line = f"GET /post-order/v2/return/search Authorization: IAF {ACCESS1}"
    assert ACCESS1 not in redact_text(line) and "IAF ***" in redact_text(line)
    assert ACCESS1 not in redact_text(f"sent IAF {ACCESS1} to eBay")
    assert redact({"headers": {"Authorization": f"IAF {ACCESS1}"}}) == {"headers": {"Authorization": "***"}}


def test_post_order_amounts_and_dates():
    assert po_money({"a": {"value": 12.3, "currency": "USD"}}, "a") == (Decimal("12.3"), "USD")
    assert po_money({"a": {"value": 7, "currency": "EUR"}}, "a") == (Decimal("7"), "EUR")
    assert po_money({}, "a") == (None, None)
    for bad in (True, float("nan"), float("inf"), [1], "abc"):
        with pytest.raises(Invalid):
            po_money({"a": {"value": bad, "currency": "USD"}}, "a")
    with pytest.raises(Invalid):
        po_money({"a": 12.3}, "a")  # not an Amount object
    assert po_ts({"d": {"value": "2015-05-15T03:52:39.000Z"}}, "d") == datetime(2015, 5, 15, 3, 52, 39, tzinfo=timezone.utc)
    with pytest.raises(Invalid):
        po_ts({"d": 1700000000}, "d")
    with pytest.raises(Invalid):
        po_ts({}, "d", required=True)
