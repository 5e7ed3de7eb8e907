"""The simulator's after-sale endpoints (issue 11): Post-Order returns / inquiries / cases / cancellations and
Fulfillment getShippingFulfillments.  Each test names the source of what it checks, from docs/ebay-api.md
"Post-Order API and shipping fulfillments" (PO Search pages, PO types, PO Error Response, PO Making a Call,
the dts / hendt SDKs) or the fulfillment spec; where that section says "unverified", the test pins the
simulator's own choice, listed under "The simulator" there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from simfixtures import NOW, access_token, client_for, make_sim
from simschema import validate_error, validate_response

from sync_core.sim import Faults, SellerSpec
from sync_core.sim.util import fmt_ms, parse_ts

SEARCH = {"returns": "/post-order/v2/return/search", "inquiries": "/post-order/v2/inquiry/search",
          "cases": "/post-order/v2/casemanagement/search", "cancellations": "/post-order/v2/cancellation/search"}
DETAIL = {"returns": "/post-order/v2/return/", "inquiries": "/post-order/v2/inquiry/",
          "cases": "/post-order/v2/casemanagement/", "cancellations": "/post-order/v2/cancellation/"}
# the date filter of each search (PO Search pages)
PREFIX = {"returns": "creation_date_range", "inquiries": "inquiry_creation_date_range",
          "cases": "case_creation_date_range", "cancellations": "creation_date_range"}
# list key and total key (PO types GetSummaryResponse for returns; dts SDK InquirySearchResponse,
# CaseSearchResponse, FindCancelResponse for the others)
LIST = {"returns": ("members", "total"), "inquiries": ("members", "totalNumberOfInquiries"),
        "cases": ("members", "totalNumberOfCases"), "cancellations": ("cancellations", "total")}
ID = {"returns": "returnId", "inquiries": "inquiryId", "cases": "caseId", "cancellations": "cancelId"}
CREATED = {"returns": lambda r: r["creationInfo"]["creationDate"]["value"],
           "inquiries": lambda r: r["creationDate"]["value"], "cases": lambda r: r["creationDate"]["value"],
           "cancellations": lambda r: r["cancelRequestDate"]["value"]}
MKT = {"X-EBAY-C-MARKETPLACE-ID": "EBAY_US"}
DAY = 86_400_000


def _sim(**kw):
    sellers = [SellerSpec("alice", orders=3000, transactions=50, payouts=5, disputes=2, conversations=2,
                          inventory_items=40, days=365)]
    return make_sim(sellers=sellers, **kw)


@pytest.fixture
def sim():
    return _sim()


@pytest.fixture
async def po(sim):
    """(client, IAF headers, Bearer headers) for alice."""
    c = client_for(sim)
    tok = await access_token(c, sim.mint_refresh_token("alice"))
    try:
        yield c, {"Authorization": f"IAF {tok}", **MKT}, {"Authorization": f"Bearer {tok}"}
    finally:
        await c.aclose()


def _po_error(r, status: int) -> dict:
    """PO Error Response: {"errorMessage": {"error": [{errorId, domain, severity, category, message,
    longMessage, parameter, httpStatusCode}]}}."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"errorMessage"} and set(body["errorMessage"]) == {"error"}
    (err,) = body["errorMessage"]["error"]
    assert {"errorId", "domain", "severity", "category", "message", "longMessage", "httpStatusCode"} <= set(err)
    assert set(err) <= {"errorId", "domain", "severity", "category", "message", "longMessage", "httpStatusCode",
                        "parameter"}
    assert isinstance(err["errorId"], int) and err["httpStatusCode"] == str(status)
    assert err["category"] in ("Application", "Business", "Request")
    for p in err.get("parameter", []):
        assert set(p) == {"name", "value"}
    return err


def _window(days_back: int = 90) -> dict[str, str]:
    return {"from": fmt_ms(int((NOW - timedelta(days=days_back)).timestamp() * 1000)),
            "to": fmt_ms(int(NOW.timestamp() * 1000))}


def _params(stream: str, frm: str, to: str | None = None, **kw) -> dict:
    p = {f"{PREFIX[stream]}_from": frm, **kw}
    if to is not None:
        p[f"{PREFIX[stream]}_to"] = to
    return p


