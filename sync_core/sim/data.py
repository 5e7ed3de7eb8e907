"""Deterministic, compact, time-aware data of one simulated seller.

Records are stored column-wise in ``array`` objects (a few dozen bytes per order/transaction) and
rendered to eBay-shaped dicts only when served.  Everything is a pure function of (seed, seller spec,
anchor) plus the explicit mutations done through :meth:`SellerData.touch`.

Time model: every record has a creation instant; it is visible when ``creation <= now``.  Lifecycle
events (payment, shipping, cancellation, refund; transaction funds availability and payout; dispute
response and closure; new messages) also carry instants, so the rendered state of a record depends on
``now``: as the simulator clock advances, records change and ``lastModifiedDate`` moves, like eBay.
"""

from __future__ import annotations

import bisect
import random
from array import array
from typing import Any

from . import words as W
from .config import SellerSpec
from .util import MS_DAY, MS_HOUR, MS_MIN, draws, fmt_ms, h32, mix64, money

ORDER_HORIZON_MS = 730 * MS_DAY  # getOrders returns orders up to two years old

# transaction type codes
T_SALE, T_REFUND, T_CREDIT, T_DISPUTE, T_LABEL = range(5)
T_NAMES = ("SALE", "REFUND", "CREDIT", "DISPUTE", "SHIPPING_LABEL")
T_BOOKING = ("CREDIT", "DEBIT", "CREDIT", "DEBIT", "DEBIT")
T_SIGN = (1, -1, 1, -1, -1)

STREAMS = ("orders", "transactions", "payouts", "disputes", "conversations", "messages",
           "inventory_items", "offers", "active_inventory")
TOUCHABLE = ("orders", "transactions", "payouts", "disputes", "conversations", "inventory_items", "offers")

_ORDER_MULT = 1_234_567_891  # coprime with 10**10 -> bijective id mapping
_ORDER_INV = pow(_ORDER_MULT, -1, 10**10)
_SHIP_FEES = (399, 499, 599, 799, 999, 1299)
_REFUND_FRACTIONS = (0.2, 0.3, 0.5, 1.0)


class Sku:
    __slots__ = ("j", "sku", "title", "brand", "price", "item_id", "category", "fmt", "condition", "qty",
                 "in_api", "mpn", "upc", "n_offers", "unpublished")
    j: int
    sku: str | None  # None: a legacy listing without a SKU
    title: str
    brand: str
    price: int  # cents
    item_id: str
    category: str
    fmt: str
    condition: str
    qty: int
    in_api: bool
    mpn: str
    upc: str
    n_offers: int
    unpublished: bool


class Dispute:
    __slots__ = ("k", "pid", "order", "open", "respond_by", "response_at", "close", "reason", "amount",
                 "seller_response", "outcome", "touches")
    k: int
    pid: str
    order: int  # order index
    open: int  # ms instants; 0 = never
    respond_by: int
    response_at: int
    close: int
    reason: str
    amount: int  # cents
    seller_response: str | None
    outcome: bool
    touches: list[int]


class Conversation:
    __slots__ = ("k", "cid", "ctype", "other", "title", "ref_item", "created", "msgs", "archived")
    k: int
    cid: str
    ctype: str
    other: str
    title: str
    ref_item: str | None
    created: int
    msgs: list[list[Any]]  # [time_ms, from_other(bool), text, subject, message_id]
    archived: bool


