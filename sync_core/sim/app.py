"""Starlette app of the simulator: eBay API endpoints, OAuth, and the ``/sim/*`` admin endpoints."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .after_sale import routes as after_sale_routes
from .auth import ACCESS_TTL_S, REFRESH_TTL_S, SCOPE_PREFIX, parse_scopes
from .config import Faults
from .core import API_OF_OP
from .data import SellerData
from .faults import SimConnectionReset
from .feed import FEED_TYPE, report_zip, variation_listing
from .util import MS_DAY, error_body, fmt_ms, ms_to_dt, parse_ts

if TYPE_CHECKING:
    from .core import Simulator

log = logging.getLogger("sync_core.sim")

MAX_WINDOW_MS = 90 * MS_DAY

# operation -> accepted scopes (any of); None = any valid token (user or application).  Per the specs' `security`
# (docs/ebay-api.md, "Scopes per stream"; getUserRateLimits is laxer than the spec: see its "Disagreements").
OP_SCOPES: dict[str, tuple[str, ...] | None] = {
    "getOrders": ("sell.fulfillment", "sell.fulfillment.readonly"),
    "getOrder": ("sell.fulfillment", "sell.fulfillment.readonly"),
    "getPaymentDisputeSummaries": ("sell.payment.dispute",),
    "getPaymentDispute": ("sell.payment.dispute",),
    "getTransactions": ("sell.finances",),
    "getPayouts": ("sell.finances",),
    "getPayout": ("sell.finances",),
    "getConversations": ("commerce.message",),
    "getConversation": ("commerce.message",),
    "getInventoryItems": ("sell.inventory", "sell.inventory.readonly"),
    "getOffers": ("sell.inventory", "sell.inventory.readonly"),
    "createInventoryTask": ("sell.inventory",),
    "getInventoryTask": ("sell.inventory",),
    "getInventoryTasks": ("sell.inventory",),
    "getResultFile": ("sell.inventory",),
    # developer_analytics spec, getUserRateLimits `security`: an authorization-code (user) token with one of
    "getUserRateLimits": ("sell.inventory", "sell.inventory.readonly", "sell.marketplace.insights.readonly",
                          "commerce.catalog.readonly", "sell.marketing", "sell.marketing.readonly"),
    "getRateLimits": None,
    # fulfillment spec, getShippingFulfillments / getShippingFulfillment `security`
    "getShippingFulfillments": ("sell.fulfillment", "sell.fulfillment.readonly"),
    "getShippingFulfillment": ("sell.fulfillment", "sell.fulfillment.readonly"),
    # Post-Order: no page names a scope (docs/ebay-api.md "Post-Order API and shipping fulfillments",
    # unverified); the simulator asks for the orders stream's scopes
    **{op: ("sell.fulfillment", "sell.fulfillment.readonly") for op in (
        "searchReturns", "getReturn", "searchInquiries", "getInquiry", "searchCases", "getCase",
        "searchCancellations", "getCancellation")},
}
# Post-Order operations -> their error domain.  They take `Authorization: IAF <token>` and answer errors in
# the {"errorMessage": {"error": [...]}} envelope (docs/ebay-api.md "Post-Order API and shipping
# fulfillments"; the IAF form rests on third-party SDKs, the domains other than return/cancel are invented)
POST_ORDER_OPS = {"searchReturns": "returnErrorDomain", "getReturn": "returnErrorDomain",
                  "searchInquiries": "inquiryErrorDomain", "getInquiry": "inquiryErrorDomain",
                  "searchCases": "caseErrorDomain", "getCase": "caseErrorDomain",
                  "searchCancellations": "cancelErrorDomain", "getCancellation": "cancelErrorDomain"}
POST_ORDER_DOMAINS = frozenset(POST_ORDER_OPS.values())
APP_TOKEN_OK = {"getRateLimits"}
# developer_analytics spec (info.description): "getRateLimits requires an access token generated with a
# client credentials grant".  What eBay answers to a user token is not documented: the simulator gives
# its 403 "Access denied" envelope (UNVERIFIED, docs/ebay-api.md "Rate limits and application tokens").
APP_TOKEN_ONLY = {"getRateLimits"}

DOMAINS = {"Fulfillment": "API_FULFILLMENT", "Finances": "API_FINANCES", "Message": "API_MESSAGE",
           "Inventory": "API_INVENTORY", "Feed": "API_FEED", "Analytics": "API_ANALYTICS"}


class ApiError(Exception):
    def __init__(self, status: int, error_id: int, message: str, long_message: str | None = None,
                 params: list[tuple[str, str]] | None = None, domain: str | None = None,
                 category: str = "REQUEST", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error_id, self.message = status, error_id, message
        self.long_message, self.params, self.domain = long_message, params, domain
        self.category, self.headers = category, headers or {}

    def response(self, default_domain: str) -> Response:
        if default_domain in POST_ORDER_DOMAINS:
            return self.po_response(default_domain)
        body = error_body(self.error_id, self.domain or default_domain, self.category, self.message,
                          self.long_message, self.params)
        return json_response(body, self.status, self.headers)

    def po_response(self, domain: str) -> Response:
        """The Post-Order error envelope (PO Error Response, docs/ebay-api.md "Post-Order API and shipping
        fulfillments"): ``{"errorMessage": {"error": [{errorId, domain, severity, category, message,
        longMessage, parameter, httpStatusCode}]}}``, categories capitalised as there (Application, ...)."""
        err: dict[str, Any] = {"errorId": self.error_id, "domain": domain, "severity": "Error",
                               "category": self.category.capitalize(), "message": self.message,
                               "longMessage": self.long_message or self.message,
                               "httpStatusCode": str(self.status)}
        if self.params:
            err["parameter"] = [{"name": n, "value": str(v)} for n, v in self.params]
        return json_response({"errorMessage": {"error": [err]}}, self.status, self.headers)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(obj), status_code=status, headers=headers, media_type="application/json")


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "error_description": description}, status, headers)


# ---------------------------------------------------------------------- request parsing helpers
# The message of a query-parameter error, where the spec's x-response-codes give one for its errorId
# (sell_fulfillment_v1 getOrders / getPaymentDisputeSummaries, commerce_message_v1, sell_feed_v1;
# sell_finances_v1 getTransactions / getPayouts / getPayout: the description of each declared errorId).
SPEC_MESSAGES = {
    30700: "Invalid filter name", 30800: "Invalid filter value", 30810: "Invalid date format",
    30820: "Start date is missing", 30840: "Start date should be before end date",
    31000: "Invalid offset", 31100: "Invalid limit", 33001: "Invalid input request",
    355005: "Invalid date format used for one or both date filters.", 355008: "Invalid offset.",
    355009: "Invalid limit.",
    160011: "The 'look_back_days' value must be greater than zero and less than or equal to 90.",
    160012: "The 'limit' value must be greater than zero and less than or equal to 500.",
    160013: "The 'offset' value cannot be less than zero.",
    135001: "The payout id was not found.", 135002: "The value of payout status filter is invalid.",
    135003: "The value of pagination is invalid.", 135004: "The value of payout date filter is invalid.",
    135005: "The value of sorting is invalid.", 135006: "The value of transaction type filter is invalid.",
    135007: "The value of transaction status filter is invalid.",
    135008: "The value of transaction date filter is invalid.",
}


def q_int(req: Request, name: str, default: int, lo: int | None, hi: int | None, error_id: int) -> int:
    raw = req.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(400, error_id, SPEC_MESSAGES.get(error_id, f"Invalid value for {name}."),
                       f"The value '{raw}' of the '{name}' query parameter is not a valid integer.", [(name, raw)])
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ApiError(400, error_id, SPEC_MESSAGES.get(error_id, f"Invalid value for {name}."),
                       f"The '{name}' value {v} is invalid; it must be {rng}.", [(name, raw)])
    return v


def q_ts(req: Request, name: str, error_id: int) -> int | None:
    raw = req.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_ts(raw)
    except ValueError:
        raise ApiError(400, error_id, SPEC_MESSAGES.get(error_id, f"Invalid date format for {name}."),
                       f"'{raw}' is not a valid ISO-8601 UTC timestamp (yyyy-MM-ddTHH:mm:ss.SSSZ).", [(name, raw)])


def split_filter(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class FilterErrors:
    """errorIds for the kinds of `filter` error: an unknown filter name, a malformed value, an invalid
    timestamp, a range without a start or end, a range whose end is before its start."""
    name: int
    value: int
    date: int
    start_missing: int
    order: int


# spec sell_fulfillment_v1 getOrders, 400 x-response-codes (docs/ebay-api.md "Disagreements", item 1)
ORDERS_FILTER_ERRORS = FilterErrors(30700, 30800, 30810, 30820, 30840)


def parse_filter(text: str | None, known: dict[str, str], error_id: "int | FilterErrors",
                 by_name: dict[str, int] | None = None) -> dict[str, Any]:
    """``name:[a..b]`` -> (ms|None, ms|None); ``name:{A|B}`` -> set.  ``known``: lower-case name -> kind
    ("range" | "set").  Names are matched case-insensitively; the result is keyed by lower-case name.
    ``error_id``: one errorId for every filter error, or a FilterErrors naming one per kind of error.
    ``by_name``: lower-case filter name -> the errorId of any error in that filter (the Finances specs
    declare one id per filter, e.g. 135008 "The value of transaction date filter is invalid.")."""
    out: dict[str, Any] = {}
    if not text:
        return out
    ids = error_id if isinstance(error_id, FilterErrors) else FilterErrors(*[error_id] * 5)

    def bad(msg: str, kind: str = "value") -> ApiError:
        eid = (by_name or {}).get(key) or getattr(ids, kind)
        return ApiError(400, eid, SPEC_MESSAGES.get(eid, "Invalid filter."), msg, [("filter", text)])

    for part in split_filter(text):
        key = ""
        if ":" not in part:
            raise bad(f"Filter criterion '{part}' is not of the form name:value.")
        name, value = part.split(":", 1)
        key = name.strip().lower()
        kind = known.get(key)
        if kind is None:
            raise bad(f"Unsupported filter '{name}'.", "name")
        value = value.strip()
        if kind == "range":
            if not (value.startswith("[") and value.endswith("]")) or ".." not in value:
                raise bad(f"Filter '{name}' must be a range like [2024-01-01T00:00:00.000Z..] "
                          f"(brackets may be percent-encoded as %5B %5D).")
            a, b = value[1:-1].split("..", 1)
            try:
                fa = parse_ts(a) if a.strip() else None
                fb = parse_ts(b) if b.strip() else None
            except ValueError:
                raise bad(f"Filter '{name}' has an invalid timestamp; use yyyy-MM-ddTHH:mm:ss.SSSZ.", "date")
            if fa is None and fb is None:
                raise bad(f"Filter '{name}' needs a start and/or an end timestamp.", "start_missing")
            if fa is not None and fb is not None and fb < fa:
                raise bad(f"Filter '{name}': the end is before the start.", "order")
            out[key] = (fa, fb)
        else:
            if not (value.startswith("{") and value.endswith("}")):
                raise bad(f"Filter '{name}' must be a set like {{A|B}} (braces and | may be percent-encoded).")
            vals = {v.strip() for v in value[1:-1].split("|") if v.strip()}
            if not vals:
                raise bad(f"Filter '{name}' is empty.")
            out[key] = vals
    return out


def page_url(req: Request, offset: int, limit: int) -> str:
    base = f"{req.url.scheme}://{req.url.netloc}{req.url.path}"
    items = [(k, v) for k, v in req.query_params.multi_items() if k not in ("limit", "offset")]
    items += [("limit", str(limit)), ("offset", str(offset))]
    return base + "?" + urlencode(items, quote_via=quote, safe=":,")


def paged(req: Request, offset: int, limit: int, total: int, page_index: bool = False) -> dict[str, Any]:
    """href/next/prev (next only when more records remain) for a record offset or a page index."""
    out: dict[str, Any] = {"href": page_url(req, offset, limit)}
    if page_index:
        if (offset + 1) * limit < total:
            out["next"] = page_url(req, offset + 1, limit)
        if offset > 0:
            out["prev"] = page_url(req, offset - 1, limit)
    else:
        if offset + limit < total:
            out["next"] = page_url(req, offset + limit, limit)
        if offset > 0:
            out["prev"] = page_url(req, max(0, offset - limit), limit)
    return out


def months_before(ms: int, months: int) -> int:
    dt = ms_to_dt(ms)
    y, m = divmod(dt.year * 12 + dt.month - 1 - months, 12)
    day = min(dt.day, 28)
    return int(dt.replace(year=y, month=m + 1, day=day).timestamp() * 1000)


# ---------------------------------------------------------------------- the API endpoint wrapper
Handler = Callable[["Simulator", Request, str, SellerData, int], Awaitable[Response]]


# X-EBAY-C-MARKETPLACE-ID.  Declared `required: true` only for Feed createTask (POST /sell/feed/v1/task,
# sell_feed_v1_oas3.json) and Negotiation findEligibleItems / sendOfferToInterestedBuyers
# (sell_negotiation_v1_oas3.json); the operations served here do not declare it at all.  Values: eBay's
# MarketplaceIdEnum (developer.ebay.com/api-docs/sell/fulfillment/types/ba:MarketplaceIdEnum), the list in
# sync_core.config.MARKETPLACE_IDS.  The sim answers an unknown value on any call, and a missing one on the
# operations that require it, with 400; that eBay rejects an unknown value on calls that do not declare the
# header, and the errorId it uses, are unverified (docs/ebay-api.md "Marketplace header").
MARKETPLACE_REQUIRED_OPS = frozenset({"createTask", "findEligibleItems", "sendOfferToInterestedBuyers",
                                      *POST_ORDER_OPS})  # PO Making a Call: every Post-Order call needs it
MARKETPLACE_ERROR_ID = 2005  # unverified


def marketplace_error(op: str, value: str | None) -> "ApiError | None":
    from sync_core.config import MARKETPLACE_IDS

    if value is None:
        if op not in MARKETPLACE_REQUIRED_OPS:
            return None
        return ApiError(400, MARKETPLACE_ERROR_ID, "Missing header X-EBAY-C-MARKETPLACE-ID.",
                        "The X-EBAY-C-MARKETPLACE-ID header is required for this call.",
                        [("X-EBAY-C-MARKETPLACE-ID", "")])
    if value.strip() in MARKETPLACE_IDS:
        return None
    return ApiError(400, MARKETPLACE_ERROR_ID, "Invalid header X-EBAY-C-MARKETPLACE-ID.",
                    f"'{value[:40]}' is not a supported eBay marketplace ID.",
                    [("X-EBAY-C-MARKETPLACE-ID", value[:40])])


class Api:
    """ASGI endpoint: token -> faults -> auth -> quota -> handler, with stats and rate counting."""

    def __init__(self, sim: "Simulator", op: str, handler: Handler):
        self.sim, self.op, self.handler = sim, op, handler
        ctx, self.api_name, ver, self.resource = API_OF_OP[op]
        self.domain = POST_ORDER_OPS.get(op) or DOMAINS.get(self.api_name, "API")

    async def __call__(self, scope, receive, send) -> None:
        sim = self.sim
        req = Request(scope, receive)
        now = sim.now_ms()
        tok = iaf_token(req) if self.op in POST_ORDER_OPS else bearer_token(req)
        ident = sim.auth.lookup_access(tok, now)
        seller = ident.seller if ident else None
        stats = sim.counters
        mkt = req.headers.get("x-ebay-c-marketplace-id")
        stats.call(seller, self.op, mkt)
        dec = sim.faults.decide(scope["path"])
        await delay_or_reset(stats, dec, scope, send)
        resp: Response
        bad_mkt = marketplace_error(self.op, mkt)
        if dec.action == "429":
            stats.fault("429")
            resp = ApiError(429, 2001, "Too many requests. The request limit has been reached for the resource.",
                            domain="ACCESS", headers=retry_after_header(sim.faults.faults)
                            ).response(self.domain)
        elif dec.action == "5xx":
            stats.fault("5xx")
            resp = ApiError(dec.status, 2003, "There was a problem with an eBay internal system or process. "
                            "Contact eBay developer support for assistance.", domain="ACCESS",
                            category="APPLICATION").response(self.domain)
        elif ident is None:
            stats.fault("401")
            resp = ApiError(401, 1001, "Invalid access token",
                            "Invalid access token. Check the value of the Authorization HTTP request header.",
                            domain="OAuth").response(self.domain)
        elif bad_mkt is not None:
            resp = bad_mkt.response(self.domain)
        elif not self._scope_ok(ident):
            resp = ApiError(403, 1100, "Access denied", "Insufficient permissions to fulfill the request.",
                            domain="ACCESS").response(self.domain)
        elif self.api_name == "Finances" and sim.signing_required(seller) and \
                (bad := await signature_error(sim, req)) is not None:
            stats.fault("signature")
            resp = bad.response(self.domain)
        elif sim.rates.exhausted(now, self.resource):
            stats.fault("quota_429")
            retry = max(1, ((now // MS_DAY + 1) * MS_DAY - now) // 1000)
            resp = ApiError(429, 2001, "Too many requests. The request limit has been reached for the resource.",
                            domain="ACCESS", headers={"Retry-After": str(retry)}).response(self.domain)
        else:
            sim.rates.count(now, seller or "-", self.resource)
            try:
                if seller is None:
                    resp = await self.handler(sim, req, "", None, now)  # type: ignore[arg-type]
                else:
                    resp = await self.handler(sim, req, seller, sim.data(seller), now)
            except ApiError as e:
                resp = e.response(self.domain)
            except Exception:  # pragma: no cover - a simulator bug
                log.exception("simulator handler %s failed", self.op)
                resp = ApiError(500, 2003, "There was a problem with an eBay internal system or process.",
                                domain="ACCESS", category="APPLICATION").response(self.domain)
        stats.status(resp.status_code)
        await resp(scope, receive, send)

    def _scope_ok(self, ident) -> bool:
        if ident.seller is None:
            return self.op in APP_TOKEN_OK
        if self.op in APP_TOKEN_ONLY:
            return False
        need = OP_SCOPES.get(self.op)
        if need is None:
            return True
        return any(f"{SCOPE_PREFIX}/{s}" in ident.scopes for s in need)


async def signature_error(sim: "Simulator", req: Request) -> ApiError | None:
    """Digital Signatures for an EU/UK seller's Finances call (eBay's guide; docs/ebay-api.md "Digital Signatures"): verified like
    eBay's VerificationService against a key the simulator issued.  The rejections are the third-party
    reported ones (HTTP 403, domain ACCESS; UNVERIFIED): 215001 without x-ebay-signature-key, 215120 for a
    signature that does not verify.  The ``created`` age is not checked (eBay's limit is undocumented)."""
    from ..ebay.signing import verify_request

    jwe = req.headers.get("x-ebay-signature-key")
    if not jwe:
        return ApiError(403, 215001, "Missing x-ebay-signature-key header",
                        "Missing x-ebay-signature-key header to fulfill the request.", domain="ACCESS")
    key = sim.signing_keys.get(jwe)
    url = f"{req.url.scheme}://{req.headers.get('host', '')}{req.scope.get('raw_path', b'').decode('ascii')}"
    if key is None or verify_request(key, req.method, url, req.headers, await req.body()) is not None:
        return ApiError(403, 215120, "Signature validation failed",
                        "Signature validation failed to fulfill the request.", domain="ACCESS")
    return None


def make_create_signing_key(sim: "Simulator"):
    """Key Management API ``createSigningKey``: ``POST /developer/key_management/v1/signing_key`` with an
    application token and ``{"signingKeyCipher": "ED25519"|"RSA"}`` (docs/ebay-api.md "Digital Signatures")."""
    async def create(req: Request) -> Response:
        ident = sim.auth.lookup_access(bearer_token(req), sim.now_ms())
        if ident is None:
            return ApiError(401, 1001, "Invalid access token",
                            "Invalid access token. Check the value of the Authorization HTTP request header.",
                            domain="OAuth").response("API_KEY_MANAGEMENT")
        if ident.seller is not None:
            return ApiError(403, 1100, "Access denied", "This method needs an application access token.",
                            domain="ACCESS").response("API_KEY_MANAGEMENT")
        try:
            body = orjson.loads(await req.body() or b"{}")
        except orjson.JSONDecodeError:
            body = None
        cipher = body.get("signingKeyCipher") if isinstance(body, dict) else None
        if cipher not in ("ED25519", "RSA"):
            # the error id is the simulator's own (unverified)
            return ApiError(400, 230001, "Invalid signingKeyCipher", "signingKeyCipher must be ED25519 or RSA.",
                            domain="API_KEY_MANAGEMENT").response("API_KEY_MANAGEMENT")
        return json_response(sim.create_signing_key(cipher), 201)
    return create


def retry_after_header(faults) -> dict[str, str] | None:
    """The injected 429's Retry-After (none when the knob is None)."""
    return None if faults.retry_after_s is None else {"Retry-After": str(faults.retry_after_s)}


def iaf_token(req: Request) -> str | None:
    """The token of ``Authorization: IAF <token>``, the form Post-Order calls use with an OAuth user token
    (docs/ebay-api.md "Post-Order API and shipping fulfillments": unverified by an eBay page; two SDKs).
    The simulator refuses ``Bearer`` there, so a client sending the Sell form fails loudly (401)."""
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme != "IAF" or not value.strip():
        return None
    return value.strip()


def bearer_token(req: Request) -> str | None:
    h = req.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def abort(scope, send) -> None:
    """Drop the connection: start a response, then raise (see :class:`SimConnectionReset`)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    host = dict(scope.get("headers") or []).get(b"host", b"sim").decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('path', '/')}"
    raise SimConnectionReset("Server disconnected without sending a complete response (simulated reset).",
                             request=httpx.Request(scope.get("method", "GET"), url))


async def delay_or_reset(stats: Any, dec: Any, scope, send) -> None:
    """Apply a fault decision's latency, then its connection reset (raises) if it drew one."""
    if dec.latency_s > 0:
        stats.fault("latency")
        await asyncio.sleep(dec.latency_s)
    if dec.action == "reset":
        stats.fault("reset")
        await abort(scope, send)


def malformed(sim: "Simulator", req: Request, stream: str, rid: Any, rec: dict) -> dict:
    if sim.faults.is_malformed(stream, rid, req.url.path):
        sim.counters.fault("malformed")
        return sim.faults.malform(stream, rec)
    return rec


# ---------------------------------------------------------------------- Fulfillment
async def get_orders(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    ids_raw = q.get("orderIds")
    ids = [x.strip() for x in (ids_raw or "").split(",") if x.strip()]
    if ids:  # an empty orderIds is ignored (the spec declares no error for it: unverified)
        if len(ids) > 50:  # spec getOrders 400: 30900 "Exceeded maximum number of order IDs (the current limit is 50)"
            raise ApiError(400, 30900, "Exceeded maximum number of order IDs (the current limit is 50)",
                           f"{len(ids)} order IDs were given; at most 50 are allowed.", [("orderIds", ids_raw or "")])
        orders = []
        for oid in ids:
            i = data.order_index(oid)
            if i is not None and data.order_visible(i, now):
                orders.append(malformed(sim, req, "orders", oid, data.render_order(i, now)))
        body = {"href": str(req.url), "total": len(orders), "limit": len(ids), "offset": 0, "orders": orders}
        return json_response(body)
    limit = q_int(req, "limit", 50, 1, 200, 31100)  # getOrders 400 "Invalid limit" (docs/ebay-api.md, "Disagreements")
    offset = q_int(req, "offset", 0, 0, None, 31000)  # getOrders 400 "Invalid offset"
    f = parse_filter(q.get("filter"), {"creationdate": "range", "lastmodifieddate": "range",
                                       "orderfulfillmentstatus": "set"}, ORDERS_FILTER_ERRORS)
    creation = f.get("creationdate")
    lastmod = None if creation is not None else f.get("lastmodifieddate")
    statuses = f.get("orderfulfillmentstatus")
    if statuses:
        bad = statuses - {"NOT_STARTED", "IN_PROGRESS", "FULFILLED"}
        if bad:
            raise ApiError(400, 30800, "Invalid filter value",  # spec getOrders 400: 30800 "Invalid filter value"
                           f"Unsupported orderfulfillmentstatus value(s): {sorted(bad)}.")
    key = (seller, "orders", creation, lastmod, frozenset(statuses) if statuses else None, data.version)
    idx = sim.cached(key, lambda n: data.query_orders(n, creation, lastmod, statuses))
    total = len(idx)
    page = idx[offset:offset + limit]
    orders = [malformed(sim, req, "orders", i, data.render_order(i, now)) for i in page]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset, "orders": orders}
    n_touch = sim.faults.take_orders_touch(offset // limit) if lastmod is not None and page else 0
    if n_touch:
        # Orders modified while the client pages (Faults.touch_orders_*): the spec's lastmodifieddate filter
        # selects on the order's last-modified time (getOrders `filter`), so a modified order leaves a window
        # that ends before now and the orders after it move up one offset.
        sim.orders_touched_while_paging.extend(data.touch_orders(list(page[:n_touch]), now))
        sim._qcache.clear()
        sim.counters.fault("orders_touched", n_touch)
    return json_response(body)


async def get_order(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    oid = req.path_params["orderId"]
    i = data.order_index(oid)
    if i is None or not data.order_visible(i, now):
        raise ApiError(404, 32100, "Invalid order ID.", f"Order '{oid}' was not found.", [("orderId", oid)])
    return json_response(malformed(sim, req, "orders", oid, data.render_order(i, now, detail=True)))


async def get_dispute_summaries(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    # spec sell_fulfillment_v1 getPaymentDisputeSummaries declares one 400: errorId 33001 "Invalid input
    # request"; every bad input answers it (docs/ebay-api.md "Disagreements", item 1)
    limit = q_int(req, "limit", 200, 1, 200, 33001)
    offset = q_int(req, "offset", 0, 0, None, 33001)
    frm = q_ts(req, "open_date_from", 33001)
    to = q_ts(req, "open_date_to", 33001)
    if frm is not None and frm < months_before(now, 18):
        raise ApiError(400, 33001, "Invalid input request",
                       "open_date_from can be at most 18 months in the past.", [("open_date_from", fmt_ms(frm))])
    if frm is not None and to is None:
        to = min(frm + MAX_WINDOW_MS, now)
    elif to is not None and frm is None:
        frm = to - MAX_WINDOW_MS
    if frm is not None and to is not None:
        if to < frm:
            raise ApiError(400, 33001, "Invalid input request", "open_date_to is before open_date_from.")
        if to - frm > MAX_WINDOW_MS:
            raise ApiError(400, 33001, "Invalid input request",
                           "The open_date_from/open_date_to date range can be at most 90 days.",
                           [("open_date_from", fmt_ms(frm)), ("open_date_to", fmt_ms(to))])
    statuses = set(q.getlist("payment_dispute_status")) or None
    ds = data.query_disputes(now, frm, to, statuses, q.get("order_id"), q.get("buyer_username"))
    total = len(ds)
    items = [malformed(sim, req, "disputes", d.pid, data.render_dispute(d, now)) for d in ds[offset:offset + limit]]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset,
            "paymentDisputeSummaries": items}
    return json_response(body)


async def get_dispute(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    pid = req.path_params["payment_dispute_id"]
    k = data.dispute_index.get(pid)
    if k is None or data.disputes[k].open > now:
        # spec sell_fulfillment_v1 getPaymentDispute 404: errorId 33001 "Invalid Payment Dispute Id"
        raise ApiError(404, 33001, "Invalid Payment Dispute Id", f"Payment dispute '{pid}' was not found.",
                       [("payment_dispute_id", pid)])
    return json_response(malformed(sim, req, "disputes", pid, data.render_dispute(data.disputes[k], now, detail=True)))


# ---------------------------------------------------------------------- Finances
# errorIds: spec sell_finances_v1 (v1.1.0) 400 x-response-codes (docs/ebay-api.md "Disagreements", item 1).
# getTransactions declares one id per filter (135006 type, 135007 status, 135008 date), 135003 pagination,
# 135005 sorting; getPayouts 135002 payout status, 135004 payout date, 135003, 135005.  Neither declares an
# id for an unknown filter name or a bad buyerUsername/payoutId/orderId/transactionId value: the sim answers
# the operation's date-filter id there (unverified).
TX_FILTER_IDS = {"transactiontype": 135006, "transactionstatus": 135007, "transactiondate": 135008}
PAYOUT_FILTER_IDS = {"payoutstatus": 135002, "payoutdate": 135004}


def _window(f: dict, key: str, now: int, error_id: int, enforce_max: bool) -> tuple[int | None, int | None]:
    a, b = f.get(key, (None, None))
    if a is None and b is not None:
        a = b - MAX_WINDOW_MS
    elif a is not None and b is None:
        b = min(a + MAX_WINDOW_MS, now)
    if a is not None and b is not None and enforce_max and b - a > MAX_WINDOW_MS:
        # The spec declares no error for a window over 90 days (only that an open end means start+90 days);
        # the sim answers the date filter's id (unverified; docs/ebay-api.md "Disagreements", items 1 and 6).
        raise ApiError(400, error_id, SPEC_MESSAGES[error_id],
                       f"The {key} date range can be at most 90 days; split the range.",
                       [("filter", f"{key}:[{fmt_ms(a)}..{fmt_ms(b)}]")])
    return a, b


async def get_transactions(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    f = parse_filter(q.get("filter"), {"transactiondate": "range", "transactiontype": "set",
                                       "transactionstatus": "set", "buyerusername": "set", "payoutid": "set",
                                       "transactionid": "set", "orderid": "set"}, 135008, TX_FILTER_IDS)
    limit = q_int(req, "limit", 20, 1, 200, 135003)
    offset = q_int(req, "offset", 0, 0, None, 135003)
    id_filter = any(k in f for k in ("orderid", "payoutid", "transactionid"))
    if "transactiondate" in f:
        a, b = _window(f, "transactiondate", now, 135008, enforce_max=True)
    elif id_filter:
        a, b = None, None
    else:
        a, b = now - MAX_WINDOW_MS, now
    key = (seller, "tx", a, b, *(frozenset(f[k]) if k in f else None for k in
                                 ("transactiontype", "transactionstatus", "orderid", "payoutid", "transactionid")),
           data.version)
    idx = sim.cached(key, lambda n: data.query_transactions(n, a, b, f.get("transactiontype"),
                                                             f.get("transactionstatus"), f.get("orderid"),
                                                             f.get("payoutid"), f.get("transactionid")))
    if "buyerusername" in f:
        names = f["buyerusername"]
        idx = [x for x in idx if data.render_tx(x, now).get("buyer", {}).get("username") in names]
    total = len(idx)
    if total == 0:
        return Response(status_code=204)
    if id_filter:
        limit, offset = max(1, total), 0
    page = idx[offset:offset + limit]
    txs = [malformed(sim, req, "transactions", x, data.render_tx(x, now)) for x in page]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset, "transactions": txs}
    return json_response(body)


async def get_payouts(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    f = parse_filter(q.get("filter"), {"payoutdate": "range", "payoutstatus": "set"}, 135004, PAYOUT_FILTER_IDS)
    limit = q_int(req, "limit", 20, 1, 200, 135003)
    offset = q_int(req, "offset", 0, 0, None, 135003)
    if "payoutdate" in f:
        a, b = _window(f, "payoutdate", now, 135004, enforce_max=False)
    else:
        a, b = now - MAX_WINDOW_MS, now
    idx = data.query_payouts(now, a, b, f.get("payoutstatus"))
    sort = q.get("sort", "")
    if sort.lstrip("-") == "payoutDate":
        idx.reverse()
    elif sort:
        raise ApiError(400, 135005, SPEC_MESSAGES[135005], "Payouts can only be sorted by payoutDate.",
                       [("sort", sort)])
    total = len(idx)
    if total == 0:
        return Response(status_code=204)
    items = [malformed(sim, req, "payouts", k, data.render_payout(k, now)) for k in idx[offset:offset + limit]]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset, "payouts": items}
    return json_response(body)


async def get_payout(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    pid = req.path_params["payout_id"]
    try:
        k = int(pid) - data.p_base
    except ValueError:
        k = -1
    if not (0 <= k < len(data.p_date)) or data.p_date[k] > now:
        # spec sell_finances_v1 getPayout 400: 135001 "The payout id was not found." (its 404 names no errorId)
        raise ApiError(400, 135001, SPEC_MESSAGES[135001], f"Payout '{pid}' was not found.", [("payout_Id", pid)])
    return json_response(data.render_payout(k, now))


# ---------------------------------------------------------------------- Message
def _ctype(req: Request) -> str:
    """spec commerce_message_v1 getConversations 400: 355017 "The required conversation_type query parameter
    is either missing or has an invalid value", 355002 "Invalid conversation_type value" (given, unsupported).
    getConversation declares neither; the simulator answers the same there (unverified)."""
    ct = req.query_params.get("conversation_type")
    if not ct:
        raise ApiError(400, 355017, "The required conversation_type query parameter is either missing or has an "
                       "invalid value.", "The conversation_type query parameter is required: FROM_EBAY or FROM_MEMBERS.",
                       [("conversation_type", "")])
    if ct not in ("FROM_EBAY", "FROM_MEMBERS"):
        raise ApiError(400, 355002, "Invalid conversation_type value.",
                       f"Unsupported conversation_type '{ct}': use FROM_EBAY or FROM_MEMBERS.", [("conversation_type", ct)])
    return ct


# spec commerce_message_v1 getConversations / getConversation 400: 355009 "Invalid limit", 355008 "Invalid offset"
MSG_LIMIT_ERR, MSG_OFFSET_ERR = 355009, 355008


async def get_conversations(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    ct = _ctype(req)
    limit = q_int(req, "limit", 25, 1, 50, MSG_LIMIT_ERR)
    offset = q_int(req, "offset", 0, 0, None, MSG_OFFSET_ERR)
    # spec getConversations 400: 355005 "Invalid date format used for one or both date filters"
    start = q_ts(req, "start_time", 355005)
    end = q_ts(req, "end_time", 355005)
    if (start is not None or end is not None) and ct != "FROM_MEMBERS":
        # the spec says these filters are "only available" for FROM_MEMBERS but names no errorId: the nearest
        # declared one, 355005 (a date-filter error), is UNVERIFIED here
        raise ApiError(400, 355005, "Invalid date filter.",
                       "start_time and end_time are only supported for conversation_type FROM_MEMBERS.")
    status = q.get("conversation_status")
    if status and status not in ("ACTIVE", "ARCHIVE", "DELETE", "READ", "UNREAD"):
        # spec getConversations 400: 355001 "Invalid conversation_status value"
        raise ApiError(400, 355001, "Invalid conversation_status value.", f"Unsupported value '{status}'.",
                       [("conversation_status", status)])
    ref_id, ref_type = q.get("reference_id"), q.get("reference_type")
    if ref_id and not ref_type:  # spec 355022 "reference_type is required whenever reference_id is provided"
        raise ApiError(400, 355022, "The parameter reference_type is required whenever reference_id is provided.",
                       "Add reference_type=LISTING.", [("reference_id", ref_id)])
    if ref_type and ref_type != "LISTING":  # spec 355003 "Invalid reference_type value"
        raise ApiError(400, 355003, "Invalid reference_type value.", "The only reference_type is LISTING.",
                       [("reference_type", ref_type)])
    convs = data.query_conversations(now, ct, start, end, status if status != "ACTIVE" else None,
                                     q.get("other_party_username"), ref_id)
    total = len(convs)
    items = [malformed(sim, req, "conversations", cv.cid, data.render_conversation(cv, now))
             for _, cv in convs[offset:offset + limit]]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset,
            "conversations": items}
    return json_response(body)


async def get_conversation(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    ct = _ctype(req)
    cid = req.path_params["conversation_id"]
    limit = q_int(req, "limit", 25, 1, 50, MSG_LIMIT_ERR)
    offset = q_int(req, "offset", 0, 0, None, MSG_OFFSET_ERR)
    k = data.conv_index.get(cid)
    cv = data.convs[k] if k is not None else None
    if cv is None or cv.created > now or cv.ctype != ct:
        # spec commerce_message_v1 getConversation declares no 404: 400 355007 "Invalid or unrecognized
        # conversation_id value"
        raise ApiError(400, 355007, "Invalid or unrecognized conversation_id value.",
                       f"Conversation '{cid}' of type {ct} was not found.",
                       [("conversation_id", cid)])
    msgs = data.conv_visible_msgs(cv, now)
    total = len(msgs)
    items = [malformed(sim, req, "messages", m[4], data.render_message(cv, m, now)) for m in msgs[offset:offset + limit]]
    body = {"conversationStatus": data.conv_status(cv, msgs, now), "conversationTitle": cv.title,
            "conversationType": cv.ctype, **paged(req, offset, limit, total), "total": total, "limit": limit,
            "offset": offset, "messages": items}
    return json_response(body)


# ---------------------------------------------------------------------- Inventory
async def get_inventory_items(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    limit = q_int(req, "limit", 25, 1, 200, 25709)
    page_no = q_int(req, "offset", 0, 0, None, 25709)
    skus = data.api_skus()
    total = len(skus)
    items = [malformed(sim, req, "inventory_items", s.sku, data.render_inventory_item(s))
             for s in skus[page_no * limit:(page_no + 1) * limit]]
    body = {**paged(req, page_no, limit, total, page_index=True), "limit": limit,
            "size": (total + limit - 1) // limit, "total": total, "inventoryItems": items}
    return json_response(body)


async def get_offers(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    limit = q_int(req, "limit", 100, 1, None, 25709)
    page_no = q_int(req, "offset", 0, 0, None, 25709)
    sku = q.get("sku")
    if sku is not None:
        if len(sku) > 50:
            raise ApiError(400, 25707, "This is an invalid value for a SKU.", "The SKU is longer than 50 characters.",
                           [("sku", sku)])
        ois = data.sku_offers(sku)
    else:
        ois = [oi for s in data.api_skus() for oi in data.sku_offers(s.sku)]
    fmt, mkt = q.get("format"), q.get("marketplace_id")
    if fmt:
        ois = [oi for oi in ois if data.offers[oi][3] == fmt]
    if mkt:
        ois = [oi for oi in ois if data.mkt == mkt]
    total = len(ois)
    if total == 0:
        raise ApiError(404, 25713, "This Offer is not available.",
                       "No offer exists for the given SKU (and format / marketplace).", [("sku", sku or "")])
    items = [malformed(sim, req, "offers", data.offers[oi][0], data.render_offer(oi))
             for oi in ois[page_no * limit:(page_no + 1) * limit]]
    body = {**paged(req, page_no, limit, total, page_index=True), "limit": limit, "size": len(items),
            "total": total, "offers": items}
    return json_response(body)


# ---------------------------------------------------------------------- Feed
def _base(req: Request) -> str:
    return f"{req.url.scheme}://{req.url.netloc}"


async def create_inventory_task(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    raw = await req.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {}  # no JSON object: feedType is missing (below)
    # spec sell_feed_v1 createInventoryTask 400: 160017 feedType, 160018 schemaVersion, 160019 filterCriteria
    if body.get("feedType") != FEED_TYPE:
        raise ApiError(400, 160017, "The 'feedType' is missing or invalid.",
                       f"Only {FEED_TYPE} is supported by createInventoryTask.", [("feedType", str(body.get("feedType")))])
    if body.get("schemaVersion") != "1.0":
        raise ApiError(400, 160018, "The 'schemaVersion' is invalid.", "schemaVersion must be '1.0'.",
                       [("schemaVersion", str(body.get("schemaVersion")))])
    fc = body.get("filterCriteria") or {}
    lf = fc.get("listingFormat") if isinstance(fc, dict) else None
    if lf is not None and lf not in ("FIXED_PRICE", "AUCTION"):
        raise ApiError(400, 160019, "The 'filterCriteria' is invalid.", "listingFormat must be FIXED_PRICE or AUCTION.",
                       [("listingFormat", str(lf))])
    cfg = sim.config
    # spec createInventoryTask 409: 160024 "maximum number of feed tasks that can be queued or processed
    # concurrently"; 160025 "maximum number of records or tasks ... in the period (hourly or daily)".  The
    # simulator's limits are UNVERIFIED numbers (SimConfig; docs/ebay-api.md "Sell Feed: inventory tasks").
    if (cfg.feed_conflict and sim.feed.pending_similar(seller, lf, now)) \
            or sim.feed.in_flight(seller, now) >= cfg.feed_max_in_flight:
        raise ApiError(409, 160024, "Too many tasks in progress.",
                       "You have reached the maximum number of feed tasks that can be queued or processed "
                       "concurrently. Wait for current tasks to complete before adding tasks.", category="BUSINESS")
    if sim.feed.created_since(seller, now - 3_600_000, now) >= cfg.feed_hourly_tasks \
            or sim.feed.created_since(seller, now - 86_400_000, now) >= cfg.feed_daily_tasks:
        raise ApiError(409, 160025, "Task quota exceeded.",
                       "You have exceeded the maximum number of records or tasks that can be created or processed "
                       "in the period (hourly or daily). Wait until the present period ends before trying again.",
                       category="BUSINESS")
    f = sim.faults.faults
    t = sim.feed.create(seller, now, f.report_delay_s, lf, f.report_outcome)
    return Response(status_code=202, headers={"Location": f"{_base(req)}/sell/feed/v1/inventory_task/{t.task_id}"})


async def get_inventory_task(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    tid = req.path_params["task_id"]
    t = sim.feed.get(seller, tid)
    if t is None:  # spec getInventoryTask 404: errorId 160003 "Task {taskID} does not exist."
        raise ApiError(404, 160003, "The task was not found.", f"Task {tid} does not exist.", [("taskID", tid)])
    return json_response(t.render(now, _base(req)))


async def get_inventory_tasks(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    # spec sell_feed_v1 getInventoryTasks 400 x-response-codes (docs/ebay-api.md "Disagreements", item 1)
    ft = q.get("feed_type")
    if ft is not None and ft != FEED_TYPE:
        raise ApiError(400, 160006, f"The 'feed_type' {ft} is invalid.", f"Only {FEED_TYPE} is supported.")
    limit = q_int(req, "limit", 10, 1, 500, 160012)  # "The 'limit' value must be greater than zero and <= 500."
    offset = q_int(req, "offset", 0, 0, None, 160013)  # "The 'offset' value cannot be less than zero."
    dr = q.get("date_range")
    if dr and q.get("look_back_days"):
        raise ApiError(400, 160008, "Both 'look_back_days' and 'date_range' were provided. Please remove one of them.")
    if dr:
        a: int | None
        b: int | None
        try:
            a, b = (parse_ts(x) for x in dr.split("..", 1))
        except ValueError:
            a = b = None
        if a is None or b is None or b < a:  # an unparsable or reversed range (the latter: unverified)
            raise ApiError(400, 160009, "The format of the 'date_range' is invalid.",
                           "The format for a date range is yyyy-MM-ddThh:mm:ss.sssZ..yyyy-MM-ddThh:mm:ss.sssZ.")
        if b - a > MAX_WINDOW_MS:
            raise ApiError(400, 160010, "The 'date_range' must be less than or equal to 90 days.")
    else:
        days = q_int(req, "look_back_days", 7, 1, 90, 160011)  # "must be greater than zero and <= 90"
        a, b = now - days * MS_DAY, now
    tasks = sim.feed.list(seller, a, b)
    total = len(tasks)
    items = [t.render(now, _base(req)) for t in tasks[offset:offset + limit]]
    body = {**paged(req, offset, limit, total), "total": total, "limit": limit, "offset": offset, "tasks": items}
    return json_response(body)


async def get_result_file(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    tid = req.path_params["task_id"]
    t = sim.feed.get(seller, tid)
    if t is None:  # spec getResultFile 404: 160003 "Task {taskID} does not exist."
        raise ApiError(404, 160003, "The task was not found.", f"Task {tid} does not exist.", [("taskID", tid)])
    if not t.done(now):
        # the spec ("the task must be in the COMPLETED or COMPLETED_WITH_ERROR state before this method can
        # retrieve the file") names no errorId for an unfinished task; the closest declared answer is the 404
        # 160014 "No file found for task ID {taskID}" (UNVERIFIED; docs/ebay-api.md "Disagreements", item 1)
        raise ApiError(404, 160014, "No file found.", f"No file found for task ID {tid}.", [("taskID", tid)])
    if t.outcome in ("FAILED", "NO_FILE"):  # spec getResultFile 404: 160014 "No file found for task ID {taskID}."
        raise ApiError(404, 160014, "No file found.", f"No file found for task ID {tid}.", [("taskID", tid)])
    rows: list = [] if t.outcome in ("ACK_FAILURE", "EMPTY") else list(data.active_inventory(t.listing_format))
    if sim.faults.faults.report_variations and t.outcome not in ("ACK_FAILURE", "EMPTY"):
        rows.append(variation_listing(data.cur))
    ack = "Failure" if t.outcome == "ACK_FAILURE" else "Success"
    blob, name = report_zip(tid, rows, t.created_ms + t.delay_ms, ack)
    return Response(blob, media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


# ---------------------------------------------------------------------- Analytics
async def get_rate_limits(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    rl = sim.rates.report(now, None, q.get("api_context"), q.get("api_name"))
    return json_response({"rateLimits": rl}) if rl else Response(status_code=204)


async def get_user_rate_limits(sim: "Simulator", req: Request, seller: str, data: SellerData, now: int) -> Response:
    q = req.query_params
    rl = sim.rates.report(now, seller, q.get("api_context"), q.get("api_name"))
    return json_response({"rateLimits": rl}) if rl else Response(status_code=204)


# ---------------------------------------------------------------------- OAuth
def _redirect(url: str, params: dict[str, Any]) -> Response:
    sep = "&" if "?" in url else "?"
    return Response(status_code=302, headers={"Location": url + sep + urlencode(params)})


def make_authorize(sim: "Simulator"):
    async def authorize(req: Request) -> Response:
        q = req.query_params
        cfg = sim.config
        if q.get("client_id") != cfg.client_id:
            return oauth_error(400, "invalid_client", "unknown client_id")
        ru = q.get("redirect_uri")
        if not ru or (cfg.ru_name is not None and ru != cfg.ru_name):
            return oauth_error(400, "invalid_request", "redirect_uri is missing or not registered for this client")
        state = q.get("state")
        extra = {"state": state} if state is not None else {}
        if q.get("response_type") != "code":
            return _redirect(cfg.accept_url, {**extra, "error": "unsupported_response_type"})
        scopes = parse_scopes(q.get("scope"))
        if not scopes:
            return _redirect(cfg.accept_url, {**extra, "error": "invalid_scope"})
        seller = q.get("sim_user") or sim.sellers[0]
        if not sim.has_seller(seller):
            return oauth_error(400, "invalid_request", "unknown sim_user")
        code = sim.auth.new_code(seller, scopes, ru, sim.now_ms())
        sim.counters.token("authorize")
        return _redirect(cfg.accept_url, {**extra, "code": code, "expires_in": 299})

    return authorize


class RawEndpoint:
    """Wraps an ``async (scope, receive, send)`` function so Starlette treats it as an ASGI app."""

    def __init__(self, fn):
        self.fn = fn

    async def __call__(self, scope, receive, send) -> None:
        await self.fn(scope, receive, send)


def make_token(sim: "Simulator") -> RawEndpoint:
    async def token(scope, receive, send) -> None:
        req = Request(scope, receive)
        stats = sim.counters
        f = sim.faults.faults
        if f.token_faults:
            dec = sim.faults.decide(scope["path"])
            await delay_or_reset(stats, dec, scope, send)
            if dec.action in ("429", "5xx"):
                stats.fault(dec.action)
                hdrs = retry_after_header(f) if dec.action == "429" else None
                resp = oauth_error(dec.status, "temporarily_unavailable" if dec.action == "429" else "server_error",
                                   "simulated fault", hdrs)
                stats.status(resp.status_code)
                await resp(scope, receive, send)
                return
        resp = await _token(sim, req)
        stats.status(resp.status_code)
        await resp(scope, receive, send)

    return RawEndpoint(token)


async def _token(sim: "Simulator", req: Request) -> Response:
    stats = sim.counters
    cfg = sim.config
    now = sim.now_ms()
    if req.method != "POST":
        return oauth_error(405, "invalid_request", "use POST")
    scheme, _, b64 = req.headers.get("authorization", "").partition(" ")
    ok = False
    if scheme.lower() == "basic":
        try:
            cid, _, secret = base64.b64decode(b64.strip(), validate=True).decode("utf-8").partition(":")
            ok = hmac.compare_digest(cid, cfg.client_id) and hmac.compare_digest(secret, cfg.client_secret)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            ok = False
    if not ok:
        stats.token("invalid_client")
        return oauth_error(401, "invalid_client", "client authentication failed")
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        stats.token("invalid_request")
        return oauth_error(400, "invalid_request",
                           "request is missing a required parameter or malformed (use application/x-www-form-urlencoded)")
    form = dict(parse_qsl((await req.body()).decode("utf-8", "replace"), keep_blank_values=True))
    gt = form.get("grant_type")
    if gt == "authorization_code":
        code, ru = form.get("code"), form.get("redirect_uri")
        if not code or not ru:
            stats.token("invalid_request")
            return oauth_error(400, "invalid_request", "code and redirect_uri are required")
        g = sim.auth.redeem_code(code, ru, now)
        if g is None:
            stats.token("invalid_grant")
            return oauth_error(400, "invalid_grant",
                               "the provided authorization grant code is invalid or was issued to another client")
        refresh = sim.auth.new_refresh(g.seller, g.scopes, now)
        access = sim.auth.new_access(g.seller, g.scopes, sim.access_ttl_s(), now,
                                     sim.faults.faults.access_token_uses)
        stats.token("authorization_code")
        return json_response({"access_token": access, "expires_in": ACCESS_TTL_S, "refresh_token": refresh,
                              "refresh_token_expires_in": REFRESH_TTL_S, "token_type": "User Access Token"})
    if gt == "refresh_token":
        rt = form.get("refresh_token")
        if not rt:
            stats.token("invalid_request")
            return oauth_error(400, "invalid_request", "refresh_token is required")
        g = sim.auth.check_refresh(rt, now)
        if g is None or sim.refresh_revoked_by_knob(g.seller):
            stats.token("invalid_grant")
            return oauth_error(400, "invalid_grant",
                               "the provided authorization refresh token is invalid or was issued to another client")
        scopes = g.scopes
        if form.get("scope"):
            want = parse_scopes(form["scope"])
            if want is None or not want <= g.scopes:
                stats.token("invalid_scope")
                return oauth_error(400, "invalid_scope", "the requested scope is invalid, unknown, malformed, "
                                   "or exceeds the scope granted by the resource owner")
            scopes = want
        access = sim.auth.new_access(g.seller, scopes, sim.access_ttl_s(), now,
                                     sim.faults.faults.access_token_uses)
        stats.token("refresh_token")
        return json_response({"access_token": access, "expires_in": ACCESS_TTL_S, "token_type": "User Access Token"})
    if gt == "client_credentials":
        want = parse_scopes(form.get("scope") or SCOPE_PREFIX)
        if want is None:
            stats.token("invalid_scope")
            return oauth_error(400, "invalid_scope", "the requested scope is invalid, unknown, or malformed")
        access = sim.auth.new_access(None, want, ACCESS_TTL_S, now)
        stats.token("client_credentials")
        return json_response({"access_token": access, "expires_in": ACCESS_TTL_S,
                              "token_type": "Application Access Token"})
    stats.token("unsupported_grant_type")
    return oauth_error(400, "unsupported_grant_type", "grant type in request is not supported by the authorization server")


# ---------------------------------------------------------------------- /sim admin
def make_admin(sim: "Simulator") -> list[Route]:
    async def _json(req: Request) -> dict:
        raw = await req.body()
        if not raw:
            return {}
        try:
            v = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise HTTPException(400, "body must be JSON")
        if not isinstance(v, dict):
            raise HTTPException(400, "body must be a JSON object")
        return v

    def _seller(req: Request) -> str:
        s = req.path_params["seller"]
        if not sim.has_seller(s):
            raise HTTPException(404, f"unknown seller {s!r}")
        return s

    async def refresh_token(req: Request) -> Response:
        s = _seller(req)
        body = await _json(req)
        scopes = body.get("scopes")
        if scopes is not None and (parse_scopes(" ".join(scopes)) is None):
            raise HTTPException(400, "unknown scope")
        tok = sim.mint_refresh_token(s, scopes)
        return json_response({"seller": s, "refresh_token": tok, "refresh_token_expires_in": REFRESH_TTL_S})

    async def revoke(req: Request) -> Response:
        s = _seller(req)
        return json_response({"seller": s, "revoked": sim.revoke(s)})

    async def touch(req: Request) -> Response:
        s = _seller(req)
        kind = req.query_params.get("kind", "order")
        try:
            n = int(req.query_params.get("n", "1"))
            ids = sim.touch(s, kind, n)
        except ValueError as e:
            raise HTTPException(400, str(e))
        return json_response({"seller": s, "kind": kind, "ids": ids, "at": fmt_ms(sim.now_ms())})

    async def faults(req: Request) -> Response:
        if req.method == "POST":
            body = await _json(req)
            reseed = bool(body.pop("reseed", False))
            try:
                if body.pop("reset", False):
                    sim.set_faults(Faults(seed=sim.faults.faults.seed))
                cur = sim.faults.update(body, reseed=reseed) if (body or reseed) else sim.faults.faults
            except (ValueError, TypeError) as e:
                raise HTTPException(400, str(e))
        else:
            cur = sim.faults.faults
        return json_response(cur.as_dict())

    async def stats(req: Request) -> Response:
        if req.method == "POST":
            sim.counters.reset()
        return json_response(sim.stats)

    async def clock(req: Request) -> Response:
        if req.method == "POST":
            body = await _json(req)
            try:
                if "now" in body:
                    sim.set_now(None if body["now"] is None else ms_to_dt(parse_ts(str(body["now"]))))
                if "advance_s" in body:
                    sim.advance(float(body["advance_s"]))
            except (ValueError, TypeError) as e:
                raise HTTPException(400, str(e))
        return json_response({"now": fmt_ms(sim.now_ms()), "frozen": sim.clock.frozen})

    async def sellers(req: Request) -> Response:
        return json_response({"sellers": [
            {"name": s.name, "orders": s.orders, "transactions": s.transactions, "payouts": s.payouts,
             "disputes": s.disputes, "conversations": s.conversations, "inventory_items": s.inventory_items,
             "days": s.days} for s in sim.config.sellers]})

    async def health(req: Request) -> Response:
        return json_response({"ok": True, "now": fmt_ms(sim.now_ms())})

    return [
        Route("/sim/health", health, methods=["GET"]),
        Route("/sim/sellers", sellers, methods=["GET"]),
        Route("/sim/sellers/{seller}/refresh_token", refresh_token, methods=["POST"]),
        Route("/sim/sellers/{seller}/revoke", revoke, methods=["POST"]),
        Route("/sim/sellers/{seller}/touch", touch, methods=["POST"]),
        Route("/sim/faults", faults, methods=["GET", "POST"]),
        Route("/sim/stats", stats, methods=["GET", "POST"]),
        Route("/sim/clock", clock, methods=["GET", "POST"]),
    ]


# ---------------------------------------------------------------------- assembly
def build_app(sim: "Simulator") -> Starlette:
    def api(path: str, op: str, handler: Handler, method: str = "GET") -> Route:
        return Route(path, Api(sim, op, handler), methods=[method])

    routes = [
        api("/sell/fulfillment/v1/order", "getOrders", get_orders),
        api("/sell/fulfillment/v1/order/{orderId}", "getOrder", get_order),
        api("/sell/fulfillment/v1/payment_dispute_summary", "getPaymentDisputeSummaries", get_dispute_summaries),
        api("/sell/fulfillment/v1/payment_dispute/{payment_dispute_id}", "getPaymentDispute", get_dispute),
        *after_sale_routes(api),  # Post-Order returns/inquiries/cases/cancellations, shipping fulfillments
        api("/sell/finances/v1/transaction", "getTransactions", get_transactions),
        api("/sell/finances/v1/payout", "getPayouts", get_payouts),
        api("/sell/finances/v1/payout/{payout_id}", "getPayout", get_payout),
        api("/commerce/message/v1/conversation", "getConversations", get_conversations),
        api("/commerce/message/v1/conversation/{conversation_id}", "getConversation", get_conversation),
        api("/sell/inventory/v1/inventory_item", "getInventoryItems", get_inventory_items),
        api("/sell/inventory/v1/offer", "getOffers", get_offers),
        api("/sell/feed/v1/inventory_task", "createInventoryTask", create_inventory_task, "POST"),
        api("/sell/feed/v1/inventory_task", "getInventoryTasks", get_inventory_tasks),
        api("/sell/feed/v1/inventory_task/{task_id}", "getInventoryTask", get_inventory_task),
        api("/sell/feed/v1/task/{task_id}/download_result_file", "getResultFile", get_result_file),
        api("/developer/analytics/v1_beta/rate_limit/", "getRateLimits", get_rate_limits),
        api("/developer/analytics/v1_beta/user_rate_limit/", "getUserRateLimits", get_user_rate_limits),
        Route("/developer/key_management/v1/signing_key", make_create_signing_key(sim), methods=["POST"]),
        Route("/oauth2/authorize", make_authorize(sim), methods=["GET"]),
        Route("/identity/v1/oauth2/token", make_token(sim), methods=["POST"]),
        *make_admin(sim),
    ]

    async def http_error(req: Request, exc: Exception) -> Response:  # Starlette types handlers by Exception
        assert isinstance(exc, HTTPException)  # the only class it is registered for
        if req.url.path.startswith("/sim/"):
            return json_response({"error": exc.detail}, exc.status_code)
        if exc.status_code == 405:
            return json_response(error_body(2004, "API", "REQUEST", "Method not allowed.",
                                            f"{req.method} is not supported for {req.url.path}."), 405)
        return json_response(error_body(2002, "API", "REQUEST", "Resource not found.",
                                        f"No resource at {req.url.path}."), exc.status_code)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

