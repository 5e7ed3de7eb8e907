"""After-sale data of one simulated seller (issue 11): Post-Order returns, inquiries, cases and cancellations,
and Fulfillment shipping fulfillments, all derived from the seller's orders (a return names a real order
and one of its line items; a cancellation belongs to a cancelled or never-shipped order; a shipping
fulfillment exists for every shipped order), plus the endpoints serving them.

Every fact about eBay used here is in docs/ebay-api.md, "Post-Order API and shipping fulfillments";
what that section marks unverified (offset = 1-based page number, the maximum limit, the detail shapes,
the state values other than the case ones, the error ids) is the simulator's own choice, listed under
"The simulator".  Kept out of data.py so SellerData stays as it is: the Simulator builds one
:class:`AfterSaleData` per seller on first use (``Simulator.after_sale``).
"""

from __future__ import annotations

import bisect
import random
from typing import TYPE_CHECKING, Any

from .data import SellerData
from .util import MS_DAY, MS_MIN, fmt_ms, mix64, parse_ts

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .core import Simulator

POST_ORDER_STREAMS = ("returns", "inquiries", "cases", "cancellations")
AFTER_SALE_STREAMS = (*POST_ORDER_STREAMS, "shipping_fulfillments")
AFTER_SALE_KIND_ALIASES = {"return": "returns", "inquiry": "inquiries", "case": "cases",
                           "cancellation": "cancellations", "cancel": "cancellations",
                           "shipping_fulfillment": "shipping_fulfillments", "tracking": "shipping_fulfillments"}

LOOK_BACK_MONTHS = 18  # every PO Search page: `_from` "cannot be set to more than 18 months in the past"
WINDOW_MS = 90 * MS_DAY  # every PO Search page: `_from` without `_to` searches forward 90 days
DEFAULT_LIMIT, MAX_LIMIT = 25, 200  # unverified (docs/ebay-api.md): the simulator's choice
RESPOND_MS = 3 * MS_DAY  # seller's deadline to answer (unverified value)
RETURN_REASONS = ("NOT_AS_DESCRIBED", "DEFECTIVE_ITEM", "WRONG_SIZE", "NO_LONGER_NEED", "ORDERED_WRONG_ITEM")
SNAD_REASONS = {"NOT_AS_DESCRIBED", "DEFECTIVE_ITEM"}
CARRIER = "USPS"


class SimReturn:
    __slots__ = ("rid", "order", "line", "created", "approved", "shipped", "closed", "escalated", "reason", "touches")
    rid: str
    order: int
    line: int
    created: int
    approved: int  # ms instants; 0 = not (yet)
    shipped: int
    closed: int
    escalated: int
    reason: str
    touches: list[int]


class SimInquiry:
    __slots__ = ("iid", "order", "line", "created", "closed", "escalated", "touches")
    iid: str
    order: int
    line: int
    created: int
    closed: int
    escalated: bool
    touches: list[int]


class SimCase:
    __slots__ = ("cid", "order", "line", "created", "escalated", "closed", "case_type", "return_id", "touches")
    cid: str
    order: int
    line: int
    created: int
    escalated: int
    closed: int
    case_type: str
    return_id: str | None
    touches: list[int]


class SimCancellation:
    __slots__ = ("cid", "order", "created", "closed", "rejected", "touches")
    cid: str
    order: int
    created: int
    closed: int
    rejected: bool
    touches: list[int]


def _amount(cents: int, currency: str) -> dict[str, Any]:
    """Post-Order Amount: ``value`` is a JSON *number* (PO types Amount: "value ( number )"), unlike the Sell
    APIs' decimal strings."""
    return {"value": cents / 100, "currency": currency}


def _dt(ms: int) -> dict[str, str]:
    """Post-Order DateTime: ``{"value": ISO-8601}`` (dts SDK type DateTime; unverified)."""
    return {"value": fmt_ms(ms)}


