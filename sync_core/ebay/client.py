"""The eBay REST client: auth headers, retries, 401 refresh, rate budget, events, paging per endpoint.

Usage::

    http = make_http_client(settings)            # one per process, shared by every EbayClient
    tokens = RefreshingTokenSource(http, settings, refresh_token, scopes, on_refresh=save)
    client = EbayClient(settings, http=http, tokens=tokens, account="seller1", on_event=events.append)
    async for page in client.get_orders(t0, t1, resume_url=checkpoint):
        store(page.records); checkpoint = page.next_url

Every request attempt:

* takes one call from the :class:`~sync_core.ebay.ratelimit.RateBudget` (if any; it may wait, visibly),
* sends ``Authorization: Bearer <tokens.access_token()>`` (``IAF <token>`` to the Post-Order API) and ``X-EBAY-C-MARKETPLACE-ID`` (the account's
  ``marketplace_id``, default ``settings.ebay_marketplace_id``) -- only to the
  configured api/apiz hosts (a ``next``/resume URL on another host is re-based onto the configured one),
* emits ``{"type": "http", "method", "host", "path", "query", "status", "duration_ms", "bytes",
  "records", "attempt", "api", "op", "account"}`` (+ ``"error"`` for transport failures) through
  ``on_event``, redacted; ``query`` has secret-looking parameters removed.

Retries (tenacity): 429 (Retry-After honoured, capped by ``api_retry_max_s``), 500/502/503/504, timeouts
and connection errors; exponential backoff from ``api_retry_initial_s`` with jitter, capped by
``api_retry_max_s``; at most ``api_retry_attempts`` attempts.  Before each back-off sleep (a 429's
Retry-After included) ``{"type": "retry", "method", "path", "api", "account", "attempt", "attempts",
"seconds", "status", "reason"}`` goes to ``on_event``, so the wait is visible while it lasts.
POST is retried only when the request
surely did not reach eBay (connect errors) or on 429.  Other 4xx raise at once.  401 -> a forced token
refresh and one more try (at most MAX_REFRESHES_PER_CALL times); with a ``signer`` every Finances call carries
eBay's Digital Signature headers (:mod:`sync_core.ebay.signing`), and an EU/UK account without one raises
SignatureRequired before calling; a 401 after that, although the refresh
worked, raises EbayAuthError (the run fails and is retried later); only invalid_grant on the refresh raises
ReauthNeeded (re-consent).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Sequence
from urllib.parse import quote

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from ..gcpause import paused
from ..retry import first_then_retrying
from .errors import (
    EbayAuthError,
    EbayRateLimited,
    EbayServerError,
    EbayTransportError,
    ReauthNeeded,
    SignatureRequired,
    error_from_response,
    parse_error_envelope,
)
from .feed_report import (
    Report,
    ReportFormatError,
    parse_active_inventory_report,
    parse_active_inventory_report_async,
)
from .oauth import RefreshingTokenSource, StaticTokenSource, TokenSource
from .paging import (
    MAX_WINDOW_DAYS,
    Page,
    build_url,
    check_window,
    computed_next_url,
    format_ts,
    query_int,
    range_filter,
    with_query_param,
)
from .ratelimit import APP, RateBudget, RateBudgetExhausted
from .redact import redact, strip_secret_params
from .signing import Signer, needs_signature

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "EbayClient", "Page", "make_http_client", "emit_event", "backoff_delay", "format_ts",
    "parse_active_inventory_report", "parse_active_inventory_report_async", "ReportFormatError",
    "TokenSource", "RefreshingTokenSource", "StaticTokenSource", "RateBudget",
    "ORDERS_MAX_LIMIT", "DISPUTES_MAX_LIMIT", "FINANCES_MAX_LIMIT", "MESSAGES_MAX_LIMIT",
    "INVENTORY_MAX_LIMIT", "OFFERS_LIMIT", "POST_ORDER_MAX_LIMIT",
]

log = logging.getLogger(__name__)

# Maximum page sizes per operation (docs/ebay-api.md, "Paging and page limits"), from the stream
# declarations (Stream.max_page_size): the one place each is stated.
from ..streams import STREAMS as _STREAMS  # noqa: E402

ORDERS_MAX_LIMIT = _STREAMS["orders"].max_page_size
DISPUTES_MAX_LIMIT = _STREAMS["disputes"].max_page_size
FINANCES_MAX_LIMIT = _STREAMS["transactions"].max_page_size
MESSAGES_MAX_LIMIT = _STREAMS["messages"].max_page_size
INVENTORY_MAX_LIMIT = _STREAMS["inventory_items"].max_page_size
OFFERS_LIMIT = _STREAMS["offers"].max_page_size  # getOffers: the documented default of 100 (streams/offers.py)
POST_ORDER_MAX_LIMIT = _STREAMS["returns"].max_page_size  # unverified (docs/ebay-api.md): 200
FEED_TASKS_MAX_LIMIT = 500

CONVERSATION_TYPES = ("FROM_EBAY", "FROM_MEMBERS")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# 401s answered by a forced token refresh within one call.  Two, not one: the token a caller gets after
# "refreshing" may be one another caller refreshed a while ago (the refresh is shared), and that one can
# expire in turn.  A 401 after that fails the call with EbayAuthError (never ReauthNeeded).
MAX_REFRESHES_PER_CALL = 2

P_ORDERS = "/sell/fulfillment/v1/order"
P_DISPUTES = "/sell/fulfillment/v1/payment_dispute_summary"
P_DISPUTE = "/sell/fulfillment/v1/payment_dispute"
P_TRANSACTIONS = "/sell/finances/v1/transaction"
P_PAYOUTS = "/sell/finances/v1/payout"
P_CONVERSATIONS = "/commerce/message/v1/conversation"
P_INVENTORY = "/sell/inventory/v1/inventory_item"
P_OFFERS = "/sell/inventory/v1/offer"
P_FEED_INV_TASK = "/sell/feed/v1/inventory_task"
P_FEED_TASK = "/sell/feed/v1/task"
P_RATE_LIMITS = "/developer/analytics/v1_beta/rate_limit/"
P_USER_RATE_LIMITS = "/developer/analytics/v1_beta/user_rate_limit/"
P_POST_ORDER = "/post-order/v2"
# Post-Order searches (docs/ebay-api.md "Post-Order API and shipping fulfillments"; the PO Search pages):
# stream -> (path segment, date filter prefix, list key, search op, get op)
POST_ORDER = {
    "returns": ("return", "creation_date_range", "members", "searchReturns", "getReturn"),
    "inquiries": ("inquiry", "inquiry_creation_date_range", "members", "searchInquiries", "getInquiry"),
    "cases": ("casemanagement", "case_creation_date_range", "members", "searchCases", "getCase"),
    "cancellations": ("cancellation", "creation_date_range", "cancellations", "searchCancellations",
                      "getCancellation"),
}
POST_ORDER_API = "post-order"  # the client's api label: IAF auth, the errorMessage envelope, its own budget


# ---------------------------------------------------------------- module helpers


def make_http_client(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                     max_connections: int = 64, **kw: Any) -> httpx.AsyncClient:
    """The process-wide httpx client for eBay: gzip, timeouts from ``api_timeout_s``, pooled connections.

    ``transport`` lets tests plug in ``httpx.ASGITransport(app=simulator.app)`` or a mock transport.
    """
    t = float(settings.api_timeout_s)
    from sync_core import __version__

    return httpx.AsyncClient(
        timeout=httpx.Timeout(t, connect=min(t, 10.0), pool=t),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(20, max_connections),
                            keepalive_expiry=30.0),
        headers={"Accept-Encoding": "gzip, deflate", "User-Agent": f"baysync/{__version__}"},
        follow_redirects=False,
        transport=transport,
        **kw,
    )


def emit_event(on_event: Callable[[dict], None] | None, event: dict[str, Any]) -> None:
    """Send a redacted event to ``on_event``; a failing callback is logged, never raised."""
    if on_event is None:
        return
    try:
        on_event(redact(event))
    except Exception as e:  # the sync must not die because a metrics sink did
        log.warning("eBay event callback raised %s", type(e).__name__)


def backoff_delay(settings: Settings, attempt: int, exc: BaseException | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    429 with Retry-After: that value, capped by ``api_retry_max_s``.  Otherwise exponential from
    ``api_retry_initial_s`` (x2 per attempt) capped by ``api_retry_max_s``, with "equal jitter"
    (uniform in [d/2, d]).
    """
    cap = float(settings.api_retry_max_s)
    if isinstance(exc, EbayRateLimited) and exc.retry_after is not None:
        return max(0.0, min(float(exc.retry_after), cap))
    d = min(cap, float(settings.api_retry_initial_s) * (2 ** max(0, attempt - 1)))
    return random.uniform(d / 2, d) if d > 0 else 0.0