async def _all_pages(c, h, stream: str, params: dict) -> tuple[list[dict], int]:
    """Page with offset = 1, 2, ... to paginationOutput.totalPages; returns (records, calls)."""
    out, page, calls = [], 1, 0
    while True:
        r = await c.get(SEARCH[stream], headers=h, params={**params, "offset": page})
        assert r.status_code == 200, r.text
        body = r.json()
        calls += 1
        po = body["paginationOutput"]
        assert po["offset"] == page and body[LIST[stream][1]] == po["totalEntries"]
        out += body[LIST[stream][0]]
        if page >= po["totalPages"]:
            return out, calls
        page += 1


async def test_search_shapes(po, sim):
    """PO Search pages (paths, date filters); PO types GetSummaryResponse (returns: members, paginationOutput,
    total) and PaginationOutput (offset, limit, totalEntries, totalPages); dts SDK types for the other lists
    and the member fields; Post-Order dates are {"value": ...} (dts SDK DateTime)."""
    c, h, _ = po
    w = _window()
    for stream, url in SEARCH.items():
        r = await c.get(url, headers=h, params=_params(stream, w["from"], w["to"], limit=3))
        assert r.status_code == 200, (stream, r.text)
        body = r.json()
        list_key, total_key = LIST[stream]
        assert set(body) == {list_key, "paginationOutput", total_key}, stream
        assert set(body["paginationOutput"]) == {"offset", "limit", "totalEntries", "totalPages"}
        assert body["paginationOutput"]["limit"] == 3 and 0 < len(body[list_key]) <= 3, stream
        for rec in body[list_key]:
            assert isinstance(rec[ID[stream]], str) and rec[ID[stream]]
            created = CREATED[stream](rec)
            assert parse_ts(created) <= int(NOW.timestamp() * 1000)
        first = body[list_key][0]
        if stream in ("inquiries", "cases"):
            assert {"itemId", "transactionId", "buyer", "seller", "claimAmount", "creationDate", "lastModifiedDate",
                    "respondByDate"} <= set(first)
            assert set(first["claimAmount"]) == {"value", "currency"}
            assert isinstance(first["claimAmount"]["value"], (int, float))  # PO types Amount: value is a number
            # InquiryStatusEnum / CaseStatusEnum values (PO types)
            assert first["inquiryStatusEnum" if stream == "inquiries" else "caseStatusEnum"] in (
                "OPEN", "CLOSED", "CLOSED_WITH_ESCALATION", "WAITING_CS")
        elif stream == "returns":
            assert {"buyerLoginName", "state", "status", "creationInfo", "sellerTotalRefund"} <= set(first)
            assert {"itemId", "transactionId"} <= set(first["creationInfo"]["item"])
            # ReturnStateEnum / ReturnStatusEnum values (PO types; RETURN_REQUESTED unverified)
            assert first["state"] in ("RETURN_REQUESTED", "ITEM_READY_TO_SHIP", "ITEM_SHIPPED", "CLOSED")
            assert first["status"] in ("RETURN_REQUESTED", "READY_FOR_SHIPPING", "ITEM_SHIPPED", "CLOSED", "ESCALATED")
        else:
            assert {"legacyOrderId", "cancelState", "cancelStatus", "requestRefundAmount"} <= set(first)
            assert isinstance(first["requestRefundAmount"]["value"], (int, float))
            # CancelStatusEnum values (PO types)
            assert first["cancelStatus"] in ("CANCEL_REQUESTED", "CANCEL_CLOSED_WITH_REFUND", "CANCEL_REJECTED")
    # no match: an empty list; FindCancelResponse omits paginationOutput then (PO types)
    empty = {k: fmt_ms(int((NOW - timedelta(days=d)).timestamp() * 1000)) for k, d in (("from", 540), ("to", 539))}
    for stream, url in SEARCH.items():
        r = await c.get(url, headers=h, params=_params(stream, empty["from"], empty["to"], order_id="01-00000-00000",
                                                       legacy_order_id="01-00000-00000"))
        body = r.json()
        assert body[LIST[stream][0]] == [] and body[LIST[stream][1]] == 0
        assert ("paginationOutput" in body) == (stream != "cancellations"), stream


