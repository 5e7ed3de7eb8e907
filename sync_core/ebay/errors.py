"""Typed eBay errors, parsed from eBay's error envelope.

eBay answers errors with ``{"errors": [{"errorId", "domain", "subdomain", "category", "message",
"longMessage", "inputRefIds", "outputRefIds", "parameters": [{"name", "value"}]}], "warnings": [...]}``;
the Post-Order API with ``{"errorMessage": {"error": [{"errorId", "domain", "category", "message", ...}]}}``.
:func:`error_from_response` turns a response into the matching exception class:

=====================  ===========================================  =========
class                  when                                         retried
=====================  ===========================================  =========
EbayAuthError          401                                          once, after a forced token refresh;
                                                                    a 401 after that fails the run only
ReauthNeeded           the refresh said invalid_grant               no: the seller must consent again
EbayRateLimited        429 (``retry_after`` from Retry-After)       yes
EbayServerError        5xx (``retryable`` for 500/502/503/504)      yes if retryable
EbayRequestError       other 4xx                                    no
SignatureRequired      4xx with errorId 215001/215120/215122        no: sign (baysync keys signing create)
EbayTransportError     timeouts, connection resets, bad responses   yes
=====================  ===========================================  =========

Messages never contain tokens, headers or request bodies: everything goes through
:func:`sync_core.ebay.redact.redact`.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

from .redact import redact, redact_text

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Errors eBay answers an in-scope call (Finances) of an EU/UK seller with when the digital signature is
# missing or wrong (third-party reports: issues #4, #21, #25, #27 of eBay/digital-signature-verification-ebay-api
# and CMS365-PTY-LTD/EbaySharp #4 -- HTTP 403, domain ACCESS; UNVERIFIED in eBay's own docs; docs/ebay-api.md "Digital Signatures"):
# 215001 "Missing x-ebay-signature-key header", 215120/215122 "Signature validation failed".
MISSING_KEY_ERROR = 215001
INVALID_SIGNATURE_ERRORS = frozenset({215120, 215122})
SIGNATURE_ERRORS = frozenset({MISSING_KEY_ERROR}) | INVALID_SIGNATURE_ERRORS
SIGNING_ADVICE = "run `baysync keys signing create` (or `baysync keys signing import --file F`)"


class EbayError(Exception):
    """An eBay call failed.  ``str(err)`` is one redacted line fit for logs and the console."""

    retryable = False

    def __init__(self, status: int | None, error_id: int | None, category: str | None, message: str, *,
                 domain: str | None = None, errors: list[dict[str, Any]] | None = None,
                 method: str | None = None, path: str | None = None, api: str | None = None,
                 account: str | None = None):
        self.status = status
        self.error_id = error_id
        self.category = category
        self.message = redact_text(message or "")
        self.domain = domain
        self.errors: list[dict[str, Any]] = redact(errors or [])
        self.method = method
        self.path = path
        self.api = api
        self.account = account
        super().__init__(self._render())

    def _render(self) -> str:
        bits = ["eBay"]
        if self.status is not None:
            bits.append(str(self.status))
        tag = []
        if self.error_id is not None:
            tag.append(f"errorId {self.error_id}")
        if self.category:
            tag.append(self.category)
        if tag:
            bits.append("[" + " ".join(tag) + "]")
        line = " ".join(bits) + (f": {self.message}" if self.message else "")
        if self.method and self.path:
            line += f" ({self.method} {self.path})"
        if self.account:
            line += f" account={self.account}"
        return redact_text(" ".join(line.split()))

    def __str__(self) -> str:  # always re-render: attributes may have been set after construction
        return self._render()

    def __reduce__(self):  # picklable with keyword attributes (multiprocessing, logging handlers)
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[EbayError], state: dict[str, Any]) -> "EbayError":
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    Exception.__init__(obj, obj._render())
    return obj


class EbayAuthError(EbayError):
    """HTTP 401 (or an OAuth error other than invalid_grant, e.g. invalid_client: wrong client secret)."""


class ReauthNeeded(EbayAuthError):
    """The refresh token no longer works (invalid_grant on the token endpoint).

    Nothing retries this: the seller must run the consent flow again (``baysync accounts connect``).
    """


class EbayRateLimited(EbayError):
    """HTTP 429.  ``retry_after`` is seconds from the Retry-After header, when eBay sent one."""

    retryable = True

    def __init__(self, *args: Any, retry_after: float | None = None, **kw: Any):
        self.retry_after = retry_after
        super().__init__(*args, **kw)


class EbayServerError(EbayError):
    """HTTP 5xx."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in RETRYABLE_STATUSES