class AfterSaleData:
    """Deterministic after-sale records of one seller, a pure function of its orders and the seed, plus
    the mutations done by :meth:`touch`."""

    def __init__(self, data: SellerData):
        self.d = data
        self.returns: list[SimReturn] = []
        self.inquiries: list[SimInquiry] = []
        self.cases: list[SimCase] = []
        self.cancellations: list[SimCancellation] = []
        self.tracking_late: dict[int, int] = {}  # order index -> instant its tracking number appears (0: never)
        self._build()

    # ------------------------------------------------------------------ build
    def _hx(self, i: int) -> int:
        """The per-order hash render_order uses (fulfillmentHrefs id, cancelRequestId)."""
        return mix64(self.d._obase ^ 0x5EED, i)

    def _build(self) -> None:
        d = self.d
        rng = random.Random(f"{d.seed}:{d.name}:after-sale")
        base = 5_000_000_000 + d.no * 10_000_000
        for i in range(d.n_orders):
            c, ship, cancel = d.o_created[i], d.o_ship[i], d.o_cancel[i]
            u = [rng.random() for _ in range(12)]
            if cancel:  # the buyer's request behind the cancelled order (render_order detail: cancelRequests)
                x = SimCancellation()
                x.cid, x.order = f"5{(self._hx(i) >> 30) % 10**9:09d}", i
                x.created, x.closed, x.rejected, x.touches = cancel - 30 * MS_MIN, cancel, False, []
                self.cancellations.append(x)
                continue
            if not ship:  # a never-shipped order: an open request half the time, rejected now and then
                if u[0] < 0.5:
                    x = SimCancellation()
                    x.cid, x.order = f"5{(self._hx(i) >> 30) % 10**9:09d}", i
                    x.created = c + int((1 + 2 * u[1]) * MS_DAY)
                    x.rejected = u[2] < 0.3
                    x.closed = x.created + int((1 + 2 * u[3]) * MS_DAY) if x.rejected else 0
                    x.touches = []
                    self.cancellations.append(x)
                continue
            n_lines = len(d._order_core(i)[0])
            if u[0] < 0.05:
                r = SimReturn()
                r.rid = str(base + 1_000_000 + len(self.returns))
                r.order, r.line = i, int(u[1] * n_lines)
                r.created = ship + int((3 + 17 * u[2]) * MS_DAY)
                r.approved = r.created + int((1 + 2 * u[3]) * MS_DAY) if u[4] < 0.75 else 0
                r.shipped = r.approved + int((2 + 4 * u[5]) * MS_DAY) if r.approved and u[6] < 0.9 else 0
                r.closed = r.shipped + int((5 + 10 * u[7]) * MS_DAY) if r.shipped and u[8] < 0.9 else 0
                r.reason = RETURN_REASONS[int(u[9] * len(RETURN_REASONS))]
                r.escalated, r.touches = 0, []
                self.returns.append(r)
                if r.reason in SNAD_REASONS and u[10] < 0.4:  # the buyer asks eBay to step in
                    r.escalated = r.created + int((6 + 6 * u[11]) * MS_DAY)
                    self._case(base, i, r.line, r.escalated, "RETURN", r.rid, rng)
            elif u[0] < 0.075:
                q = SimInquiry()
                q.iid = str(base + 2_000_000 + len(self.inquiries))
                q.order, q.line = i, 0
                q.created = ship + int((8 + 12 * u[2]) * MS_DAY)
                q.closed = q.created + int((2 + 8 * u[3]) * MS_DAY) if u[4] < 0.7 else 0
                q.escalated, q.touches = False, []
                self.inquiries.append(q)
                if not q.closed and u[5] < 0.5:  # escalated to a case: the inquiry closes when the case opens
                    q.closed, q.escalated = q.created + int((5 + 3 * u[6]) * MS_DAY), True
                    self._case(base, i, 0, q.closed, "ITEM_NOT_RECEIVED", None, rng)
            if u[0] >= 0.075 and u[8] < 0.12:  # shipped without a tracking number; uploaded later (or never)
                self.tracking_late[i] = ship + int((1 + 3 * u[9]) * MS_DAY) if u[10] < 0.7 else 0
        for lst in (self.returns, self.inquiries, self.cases, self.cancellations):
            lst.sort(key=lambda x: x.created)
        self.index: dict[str, dict[str, Any]] = {
            "returns": {r.rid: r for r in self.returns}, "inquiries": {q.iid: q for q in self.inquiries},
            "cases": {k.cid: k for k in self.cases}, "cancellations": {x.cid: x for x in self.cancellations}}
        self._created = {s: [x.created for x in self._list(s)] for s in POST_ORDER_STREAMS}

    def _case(self, base: int, i: int, line: int, created: int, case_type: str, return_id: str | None,
              rng: random.Random) -> None:
        k = SimCase()
        k.cid = str(base + 3_000_000 + len(self.cases))
        k.order, k.line, k.created, k.case_type, k.return_id = i, line, created, case_type, return_id
        k.escalated = 0
        k.closed = created + int((10 + 20 * rng.random()) * MS_DAY) if rng.random() < 0.8 else 0
        k.touches = []
        self.cases.append(k)

    def _list(self, stream: str) -> list:
        return getattr(self, stream)

    # ------------------------------------------------------------------ order helpers
    def line(self, i: int, k: int) -> tuple[str, str, int, int]:
        """(legacy item id, lineItemId, quantity, cost cents) of line ``k`` of order ``i``, as render_order
        shows them (lineItemId = li_base + k)."""
        d = self.d
        j, qty, price = d._order_core(i)[0][k]
        li_base = 10_000_000_000_000 + d.no * 100_000_000_000 + i * 4
        return d.skus[j].item_id, str(li_base + k), qty, qty * price

    def buyer(self, i: int) -> str:
        return self.d.buyer(self.d.o_buyer[i])["username"]

    # ------------------------------------------------------------------ states at `now`
    @staticmethod
    def _at(t: int, now: int) -> bool:
        return 0 < t <= now

    def return_state(self, r: SimReturn, now: int) -> str:
        """ReturnStateEnum (PO types; RETURN_REQUESTED itself is unverified): RETURN_REQUESTED ->
        ITEM_READY_TO_SHIP (approved) -> ITEM_SHIPPED -> CLOSED."""
        if self._at(r.closed, now):
            return "CLOSED"
        if self._at(r.shipped, now):
            return "ITEM_SHIPPED"
        if self._at(r.approved, now):
            return "ITEM_READY_TO_SHIP"
        return "RETURN_REQUESTED"

    def return_status(self, r: SimReturn, now: int) -> str:
        """ReturnStatusEnum (PO types): ESCALATED while its case is open, READY_FOR_SHIPPING once approved."""
        st = self.return_state(r, now)
        if st != "CLOSED" and self._at(r.escalated, now):
            return "ESCALATED"
        return {"ITEM_READY_TO_SHIP": "READY_FOR_SHIPPING"}.get(st, st)

    def case_state(self, k: SimCase, now: int) -> str:
        # CaseStatusEnum (PO types, verified values): OPEN, WAITING_CS (escalated to customer support), CLOSED
        if self._at(k.closed, now):
            return "CLOSED"
        if self._at(k.escalated, now):
            return "WAITING_CS"
        return "OPEN"

    def _lastmod(self, now: int, *times: int, touches: list[int]) -> int:
        return max([t for t in (*times, *touches) if 0 < t <= now])

    # ------------------------------------------------------------------ rendering (dts SDK summary types)
    def render_return(self, r: SimReturn, now: int, detail: bool = False) -> dict[str, Any]:
        d = self.d
        item_id, li_id, qty, cost = self.line(r.order, r.line)
        st = self.return_state(r, now)
        out: dict[str, Any] = {
            "returnId": r.rid, "orderId": d.order_id(r.order), "buyerLoginName": self.buyer(r.order),
            "sellerLoginName": d.name, "currentType": "MONEY_BACK", "state": st, "status": self.return_status(r, now),
            "creationInfo": {"item": {"itemId": item_id, "transactionId": li_id, "returnQuantity": qty},
                             "type": "MONEY_BACK", "reason": r.reason,
                             "reasonType": "SNAD" if r.reason in SNAD_REASONS else "REMORSE",
                             "comments": {"content": "Return requested"}, "creationDate": _dt(r.created)},
            "sellerTotalRefund": {"estimatedRefundAmount": _amount(cost, d.cur)},
        }
        if st == "RETURN_REQUESTED":
            out["sellerResponseDue"] = {"activityDue": "SELLER_APPROVE_REQUEST",
                                        "respondByDate": _dt(r.created + RESPOND_MS)}
        if not detail:
            return out
        # GET /return/{returnId} with the default fieldgroups=FULL: the `detail` container only, no `summary`
        # (PO types GetReturnFieldGroupEnum, ReturnSummaryType); fieldgroups=SUMMARY: `summary` only (make_get)
        # detail.responseHistory[].fromState (PO "Applicable values for .../return/{returnId}
        # GETResponse.detail.responseHistory.fromState": ReturnStateEnum); the other fields are unverified
        hist = [{"activity": "BUYER_CREATE_RETURN", "fromState": "INITIAL", "toState": "RETURN_REQUESTED",
                 "creationDate": _dt(r.created)}]
        prev = "RETURN_REQUESTED"
        for t, what, to in ((r.approved, "SELLER_APPROVE_REQUEST", "ITEM_READY_TO_SHIP"),
                            (r.shipped, "BUYER_SHIPPED_ITEM", "ITEM_SHIPPED"), (r.closed, "RETURN_CLOSED", "CLOSED")):
            if self._at(t, now):
                hist.append({"activity": what, "fromState": prev, "toState": to, "creationDate": _dt(t)})
                prev = to
        det: dict[str, Any] = {"responseHistory": hist,
                               "lastModifiedDate": _dt(self._lastmod(now, r.created, r.approved, r.shipped,
                                                                     r.closed, touches=r.touches))}
        if st == "CLOSED":
            det["closeInfo"] = {"returnCloseReason": "REFUND_ISSUED", "returnCloseDate": _dt(r.closed)}
        return {"detail": det}

    def _claim(self, i: int, line: int) -> dict[str, Any]:
        return _amount(self.line(i, line)[3], self.d.cur)

    def render_inquiry(self, q: SimInquiry, now: int, detail: bool = False) -> dict[str, Any]:
        item_id, li_id, _, _ = self.line(q.order, q.line)
        closed = self._at(q.closed, now)
        # InquiryStatusEnum (PO types): OPEN, CLOSED, CLOSED_WITH_ESCALATION (escalated to a case), ...
        status = ("CLOSED_WITH_ESCALATION" if q.escalated else "CLOSED") if closed else "OPEN"
        out: dict[str, Any] = {
            "inquiryId": q.iid, "inquiryStatusEnum": status,
            "itemId": item_id, "transactionId": li_id, "buyer": self.buyer(q.order), "seller": self.d.name,
            "claimAmount": self._claim(q.order, q.line), "creationDate": _dt(q.created),
            "lastModifiedDate": _dt(self._lastmod(now, q.created, q.closed, touches=q.touches)),
            "respondByDate": _dt(q.created + RESPOND_MS),
        }
        if detail:
            hist = [{"action": "OPEN", "date": _dt(q.created)}] + ([{"action": "CLOSE", "date": _dt(q.closed)}]
                                                                     if closed else [])
            out["inquiryHistoryDetails"] = {"history": hist}
        return out

    def render_case(self, k: SimCase, now: int, detail: bool = False) -> dict[str, Any]:
        item_id, li_id, _, _ = self.line(k.order, k.line)
        out: dict[str, Any] = {
            "caseId": k.cid, "caseStatusEnum": self.case_state(k, now), "itemId": item_id, "transactionId": li_id,
            "buyer": self.buyer(k.order), "seller": self.d.name, "claimAmount": self._claim(k.order, k.line),
            "creationDate": _dt(k.created),
            "lastModifiedDate": _dt(self._lastmod(now, k.created, k.escalated, k.closed, touches=k.touches)),
            "respondByDate": _dt(k.created + RESPOND_MS),
        }
        if detail:  # GET /casemanagement/{caseId} (shape unverified)
            out["caseType"] = k.case_type
            if k.return_id:
                out["returnId"] = k.return_id
        return out

    def render_cancellation(self, x: SimCancellation, now: int, detail: bool = False) -> dict[str, Any]:
        d = self.d
        closed = self._at(x.closed, now)
        status = "CANCEL_REQUESTED"
        if closed:
            status = "CANCEL_REJECTED" if x.rejected else "CANCEL_CLOSED_WITH_REFUND"
        out: dict[str, Any] = {
            "cancelId": x.cid, "marketplaceId": d.mkt, "legacyOrderId": d.order_id(x.order),
            "requestorType": "BUYER", "cancelReason": "BUYER_ASKED_CANCEL",
            "cancelState": "CLOSED" if closed else "REQUESTED", "cancelStatus": status, "paymentStatus": "PAID",
            "requestRefundAmount": _amount(d.o_total[x.order], d.cur), "cancelRequestDate": _dt(x.created),
        }
        if closed:
            out["cancelCloseDate"] = _dt(x.closed)
        else:
            out["sellerResponseDueDate"] = _dt(x.created + RESPOND_MS)
        if detail:  # GET /cancellation/{cancelId}: {"cancelDetail": ...} (shape unverified)
            hist = [{"activityType": "BUYER_CREATE_CANCEL", "actionDate": _dt(x.created)}]
            if closed:
                hist.append({"activityType": "SELLER_REJECT_CANCEL" if x.rejected else "SELLER_APPROVE_CANCEL",
                             "actionDate": _dt(x.closed)})
            return {"cancelDetail": {**out, "activityHistories": hist}}
        return out

    def render(self, stream: str, rec: Any, now: int, detail: bool = False) -> dict[str, Any]:
        return getattr(self, "render_" + {"returns": "return", "inquiries": "inquiry", "cases": "case",
                                          "cancellations": "cancellation"}[stream])(rec, now, detail)

    @staticmethod
    def rec_id(stream: str, rec: Any) -> str:
        return getattr(rec, {"returns": "rid", "inquiries": "iid"}.get(stream, "cid"))

    # ------------------------------------------------------------------ shipping fulfillments
    def ship_at(self, i: int, now: int) -> int:
        return self.d.order_ship_at(i, now)

    def tracking_at(self, i: int, now: int) -> int:
        """When order ``i``'s tracking number became visible (0 = not yet)."""
        s = self.ship_at(i, now)
        if not s:
            return 0
        t = self.tracking_late.get(i, s)
        return t if 0 < t <= now else 0

    def fulfillment_id(self, i: int) -> str:
        """The id render_order puts in fulfillmentHrefs (same formula: tests/sim/test_sim_after_sale.py
        checks the two agree)."""
        return f"9400{(self._hx(i) >> 12) % 10**9:09d}{i % 10**9:09d}"

    def render_fulfillments(self, i: int, now: int) -> list[dict[str, Any]]:
        """getShippingFulfillments `fulfillments` of order ``i`` (spec ShippingFulfillment): one for a
        shipped order, none otherwise; the tracking number is absent until it is uploaded."""
        s = self.ship_at(i, now)
        if not s or self.d.order_status(i, now) != "FULFILLED":
            return []
        lines = self.d._order_core(i)[0]
        f: dict[str, Any] = {"fulfillmentId": self.fulfillment_id(i), "shippedDate": fmt_ms(s),
                             "shippingCarrierCode": CARRIER,
                             "lineItems": [{"lineItemId": self.line(i, k)[1], "quantity": q}
                                           for k, (_, q, _) in enumerate(lines)]}
        if self.tracking_at(i, now):
            f["shipmentTrackingNumber"] = f["fulfillmentId"]
        return [f]

    # ------------------------------------------------------------------ queries
    def search(self, stream: str, now: int, frm: int, to: int, order_id: str | None = None,
               item_id: str | None = None) -> list:
        """Visible records created in [frm, to], newest first (the default order is unverified)."""
        created = self._created[stream]
        lst = self._list(stream)
        lo = bisect.bisect_left(created, frm)
        hi = bisect.bisect_right(created, min(to, now))
        out = lst[lo:hi]
        if order_id is not None:
            oi = self.d.order_index(order_id)
            out = [x for x in out if x.order == oi]
        if item_id is not None:
            out = [x for x in out if self.line(x.order, getattr(x, "line", 0))[0] == item_id]
        out.reverse()
        return out

    def get(self, stream: str, rid: str, now: int) -> Any:
        rec = self.index[stream].get(rid)
        return rec if rec is not None and rec.created <= now else None

    # ------------------------------------------------------------------ mutations
    def touch(self, kind: str, n: int, now: int, rng: random.Random) -> list[str]:
        """returns: a requested return is approved; inquiries: an open inquiry closes; cases: an open case
        escalates to customer support (WAITING_CS); cancellations: an open request is approved (the order's
        own data is not changed); shipping_fulfillments: a tracking number appears on a shipped order (and
        the order's lastModifiedDate moves).  Returns the ids (orderIds for shipping_fulfillments)."""
        ids: list[str] = []
        if kind == "returns":
            rpool = [r for r in self.returns if r.created <= now and self.return_state(r, now) == "RETURN_REQUESTED"]
            for r in rng.sample(rpool, min(n, len(rpool))):
                r.approved = now
                r.shipped = max(r.shipped, now + MS_DAY) if r.shipped else 0
                r.closed = max(r.closed, r.shipped + MS_DAY) if r.closed and r.shipped else 0
                r.touches.append(now)
                ids.append(r.rid)
        elif kind == "inquiries":
            qpool = [q for q in self.inquiries if q.created <= now and not self._at(q.closed, now)]
            for q in rng.sample(qpool, min(n, len(qpool))):
                q.closed, q.escalated = now, False
                q.touches.append(now)
                ids.append(q.iid)
        elif kind == "cases":
            kpool = [k for k in self.cases if k.created <= now and self.case_state(k, now) == "OPEN"]
            for k in rng.sample(kpool, min(n, len(kpool))):
                k.escalated = now
                k.touches.append(now)
                ids.append(k.cid)
        elif kind == "cancellations":
            xpool = [x for x in self.cancellations if x.created <= now and not self._at(x.closed, now)]
            for x in rng.sample(xpool, min(n, len(xpool))):
                x.closed, x.rejected = now, False
                x.touches.append(now)
                ids.append(x.cid)
        elif kind == "shipping_fulfillments":
            ipool = sorted(i for i in self.tracking_late if self.ship_at(i, now) and not self.tracking_at(i, now)
                          and self.d.order_visible(i, now))
            picked = rng.sample(ipool, min(n, len(ipool)))
            for i in picked:
                self.tracking_late[i] = now
            ids = self.d.touch_orders(picked, now)
        else:
            raise ValueError(f"cannot touch {kind!r}")
        return ids

    # ------------------------------------------------------------------ truth
    def truth(self, stream: str, now: int, **kw: Any) -> list[dict[str, Any]]:
        """Post-Order streams: every visible record, newest first, as the search serves it (``detail=True``:
        as the detail GET serves it).  shipping_fulfillments: with ``order_id=`` the order's fulfillments as
        served; without, every visible order's fulfillment with an added ``orderId`` key."""
        if stream in POST_ORDER_STREAMS:
            recs = [x for x in self._list(stream) if x.created <= now]
            recs.reverse()
            return [self.render(stream, x, now, bool(kw.get("detail"))) for x in recs]
        if stream == "shipping_fulfillments":
            oid = kw.get("order_id")
            if oid is not None:
                i = self.d.order_index(oid)
                return self.render_fulfillments(i, now) if i is not None and self.d.order_visible(i, now) else []
            d = self.d
            lo = bisect.bisect_left(d.o_created, now - 730 * MS_DAY)
            hi = bisect.bisect_right(d.o_created, now)
            return [{"orderId": d.order_id(i), **f} for i in range(hi - 1, lo - 1, -1)
                    for f in self.render_fulfillments(i, now)]
        raise ValueError(f"unknown after-sale stream {stream!r}")


