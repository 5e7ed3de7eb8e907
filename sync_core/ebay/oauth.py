"""eBay OAuth (authorization-code grant + refresh token) and access-token sources.

Flow (see docs/ebay-api.md, "OAuth"):

1. ``consent_url(settings, state, scopes_for(streams))`` -> the operator opens it, signs in as the seller.
2. eBay redirects to the app's accept URL with ``?code=...&state=...`` (code lives ~5 minutes); the
   operator pastes the URL (or just the code) -> :func:`parse_redirect` -> code (never stored).
3. :func:`exchange_code` -> :class:`TokenSet` with a 2 h access token and an ~18 month refresh token.
   Only the refresh token is kept (encrypted, see :mod:`sync_core.crypto`).
4. Workers use :class:`RefreshingTokenSource`, which mints access tokens from the refresh token when
   needed (a few minutes before expiry, or when the client saw a 401) -- one refresh at a time.

Every token, code and the client secret is passed to :func:`register_secret` as soon as it is seen, so
redaction masks it anywhere.  ``invalid_grant`` from the token endpoint raises :class:`ReauthNeeded`.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx

from .errors import (
    ConsentError,
    EbayAuthError,
    EbayError,
    EbayRequestError,
    EbayTransportError,
    ReauthNeeded,
    error_from_status,
)
from .redact import redact_text, register_secret

if TYPE_CHECKING:
    from ..config import Settings

SCOPE_PREFIX = "https://api.ebay.com/oauth/api_scope"
BASE_SCOPE = SCOPE_PREFIX

# Scopes per stream (docs/ebay-api.md, "Scopes per stream"), from the stream declarations (Stream.scopes).
from ..streams import STREAMS as _STREAMS  # noqa: E402

STREAM_SCOPES: dict[str, tuple[str, ...]] = {n: s.scope_urls for n, s in _STREAMS.items()}

TOKEN_PATH = "/identity/v1/oauth2/token"
AUTHORIZE_PATH = "/oauth2/authorize"
ACCESS_REFRESH_MARGIN_S = 300.0  # refresh this long before the access token expires


def scopes_for(streams: Iterable[str]) -> list[str]:
    """The scopes to request for ``streams`` (base scope first, no duplicates, stable order).

    Unknown stream names raise ValueError.
    """
    out = [BASE_SCOPE]
    for s in streams:
        if s not in STREAM_SCOPES:
            raise ValueError(f"unknown stream {s!r}; known: {', '.join(STREAM_SCOPES)}")
        for sc in STREAM_SCOPES[s]:
            if sc not in out:
                out.append(sc)
    return out


# ---------------------------------------------------------------- consent


def consent_url(settings: Settings, state: str, scopes: Iterable[str], *, prompt_login: bool = False,
                locale: str | None = None) -> str:
    """The eBay consent page URL: ``{auth base}/oauth2/authorize?client_id&redirect_uri=<RuName>&...``."""
    if not settings.ebay_client_id:
        raise ValueError("ebay_client_id is not configured (BAYSYNC_EBAY_CLIENT_ID)")
    if not settings.ebay_runame:
        raise ValueError("ebay_runame is not configured (BAYSYNC_EBAY_RUNAME): the RuName of the eBay app")
    params: list[tuple[str, str]] = [
        ("client_id", settings.ebay_client_id),
        ("redirect_uri", settings.ebay_runame),
        ("response_type", "code"),
        ("scope", " ".join(scopes)),
        ("state", state),
    ]
    if prompt_login:
        params.append(("prompt", "login"))
    if locale:
        params.append(("locale", locale))
    return f"{settings.ebay_auth_base_url}{AUTHORIZE_PATH}?" + urlencode(params, quote_via=quote, safe="")


def parse_redirect(pasted: str, expected_state: str | None) -> str:
    """The authorization code from what the operator pasted: the full redirected URL, its query string,
    or the bare code.  When a URL/query is given, its ``state`` must equal ``expected_state``.

    Raises :class:`ConsentError` with a one-line message.
    """
    text = (pasted or "").strip().strip("'\"<>").strip()
    if not text:
        raise ConsentError("nothing pasted: paste the URL eBay redirected to (or the code from it)")
    looks_like_url = "://" in text or text.startswith("?") or "code=" in text or "error=" in text
    if not looks_like_url:
        if any(c.isspace() for c in text):
            raise ConsentError("that is not an authorization code: paste the whole redirected URL")
        code = unquote(text) if "%" in text else text
        register_secret(code)
        register_secret(text)
        return code
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    if not query and "#" in text:
        query = text.split("#", 1)[1]
    params = parse_qs(query, keep_blank_values=True)
    if "code" in params:
        for v in params["code"]:
            register_secret(v)
    if params.get("error"):
        desc = (params.get("error_description") or [""])[0]
        raise ConsentError(redact_text(f"eBay did not grant consent: {params['error'][0]}" + (f" ({desc})" if desc else "")))
    codes = [c for c in params.get("code", []) if c]
    if not codes:
        raise ConsentError("no code= in the pasted URL: paste the full URL of the page eBay redirected to")
    if expected_state is not None:
        got = (params.get("state") or [""])[0]
        if not got:
            raise ConsentError("the pasted URL has no state=: start the consent again and paste the new URL")
        if not hmac.compare_digest(got.encode(), expected_state.encode()):
            raise ConsentError("state mismatch: the pasted URL belongs to another consent attempt; start again")
    return codes[0]


# ---------------------------------------------------------------- tokens


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class TokenSet:
    """Tokens from the token endpoint.  ``repr`` never shows token values."""

    access_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: datetime | None = None
    scopes: list[str] = field(default_factory=list)
    token_type: str = "User Access Token"

    def access_valid(self, margin_s: float = 0.0, *, now: datetime | None = None) -> bool:
        return (now or _utcnow()) + timedelta(seconds=margin_s) < self.access_expires_at


def _token_set_from_json(data: dict[str, Any], *, refresh_token: str | None, scopes: list[str]) -> TokenSet:
    if not isinstance(data, dict) or not data.get("access_token"):
        raise EbayTransportError(None, None, None, "token endpoint answered without an access_token")
    now = _utcnow()
    access = str(data["access_token"])
    register_secret(access)
    new_refresh = data.get("refresh_token")
    if new_refresh:
        register_secret(str(new_refresh))
    try:
        expires_in = float(data.get("expires_in") or 7200)
    except (TypeError, ValueError):
        expires_in = 7200.0
    refresh_exp = None
    if data.get("refresh_token_expires_in") is not None:
        try:
            refresh_exp = now + timedelta(seconds=float(data["refresh_token_expires_in"]))
        except (TypeError, ValueError):
            refresh_exp = None
    scope_str = data.get("scope")
    return TokenSet(
        access_token=access,
        access_expires_at=now + timedelta(seconds=expires_in),
        refresh_token=str(new_refresh) if new_refresh else refresh_token,
        refresh_expires_at=refresh_exp,
        scopes=scope_str.split() if isinstance(scope_str, str) and scope_str else list(scopes),
        token_type=str(data.get("token_type") or "User Access Token"),
    )


def _basic_auth(settings: Settings) -> str:
    cid, secret = settings.ebay_client_id, settings.ebay_client_secret
    if not cid or not secret:
        raise EbayAuthError(None, None, None, "ebay_client_id / ebay_client_secret are not configured")
    register_secret(secret)
    raw = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    register_secret(raw)
    return "Basic " + raw


async def _token_call(http: httpx.AsyncClient, settings: Settings, form: dict[str, str], *,
                      on_event: Callable[[dict], None] | None = None, account: str | None = None,
                      attempts: int | None = None) -> dict[str, Any]:
    """POST the token endpoint; retries transport errors, 429 and 5xx a few times (short backoff)."""
    import orjson

    from .client import backoff_delay, emit_event  # late import: client imports oauth

    url = f"{settings.ebay_api_base_url}{TOKEN_PATH}"
    headers = {"Authorization": _basic_auth(settings), "Content-Type": "application/x-www-form-urlencoded",
               "Accept": "application/json"}
    body = urlencode(form)
    max_attempts = attempts or min(int(getattr(settings, "api_retry_attempts", 3)), 4)
    last: EbayError | None = None
    for attempt in range(1, max_attempts + 1):
        t0 = time.monotonic()
        status: int | None = None
        nbytes = 0
        err_name = None
        try:
            resp = await http.post(url, content=body, headers=headers)
            status, nbytes = resp.status_code, len(resp.content)
        except httpx.HTTPError as e:  # timeouts, resets, protocol errors
            err_name = type(e).__name__
            last = EbayTransportError(None, None, None, f"token endpoint unreachable: {type(e).__name__}",
                                      method="POST", path=TOKEN_PATH, api="oauth", account=account)
            resp = None
        finally:
            ev = {"type": "http", "method": "POST", "host": httpx.URL(url).host, "path": TOKEN_PATH, "query": "",
                  "status": status, "duration_ms": round((time.monotonic() - t0) * 1000, 1), "bytes": nbytes,
                  "records": None, "attempt": attempt, "api": "oauth", "op": "token:" + form.get("grant_type", "")}
            if account is not None:
                ev["account"] = account
            if err_name:
                ev["error"] = err_name
            emit_event(on_event, ev)
        if resp is not None:
            try:
                data = orjson.loads(resp.content) if resp.content else {}
            except orjson.JSONDecodeError:
                data = {}
            if resp.status_code == 200:
                return data
            oauth_error = data.get("error") if isinstance(data, dict) else None
            desc = data.get("error_description", "") if isinstance(data, dict) else ""
            if oauth_error == "invalid_grant":
                raise ReauthNeeded(resp.status_code, None, "invalid_grant",
                                   f"eBay refused the grant (invalid_grant: {desc or 'expired or revoked'}); "
                                   "the seller must consent again", method="POST", path=TOKEN_PATH, api="oauth",
                                   account=account)
            retryable = resp.status_code == 429 or resp.status_code >= 500
            if oauth_error and not retryable:
                cls = EbayAuthError if oauth_error in ("invalid_client", "unauthorized_client") else EbayRequestError
                raise cls(resp.status_code, None, oauth_error, f"{oauth_error}: {desc}".rstrip(": "),
                          method="POST", path=TOKEN_PATH, api="oauth", account=account)
            last = error_from_status(resp.status_code, data or resp.content, headers=resp.headers, method="POST",
                                     path=TOKEN_PATH, api="oauth", account=account)
            if not retryable:
                raise last
        if attempt < max_attempts:
            await asyncio.sleep(backoff_delay(settings, attempt, last))
    assert last is not None
    raise last


async def exchange_code(http: httpx.AsyncClient, settings: Settings, code: str, *,
                        on_event: Callable[[dict], None] | None = None) -> TokenSet:
    """Exchange an authorization code for tokens (grant_type=authorization_code, redirect_uri=RuName).

    A used or expired code gives invalid_grant -> :class:`ReauthNeeded` (start the consent again).
    """
    register_secret(code)
    data = await _token_call(http, settings, {"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": settings.ebay_runame}, on_event=on_event, attempts=1)
    return _token_set_from_json(data, refresh_token=None, scopes=[])


async def refresh_access_token(http: httpx.AsyncClient, settings: Settings, refresh_token: str,
                               scopes: Iterable[str] | None = None, *,
                               on_event: Callable[[dict], None] | None = None,
                               account: str | None = None) -> TokenSet:
    """Mint an access token from ``refresh_token`` (grant_type=refresh_token; scope = the consented
    scopes or a subset, omitted when empty).  The returned TokenSet keeps ``refresh_token`` unless eBay
    sent a new one.  invalid_grant -> :class:`ReauthNeeded`."""
    register_secret(refresh_token)
    scopes = list(scopes or [])
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scopes:
        form["scope"] = " ".join(scopes)
    data = await _token_call(http, settings, form, on_event=on_event, account=account)
    return _token_set_from_json(data, refresh_token=refresh_token, scopes=scopes)


async def application_token(http: httpx.AsyncClient, settings: Settings, scopes: Iterable[str] = (BASE_SCOPE,), *,
                            on_event: Callable[[dict], None] | None = None) -> str:
    """An application access token (client_credentials grant; docs/ebay-api.md "Digital Signatures": the Key Management API and
    getRateLimits take one).  Not stored: it is minted when needed."""
    data = await _token_call(http, settings, {"grant_type": "client_credentials", "scope": " ".join(scopes)},
                             on_event=on_event)
    tok = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(tok, str) or not tok:
        raise EbayAuthError(200, None, None, "the token endpoint sent no access_token", method="POST",
                            path=TOKEN_PATH, api="oauth")
    register_secret(tok)
    return tok


@runtime_checkable
class TokenSource(Protocol):
    """Where EbayClient gets its bearer token.  ``force_refresh=True`` after eBay answered 401."""

    async def access_token(self, force_refresh: bool = False) -> str: ...


class StaticTokenSource:
    """A fixed access token (tests, app tokens).  A forced refresh cannot help: raises ReauthNeeded."""

    def __init__(self, token: str):
        register_secret(token)
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenSource(***)"

    async def access_token(self, force_refresh: bool = False) -> str:
        if force_refresh:
            raise ReauthNeeded(401, None, None, "static access token was rejected")
        return self._token


OnRefresh = Callable[[TokenSet], Awaitable[None] | None]


class RefreshingTokenSource:
    """Access tokens minted from a refresh token, cached in memory, refreshed ``margin_s`` (default 5 min)
    before they expire or on ``force_refresh``.  A lock makes concurrent callers share one refresh; a
    forced refresh requested while another caller was already refreshing reuses that new token, and so
    does one whose ``rejected`` token (the one eBay answered 401 to; EbayClient passes it) was already
    replaced -- a burst of 401s from parallel requests costs one refresh.

    ``on_refresh(token_set)`` (sync or async) is called after every successful refresh, e.g. to persist a
    rotated refresh token or the new access token (encrypted).
    """

    def __init__(self, http: httpx.AsyncClient, settings: Settings, refresh_token: str, scopes: Iterable[str] | None = None,
                 on_refresh: OnRefresh | None = None, *, access_token: str | None = None,
                 access_expires_at: datetime | None = None, margin_s: float = ACCESS_REFRESH_MARGIN_S,
                 on_event: Callable[[dict], None] | None = None, account: str | None = None):
        register_secret(refresh_token)
        if access_token:
            register_secret(access_token)
        self._http = http
        self._settings = settings
        self._refresh_token = refresh_token
        self._scopes = list(scopes or [])
        self._on_refresh = on_refresh
        self._on_event = on_event
        self._account = account
        self._margin = margin_s
        self._lock = asyncio.Lock()
        self._persist_lock = asyncio.Lock()
        self._current: TokenSet | None = None
        if access_token and access_expires_at:
            self._current = TokenSet(access_token, access_expires_at, refresh_token, None, self._scopes)
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"RefreshingTokenSource(account={self._account!r}, refreshes={self.refresh_count})"

    @property
    def token_set(self) -> TokenSet | None:
        return self._current

    async def access_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> str:
        seen = self._current.access_token if self._current else None
        cur = self._current
        if cur is not None and cur.access_valid(self._margin) and (
                not force_refresh or (rejected is not None and cur.access_token != rejected)):
            return cur.access_token  # valid, or the rejected token was already replaced: no need to queue
        async with self._lock:
            cur = self._current
            if cur is not None and cur.access_token != seen and cur.access_valid(self._margin):
                return cur.access_token  # someone refreshed while we waited
            if not force_refresh and cur is not None and cur.access_valid(self._margin):
                return cur.access_token
            if (force_refresh and rejected is not None and cur is not None and cur.access_token != rejected
                    and cur.access_valid(self._margin)):
                return cur.access_token  # the rejected token was already replaced
            try:
                ts = await refresh_access_token(self._http, self._settings, self._refresh_token, self._scopes,
                                                on_event=self._on_event, account=self._account)
            except ReauthNeeded as e:
                e.account = self._account
                raise
            self.refresh_count += 1
            if ts.refresh_token and ts.refresh_token != self._refresh_token:
                self._refresh_token = ts.refresh_token
            self._current = ts
            # persisting (a database write) happens after the waiters are let go, one at a time and in
            # the order of the refreshes: a caller whose token was just rejected must not wait for it
            await self._persist_lock.acquire()
        try:
            if self._on_refresh is not None:
                res = self._on_refresh(ts)
                if inspect.isawaitable(res):
                    await res
        finally:
            self._persist_lock.release()
        return ts.access_token


async def client_credentials_token(http: httpx.AsyncClient, settings: Settings, scopes: Iterable[str] = (BASE_SCOPE,), *,
                                   on_event: Callable[[dict], None] | None = None) -> TokenSet:
    """An application access token (grant_type=client_credentials; docs/ebay-api.md "OAuth" and the
    developer_analytics spec's ``clientCredentials`` flow, base scope ``.../oauth/api_scope``).  No refresh
    token: a new one is minted when it expires (eBay allows 1,000 such mints a day per application)."""
    scopes = list(scopes)
    data = await _token_call(http, settings, {"grant_type": "client_credentials", "scope": " ".join(scopes)},
                             on_event=on_event, account=None)
    return _token_set_from_json(data, refresh_token=None, scopes=scopes)


class AppTokenSource:
    """The application's access token (client_credentials), for calls eBay wants an application token
    for (getRateLimits).  Cached in memory, minted again ``margin_s`` before expiry or after a 401 (at
    most once per rejected token, one mint at a time); one per process, shared by every account."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, scopes: Iterable[str] = (BASE_SCOPE,), *,
                 margin_s: float = ACCESS_REFRESH_MARGIN_S, on_event: Callable[[dict], None] | None = None):
        self._http, self._settings, self._scopes = http, settings, list(scopes)
        self._margin, self._on_event = margin_s, on_event
        self._lock = asyncio.Lock()
        self._current: TokenSet | None = None
        self.mint_count = 0

    def __repr__(self) -> str:
        return f"AppTokenSource(mints={self.mint_count})"

    async def access_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> str:
        async with self._lock:
            cur = self._current
            if cur is not None and cur.access_valid(self._margin) and (
                    not force_refresh or (rejected is not None and cur.access_token != rejected)):
                return cur.access_token
            self._current = await client_credentials_token(self._http, self._settings, self._scopes,
                                                           on_event=self._on_event)
            self.mint_count += 1
            return self._current.access_token