async def test_paging_to_the_end_matches_truth(po, sim):
    """`offset` is a 1-based page number (PO Search Cancellations: "the page number to retrieve"; the
    PaginationOutput type page disagrees: unverified, docs/ebay-api.md); paging to totalPages returns every
    record created in the window exactly once, newest first; offset=0 reads as page 1; a page past the end
    is empty."""
    c, h, _ = po
    w = _window(80)
    lo, hi = parse_ts(w["from"]), parse_ts(w["to"])
    for stream in SEARCH:
        recs, calls = await _all_pages(c, h, stream, _params(stream, w["from"], w["to"], limit=2))
        want = [t[ID[stream]] for t in sim.truth("alice", stream) if lo <= parse_ts(CREATED[stream](t)) <= hi]
        assert len(want) >= 3, (stream, len(want))  # the seller has enough to page
        assert [x[ID[stream]] for x in recs] == want, stream
        assert calls == (len(want) + 1) // 2
        r0 = await c.get(SEARCH[stream], headers=h, params=_params(stream, w["from"], w["to"], limit=2, offset=0))
        assert [x[ID[stream]] for x in r0.json()[LIST[stream][0]]] == want[:2]
        past = await c.get(SEARCH[stream], headers=h,
                           params=_params(stream, w["from"], w["to"], limit=2, offset=calls + 1))
        assert past.status_code == 200 and past.json()[LIST[stream][0]] == []


async def test_date_window_and_limit_rules(po, sim):
    """PO Search pages: `_from` at most 18 months back; `_from` alone searches forward 90 days; `_from` must be
    older than `_to`.  Unverified, the simulator's choices: a window over 90 days, `limit` outside 1..200 and a
    bad timestamp are 400s in the Post-Order envelope."""
    c, h, _ = po
    now_ms = int(NOW.timestamp() * 1000)
    old = fmt_ms(now_ms - 19 * 31 * 86_400_000)
    for stream in SEARCH:
        err = _po_error(await c.get(SEARCH[stream], headers=h, params=_params(stream, old)), 400)
        assert err["parameter"][0]["name"] == f"{PREFIX[stream]}_from"
        frm = now_ms - 200 * 86_400_000
        r = await c.get(SEARCH[stream], headers=h, params=_params(stream, fmt_ms(frm), limit=200))
        assert r.status_code == 200, r.text
        got = [parse_ts(CREATED[stream](x)) for x in r.json()[LIST[stream][0]]]
        want = [t for t in (parse_ts(CREATED[stream](x)) for x in sim.truth("alice", stream))
                if frm <= t <= frm + 90 * 86_400_000]
        assert sorted(got) == sorted(want)
        _po_error(await c.get(SEARCH[stream], headers=h,
                              params=_params(stream, fmt_ms(now_ms - DAY), fmt_ms(now_ms - 2 * DAY))), 400)
        _po_error(await c.get(SEARCH[stream], headers=h,
                              params=_params(stream, fmt_ms(now_ms - 100 * 86_400_000), fmt_ms(now_ms))), 400)
        for bad in ("0", "201", "x"):
            err = _po_error(await c.get(SEARCH[stream], headers=h, params={"limit": bad}), 400)
            assert err["parameter"] == [{"name": "limit", "value": bad}]
        _po_error(await c.get(SEARCH[stream], headers=h, params=_params(stream, "2025-13-01")), 400)