class SellerData:
    def __init__(self, spec: SellerSpec, seed: int, seller_no: int, anchor_ms: int, arrivals=None):
        self.spec = spec
        self.name = spec.name
        self.seed = seed
        self.no = seller_no
        self.anchor = anchor_ms
        self.cur = spec.currency
        self.mkt = spec.marketplace_id
        self.start = anchor_ms - spec.days * MS_DAY
        self.end = anchor_ms + spec.future_days * MS_DAY
        self.version = 0  # bumped by every mutation (query caches key on it)
        self.touches: dict[str, dict[int, list[int]]] = {s: {} for s in TOUCHABLE}
        self._obase = h32(seed, self.name, "orders") << 20
        self._build_catalog()
        self._build_buyers()
        self._build_orders()
        self._build_disputes()
        self._build_transactions_and_payouts()
        self._build_conversations()
        self._inv_qty: dict[int, int] = {}
        self._offer_qty: dict[str, int] = {}
        self._removed: set[int] = set()  # catalog indexes of inventory items deleted from the Inventory API
        if arrivals is not None:
            self._accelerate(arrivals)

    def _accelerate(self, w) -> None:
        """Records created after the pivot of ``w`` (:class:`~sync_core.sim.clock.Arrivals`) live their whole
        life ``speed`` times faster: every stored instant of theirs goes through ``w``.  Records that exist at
        the pivot keep their seeded life, so a first sync of the history sees it as quiet as eBay's (a window
        paged while hundreds of its orders ship would be re-read for drift, docs/ebay-api.md "Orders paging").
        Instants derived when a record is rendered (estimated delivery, a payout's 36 h INITIATED phase, a
        message's read-after-1-day) keep their seeded offsets."""
        p = w.pivot_ms
        for i in range(self.n_orders):
            if self.o_created[i] > p:
                for a in (self.o_created, self.o_ship, self.o_cancel, self.o_refund, self.o_final):
                    a[i] = w(a[i])
        for x in range(self.n_tx):
            if self.t_date[x] > p:
                self.t_date[x], self.t_avail[x] = w(self.t_date[x]), w(self.t_avail[x])
        for k, t in enumerate(self.p_date):
            self.p_date[k] = w(t)
        for d in self.disputes:
            if d.open > p:
                d.open, d.respond_by, d.response_at, d.close = (w(t) for t in (d.open, d.respond_by, d.response_at,
                                                                               d.close))
        for cv in self.convs:
            if cv.created > p:
                cv.created = w(cv.created)
                for m in cv.msgs:
                    m[0] = w(m[0])

    # ------------------------------------------------------------------ helpers
    def _rng(self, *parts: Any) -> random.Random:
        return random.Random(f"{self.seed}:{self.name}:" + ":".join(str(p) for p in parts))

    def _split_counts(self, n_hist: int) -> tuple[int, int]:
        days = max(1, self.spec.days)
        return n_hist, int(round(n_hist * self.spec.future_days / days))

    def _times(self, rng: random.Random, n_hist: int, n_fut: int) -> list[int]:
        span_h = self.anchor - self.start
        span_f = self.end - self.anchor
        ts = [self.start + int(rng.random() * span_h) for _ in range(n_hist)]
        ts += [self.anchor + 1 + int(rng.random() * max(1, span_f - 1)) for _ in range(n_fut)]
        ts.sort()
        return ts

    # ------------------------------------------------------------------ catalog
    def _build_catalog(self) -> None:
        spec = self.spec
        n_api = max(0, spec.inventory_items)
        n_legacy = spec.legacy_skus if spec.legacy_skus is not None else max(3, n_api // 4)
        rng = self._rng("catalog")
        prefix = "".join(c for c in self.name.upper() if c.isalnum())[:3] or "SIM"
        self.skus: list[Sku] = []
        for j in range(n_api + n_legacy):
            cat, noun, category, base = rng.choice(W.PRODUCTS)
            s = Sku()
            s.j = j
            s.in_api = j < n_api
            no_sku = (not s.in_api) and rng.random() < 0.15  # some legacy listings carry no SKU at all
            s.sku = None if no_sku else f"{prefix}-{cat}-{j:05d}"
            s.brand = rng.choice(W.BRANDS)
            s.title = f"{rng.choice(W.ADJECTIVES)} {s.brand} {noun} {rng.choice(W.COLORS)}"
            s.price = max(199, int(base * rng.uniform(0.55, 1.8)) // 100 * 100 + rng.choice([99, 95, 49, 0]))
            s.item_id = str(110_000_000_000 + self.no * 1_000_000_000 + 7_919 * j + 17)
            s.category = category
            s.fmt = "AUCTION" if rng.random() < 0.12 else "FIXED_PRICE"
            s.condition = rng.choice(W.CONDITIONS)
            s.qty = 0 if rng.random() < 0.06 else rng.choice([1, 1, 2, 3, 5, 8, 10, 25, 50])
            s.mpn = f"{cat}{rng.randint(1000, 99999)}"
            s.upc = str(rng.randint(10**11, 10**12 - 1))
            r = rng.random()
            s.n_offers = 0 if r < 0.15 else (1 if r < 0.85 else 2)
            s.unpublished = rng.random() < 0.08
            self.skus.append(s)
        if not self.skus:  # orders need something to sell
            s = Sku()
            s.j, s.in_api, s.sku, s.brand, s.title = 0, False, f"{prefix}-GEN-00000", "Acme", "Generic Item"
            s.price, s.item_id, s.category, s.fmt, s.condition = 999, str(110_000_000_000 + self.no), "99", "FIXED_PRICE", "NEW"
            s.qty, s.mpn, s.upc, s.n_offers, s.unpublished = 1, "GEN1", "000000000000", 0, False
            self.skus.append(s)
        self.n_sku = len(self.skus)
        self.sku_index = {s.sku: s.j for s in self.skus if s.sku}
        # offers: (offerId, sku j, k, format, listingId)
        self.offers: list[tuple[str, int, int, str, str]] = []
        self.offers_by_sku: dict[str, list[int]] = {}
        for s in self.skus:
            if not s.in_api or s.sku is None:  # Inventory API items always carry a SKU
                continue
            for k in range(s.n_offers):
                fmt = s.fmt if k == 0 else ("AUCTION" if s.fmt == "FIXED_PRICE" else "FIXED_PRICE")
                listing = s.item_id if k == 0 else str(int(s.item_id) + 5_000_000)
                oid = str(4_000_000_000 + self.no * 10_000_000 + s.j * 4 + k)
                self.offers_by_sku.setdefault(s.sku, []).append(len(self.offers))
                self.offers.append((oid, s.j, k, fmt, listing))
        self.offer_index = {o[0]: i for i, o in enumerate(self.offers)}

    # ------------------------------------------------------------------ buyers
    def _build_buyers(self) -> None:
        self.n_buyers = max(20, self.spec.orders // 3)
        self._bbase = h32(self.seed, self.name, "buyer")
        n_places = len(W.PLACES)
        self._buyer_tax = array("h", (W.PLACES[(mix64(self._bbase, b) >> 10) % n_places][3]
                                      for b in range(self.n_buyers)))

    def buyer(self, b: int) -> dict[str, Any]:
        h = mix64(self._bbase, b)
        first = W.FIRST[h % len(W.FIRST)]
        last = W.LAST[(h >> 5) % len(W.LAST)]
        city, state, zip3, tax_bp = W.PLACES[(h >> 10) % len(W.PLACES)]
        style = (h >> 15) % 3
        if style == 0:
            user = f"{first.lower()}{last[0].lower()}_{(h >> 17) % 1000}"
        elif style == 1:
            user = f"{W.NICK[(h >> 17) % len(W.NICK)]}{last.lower()}{(h >> 20) % 100}"
        else:
            user = f"{first[0].lower()}.{last.lower()}{(h >> 19) % 10000}"
        return {
            "username": user,
            "name": f"{first} {last}",
            "email": f"{user.replace('.', '')}@members.ebay.example",
            "street": f"{100 + (h >> 8) % 9800} {W.STREETS[(h >> 12) % len(W.STREETS)]}",
            "city": city, "state": state, "zip": f"{zip3}{(h >> 3) % 100:02d}",
            "phone": f"{200 + (h >> 4) % 700}555{(h >> 9) % 10000:04d}",
            "tax_bp": tax_bp,
        }

    # ------------------------------------------------------------------ orders
    def _order_core(self, i: int) -> tuple[list[tuple[int, int, int]], int, int, int, list[float]]:
        """(lines [(sku j, qty, unit cents)], shipping cents, tax cents, buyer idx, spare draws) of order ``i``."""
        u = draws(mix64(self._obase, i), 20)
        r = u[0]
        n_lines = 1 if r < 0.82 else (2 if r < 0.96 else 3)
        lines = []
        used = set()
        n_sku = self.n_sku
        for k in range(n_lines):
            j = min(n_sku - 1, int(n_sku * u[1 + 3 * k] ** 1.6))
            if j in used:
                continue
            used.add(j)
            s = self.skus[j]
            qty = 1 if (s.fmt == "AUCTION" or u[2 + 3 * k] < 0.85) else 2 + int(u[3 + 3 * k] * 3)
            price = s.price if s.fmt == "FIXED_PRICE" else max(99, int(s.price * (0.5 + 1.1 * u[3 + 3 * k])))
            lines.append((j, qty, price))
        ship = 0 if u[10] < 0.55 else _SHIP_FEES[int(u[11] * len(_SHIP_FEES))]
        b = min(self.n_buyers - 1, int(self.n_buyers * u[12] ** 1.3))
        sub = 0
        for _, q, p in lines:
            sub += q * p
        tax = (sub + ship) * self._buyer_tax[b] // 10000
        return lines, ship, tax, b, u

    def buyer_tax_bp(self, b: int) -> int:
        return self._buyer_tax[b]

    def _build_orders(self) -> None:
        n_hist, n_fut = self._split_counts(self.spec.orders)
        times = self._times(self._rng("order-times"), n_hist, n_fut)
        n = len(times)
        self.n_orders = n
        self.o_created = array("q", times)
        self.o_ship = array("q", bytes(8 * n))
        self.o_cancel = array("q", bytes(8 * n))
        self.o_refund = array("q", bytes(8 * n))
        self.o_refund_cents = array("q", bytes(8 * n))
        self.o_total = array("q", bytes(8 * n))
        self.o_net = array("q", bytes(8 * n))
        self.o_final = array("q", bytes(8 * n))
        self.o_buyer = array("i", bytes(4 * n))
        self._order_off = h32(self.seed, self.name, "oid") % 10**10
        self._order_pfx = 10 + (self.no * 37 + h32(self.name)) % 90
        max_lag = 0
        o_total, o_net, o_buyer = self.o_total, self.o_net, self.o_buyer
        o_cancel, o_ship, o_refund, o_refund_cents = self.o_cancel, self.o_ship, self.o_refund, self.o_refund_cents
        for i in range(n):
            c = times[i]
            lines, ship, tax, b, u = self._order_core(i)
            sub = 0
            for _, q, p in lines:
                sub += q * p
            total = sub + ship + tax
            fee = total * 1325 // 10000 + 30
            o_total[i] = total
            o_net[i] = sub + ship - fee
            o_buyer[i] = b
            r = u[13]
            final = c
            if r < 0.03:
                t = c + int((1 + 35 * u[14]) * MS_HOUR)
                o_cancel[i] = t
                final = t
            elif r < 0.985:
                t = c + int((3 + 93 * u[14]) * MS_HOUR)
                o_ship[i] = t
                final = t
                if u[15] < 0.07:  # late partial refund (return / damaged item)
                    t2 = t + int((3 + 42 * u[16]) * MS_DAY)
                    o_refund[i] = t2
                    o_refund_cents[i] = max(100, int((sub + ship) * _REFUND_FRACTIONS[int(u[17] * 4)]))
                    final = t2
            # else: never shipped (stuck / awaiting shipment forever)
            self.o_final[i] = final
            if final - c > max_lag:
                max_lag = final - c
        self.o_max_lag = max_lag

    def order_id(self, i: int) -> str:
        v = (i * _ORDER_MULT + self._order_off) % 10**10
        return f"{self._order_pfx:02d}-{v // 100000:05d}-{v % 100000:05d}"

    def order_index(self, oid: str) -> int | None:
        try:
            a, b, c = oid.split("-")
            if len(a) != 2 or len(b) != 5 or len(c) != 5 or int(a) != self._order_pfx:
                return None
            v = int(b) * 100000 + int(c)
        except ValueError:
            return None
        i = ((v - self._order_off) * _ORDER_INV) % 10**10
        return i if i < self.n_orders else None

    def order_visible(self, i: int, now: int) -> bool:
        c = self.o_created[i]
        return now - ORDER_HORIZON_MS <= c <= now

    def order_lastmod(self, i: int, now: int) -> int:
        lm = self.o_final[i]
        if lm > now:
            lm = self.o_created[i]
            for t in (self.o_ship[i], self.o_cancel[i], self.o_refund[i]):
                if lm < t <= now:
                    lm = t
        tl = self.touches["orders"].get(i)
        if tl:
            for t in tl:
                if lm < t <= now:
                    lm = t
        return lm

    def order_ship_at(self, i: int, now: int) -> int:
        """Effective ship instant as seen at ``now`` (0 = not shipped); a touch ships an unshipped order."""
        t = self.o_ship[i]
        if 0 < t <= now:
            return t
        if not self.o_cancel[i]:
            for x in self.touches["orders"].get(i, ()):
                if x <= now:
                    return x
        return 0

    def order_status(self, i: int, now: int) -> str:
        if 0 < self.o_cancel[i] <= now:
            return "CANCELLED"
        if self.order_ship_at(i, now):
            return "FULFILLED"
        return "NOT_STARTED"

    def query_orders(self, now: int, creation: tuple[int | None, int | None] | None,
                     lastmod: tuple[int | None, int | None] | None,
                     statuses: set[str] | None) -> list[int] | range:
        """Indices of matching visible orders, newest creationDate first."""
        lo_vis = now - ORDER_HORIZON_MS
        created = self.o_created
        if creation is None and lastmod is None:
            creation = (now - 90 * MS_DAY, None)
        if creation is not None:
            a = max(lo_vis, creation[0] if creation[0] is not None else lo_vis)
            b = min(now, creation[1] if creation[1] is not None else now)
            lo = bisect.bisect_left(created, a)
            hi = bisect.bisect_right(created, b)
            res: list[int] | range = range(hi - 1, lo - 1, -1) if hi > lo else range(0)
        else:
            assert lastmod is not None  # both None was turned into a creation window above
            f = lastmod[0] if lastmod[0] is not None else lo_vis
            t = min(now, lastmod[1] if lastmod[1] is not None else now)
            lo = bisect.bisect_left(created, max(lo_vis, f - self.o_max_lag))
            hi = bisect.bisect_right(created, min(now, t))
            final = self.o_final
            touched = self.touches["orders"]
            out = []
            for i in range(lo, hi):
                lm = final[i]
                if lm > now or i in touched:
                    lm = self.order_lastmod(i, now)
                if f <= lm <= t:
                    out.append(i)
            if touched:
                for i in list(touched):
                    if i < lo and self.order_visible(i, now) and f <= self.order_lastmod(i, now) <= t:
                        out.append(i)
                out.sort()
            out.reverse()
            res = out
        if statuses:
            res = [i for i in res if self._fstatus(i, now) in statuses]
        return res

    def _fstatus(self, i: int, now: int) -> str:
        st = self.order_status(i, now)
        return "FULFILLED" if st == "CANCELLED" else st

    def render_order(self, i: int, now: int, detail: bool = False) -> dict[str, Any]:
        cur = self.cur
        lines, ship, tax, b, _ = self._order_core(i)
        c = self.o_created[i]
        oid = self.order_id(i)
        buyer = self.buyer(b)
        status = self.order_status(i, now)
        cancel_at, refund_at = self.o_cancel[i], self.o_refund[i]
        touches = [t for t in self.touches["orders"].get(i, ()) if t <= now]
        refunded = 0 < refund_at <= now
        sub = sum(q * p for _, q, p in lines)
        total = sub + ship + tax
        fee = total * 1325 // 10000 + 30
        hx = mix64(self._obase ^ 0x5EED, i)
        paid_at = c + 1000 + hx % 90_000
        li_base = 10_000_000_000_000 + self.no * 100_000_000_000 + i * 4
        est_min, est_max = c + 3 * MS_DAY, c + 8 * MS_DAY
        ship_by = c + 2 * MS_DAY
        addr = {"addressLine1": buyer["street"], "city": buyer["city"], "stateOrProvince": buyer["state"],
                "postalCode": buyer["zip"], "countryCode": "US"}
        line_items = []
        ship_left, tax_left = ship, tax
        for k, (j, qty, price) in enumerate(lines):
            s = self.skus[j]
            cost = qty * price
            lship = ship_left if k == len(lines) - 1 else ship * cost // max(1, sub)
            ship_left -= lship
            ltax = tax_left if k == len(lines) - 1 else (cost + lship) * tax // max(1, sub + ship)
            tax_left -= ltax
            li: dict[str, Any] = {
                "lineItemId": str(li_base + k),
                "legacyItemId": s.item_id,
                "title": s.title,
                "lineItemCost": money(cost, cur),
                "quantity": qty,
                "soldFormat": s.fmt,
                "listingMarketplaceId": self.mkt,
                "purchaseMarketplaceId": self.mkt,
                "lineItemFulfillmentStatus": "FULFILLED" if status == "FULFILLED" else "NOT_STARTED",
                "total": money(cost + lship + ltax, cur),
                "deliveryCost": {"shippingCost": money(lship, cur)},
                "appliedPromotions": [],
                "taxes": [],
                "ebayCollectAndRemitTaxes": [{"taxType": "STATE_SALES_TAX", "amount": money(ltax, cur),
                                              "collectionMethod": "NET"}] if ltax else [],
                "properties": {"buyerProtection": True, "soldViaAdCampaign": bool((hx >> (3 + k)) % 7 == 0)},
                "lineItemFulfillmentInstructions": {"minEstimatedDeliveryDate": fmt_ms(est_min),
                                                    "maxEstimatedDeliveryDate": fmt_ms(est_max),
                                                    "shipByDate": fmt_ms(ship_by), "guaranteedDelivery": False},
                "itemLocation": {"location": "San Jose, CA", "countryCode": "US", "postalCode": "95125"},
            }
            if s.sku:
                li["sku"] = s.sku
            if refunded and k == 0:
                li["refunds"] = [{"amount": money(self.o_refund_cents[i], cur), "refundDate": fmt_ms(refund_at),
                                  "refundId": f"5{(hx >> 8) % 10**10:010d}",
                                  "refundReferenceId": f"R{(hx >> 20) % 10**9:09d}"}]
            line_items.append(li)
        pay_status = "PAID"
        refunds = []
        if 0 < cancel_at <= now:
            pay_status = "FULLY_REFUNDED"
            refunds.append({"refundId": f"5{(hx >> 9) % 10**10:010d}", "refundDate": fmt_ms(cancel_at),
                            "amount": money(total, cur), "refundStatus": "REFUNDED",
                            "refundReferenceId": f"R{(hx >> 21) % 10**9:09d}"})
        elif refunded:
            rc = self.o_refund_cents[i]
            pay_status = "FULLY_REFUNDED" if rc >= sub + ship else "PARTIALLY_REFUNDED"
            refunds.append({"refundId": f"5{(hx >> 8) % 10**10:010d}", "refundDate": fmt_ms(refund_at),
                            "amount": money(rc, cur), "refundStatus": "REFUNDED",
                            "refundReferenceId": f"R{(hx >> 20) % 10**9:09d}"})
        cancel: dict[str, Any] = {"cancelState": "NONE_REQUESTED", "cancelRequests": []}
        if 0 < cancel_at <= now:
            cancel = {"cancelState": "CANCELED", "cancelledDate": fmt_ms(cancel_at), "cancelRequests": []}
            if detail:
                cancel["cancelRequests"] = [{
                    "cancelCompletedDate": fmt_ms(cancel_at), "cancelInitiator": "BUYER",
                    "cancelReason": "BUYER_ASKED_CANCEL", "cancelRequestedDate": fmt_ms(cancel_at - 30 * MS_MIN),
                    "cancelRequestId": f"5{(hx >> 30) % 10**9:09d}", "cancelRequestState": "COMPLETED"}]
        lastmod = self.order_lastmod(i, now)
        order: dict[str, Any] = {
            "orderId": oid,
            "creationDate": fmt_ms(c),
            "lastModifiedDate": fmt_ms(max(lastmod, c)),
            "orderFulfillmentStatus": "FULFILLED" if status in ("FULFILLED", "CANCELLED") else "NOT_STARTED",
            "orderPaymentStatus": pay_status,
            "sellerId": self.name,
            "buyer": {
                "username": buyer["username"],
                "taxAddress": {"city": buyer["city"], "stateOrProvince": buyer["state"],
                               "postalCode": buyer["zip"], "countryCode": "US"},
                "buyerRegistrationAddress": {"fullName": buyer["name"], "contactAddress": addr,
                                             "primaryPhone": {"phoneNumber": buyer["phone"]},
                                             "email": buyer["email"]},
            },
            "pricingSummary": {"priceSubtotal": money(sub, cur), "deliveryCost": money(ship, cur),
                               "tax": money(tax, cur), "total": money(total, cur)},
            "cancelStatus": cancel,
            "paymentSummary": {
                "totalDueSeller": money(sub + ship, cur),
                "payments": [{"paymentMethod": "EBAY", "paymentReferenceId": f"{(hx >> 32) % 10**10:010d}",
                              "paymentDate": fmt_ms(paid_at), "amount": money(total, cur),
                              "paymentStatus": "PAID"}],
                "refunds": refunds,
            },
            "fulfillmentStartInstructions": [{
                "fulfillmentInstructionsType": "SHIP_TO",
                "minEstimatedDeliveryDate": fmt_ms(est_min), "maxEstimatedDeliveryDate": fmt_ms(est_max),
                "ebaySupportedFulfillment": False,
                "shippingStep": {"shipTo": {"fullName": buyer["name"], "contactAddress": addr,
                                            "primaryPhone": {"phoneNumber": buyer["phone"]},
                                            "email": buyer["email"]},
                                 "shippingCarrierCode": "USPS", "shippingServiceCode": "USPSPriority"},
            }],
            "fulfillmentHrefs": [],
            "lineItems": line_items,
            "salesRecordReference": str(1000 + i),
            "totalFeeBasisAmount": money(total, cur),
            "totalMarketplaceFee": money(fee, cur),
            "ebayCollectAndRemitTax": tax > 0,
        }
        if status == "FULFILLED":
            fid = f"9400{(hx >> 12) % 10**9:09d}{i % 10**9:09d}"
            order["fulfillmentHrefs"] = [f"https://api.ebay.com/sell/fulfillment/v1/order/{oid}/shipping_fulfillment/{fid}"]
        if touches:
            order["buyerCheckoutNotes"] = f"Order updated ({len(touches)})"
        return order

    # ------------------------------------------------------------------ disputes
    def _build_disputes(self) -> None:
        n_hist, n_fut = self._split_counts(self.spec.disputes)
        rng = self._rng("disputes")
        times = self._times(rng, n_hist, n_fut)
        self.disputes: list[Dispute] = []
        reasons = ["ITEM_NOT_RECEIVED", "SIGNIFICANTLY_NOT_AS_DESCRIBED", "UNAUTHORIZED_PAYMENT",
                   "DUPLICATE_CHARGE", "MERCHANDISE_OR_SERVICE_NOT_RECEIVED"]
        for t in times:
            if self.n_orders == 0:
                break
            hi = bisect.bisect_right(self.o_created, t - 2 * MS_DAY)
            if hi == 0:
                hi = 1
                t = max(t, self.o_created[0] + 2 * MS_DAY)
            lo = bisect.bisect_left(self.o_created, t - 60 * MS_DAY)
            lo = min(lo, hi - 1)
            d = Dispute()
            d.k = len(self.disputes)
            d.pid = str(5_000_000_000 + self.no * 1_000_000 + d.k * 7 + h32(self.seed, self.name, "pd", d.k) % 7)
            d.order = rng.randrange(lo, hi)
            d.open = t
            d.respond_by = t + 10 * MS_DAY
            d.response_at = t + int(rng.uniform(1, 9) * MS_DAY) if rng.random() < 0.8 else 0
            d.close = t + int(rng.uniform(12, 45) * MS_DAY) if rng.random() < 0.85 else 0
            d.reason = rng.choice(reasons)
            d.amount = self.o_total[d.order]
            d.seller_response = rng.choice(["CONTEST", "CONTEST", "FULL_REFUND"]) if d.response_at else None
            d.outcome = rng.random() < 0.6
            d.touches = []
            self.disputes.append(d)
        self.dispute_index = {d.pid: d.k for d in self.disputes}

    def dispute_status(self, d: Dispute, now: int) -> str:
        if d.close and d.close <= now:
            return "CLOSED"
        if d.response_at and d.response_at <= now:
            return "OPEN"
        return "ACTION_NEEDED"

    def query_disputes(self, now: int, open_from: int | None, open_to: int | None, statuses: set[str] | None,
                       order_id: str | None, buyer: str | None) -> list[Dispute]:
        out = []
        for d in self.disputes:
            if d.open > now:
                continue
            st = self.dispute_status(d, now)
            if order_id is not None:
                if self.order_id(d.order) == order_id:
                    out.append(d)
                continue
            if open_from is None and open_to is None:
                if st == "CLOSED" and d.close < now - 90 * MS_DAY:
                    continue
            else:
                if open_from is not None and d.open < open_from:
                    continue
                if open_to is not None and d.open > open_to:
                    continue
            if statuses and st not in statuses:
                continue
            if buyer is not None and self.buyer(self.o_buyer[d.order])["username"] != buyer:
                continue
            out.append(d)
        out.sort(key=lambda d: d.open, reverse=True)
        return out

    def render_dispute(self, d: Dispute, now: int, detail: bool = False) -> dict[str, Any]:
        st = self.dispute_status(d, now)
        oid = self.order_id(d.order)
        out: dict[str, Any] = {
            "paymentDisputeId": d.pid,
            "orderId": oid,
            "buyerUsername": self.buyer(self.o_buyer[d.order])["username"],
            "amount": money(d.amount, self.cur),
            "openDate": fmt_ms(d.open),
            "respondByDate": fmt_ms(d.respond_by),
            "paymentDisputeStatus": st,
            "reason": d.reason,
        }
        if st == "CLOSED":
            out["closedDate"] = fmt_ms(d.close)
        if not detail:
            return out
        touches = [t for t in d.touches if t <= now]
        revision = 1 + (1 if d.response_at and d.response_at <= now else 0) + (1 if st == "CLOSED" else 0) + len(touches)
        lines, _, _, _, _ = self._order_core(d.order)
        li_base = 10_000_000_000_000 + self.no * 100_000_000_000 + d.order * 4
        out["revision"] = revision
        out["lineItems"] = [{"itemId": self.skus[j].item_id, "lineItemId": str(li_base + k)}
                            for k, (j, _, _) in enumerate(lines)]
        out["monetaryTransactions"] = [{"date": fmt_ms(d.open + MS_DAY), "type": "CHARGE", "reason": "DISPUTE_OPENED",
                                        "amount": money(d.amount, self.cur)}]
        out["evidence"] = []
        out["evidenceRequests"] = []
        if d.response_at and d.response_at <= now:
            out["sellerResponse"] = d.seller_response
            if d.seller_response == "CONTEST":
                out["evidence"] = [{"evidenceId": f"{d.pid}-1", "evidenceType": "PROOF_OF_DELIVERY",
                                    "providedDate": fmt_ms(d.response_at), "requestDate": fmt_ms(d.open),
                                    "respondByDate": fmt_ms(d.respond_by),
                                    "files": [{"fileId": f"{d.pid}-f1", "fileType": "PDF", "name": "tracking.pdf",
                                               "uploadedDate": fmt_ms(d.response_at)}],
                                    "lineItems": out["lineItems"][:1]}]
        else:
            out["availableChoices"] = ["CONTEST", "ACCEPT"]
            out["evidenceRequests"] = [{"evidenceId": f"{d.pid}-1", "evidenceType": "PROOF_OF_DELIVERY",
                                        "requestDate": fmt_ms(d.open), "respondByDate": fmt_ms(d.respond_by),
                                        "lineItems": out["lineItems"][:1]}]
        if st == "CLOSED":
            won = d.outcome and d.seller_response == "CONTEST"
            out["resolution"] = {
                "protectionStatus": "FULLY_PROTECTED" if won else "NOT_PROTECTED",
                "reasonForClosure": "SELLER_WIN" if won else "BUYER_WIN",
                "fees": money(0 if won else 2000, self.cur),
                "recoupAmount": money(0 if won else d.amount, self.cur),
                "protectedAmount": money(d.amount if won else 0, self.cur),
                "totalFeeCredit": money(0, self.cur),
            }
            if won:
                out["monetaryTransactions"].append({"date": fmt_ms(d.close), "type": "CREDIT",
                                                    "reason": "DISPUTE_REVIEWED", "amount": money(d.amount, self.cur)})
        if touches:
            out["note"] = f"Updated ({len(touches)})"
        return out

    # ------------------------------------------------------------------ finances
    def _build_transactions_and_payouts(self) -> None:
        spec = self.spec
        rng = self._rng("transactions")
        # candidates: (date, type, ref, amount cents >0, avail_at, hold)
        cands: list[tuple[int, int, int, int, int, int]] = []
        created, ship, cancel, refund = self.o_created, self.o_ship, self.o_cancel, self.o_refund
        tbase = h32(self.seed, self.name, "tx")
        for i in range(self.n_orders):
            r = mix64(tbase, i) & 0xFFFFFFFF
            c = created[i] + 1000 + r % 90_000
            hold = 1 if (r >> 8) % 100 < 8 else 0
            avail = c + (int((7 + (r >> 16) % 15) * MS_DAY) if hold else int((1 + (r >> 16) % 3) * MS_DAY))
            cands.append((c, T_SALE, i, max(1, self.o_net[i]), avail, hold))
            if cancel[i]:
                t = cancel[i] + 5 * MS_MIN
                cands.append((t, T_REFUND, i, max(1, self.o_net[i]), t + MS_DAY, 0))
            if ship[i] and (r >> 24) % 100 < 60:
                t = ship[i] - MS_HOUR
                cands.append((t, T_LABEL, i, 350 + (r % 1450), t, 0))
            if refund[i]:
                t = refund[i] + 2 * MS_MIN
                cands.append((t, T_REFUND, i, self.o_refund_cents[i], t + MS_DAY, 0))
        for d in self.disputes:
            t = d.open + MS_DAY
            cands.append((t, T_DISPUTE, d.k, d.amount, t, 0))
        n_hist_target, n_fut_target = self._split_counts(spec.transactions)
        hist = [x for x in cands if x[0] <= self.anchor]
        fut = [x for x in cands if self.anchor < x[0] <= self.end]
        del cands

        def pick(pool, target, lo_t, hi_t):
            if len(pool) > target:
                pri = {T_SALE: 0, T_REFUND: 1, T_DISPUTE: 2, T_LABEL: 3}
                pool.sort(key=lambda x: (pri.get(x[1], 9), x[0]))
                keep = pool[:target]
                # drop the overflow at random inside the last (partially kept) type, not the newest ones
                if keep:
                    last_type = keep[-1][1]
                    same = [x for x in pool if x[1] == last_type]
                    n_same_keep = sum(1 for x in keep if x[1] == last_type)
                    keep = [x for x in keep if x[1] != last_type] + rng.sample(same, n_same_keep)
                return keep
            out = list(pool)
            for _ in range(target - len(pool)):
                t = lo_t + int(rng.random() * max(1, hi_t - lo_t))
                out.append((t, T_CREDIT, -1, rng.choice([99, 150, 250, 500, 1000, 1500, 2500]), t + MS_DAY, 0))
            return out

        sel = pick(hist, n_hist_target, self.start, self.anchor) + pick(fut, n_fut_target, self.anchor + 1, self.end)
        del hist, fut
        sel.sort()
        n = len(sel)
        self.n_tx = n
        self.t_date = array("q", (x[0] for x in sel))
        self.t_type = array("b", (x[1] for x in sel))
        self.t_ref = array("i", (x[2] for x in sel))
        self.t_amount = array("q", (x[3] for x in sel))
        self.t_avail = array("q", (x[4] for x in sel))
        self.t_hold = array("b", (x[5] for x in sel))
        del sel
        # payouts: evenly spaced with jitter over the history, continuing into the future
        n_ph, _ = self._split_counts(spec.payouts)
        pr = self._rng("payouts")
        pdates = []
        if n_ph > 0:
            step = (self.anchor - self.start) / n_ph
            k = 0
            while True:
                t = int(self.start + (k + 0.5) * step + pr.uniform(-0.2, 0.2) * step)
                if t > self.end:
                    break
                pdates.append(t)
                k += 1
        pdates.sort()
        self.p_date = array("q", pdates)
        np_ = len(pdates)
        self.p_amount = array("q", bytes(8 * np_))
        self.p_count = array("i", bytes(4 * np_))
        self.p_failed = array("b", (1 if pr.random() < 0.03 else 0 for _ in range(np_)))
        self.t_payout = array("i", bytes(4 * n))
        for x in range(n):
            k = bisect.bisect_left(pdates, self.t_avail[x])
            if k >= np_:
                self.t_payout[x] = -1
                continue
            self.t_payout[x] = k
            self.p_amount[k] += T_SIGN[self.t_type[x]] * self.t_amount[x]
            self.p_count[k] += 1
        self.p_base = 7_000_000_000 + self.no * 10_000_000
        self._tx_digit = h32(self.seed, self.name, "txid") % 9 + 1

    def tx_id(self, x: int) -> str:
        if self.t_type[x] == T_SALE:
            return self.order_id(self.t_ref[x])
        return f"{self._tx_digit}{self.no % 100:02d}{x:09d}"

    def payout_id(self, k: int) -> str:
        return str(self.p_base + k)

    def tx_status(self, x: int, now: int) -> str:
        k = self.t_payout[x]
        if k >= 0 and self.p_date[k] <= now:
            return "PAYOUT"
        avail = self.t_avail[x]
        tl = self.touches["transactions"].get(x)
        if tl:
            first = min(tl)
            if first <= now:
                avail = min(avail, first)
        if avail <= now:
            return "FUNDS_AVAILABLE_FOR_PAYOUT"
        return "FUNDS_ON_HOLD" if self.t_hold[x] else "FUNDS_PROCESSING"

    def query_transactions(self, now: int, frm: int | None, to: int | None, types: set[str] | None,
                           statuses: set[str] | None, order_ids: set[str] | None, payout_ids: set[str] | None,
                           tx_ids: set[str] | None) -> list[int] | range:
        """Indices of matching visible transactions, newest transactionDate first."""
        a = frm if frm is not None else -(2**62)
        b = min(now, to if to is not None else now)
        lo = bisect.bisect_left(self.t_date, a)
        hi = bisect.bisect_right(self.t_date, b)
        res: list[int] | range = range(hi - 1, lo - 1, -1) if hi > lo else range(0)
        if types:
            codes = {T_NAMES.index(t) for t in types if t in T_NAMES}
            res = [x for x in res if self.t_type[x] in codes]
        if statuses:
            res = [x for x in res if self.tx_status(x, now) in statuses]
        if order_ids:
            res = [x for x in res if self.t_type[x] in (T_SALE, T_REFUND, T_LABEL)
                   and self.order_id(self.t_ref[x]) in order_ids]
        if payout_ids:
            res = [x for x in res if self.t_payout[x] >= 0 and self.payout_id(self.t_payout[x]) in payout_ids
                   and self.tx_status(x, now) == "PAYOUT"]
        if tx_ids:
            res = [x for x in res if self.tx_id(x) in tx_ids]
        return res

    def render_tx(self, x: int, now: int) -> dict[str, Any]:
        ty = self.t_type[x]
        st = self.tx_status(x, now)
        out: dict[str, Any] = {
            "transactionId": self.tx_id(x),
            "transactionType": T_NAMES[ty],
            "transactionStatus": st,
            "transactionDate": fmt_ms(self.t_date[x]),
            "amount": money(self.t_amount[x], self.cur),
            "bookingEntry": T_BOOKING[ty],
        }
        ref = self.t_ref[x]
        if ty in (T_SALE, T_REFUND, T_LABEL):
            out["orderId"] = self.order_id(ref)
            out["buyer"] = {"username": self.buyer(self.o_buyer[ref])["username"]}
            out["salesRecordReference"] = str(1000 + ref)
        elif ty == T_DISPUTE:
            d = self.disputes[ref]
            out["orderId"] = self.order_id(d.order)
            out["buyer"] = {"username": self.buyer(self.o_buyer[d.order])["username"]}
            out["transactionMemo"] = f"Payment dispute {d.pid}"
        if ty == T_CREDIT:
            out["transactionMemo"] = "Final value fee credit"
        elif ty == T_LABEL:
            out["transactionMemo"] = "USPS Priority Mail shipping label"
        if st == "PAYOUT":
            out["payoutId"] = self.payout_id(self.t_payout[x])
        n_t = sum(1 for t in self.touches["transactions"].get(x, ()) if t <= now)
        if n_t:
            out["transactionMemo"] = (out.get("transactionMemo", "") + f" (updated {n_t})").strip()
        return out

    def payout_status(self, k: int, now: int) -> str:
        t = self.p_date[k]
        tl = self.touches["payouts"].get(k)
        if tl and any(x <= now for x in tl):
            return "SUCCEEDED"
        if self.p_failed[k] and now < t + 3 * MS_DAY:
            return "RETRYABLE_FAILED" if now >= t + MS_DAY else "INITIATED"
        return "INITIATED" if now < t + 36 * MS_HOUR else "SUCCEEDED"

    def query_payouts(self, now: int, frm: int | None, to: int | None, statuses: set[str] | None) -> list[int]:
        a = frm if frm is not None else -(2**62)
        b = min(now, to if to is not None else now)
        lo = bisect.bisect_left(self.p_date, a)
        hi = bisect.bisect_right(self.p_date, b)
        res = list(range(lo, hi))
        if statuses:
            res = [k for k in res if self.payout_status(k, now) in statuses]
        return res

    def render_payout(self, k: int, now: int) -> dict[str, Any]:
        st = self.payout_status(k, now)
        desc = {"INITIATED": "Funds sent", "SUCCEEDED": "Funds available in your account",
                "RETRYABLE_FAILED": "Payout failed, will retry"}.get(st, st)
        return {
            "payoutId": self.payout_id(k),
            "payoutStatus": st,
            "payoutStatusDescription": desc,
            "amount": money(self.p_amount[k], self.cur),
            "payoutDate": fmt_ms(self.p_date[k]),
            "transactionCount": self.p_count[k],
            "payoutInstrument": {"instrumentType": "BANK", "nickname": "Checking",
                                 "accountLastFourDigits": f"{h32(self.seed, self.name, 'bank') % 10000:04d}"},
        }

    # ------------------------------------------------------------------ conversations
    def _build_conversations(self) -> None:
        n_hist, n_fut = self._split_counts(self.spec.conversations)
        rng = self._rng("conversations")
        times = self._times(rng, n_hist, n_fut)
        self.convs: list[Conversation] = []
        for t in times:
            cv = Conversation()
            cv.k = len(self.convs)
            cv.cid = str(3_000_000_000 + self.no * 1_000_000 + cv.k * 7 + h32(self.seed, self.name, "cv", cv.k) % 7)
            cv.created = t
            cv.msgs = []
            if rng.random() < 0.75:
                cv.ctype = "FROM_MEMBERS"
                cv.other = self.buyer(rng.randrange(self.n_buyers))["username"]
                s = self.skus[rng.randrange(self.n_sku)]
                cv.ref_item = s.item_id
                cv.title = f"Question about: {s.title}"
                n_msgs = rng.randint(1, 6)
                tm = t
                for m in range(n_msgs):
                    from_other = m % 2 == 0
                    text = rng.choice(W.MEMBER_QUESTIONS if from_other else W.SELLER_ANSWERS)
                    cv.msgs.append([tm, from_other, text, cv.title])
                    tm += int(rng.uniform(10, 30 * 60) * MS_MIN / 60)
            else:
                cv.ctype = "FROM_EBAY"
                cv.other = "eBay"
                cv.ref_item = None
                subject, body = rng.choice(W.EBAY_NOTICES)
                cv.title = subject
                cv.msgs.append([t, True, body, subject])
                if rng.random() < 0.3:
                    cv.msgs.append([t + int(rng.uniform(1, 72) * MS_HOUR), True, "Reminder: " + body, subject])
            cv.archived = rng.random() < 0.1
            for m_no, msg in enumerate(cv.msgs):
                msg.append(str(int(cv.cid) * 1000 + m_no))
            self.convs.append(cv)
        self.conv_index = {cv.cid: cv.k for cv in self.convs}

    def conv_visible_msgs(self, cv: Conversation, now: int) -> list[list]:
        return [m for m in cv.msgs if m[0] <= now]

    def query_conversations(self, now: int, ctype: str, start: int | None, end: int | None, status: str | None,
                            other: str | None, ref_id: str | None) -> list[tuple[int, Conversation]]:
        out = []
        for cv in self.convs:
            if cv.created > now or cv.ctype != ctype:
                continue
            msgs = self.conv_visible_msgs(cv, now)
            if start is not None or end is not None:
                a = start if start is not None else -(2**62)
                b = end if end is not None else 2**62
                if not any(a <= m[0] <= b for m in msgs):
                    continue
            if status and self.conv_status(cv, msgs, now) != status:
                continue
            if other and cv.other != other:
                continue
            if ref_id and cv.ref_item != ref_id:
                continue
            out.append((msgs[-1][0], cv))
        out.sort(key=lambda p: (p[0], p[1].k), reverse=True)
        return out

    def _msg_read(self, m: list, now: int) -> bool:
        return (not m[1]) or m[0] <= now - MS_DAY

    def conv_status(self, cv: Conversation, msgs: list[list], now: int) -> str:
        if cv.archived and msgs[-1][0] < now - 60 * MS_DAY:
            return "ARCHIVE"
        return "UNREAD" if any(not self._msg_read(m, now) for m in msgs) else "READ"

    def render_message(self, cv: Conversation, m: list, now: int) -> dict[str, Any]:
        seller, other = self.name, cv.other
        out = {
            "messageId": m[4],
            "createdDate": fmt_ms(m[0]),
            "messageBody": m[2],
            "subject": m[3],
            "senderUsername": other if m[1] else seller,
            "recipientUsername": seller if m[1] else other,
            "readStatus": self._msg_read(m, now),
            "messageMedia": [],
        }
        return out

    def render_conversation(self, cv: Conversation, now: int) -> dict[str, Any]:
        msgs = self.conv_visible_msgs(cv, now)
        out: dict[str, Any] = {
            "conversationId": cv.cid,
            "conversationType": cv.ctype,
            "conversationStatus": self.conv_status(cv, msgs, now),
            "conversationTitle": cv.title,
            "createdDate": fmt_ms(cv.created),
            "latestMessage": self.render_message(cv, msgs[-1], now),
            "unreadCount": sum(1 for m in msgs if not self._msg_read(m, now)),
        }
        if cv.ref_item:
            out["referenceId"] = cv.ref_item
            out["referenceType"] = "LISTING"
        return out

    # ------------------------------------------------------------------ inventory
    def api_skus(self) -> list[Sku]:
        return [s for s in self.skus if s.in_api and s.j not in self._removed]

    def sku_offers(self, sku: str | None) -> list[int]:
        """The offers of a SKU (none once its inventory item is deleted)."""
        j = None if sku is None else self.sku_index.get(sku)
        return [] if sku is None or j is None or j in self._removed else list(self.offers_by_sku.get(sku, ()))

    def set_removed(self, sku: str, removed: bool) -> None:
        """deleteInventoryItem (its offers and their listings go with it), or the item listed again."""
        j = self.sku_index.get(sku)
        if j is None or not self.skus[j].in_api:
            raise ValueError(f"{sku!r} is not an Inventory API SKU")
        (self._removed.add if removed else self._removed.discard)(j)
        self.version += 1

    def sku_qty(self, s: Sku) -> int:
        return self._inv_qty.get(s.j, s.qty)

    def render_inventory_item(self, s: Sku) -> dict[str, Any]:
        h = h32(self.seed, self.name, "img", s.j)
        return {
            "sku": s.sku,
            "locale": "en_US",
            "condition": s.condition,
            "product": {
                "title": s.title,
                "brand": s.brand,
                "mpn": s.mpn,
                "upc": [s.upc],
                "description": f"{s.title}. Ships fast from our US warehouse.",
                "imageUrls": [f"https://i.ebayimg.com/images/g/{h:08x}/s-l1600.jpg"],
            },
            "availability": {"shipToLocationAvailability": {"quantity": self.sku_qty(s)}},
            "packageWeightAndSize": {"weight": {"value": round(0.2 + (h % 50) / 10, 1), "unit": "POUND"},
                                     "packageType": "PACKAGE_THICK_ENVELOPE" if h % 3 == 0 else "USPS_LARGE_PACK"},
        }

    def offer_qty(self, oi: int) -> int:
        oid, j, k, fmt, _ = self.offers[oi]
        if oid in self._offer_qty:
            return self._offer_qty[oid]
        return 1 if fmt == "AUCTION" else self.sku_qty(self.skus[j])

    def offer_price(self, oi: int) -> int:
        oid, j, k, fmt, _ = self.offers[oi]
        p = self.skus[j].price
        return p if fmt == "FIXED_PRICE" else max(99, p * 6 // 10)

    def offer_published(self, oi: int) -> bool:
        oid, j, k, fmt, _ = self.offers[oi]
        return not (self.skus[j].unpublished and k == 0)

    def render_offer(self, oi: int) -> dict[str, Any]:
        oid, j, k, fmt, listing = self.offers[oi]
        s = self.skus[j]
        pub = self.offer_published(oi)
        price = money(self.offer_price(oi), self.cur)
        out: dict[str, Any] = {
            "offerId": oid,
            "sku": s.sku,
            "marketplaceId": self.mkt,
            "format": fmt,
            "availableQuantity": self.offer_qty(oi),
            "categoryId": s.category,
            "listingDescription": f"<p>{s.title}</p>",
            "listingDuration": "GTC" if fmt == "FIXED_PRICE" else "DAYS_7",
            "listingPolicies": {"fulfillmentPolicyId": f"6{self.no:03d}000001", "paymentPolicyId": f"6{self.no:03d}000002",
                                "returnPolicyId": f"6{self.no:03d}000003", "eBayPlusIfEligible": False},
            "merchantLocationKey": "WAREHOUSE-1",
            # PricingSummary.price: "For published offers, this container will always be returned"
            "pricingSummary": ({"price": price} if fmt == "FIXED_PRICE" else
                               {"auctionStartPrice": price, **({"price": price} if pub else {})}),
            "status": "PUBLISHED" if pub else "UNPUBLISHED",
            "includeCatalogProductDetails": True,
            "hideBuyerDetails": False,
        }
        if pub:
            out["listing"] = {"listingId": listing, "listingStatus": "ACTIVE", "listingOnHold": False,
                              "soldQuantity": h32(self.seed, oid, "sold") % 40}
        return out

    def active_inventory(self, listing_format: str | None) -> list[dict[str, str]]:
        """Rows of the LMS_ACTIVE_INVENTORY_REPORT: one per active listing."""
        rows = []
        for s in self.skus:
            if s.in_api:
                for oi in self.sku_offers(s.sku):
                    if not self.offer_published(oi):
                        continue
                    _, _, _, fmt, listing = self.offers[oi]
                    if listing_format and fmt != listing_format:
                        continue
                    qty = self.offer_qty(oi)
                    rows.append(self._report_row(s.sku, listing, self.offer_price(oi), qty))
            else:
                if listing_format and s.fmt != listing_format:
                    continue
                rows.append(self._report_row(s.sku, s.item_id, s.price, s.qty))
        return rows

    def _report_row(self, sku: str | None, item_id: str, price: int, qty: int) -> dict[str, str]:
        row: dict[str, str] = {}
        if sku:
            row["SKU"] = sku
        row["Price"] = money(price, self.cur)["value"]
        row["Price@currencyID"] = self.cur
        row["Quantity"] = str(qty)
        row["ItemID"] = item_id
        return row

    # ------------------------------------------------------------------ mutations
    def touch_orders(self, indices: list[int], now: int) -> list[str]:
        """Modify these orders at ``now`` (as :meth:`touch` does for randomly picked ones)."""
        for i in indices:
            self.touches["orders"].setdefault(i, []).append(now)
        self.version += 1
        return [self.order_id(i) for i in indices]

    def touch(self, kind: str, n: int, now: int, rng: random.Random) -> list[str]:
        """Modify ``n`` visible records of ``kind`` at ``now``; returns their ids."""
        if kind not in TOUCHABLE:
            raise ValueError(f"cannot touch {kind!r}; touchable kinds: {', '.join(TOUCHABLE)}")
        ids: list[str] = []
        if kind == "orders":
            lo = bisect.bisect_left(self.o_created, now - ORDER_HORIZON_MS)
            hi = bisect.bisect_right(self.o_created, now)
            pool = list(range(lo, hi))
            for i in rng.sample(pool, min(n, len(pool))):
                self.touches["orders"].setdefault(i, []).append(now)
                ids.append(self.order_id(i))
        elif kind == "transactions":
            hi = bisect.bisect_right(self.t_date, now)
            for x in rng.sample(range(hi), min(n, hi)):
                self.touches["transactions"].setdefault(x, []).append(now)
                ids.append(self.tx_id(x))
        elif kind == "payouts":
            hi = bisect.bisect_right(self.p_date, now)
            for k in rng.sample(range(hi), min(n, hi)):
                self.touches["payouts"].setdefault(k, []).append(now)
                ids.append(self.payout_id(k))
        elif kind == "disputes":
            disputes = [d for d in self.disputes if d.open <= now]
            for d in rng.sample(disputes, min(n, len(disputes))):
                d.touches.append(now)
                ids.append(d.pid)
        elif kind == "conversations":
            convs = [cv for cv in self.convs if cv.created <= now]
            for cv in rng.sample(convs, min(n, len(convs))):
                text = rng.choice(W.MEMBER_QUESTIONS) if cv.ctype == "FROM_MEMBERS" else "Reminder: " + cv.msgs[0][2]
                # build a new list and swap it in: readers in another thread never see a half-sorted list
                cv.msgs = sorted(cv.msgs + [[now, True, text, cv.title, str(int(cv.cid) * 1000 + len(cv.msgs))]],
                                 key=lambda m: m[0])
                ids.append(cv.cid)
        elif kind == "inventory_items":
            skus = self.api_skus()
            for s in rng.sample(skus, min(n, len(skus))):
                self._inv_qty[s.j] = max(0, self.sku_qty(s) + rng.choice([-2, -1, 1, 3, 10]))
                assert s.sku is not None  # Inventory API items always carry a SKU
                ids.append(s.sku)
        elif kind == "offers":
            pool = list(range(len(self.offers)))
            for oi in rng.sample(pool, min(n, len(pool))):
                oid = self.offers[oi][0]
                self._offer_qty[oid] = max(0, self.offer_qty(oi) + rng.choice([-1, 1, 2, 5]))
                ids.append(oid)
        self.version += 1
        return ids

    # ------------------------------------------------------------------ truth
    def truth(self, stream: str, now: int, **kw: Any) -> list[dict[str, Any]]:
        if stream == "orders":
            lo = bisect.bisect_left(self.o_created, now - ORDER_HORIZON_MS)
            hi = bisect.bisect_right(self.o_created, now)
            return [self.render_order(i, now) for i in range(hi - 1, lo - 1, -1)]
        if stream == "transactions":
            hi = bisect.bisect_right(self.t_date, now)
            return [self.render_tx(x, now) for x in range(hi - 1, -1, -1)]
        if stream == "payouts":
            hi = bisect.bisect_right(self.p_date, now)
            return [self.render_payout(k, now) for k in range(hi)]
        if stream == "disputes":
            ds = sorted((d for d in self.disputes if d.open <= now), key=lambda d: d.open, reverse=True)
            return [self.render_dispute(d, now, detail=bool(kw.get("detail"))) for d in ds]
        if stream == "conversations":
            out = []
            for ct in ("FROM_EBAY", "FROM_MEMBERS"):
                out += [self.render_conversation(cv, now)
                        for _, cv in self.query_conversations(now, ct, None, None, None, None, None)]
            return out
        if stream == "messages":
            cid = kw.get("conversation_id")
            out = []
            for cv in self.convs:
                if cv.created > now or (cid is not None and cv.cid != cid):
                    continue
                out += [self.render_message(cv, m, now) for m in self.conv_visible_msgs(cv, now)]
            return out
        if stream == "inventory_items":
            return [self.render_inventory_item(s) for s in self.api_skus()]
        if stream == "offers":
            return [self.render_offer(oi) for s in self.api_skus() for oi in self.sku_offers(s.sku)]
        if stream == "active_inventory":
            return self.active_inventory(kw.get("listing_format"))
        raise ValueError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS)}")