class EbayRequestError(EbayError):
    """Any other 4xx: the request itself is wrong (bad filter, unknown id, missing scope: 403)."""


class SignatureRequired(EbayRequestError):
    """eBay wants a valid digital signature on this call (an EU/UK seller's Finances call; docs/ebay-api.md "Digital Signatures"), or
    baysync knows the account needs one and has no signing key: not retried; the account is marked EU/UK and
    the run fails with :meth:`advice`."""

    def advice(self) -> str:
        if self.error_id in INVALID_SIGNATURE_ERRORS:
            what = "eBay rejected the digital signature (errorId %d): the signing key is wrong or expired" % self.error_id
        elif self.error_id == MISSING_KEY_ERROR:
            what = "eBay requires digital signatures for this EU/UK seller's Finances calls (errorId 215001)"
        else:
            what = "this EU/UK seller's Finances calls need a digital signature and no signing key is configured"
        return f"{what}; account {self.account or '?'} is marked EU/UK: {SIGNING_ADVICE}"


class EbayTransportError(EbayError):
    """No usable HTTP response: timeout, connection refused/reset, protocol error, undecodable body."""

    retryable = True


class ConsentError(ValueError):
    """The pasted consent redirect is unusable (state mismatch, consent declined, no code)."""


# ---------------------------------------------------------------- parsing


def parse_error_envelope(body: Any) -> list[dict[str, Any]]:
    """The ``errors`` list of an eBay error body (bytes, str or parsed JSON), or the ``errorMessage.error``
    list of a Post-Order one (same member names: errorId, domain, category, message, longMessage); []
    when there is none."""
    if isinstance(body, (bytes, bytearray, str)):
        if not body:
            return []
        try:
            import orjson

            body = orjson.loads(body)
        except Exception:
            return []
    if not isinstance(body, dict):
        return []
    errs = body.get("errors")
    em = body.get("errorMessage")
    if errs is None and isinstance(em, dict):  # Post-Order: {"errorMessage": {"error": [...]}} (PO Error Response)
        errs = em.get("error")
        if isinstance(errs, dict):
            errs = [errs]
    if not isinstance(errs, list):
        return []
    return [e for e in errs if isinstance(e, dict)]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent/unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        secs = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if secs != secs:  # NaN
        return None
    return max(0.0, secs)


def _as_int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def error_from_status(status: int, body: Any = None, *, headers: Any = None, method: str | None = None,
                      path: str | None = None, api: str | None = None, account: str | None = None,
                      reason: str | None = None) -> EbayError:
    """Build the exception for an error response (``status`` >= 400)."""
    errors = parse_error_envelope(body)
    first = errors[0] if errors else {}
    message = first.get("longMessage") or first.get("message") or ""
    if not message and isinstance(body, dict) and body.get("error"):  # OAuth-style {"error", "error_description"}
        message = f"{body.get('error')}: {body.get('error_description', '')}".rstrip(": ")
    if not message:
        message = reason or "HTTP error"
    if len(errors) > 1:
        message += f" (+{len(errors) - 1} more)"
    kw: dict[str, Any] = dict(domain=first.get("domain"), errors=errors, method=method, path=path, api=api, account=account)
    args = (status, _as_int(first.get("errorId")), first.get("category"), message)
    if status == 401:
        return EbayAuthError(*args, **kw)
    if status == 429:
        ra = None
        if headers is not None:
            ra = parse_retry_after(headers.get("retry-after"))
        return EbayRateLimited(*args, retry_after=ra, **kw)
    if status >= 500:
        return EbayServerError(*args, **kw)
    if any(_as_int(e.get("errorId")) in SIGNATURE_ERRORS for e in errors):
        return SignatureRequired(*args, **kw)
    return EbayRequestError(*args, **kw)


def error_from_response(response: Any, *, api: str | None = None, account: str | None = None) -> EbayError:
    """Build the exception for an ``httpx.Response`` with an error status."""
    try:
        body: Any = response.content
    except Exception:
        body = b""
    req = getattr(response, "request", None)
    method = getattr(req, "method", None) if req is not None else None
    path = req.url.path if req is not None else None
    try:
        import orjson

        parsed = orjson.loads(body) if body else None
    except Exception:
        parsed = None
    return error_from_status(response.status_code, parsed if parsed is not None else body, headers=response.headers,
                             method=method, path=path, api=api, account=account,
                             reason=getattr(response, "reason_phrase", None))


class EbayPagingDrift(EbayError):
    """A window's result set kept changing while it was paged (eBay's ``total`` moved between pages, or fewer
    distinct records arrived than ``total`` promised) after the allowed re-reads: the window fails rather
    than be stored with a gap; the run is tried again at the stream's next interval."""