# ---------------------------------------------------------------------- endpoints
PO_DOMAINS = {"returns": "returnErrorDomain", "inquiries": "inquiryErrorDomain", "cases": "caseErrorDomain",
              "cancellations": "cancelErrorDomain"}  # PO Error Response names the first and the last
PO_BAD_INPUT = 1230  # the simulator's own errorId for a bad query parameter (unverified)
PO_NOT_FOUND = 1231  # ... and for an unknown id (unverified)
# stream -> (search path, detail path param, date filter prefix, list key, total key)
PO_SEARCH = {
    "returns": ("return", "returnId", "creation_date_range", "members", "total"),
    "inquiries": ("inquiry", "inquiryId", "inquiry_creation_date_range", "members", "totalNumberOfInquiries"),
    "cases": ("casemanagement", "caseId", "case_creation_date_range", "members", "totalNumberOfCases"),
    "cancellations": ("cancellation", "cancelId", "creation_date_range", "cancellations", "total"),
}
PO_OPS = {"returns": ("searchReturns", "getReturn"), "inquiries": ("searchInquiries", "getInquiry"),
          "cases": ("searchCases", "getCase"), "cancellations": ("searchCancellations", "getCancellation")}


def _po_int(req: "Request", name: str, default: int, lo: int, hi: int | None) -> int:
    from .app import ApiError

    raw = req.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        v = None
    if v is None or v < lo or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ApiError(400, PO_BAD_INPUT, f"Invalid {name}.", f"The '{name}' value '{raw}' must be an integer {rng}.",
                       [(name, raw)])
    return v