async def _maybe_await(result: Any) -> Any:
    """The in-memory RateBudget answers at once; the shared one (sync_core.budgets) is a coroutine."""
    return await result if inspect.isawaitable(result) else result


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


# ---------------------------------------------------------------- client


class _Result:
    __slots__ = ("response", "data", "url")

    def __init__(self, response: httpx.Response, data: Any, url: str):
        self.response, self.data, self.url = response, data, url

    @property
    def status(self) -> int:
        return self.response.status_code


class EbayClient:
    """One seller account's view of the eBay REST APIs.  See the module docstring."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None, tokens: TokenSource, account: str,
                 on_event: Callable[[dict], None] | None = None, budget: Any = None,
                 signer: Signer | None = None, signing_required: bool = False, marketplace_id: str | None = None):
        self.settings = settings
        self._signer = signer  # the application's eBay signing key (docs/ebay-api.md "Digital Signatures"), if one is configured
        self._signing_required = signing_required  # the account is EU/UK: unsigned Finances calls are refused
        self.account = account
        # the account's marketplace (accounts.marketplace_id), else the configured default
        self.marketplace_id = marketplace_id or settings.ebay_marketplace_id
        self._owns_http = http is None
        self._http = http if http is not None else make_http_client(settings)
        self._tokens = tokens
        self._on_event = on_event
        self._budget = budget
        self._accepts_rejected: bool | None = None
        self.api_base = settings.ebay_api_base_url.rstrip("/")
        self.apiz_base = settings.ebay_apiz_base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"EbayClient(account={self.account!r}, api={self.api_base!r})"

    def emit(self, event: dict[str, Any]) -> None:
        """Send an event (e.g. a stream's ``window_reread``) to this client's ``on_event`` sink, redacted."""
        emit_event(self._on_event, {"account": self.account, **event})

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "EbayClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ------------------------------------------------------------ URLs

    def resolve_url(self, url: str, base: str) -> str:
        """An absolute URL on ``base``'s origin for a ``next``/resume URL (absolute or relative).

        A URL on a different origin is re-based (path + query kept) so the bearer token only ever goes to
        the configured eBay hosts.
        """
        b = httpx.URL(base)
        u = httpx.URL(url)
        raw = u.raw_path.decode("ascii")  # path + query, encoding preserved
        if u.is_absolute_url and _origin(u) == _origin(b):
            return str(u.copy_with(fragment=None))
        prefix = b.raw_path.decode("ascii").rstrip("/")
        if not raw.startswith("/"):
            raw = "/" + raw
        if prefix and not raw.startswith(prefix + "/"):
            raw = prefix + raw
        return f"{b.scheme}://{b.netloc.decode('ascii')}{raw}"

    # ------------------------------------------------------------ the request core

    def _retryable(self, method: str) -> Callable[[BaseException], bool]:
        idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")

        def pred(exc: BaseException) -> bool:
            if isinstance(exc, RateBudgetExhausted):
                return False  # the local budget said the wait is too long: give up now
            if isinstance(exc, EbayRateLimited):
                return True
            if isinstance(exc, EbayServerError):
                return idempotent and exc.status in RETRY_STATUSES
            if isinstance(exc, EbayTransportError):
                return idempotent or bool(getattr(exc, "not_sent", False))
            return False

        return pred

    def _wait(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        return backoff_delay(self.settings, retry_state.attempt_number, exc)

    def _before_sleep(self, method: str, url: str, api: str) -> Callable[[Any], None]:
        """A ``retry`` event before every back-off sleep (a 429's Retry-After included), so a long wait is
        visible while it lasts, not only after it."""
        def emit(retry_state: Any) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            seconds = round(float(getattr(retry_state.next_action, "sleep", 0.0) or 0.0), 3)
            n, total = retry_state.attempt_number, max(1, int(self.settings.api_retry_attempts))
            retry_after = getattr(exc, "retry_after", None)
            after = f"Retry-After {retry_after:g}s, " if retry_after is not None else ""
            emit_event(self._on_event, {
                "type": "retry", "method": method, "path": httpx.URL(url).path, "api": api, "account": self.account,
                "attempt": n, "attempts": total, "seconds": seconds, "status": getattr(exc, "status", None),
                "reason": f"{method} {httpx.URL(url).path}: {exc} ({after}waiting {seconds:g}s before attempt "
                          f"{n + 1}/{total})"})
        return emit

    async def _request(self, method: str, url: str, *, api: str, op: str, records_key: str | None = None,
                       json_body: Any = None, ok: Sequence[int] = (200,), empty: Sequence[int] = (),
                       binary: bool = False, prepaid: "asyncio.Task[None] | None" = None) -> _Result:
        """Send with retries + the 401 refresh dance.  Statuses in ``empty`` are returned, not raised.
        ``prepaid``: this call's budget, taken ahead (:meth:`_take_ahead`); its first attempt awaits it
        instead of taking the budget itself."""
        counter: list[Any] = [0, None, prepaid]  # attempts so far, last token sent, budget taken ahead
        refreshes = 0
        retryable = self._retryable(method)
        while True:
            try:
                return await first_then_retrying(
                    lambda: self._attempt(method, url, api=api, op=op, records_key=records_key, json_body=json_body,
                                          ok=ok, empty=empty, binary=binary, counter=counter),
                    retryable,
                    lambda: AsyncRetrying(stop=stop_after_attempt(max(1, int(self.settings.api_retry_attempts))),
                                          wait=self._wait, retry=retry_if_exception(retryable),
                                          before_sleep=self._before_sleep(method, url, api), reraise=True))
            except ReauthNeeded as e:
                e.account = self.account
                raise
            except EbayAuthError as e:
                if e.status != 401 or e.api == "oauth":  # token endpoint errors (invalid_client) are final
                    raise
                if refreshes >= MAX_REFRESHES_PER_CALL:
                    # The refresh itself worked (the refresh token is good), so this is not a reason to
                    # park the account: the token may simply have expired again before it was used, or
                    # eBay's token service may lag.  Only invalid_grant on the refresh means re-consent.
                    raise EbayAuthError(401, e.error_id, e.category,
                                        "eBay rejected a freshly refreshed access token (401); this run fails "
                                        "and the stream is tried again at its next interval",
                                        domain=e.domain, errors=e.errors, method=e.method, path=e.path, api=api,
                                        account=self.account) from None
                refreshes += 1
                try:
                    await self._force_refresh(counter[1])
                except ReauthNeeded as re:
                    re.account = self.account
                    raise

    async def _force_refresh(self, rejected: str | None) -> None:
        if self._accepts_rejected is None:
            try:
                params = inspect.signature(self._tokens.access_token).parameters
                self._accepts_rejected = "rejected" in params
            except (TypeError, ValueError):
                self._accepts_rejected = False
        if self._accepts_rejected:
            await self._tokens.access_token(force_refresh=True, rejected=rejected)  # type: ignore[call-arg]
        else:
            await self._tokens.access_token(force_refresh=True)

    async def _attempt(self, method: str, url: str, *, api: str, op: str, records_key: str | None, json_body: Any,
                       ok: Sequence[int], empty: Sequence[int], binary: bool, counter: list[Any]) -> _Result:
        counter[0] += 1
        attempt = counter[0]
        prepaid, counter[2] = counter[2], None  # a budget taken ahead serves the first attempt only
        signed = needs_signature(api)
        if signed and self._signer is None and self._signing_required:  # eBay would refuse it: do not ask
            raise SignatureRequired(None, None, None, "no signing key configured for an EU/UK seller",
                                    method=method, path=httpx.URL(url).path, api=api, account=self.account)
        if prepaid is not None:
            await prepaid
        elif self._budget is not None:  # before the token: a long wait here must not send a stale token
            await self._budget.acquire(self.account, api, on_event=self._on_event)
        token = await self._tokens.access_token()
        counter[1] = token
        # Post-Order takes an OAuth user token as `IAF <token>` (docs/ebay-api.md "Post-Order: hosts, paths,
        # headers": hendt SDK src/auth/index.ts; unverified by an eBay page), the other APIs `Bearer <token>`
        scheme = "IAF" if api == POST_ORDER_API else "Bearer"
        headers = {
            "Authorization": f"{scheme} {token}",
            "X-EBAY-C-MARKETPLACE-ID": self.marketplace_id,
            "Accept": "*/*" if binary else "application/json",
        }
        content = None
        if json_body is not None:
            content = orjson.dumps(json_body)
            headers["Content-Type"] = "application/json"
        u = httpx.URL(url)
        if signed and self._signer is not None:
            # Digital Signatures (eBay guide; docs/ebay-api.md "Digital Signatures"): every Finances call, signed per attempt (fresh
            # ``created``); eBay ignores the headers for sellers outside the EU/UK.
            headers.update(self._signer.headers(method, u, content))
        event: dict[str, Any] = {
            "type": "http", "method": method, "host": u.host, "path": u.path,
            "query": strip_secret_params(u.query), "status": None, "duration_ms": None, "bytes": 0,
            "records": None, "attempt": attempt, "api": api, "op": op, "account": self.account,
        }
        t0 = time.monotonic()
        try:
            resp = await self._http.request(method, u, headers=headers, content=content)
        except httpx.HTTPError as e:
            event["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
            event["error"] = type(e).__name__
            emit_event(self._on_event, event)
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "connection error"
            err = EbayTransportError(None, None, None, f"{kind} ({type(e).__name__})", method=method, path=u.path,
                                     api=api, account=self.account)
            err.not_sent = isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))  # type: ignore[attr-defined]
            raise err from None
        event["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
        event["status"] = resp.status_code
        body = resp.content
        # httpx's response and its (read, closed) stream refer to each other: only the cyclic GC would free the
        # body (600 KB for 200 orders), so bodies piled up between full collections. The body as the stream
        # breaks the cycle: a response is freed as soon as it is dropped (docs/performance.md, issue 10).
        resp.stream = httpx.ByteStream(body)
        event["bytes"] = len(body)
        data: Any = None
        status = resp.status_code
        if status in ok and not binary and body:
            try:
                with paused():  # a page is tens of thousands of objects, none in a cycle (sync_core/gcpause.py)
                    data = orjson.loads(body)
            except orjson.JSONDecodeError:
                event["error"] = "InvalidJSON"
                emit_event(self._on_event, event)
                raise EbayTransportError(status, None, None, "eBay sent a body that is not valid JSON",
                                         method=method, path=u.path, api=api, account=self.account) from None
            if records_key is not None and isinstance(data, dict):
                recs = data.get(records_key) if records_key else data
                event["records"] = (len(recs) if isinstance(recs, list) else 0) if records_key else 1
        elif status in empty:
            event["records"] = 0
        emit_event(self._on_event, event)
        if status in ok or status in empty:
            return _Result(resp, data, str(u))
        failure = error_from_response(resp, api=api, account=self.account)
        if isinstance(failure, EbayRateLimited) and self._budget is not None:
            await _maybe_await(self._budget.note_throttled(self.account, api, failure.retry_after))
        raise failure

    # ------------------------------------------------------------ generic paging

    def _pages(self, *, api: str, op: str, base: str, first_url: str, records_key: str,
               resume_url: str | None, page_index: bool = False, empty: Sequence[int] = (204,)) -> AsyncIterator[Page]:
        url = first_url
        if resume_url:
            url = self.resolve_url(resume_url, base)
            want, got = httpx.URL(first_url).path, httpx.URL(url).path
            if want != got:
                raise ValueError(f"resume_url is for {got}, not {want}")
        return self._iter_pages(api=api, op=op, base=base, url=url, records_key=records_key, page_index=page_index,
                                empty=empty)

    def _take_ahead(self, api: str) -> "asyncio.Task[None] | None":
        """Start taking the budget of a call that is sure to follow (:meth:`_iter_pages`), while the current
        one is in flight: the shared budget's round trip to PostgreSQL then costs the paging chain nothing."""
        if self._budget is None:
            return None
        return asyncio.ensure_future(self._budget.acquire(self.account, api, on_event=self._on_event))

    async def _iter_pages(self, *, api: str, op: str, base: str, url: str | None, records_key: str,
                          page_index: bool, empty: Sequence[int]) -> AsyncIterator[Page]:
        """The pages from ``url`` on, following ``next`` (or the computed next offset).

        Budget taken ahead: once a page reported ``total``, the page after the one being requested is known
        to exist when its offset is below that total; its budget is taken while the current request is in
        flight (:meth:`_take_ahead`). Only a listing that shrinks while it is paged, or a run that stops,
        leaves such a take unused: one call counted that was not made (the safe side, as with a take whose
        commit was lost)."""
        seen: set[str] = set()
        ahead: asyncio.Task[None] | None = None  # the budget of the page after the one requested, taken ahead
        prepaid: asyncio.Task[None] | None = None  # the budget of the page requested, taken ahead
        total: int | None = None
        try:
            while url:
                seen.add(url)
                prepaid, ahead = ahead, None
                if total is not None and not page_index:
                    off, lim = query_int(url, "offset"), query_int(url, "limit")
                    if off is not None and lim and off + lim < total:
                        ahead = self._take_ahead(api)  # for the page after this one
                res = await self._request("GET", url, api=api, op=op, records_key=records_key, empty=empty,
                                          prepaid=prepaid)
                page = self._page_from(res, url, base=base, records_key=records_key, page_index=page_index,
                                       empty=empty, seen=seen)
                total, url = page.total, page.next_url
                yield page
        finally:  # a take not used: the listing ended sooner than its total said, or the run stops
            for t in (prepaid, ahead):
                if t is not None and not t.done():
                    t.cancel()
                    with contextlib.suppress(BaseException):
                        await t
                elif t is not None and not t.cancelled():
                    t.exception()  # retrieved: an error of a take not used is not raised (nor logged as lost)

    def _page_from(self, res: _Result, url: str, *, base: str, records_key: str, page_index: bool,
                   empty: Sequence[int], seen: set[str]) -> Page:
        if res.status in empty or not isinstance(res.data, dict):
            return Page(records=[], total=0, url=url, next_url=None, offset=query_int(url, "offset"),
                        limit=query_int(url, "limit"), status=res.status)
        data: dict[str, Any] = res.data
        records = data.get(records_key) or []
        if not isinstance(records, list):
            records = []
        nxt = data.get("next")
        next_url = self.resolve_url(nxt, base) if isinstance(nxt, str) and nxt else \
            computed_next_url(url, data, len(records), page_index=page_index)
        if next_url is not None and (next_url in seen or not records):
            next_url = None  # a loop or an empty page: stop rather than spin
        total = data.get("total")
        return Page(
            records=records,
            total=total if isinstance(total, int) else None,
            url=url,
            next_url=next_url,
            offset=data.get("offset") if isinstance(data.get("offset"), int) else query_int(url, "offset"),
            limit=data.get("limit") if isinstance(data.get("limit"), int) else query_int(url, "limit"),
            status=res.status,
            warnings=parse_error_envelope({"errors": data.get("warnings")}) if data.get("warnings") else [],
            raw={k: v for k, v in data.items() if k != records_key},
        )

    async def _get_json(self, base: str, path: str, *, api: str, op: str, params: Any = None) -> dict[str, Any]:
        res = await self._request("GET", build_url(base, path, params), api=api, op=op, records_key="")
        return res.data if isinstance(res.data, dict) else {}

    @staticmethod
    def _limit(limit: int, maximum: int) -> int:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
            raise ValueError(f"limit must be an integer between 1 and {maximum}, got {limit!r}")
        return limit

    @staticmethod
    def _seg(value: str) -> str:
        if not value:
            raise ValueError("empty id")
        return quote(str(value), safe="")

    # ------------------------------------------------------------ orders (Fulfillment, api host)

    def get_orders(self, modified_from: datetime, modified_to: datetime | None, limit: int = ORDERS_MAX_LIMIT, *,
                   resume_url: str | None = None) -> AsyncIterator[Page]:
        """Orders with ``lastmodifieddate`` in [modified_from..modified_to] (inclusive; to=None: open end)."""
        return self._pages(api="fulfillment", op="getOrders", base=self.api_base,
                           first_url=self.orders_url(modified_from, modified_to, limit),
                           records_key="orders", resume_url=resume_url)

    def orders_url(self, modified_from: datetime, modified_to: datetime | None, limit: int = ORDERS_MAX_LIMIT) -> str:
        """The first page's URL of :meth:`get_orders` (a position to resume from)."""
        check_window(modified_from, modified_to, max_days=None, what="orders window")
        return build_url(self.api_base, P_ORDERS, [
            ("filter", range_filter("lastmodifieddate", modified_from, modified_to)),
            ("limit", self._limit(limit, ORDERS_MAX_LIMIT)), ("offset", 0)])

    async def get_order(self, order_id: str) -> dict[str, Any]:
        return await self._get_json(self.api_base, f"{P_ORDERS}/{self._seg(order_id)}", api="fulfillment", op="getOrder")

    # ------------------------------------------------------------ payment disputes (Fulfillment, apiz host)

    def get_payment_dispute_summaries(self, open_from: datetime, open_to: datetime, limit: int = DISPUTES_MAX_LIMIT,
                                      *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """Dispute summaries opened in [open_from..open_to]; ValueError if the window exceeds 90 days."""
        if open_to is None:
            raise ValueError("disputes window: open_to is required (max 90 days after open_from)")
        check_window(open_from, open_to, max_days=MAX_WINDOW_DAYS, what="payment disputes window")
        url = build_url(self.apiz_base, P_DISPUTES, [
            ("open_date_from", format_ts(open_from)), ("open_date_to", format_ts(open_to)),
            ("limit", self._limit(limit, DISPUTES_MAX_LIMIT)), ("offset", 0)])
        return self._pages(api="fulfillment", op="getPaymentDisputeSummaries", base=self.apiz_base, first_url=url,
                           records_key="paymentDisputeSummaries", resume_url=resume_url)

    async def get_payment_dispute(self, payment_dispute_id: str) -> dict[str, Any]:
        return await self._get_json(self.apiz_base, f"{P_DISPUTE}/{self._seg(payment_dispute_id)}",
                                    api="fulfillment", op="getPaymentDispute")

    # ------------------------------------------------------------ finances (apiz host)

    def _finances(self, path: str, field_name: str, records_key: str, op: str, date_from: datetime,
                  date_to: datetime, limit: int, extra_filters: Iterable[str], resume_url: str | None) -> AsyncIterator[Page]:
        if date_to is None:
            raise ValueError(f"{op}: date_to is required (windows of at most 90 days)")
        check_window(date_from, date_to, max_days=MAX_WINDOW_DAYS, what=f"{op} window")
        flt = ",".join([range_filter(field_name, date_from, date_to), *extra_filters])
        url = build_url(self.apiz_base, path, [("filter", flt), ("limit", self._limit(limit, FINANCES_MAX_LIMIT)),
                                               ("offset", 0)])
        return self._pages(api="finances", op=op, base=self.apiz_base, first_url=url, records_key=records_key,
                           resume_url=resume_url, empty=(204,))

    def get_transactions(self, date_from: datetime, date_to: datetime, limit: int = FINANCES_MAX_LIMIT, *,
                         extra_filters: Iterable[str] = (), resume_url: str | None = None) -> AsyncIterator[Page]:
        """Transactions with transactionDate in [date_from..date_to] (<= 90 days).  No match (HTTP 204)
        yields one empty page.  ``extra_filters`` e.g. ``["transactionType:{SALE|REFUND}"]``."""
        return self._finances(P_TRANSACTIONS, "transactionDate", "transactions", "getTransactions", date_from,
                              date_to, limit, extra_filters, resume_url)

    def get_payouts(self, date_from: datetime, date_to: datetime, limit: int = FINANCES_MAX_LIMIT, *,
                    extra_filters: Iterable[str] = (), resume_url: str | None = None) -> AsyncIterator[Page]:
        """Payouts with payoutDate in [date_from..date_to] (<= 90 days).  HTTP 204 yields one empty page."""
        return self._finances(P_PAYOUTS, "payoutDate", "payouts", "getPayouts", date_from, date_to, limit,
                              extra_filters, resume_url)

    # ------------------------------------------------------------ messages (Commerce Message, api host)

    def get_conversations(self, conversation_type: str, start: datetime | None = None, end: datetime | None = None,
                          limit: int = MESSAGES_MAX_LIMIT, *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """Conversations of one type.  ``start``/``end`` only work for FROM_MEMBERS (ValueError otherwise)."""
        if conversation_type not in CONVERSATION_TYPES:
            raise ValueError(f"conversation_type must be one of {', '.join(CONVERSATION_TYPES)}")
        if conversation_type != "FROM_MEMBERS" and (start is not None or end is not None):
            raise ValueError("start/end time filters only work for FROM_MEMBERS conversations")
        if start is not None:
            check_window(start, end, max_days=None, what="conversations window")
        elif end is not None:
            format_ts(end)
        url = build_url(self.api_base, P_CONVERSATIONS, [
            ("conversation_type", conversation_type),
            ("start_time", format_ts(start) if start else None), ("end_time", format_ts(end) if end else None),
            ("limit", self._limit(limit, MESSAGES_MAX_LIMIT)), ("offset", 0)])
        return self._pages(api="message", op="getConversations", base=self.api_base, first_url=url,
                           records_key="conversations", resume_url=resume_url)

    def get_conversation_messages(self, conversation_id: str, conversation_type: str, limit: int = MESSAGES_MAX_LIMIT,
                                  *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """The messages of one conversation (``page.raw`` has conversationTitle/Status/Type)."""
        if conversation_type not in CONVERSATION_TYPES:
            raise ValueError(f"conversation_type must be one of {', '.join(CONVERSATION_TYPES)}")
        url = build_url(self.api_base, f"{P_CONVERSATIONS}/{self._seg(conversation_id)}", [
            ("conversation_type", conversation_type), ("limit", self._limit(limit, MESSAGES_MAX_LIMIT)), ("offset", 0)])
        return self._pages(api="message", op="getConversation", base=self.api_base, first_url=url,
                           records_key="messages", resume_url=resume_url)

    # ------------------------------------------------------------ inventory (api host; offset = page index)

    def get_inventory_items(self, limit: int = INVENTORY_MAX_LIMIT, *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """All inventory items (full snapshot).  ``offset`` is a page index for this API."""
        url = build_url(self.api_base, P_INVENTORY, [("limit", self._limit(limit, INVENTORY_MAX_LIMIT)), ("offset", 0)])
        return self._pages(api="inventory", op="getInventoryItems", base=self.api_base, first_url=url,
                           records_key="inventoryItems", resume_url=resume_url, page_index=True)

    def get_offers(self, sku: str, limit: int = OFFERS_LIMIT, *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """The offers of one SKU.  A 404 (SKU without offers / deleted meanwhile) yields one empty page."""
        if not sku:
            raise ValueError("sku is required")
        url = build_url(self.api_base, P_OFFERS, [("sku", sku), ("limit", self._limit(limit, OFFERS_LIMIT)),
                                                  ("offset", 0)])
        return self._pages(api="inventory", op="getOffers", base=self.api_base, first_url=url, records_key="offers",
                           resume_url=resume_url, page_index=True, empty=(204, 404))

    # ------------------------------------------------------------ Post-Order (api host) and shipping fulfillments

    def search_post_order(self, stream: str, created_from: datetime, created_to: datetime,
                          limit: int = POST_ORDER_MAX_LIMIT, *, resume_url: str | None = None) -> AsyncIterator[Page]:
        """Returns / inquiries / cases / cancellations created in [created_from..created_to] (<= 90 days;
        PO Search pages: `_from` at most 18 months back).  ``offset`` is a 1-based page number (conflicting
        docs, see docs/ebay-api.md "Post-Order: search parameters"): the pages are followed up to
        ``paginationOutput.totalPages`` and stop at an empty page; ``page.next_url`` resumes."""
        seg, prefix, list_key, op, _ = POST_ORDER[stream]
        check_window(created_from, created_to, max_days=MAX_WINDOW_DAYS, what=f"{stream} window")
        url = build_url(self.api_base, f"{P_POST_ORDER}/{seg}/search", [
            (f"{prefix}_from", format_ts(created_from)), (f"{prefix}_to", format_ts(created_to)),
            ("limit", self._limit(limit, POST_ORDER_MAX_LIMIT)), ("offset", 1)])
        if resume_url:
            first = url
            url = self.resolve_url(resume_url, self.api_base)
            if httpx.URL(first).path != httpx.URL(url).path:
                raise ValueError(f"resume_url is for {httpx.URL(url).path}, not {httpx.URL(first).path}")
        return self._post_order_pages(op, url, list_key)

    async def _post_order_pages(self, op: str, url: str | None, list_key: str) -> AsyncIterator[Page]:
        while url:
            res = await self._request("GET", url, api=POST_ORDER_API, op=op, records_key=list_key)
            data: dict[str, Any] = res.data if isinstance(res.data, dict) else {}
            records = data.get(list_key) or []
            if not isinstance(records, list):
                records = []
            po: dict[str, Any] = data["paginationOutput"] if isinstance(data.get("paginationOutput"), dict) else {}
            page_no = max(1, query_int(url, "offset") or 1)
            total_pages = po.get("totalPages")
            more = bool(records) and (not isinstance(total_pages, int) or page_no < total_pages)
            next_url = with_query_param(url, "offset", page_no + 1) if more else None
            total = po.get("totalEntries")
            yield Page(records=records, total=total if isinstance(total, int) else None, url=url, next_url=next_url,
                       offset=page_no, limit=query_int(url, "limit"), status=res.status,
                       raw={k: v for k, v in data.items() if k != list_key})
            url = next_url

    async def get_post_order(self, stream: str, record_id: str, fieldgroups: str | None = None) -> dict[str, Any]:
        """The detail of one return / inquiry / case / cancellation (``fieldgroups``: SUMMARY or FULL)."""
        seg, _, _, _, op = POST_ORDER[stream]
        return await self._get_json(self.api_base, f"{P_POST_ORDER}/{seg}/{self._seg(record_id)}", api=POST_ORDER_API,
                                    op=op, params=[("fieldgroups", fieldgroups)])

    async def get_shipping_fulfillments(self, order_id: str) -> list[dict[str, Any]]:
        """getShippingFulfillments (fulfillment spec): the ``fulfillments`` of one order (not paged)."""
        data = await self._get_json(self.api_base, f"{P_ORDERS}/{self._seg(order_id)}/shipping_fulfillment",
                                    api="fulfillment", op="getShippingFulfillments")
        got = data.get("fulfillments")
        return got if isinstance(got, list) else []

    # ------------------------------------------------------------ Sell Feed: active inventory report

    async def create_inventory_task(self, listing_format: str | None = None) -> str:
        """POST an LMS_ACTIVE_INVENTORY_REPORT task; returns the task id parsed from the Location header.

        409 (a similar task is still running) raises EbayRequestError(status=409): list recent tasks with
        :meth:`get_inventory_tasks` and reuse the unfinished one.
        """
        body: dict[str, Any] = {"schemaVersion": "1.0", "feedType": "LMS_ACTIVE_INVENTORY_REPORT"}
        if listing_format:
            if listing_format not in ("FIXED_PRICE", "AUCTION"):
                raise ValueError("listing_format must be FIXED_PRICE or AUCTION")
            body["filterCriteria"] = {"listingFormat": listing_format}
        res = await self._request("POST", build_url(self.api_base, P_FEED_INV_TASK), api="feed",
                                  op="createInventoryTask", json_body=body, ok=(202, 200, 201))
        location = res.response.headers.get("location", "")
        task_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
        if not task_id and isinstance(res.data, dict):
            task_id = str(res.data.get("taskId") or "")
        if not task_id:
            raise EbayTransportError(res.status, None, None, "createInventoryTask: no Location header with the task id",
                                     method="POST", path=P_FEED_INV_TASK, api="feed", account=self.account)
        return task_id.split("?", 1)[0]

    async def get_inventory_task(self, task_id: str) -> dict[str, Any]:
        """``InventoryTask{taskId, status, feedType, creationDate, completionDate, ...}``."""
        return await self._get_json(self.api_base, f"{P_FEED_INV_TASK}/{self._seg(task_id)}", api="feed",
                                    op="getInventoryTask")

    def get_inventory_tasks(self, look_back_days: int = 1, limit: int = FEED_TASKS_MAX_LIMIT, *,
                            feed_type: str = "LMS_ACTIVE_INVENTORY_REPORT",
                            resume_url: str | None = None) -> AsyncIterator[Page]:
        """Recent inventory tasks (records key ``tasks``)."""
        if not 1 <= int(look_back_days) <= 90:
            raise ValueError("look_back_days must be between 1 and 90")
        url = build_url(self.api_base, P_FEED_INV_TASK, [("feed_type", feed_type), ("look_back_days", look_back_days),
                                                         ("limit", self._limit(limit, FEED_TASKS_MAX_LIMIT)),
                                                         ("offset", 0)])
        return self._pages(api="feed", op="getInventoryTasks", base=self.api_base, first_url=url, records_key="tasks",
                           resume_url=resume_url)

    async def download_result_file(self, task_id: str) -> bytes:
        """The raw result file of a completed task (usually a zip holding the XML report)."""
        res = await self._request("GET", build_url(self.api_base, f"{P_FEED_TASK}/{self._seg(task_id)}/download_result_file"),
                                  api="feed", op="downloadResultFile", binary=True)
        return res.response.content

    async def download_active_inventory_report(self, task_id: str) -> "Report":
        """Download and parse (in a worker thread) an active inventory report: SKUDetails dicts, with the
        report's ``ack`` (``Failure`` = eBay could not build it: do not trust the snapshot)."""
        data = await self.download_result_file(task_id)
        return await parse_active_inventory_report_async(data)

    # ------------------------------------------------------------ Developer Analytics

    async def get_rate_limits(self, api_context: str | None = "sell", api_name: str | None = None) -> dict[str, Any]:
        """getRateLimits (application quotas); also refreshes the RateBudget, if the client has one.

        eBay wants an *application* token here (client_credentials grant, base scope; developer_analytics
        spec: security of getRateLimits and the API description): give this client an
        :class:`~sync_core.ebay.oauth.AppTokenSource`, not the seller's tokens."""
        data = await self._get_json(self.api_base, P_RATE_LIMITS, api="analytics", op="getRateLimits",
                                    params=[("api_context", api_context), ("api_name", api_name)])
        if self._budget is not None:
            await _maybe_await(self._budget.update_from_rate_limits(APP, data))  # application-wide quotas
        return data

    async def get_user_rate_limits(self, api_context: str | None = "sell", api_name: str | None = None) -> dict[str, Any]:
        """getUserRateLimits (this seller's quotas); also refreshes the RateBudget."""
        data = await self._get_json(self.api_base, P_USER_RATE_LIMITS, api="analytics", op="getUserRateLimits",
                                    params=[("api_context", api_context), ("api_name", api_name)])
        if self._budget is not None:
            await _maybe_await(self._budget.update_from_rate_limits(self.account, data))
        return data