async def test_auth_header_marketplace_and_scope(po, sim):
    """PO Making a Call: Authorization and X-EBAY-C-MARKETPLACE-ID on every call.  `IAF <token>` (hendt SDK
    src/auth/index.ts; unverified by an eBay page): the simulator refuses `Bearer` on Post-Order (401) and
    `IAF` on the Sell APIs.  Scope (unverified): without sell.fulfillment[.readonly] every after-sale call is a
    403 naming the problem, so the stream can report it (issue 11: a missing scope gives a clear error)."""
    c, h, bearer = po
    w = _window()
    for stream in SEARCH:
        p = _params(stream, w["from"], w["to"])
        assert (await c.get(SEARCH[stream], headers=h, params=p)).status_code == 200
        err = _po_error(await c.get(SEARCH[stream], headers={**bearer, **MKT}, params=p), 401)
        assert err["errorId"] == 1001 and "Authorization" in err["longMessage"]
        _po_error(await c.get(SEARCH[stream], headers={"Authorization": h["Authorization"]}, params=p), 400)
    oid = sim.truth("alice", "shipping_fulfillments")[0]["orderId"]
    sf = f"/sell/fulfillment/v1/order/{oid}/shipping_fulfillment"
    assert (await c.get(sf, headers=bearer)).status_code == 200
    r = await c.get(sf, headers={"Authorization": h["Authorization"]})
    assert r.status_code == 401 and r.json()["errors"][0]["errorId"] == 1001
    # a token without the fulfillment scopes
    message_only = ["https://api.ebay.com/oauth/api_scope/commerce.message"]
    tok = await access_token(c, sim.mint_refresh_token("alice", message_only))
    for stream in SEARCH:
        err = _po_error(await c.get(SEARCH[stream], headers={"Authorization": f"IAF {tok}", **MKT}), 403)
        assert err["message"] == "Access denied" and "permissions" in err["longMessage"]
    r = await c.get(sf, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403
    validate_error(r.json())


async def test_detail_gets(po, sim):
    """PO Get a Cancellation (GET /cancellation/{cancelId}); dts SDK GetCase / GetInquiry, hendt SDK getReturn
    for the other paths.  GET /return/{returnId}: `detail` only by default (fieldgroups=FULL), `summary` only
    with fieldgroups=SUMMARY (PO types GetReturnFieldGroupEnum, ReturnSummaryType).  The other detail shapes
    are unverified: cancellations {"cancelDetail"}, inquiries and cases the summary plus history / caseType.
    An unknown id is a 404 in the Post-Order envelope (errorId unverified)."""
    c, h, _ = po
    for stream in SEARCH:
        t = sim.truth("alice", stream)[0]
        rid = t[ID[stream]]
        r = await c.get(DETAIL[stream] + rid, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == sim.truth("alice", stream, detail=True)[0]
        if stream == "returns":
            assert set(body) == {"detail"} and "responseHistory" in body["detail"]
            r = await c.get(DETAIL[stream] + rid, headers=h, params={"fieldgroups": "SUMMARY"})
            assert r.json() == {"summary": t}
            _po_error(await c.get(DETAIL[stream] + rid, headers=h, params={"fieldgroups": "NONE"}), 400)
        elif stream == "cancellations":
            assert {k: v for k, v in body["cancelDetail"].items() if k != "activityHistories"} == t
        else:
            assert {k: body[k] for k in t} == t
        _po_error(await c.get(DETAIL[stream] + "999" + rid, headers=h), 404)


def _order_lines(sim) -> dict[str, dict[tuple[str, str], int]]:
    return {o["orderId"]: {(li["legacyItemId"], li["lineItemId"]): li["quantity"] for li in o["lineItems"]}
            for o in sim.truth("alice", "orders")}


async def test_records_belong_to_real_orders_and_line_items(po, sim):
    """Issue 11 item 4: a return belongs to a real order and line item.  Returns carry orderId and
    creationInfo.item.{itemId, transactionId}; inquiries and cases itemId + transactionId (dts SDK summary
    types); cancellations legacyOrderId.  A closed cancellation is the buyer's request behind a cancelled
    order: same id as the order's cancelRequests (getOrder detail)."""
    c, h, bearer = po
    lines = _order_lines(sim)
    by_line = {k: oid for oid, ls in lines.items() for k in ls}
    for r in sim.truth("alice", "returns"):
        item = r["creationInfo"]["item"]
        assert (item["itemId"], item["transactionId"]) in lines[r["orderId"]]
        assert item["returnQuantity"] == lines[r["orderId"]][(item["itemId"], item["transactionId"])]
    for stream in ("inquiries", "cases"):
        for x in sim.truth("alice", stream):
            assert (x["itemId"], x["transactionId"]) in by_line, (stream, x)
    cases = sim.truth("alice", "cases", detail=True)
    returns = {r["returnId"] for r in sim.truth("alice", "returns")}
    assert {k["caseType"] for k in cases} <= {"RETURN", "ITEM_NOT_RECEIVED"}
    assert all(k["returnId"] in returns for k in cases if k["caseType"] == "RETURN")
    # an escalated inquiry is CLOSED_WITH_ESCALATION (InquiryStatusEnum, PO types) when its case opens, on the
    # same line item
    inr = {(k["itemId"], k["transactionId"]) for k in cases if k["caseType"] == "ITEM_NOT_RECEIVED"}
    esc = {(q["itemId"], q["transactionId"]) for q in sim.truth("alice", "inquiries")
           if q["inquiryStatusEnum"] == "CLOSED_WITH_ESCALATION"}
    assert inr and esc == inr
    closed = [x for x in sim.truth("alice", "cancellations") if x["cancelStatus"] == "CANCEL_CLOSED_WITH_REFUND"]
    assert closed
    for x in sim.truth("alice", "cancellations"):
        assert x["legacyOrderId"] in lines
    for x in closed[:5]:
        r = await c.get(f"/sell/fulfillment/v1/order/{x['legacyOrderId']}", headers=bearer)
        cancel = r.json()["cancelStatus"]
        assert cancel["cancelState"] == "CANCELED"
        assert [q["cancelRequestId"] for q in cancel["cancelRequests"]] == [x["cancelId"]]


async def test_shipping_fulfillments(po, sim):
    """Fulfillment spec getShippingFulfillments / getShippingFulfillment: ShippingFulfillmentPagedCollection
    (validated strictly against the spec schema), one fulfillment per shipped order whose id is the one the
    order's fulfillmentHrefs name and whose lineItems are the order's; none for an unshipped order; an
    unknown order 400 32100, an unknown fulfillment 400 32110 (the spec's x-response-codes)."""
    c, _, bearer = po
    orders = {o["orderId"]: o for o in sim.truth("alice", "orders")}
    shipped = [o for o in orders.values() if o["fulfillmentHrefs"]][:5]
    unshipped = next(o for o in orders.values() if o["orderFulfillmentStatus"] == "NOT_STARTED")
    for o in shipped:
        r = await c.get(f"/sell/fulfillment/v1/order/{o['orderId']}/shipping_fulfillment", headers=bearer)
        body = r.json()
        validate_response("fulfillment", "/order/{orderId}/shipping_fulfillment", body)
        (f,) = body["fulfillments"]
        assert body["total"] == 1 and o["fulfillmentHrefs"][0].endswith("/shipping_fulfillment/" + f["fulfillmentId"])
        assert [(x["lineItemId"], x["quantity"]) for x in f["lineItems"]] == \
            [(li["lineItemId"], li["quantity"]) for li in o["lineItems"]]
        assert f["shippingCarrierCode"] == "USPS" and parse_ts(f["shippedDate"]) >= parse_ts(o["creationDate"])
        one = await c.get(f"/sell/fulfillment/v1/order/{o['orderId']}/shipping_fulfillment/{f['fulfillmentId']}",
                          headers=bearer)
        assert one.json() == f
        validate_response("fulfillment", "/order/{orderId}/shipping_fulfillment/{fulfillmentId}", one.json())
    r = await c.get(f"/sell/fulfillment/v1/order/{unshipped['orderId']}/shipping_fulfillment", headers=bearer)
    assert r.json() == {"fulfillments": [], "total": 0}
    r = await c.get("/sell/fulfillment/v1/order/99-00000-00000/shipping_fulfillment", headers=bearer)
    assert r.status_code == 400 and r.json()["errors"][0]["errorId"] == 32100
    validate_error(r.json())
    r = await c.get(f"/sell/fulfillment/v1/order/{shipped[0]['orderId']}/shipping_fulfillment/nope", headers=bearer)
    assert r.status_code == 400 and r.json()["errors"][0]["errorId"] == 32110
    # some shipped orders have no tracking number yet (the simulator's choice); the truth shows each as served
    truth = sim.truth("alice", "shipping_fulfillments")
    assert any("shipmentTrackingNumber" not in f for f in truth) and any("shipmentTrackingNumber" in f for f in truth)


async def test_touch_kinds(po, sim):
    """Issue 11 item 4, `touch` per stream: a return is approved (RETURN_REQUESTED -> ITEM_READY_TO_SHIP), an
    inquiry closes, a case escalates to customer support (CaseStatusEnum WAITING_CS, PO types), a cancellation
    is approved (cancelState CLOSED), a tracking number appears (and the order's lastModifiedDate moves, so an
    orders-driven fulfillment stream sees it)."""
    c, h, bearer = po
    sim.advance(60)
    now = fmt_ms(sim.now_ms())

    async def detail(stream, rid):
        r = await c.get(DETAIL[stream] + rid, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    (rid,) = sim.touch("alice", "return", 1)
    ret = await detail("returns", rid)
    summary = (await c.get(DETAIL["returns"] + rid, headers=h, params={"fieldgroups": "SUMMARY"})).json()["summary"]
    assert summary["state"] == "ITEM_READY_TO_SHIP" and summary["status"] == "READY_FOR_SHIPPING"
    assert [h["toState"] for h in ret["detail"]["responseHistory"]] == ["RETURN_REQUESTED", "ITEM_READY_TO_SHIP"]
    (iid,) = sim.touch("alice", "inquiries", 1)
    q = await detail("inquiries", iid)
    assert q["inquiryStatusEnum"] == "CLOSED" and q["lastModifiedDate"]["value"] == now
    (cid,) = sim.touch("alice", "case", 1)
    k = await detail("cases", cid)
    assert k["caseStatusEnum"] == "WAITING_CS" and k["lastModifiedDate"]["value"] == now
    (xid,) = sim.touch("alice", "cancellations", 1)
    x = (await detail("cancellations", xid))["cancelDetail"]
    assert x["cancelState"] == "CLOSED" and x["cancelStatus"] == "CANCEL_CLOSED_WITH_REFUND"
    assert x["cancelCloseDate"]["value"] == now
    # the touched records are found by the search too (the same rendering)
    w = _window()
    r = await c.get(SEARCH["cases"], headers=h, params=_params("cases", w["from"], w["to"], limit=200))
    assert any(m["caseId"] == cid and m["caseStatusEnum"] == "WAITING_CS" for m in r.json()["members"])
    before = {f["orderId"] for f in sim.truth("alice", "shipping_fulfillments") if "shipmentTrackingNumber" in f}
    (oid,) = sim.touch("alice", "tracking", 1)
    assert oid not in before
    r = await c.get(f"/sell/fulfillment/v1/order/{oid}/shipping_fulfillment", headers=bearer)
    (f,) = r.json()["fulfillments"]
    assert f["shipmentTrackingNumber"] == f["fulfillmentId"]
    o = (await c.get(f"/sell/fulfillment/v1/order/{oid}", headers=bearer)).json()
    assert o["lastModifiedDate"] == now
    with pytest.raises(ValueError):
        sim.touch("alice", "refunds", 1)


async def test_faults_apply():
    """The fault knobs reach the after-sale endpoints: malformed records (missing id, amount as a number,
    date as epoch seconds: faults.MALFORM_SHAPES) and injected 429s, in the Post-Order envelope there."""
    sim = _sim(faults=Faults(malformed_rate=1.0, only_paths=("/post-order/",)))
    c = client_for(sim)
    try:
        tok = await access_token(c, sim.mint_refresh_token("alice"))
        h = {"Authorization": f"IAF {tok}", **MKT}
        w = _window()
        for stream in SEARCH:
            r = await c.get(SEARCH[stream], headers=h, params=_params(stream, w["from"], w["to"], limit=200))
            got = r.json()[LIST[stream][0]]
            truth = {t[ID[stream]]: t for t in sim.truth("alice", stream)}
            assert got and all(g != truth.get(g.get(ID[stream])) for g in got), stream
        sim.set_faults(malformed_rate=0.0, rate_429=1.0)
        err = _po_error(await c.get(SEARCH["returns"], headers=h), 429)
        assert err["errorId"] == 2001
    finally:
        await c.aclose()