def _po_ts(req: "Request", name: str) -> int | None:
    from .app import ApiError

    raw = req.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_ts(raw)
    except ValueError:
        raise ApiError(400, PO_BAD_INPUT, "Invalid date format.",
                       f"'{raw}' is not an ISO-8601 timestamp such as 2015-05-15T03:52:39.000Z.", [(name, raw)])


def make_search(stream: str):
    """GET /post-order/v2/{return|inquiry|casemanagement|cancellation}/search (the PO Search pages)."""
    _, _, prefix, list_key, total_key = PO_SEARCH[stream]

    async def handler(sim: "Simulator", req: "Request", seller: str, data: SellerData, now: int) -> "Response":
        from .app import ApiError, json_response, malformed, months_before

        limit = _po_int(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        page = max(1, _po_int(req, "offset", 1, 0, None))  # a 1-based page number; 0 reads as 1 (unverified)
        frm, to = _po_ts(req, prefix + "_from"), _po_ts(req, prefix + "_to")
        if frm is not None and frm < months_before(now, LOOK_BACK_MONTHS):
            raise ApiError(400, PO_BAD_INPUT, "Invalid date range.",
                           f"{prefix}_from cannot be more than {LOOK_BACK_MONTHS} months in the past.",
                           [(prefix + "_from", fmt_ms(frm))])
        if frm is not None and to is None:
            to = frm + WINDOW_MS  # PO Search pages: "goes forward for the following 90 days"
        elif to is not None and frm is None:
            frm = max(to - WINDOW_MS, months_before(now, LOOK_BACK_MONTHS))  # unverified
        elif frm is None:
            frm, to = now - WINDOW_MS, now  # no date filter: the last 90 days (unverified)
        assert frm is not None and to is not None
        if to < frm:
            raise ApiError(400, PO_BAD_INPUT, "Invalid date range.", f"{prefix}_to is before {prefix}_from.")
        if to - frm > WINDOW_MS:  # unverified: the docs only state the 90-day default
            raise ApiError(400, PO_BAD_INPUT, "Invalid date range.", "The date range can be at most 90 days.",
                           [(prefix + "_from", fmt_ms(frm)), (prefix + "_to", fmt_ms(to))])
        q = req.query_params
        order_id = q.get("legacy_order_id" if stream == "cancellations" else "order_id")
        recs = sim.after_sale(seller).search(stream, now, frm, to, order_id, q.get("item_id"))
        total = len(recs)
        chunk = recs[(page - 1) * limit:page * limit]
        asd = sim.after_sale(seller)
        items = [malformed(sim, req, stream, AfterSaleData.rec_id(stream, x), asd.render(stream, x, now))
                 for x in chunk]
        body: dict[str, Any] = {list_key: items, total_key: total}
        if total or stream != "cancellations":  # PO types FindCancelResponse: paginationOutput "is not
            # returned if no cancellation requests match the input criteria"
            body["paginationOutput"] = {"offset": page, "limit": limit, "totalEntries": total,
                                        "totalPages": (total + limit - 1) // limit}
        return json_response(body)
    return handler


def make_get(stream: str):
    """GET /post-order/v2/{...}/{id}: the record's detail."""
    _, param, _, _, _ = PO_SEARCH[stream]

    async def handler(sim: "Simulator", req: "Request", seller: str, data: SellerData, now: int) -> "Response":
        from .app import ApiError, json_response, malformed

        rid = req.path_params[param]
        asd = sim.after_sale(seller)
        rec = asd.get(stream, rid, now)
        if rec is None:
            raise ApiError(404, PO_NOT_FOUND, "Not found.", f"No {stream[:-1]} with id '{rid}'.", [(param, rid)])
        groups = req.query_params.get("fieldgroups") or "FULL"
        if stream == "returns" and groups not in ("FULL", "SUMMARY"):  # GetReturnFieldGroupEnum (NONE: POST only)
            raise ApiError(400, PO_BAD_INPUT, "Invalid fieldgroups.", f"'{groups}' is not FULL or SUMMARY.",
                           [("fieldgroups", groups)])
        if stream == "returns" and groups == "SUMMARY":
            body = {"summary": asd.render(stream, rec, now)}
        else:
            body = asd.render(stream, rec, now, detail=True)
        return json_response(malformed(sim, req, stream, rid, body))
    return handler


async def get_shipping_fulfillments(sim: "Simulator", req: "Request", seller: str, data: SellerData,
                                    now: int) -> "Response":
    """Fulfillment getShippingFulfillments (spec): {fulfillments, total}; an unknown order is 400 32100."""
    from .app import ApiError, json_response, malformed

    oid = req.path_params["orderId"]
    i = data.order_index(oid)
    if i is None or not data.order_visible(i, now):
        raise ApiError(400, 32100, f"Invalid order ID: {oid}", f"Order '{oid}' was not found.", [("orderId", oid)])
    fs = [malformed(sim, req, "shipping_fulfillments", f["fulfillmentId"], f)
          for f in sim.after_sale(seller).render_fulfillments(i, now)]
    return json_response({"fulfillments": fs, "total": len(fs)})


async def get_shipping_fulfillment(sim: "Simulator", req: "Request", seller: str, data: SellerData,
                                   now: int) -> "Response":
    """Fulfillment getShippingFulfillment (spec): one ShippingFulfillment; 400 32100 / 32110."""
    from .app import ApiError, json_response, malformed

    oid, fid = req.path_params["orderId"], req.path_params["fulfillmentId"]
    i = data.order_index(oid)
    if i is None or not data.order_visible(i, now):
        raise ApiError(400, 32100, f"Invalid order ID: {oid}", f"Order '{oid}' was not found.", [("orderId", oid)])
    for f in sim.after_sale(seller).render_fulfillments(i, now):
        if f["fulfillmentId"] == fid:
            return json_response(malformed(sim, req, "shipping_fulfillments", fid, f))
    raise ApiError(400, 32110, f"Invalid shipping fulfillment ID: {fid}", f"Fulfillment '{fid}' was not found.",
                   [("fulfillmentId", fid)])


def routes(api) -> list:
    """Routes of the after-sale endpoints; ``api(path, op, handler)`` is build_app's route factory."""
    out = []
    for stream, (seg, param, _, _, _) in PO_SEARCH.items():
        search_op, get_op = PO_OPS[stream]
        out.append(api(f"/post-order/v2/{seg}/search", search_op, make_search(stream)))
        out.append(api(f"/post-order/v2/{seg}/{{{param}}}", get_op, make_get(stream)))
    out.append(api("/sell/fulfillment/v1/order/{orderId}/shipping_fulfillment", "getShippingFulfillments",
                   get_shipping_fulfillments))
    out.append(api("/sell/fulfillment/v1/order/{orderId}/shipping_fulfillment/{fulfillmentId}",
                   "getShippingFulfillment", get_shipping_fulfillment))
    return out
