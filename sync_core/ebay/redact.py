"""Masking of secrets in anything baysync writes: logs, events, exception messages, URLs.

One entry point, :func:`redact`, accepts a string, a mapping (dict, httpx.Headers), a list/tuple or any
other value and returns a copy with secrets replaced by ``***``.  It combines

* a **registry of known secret values** (:func:`register_secret`): every access token, refresh token,
  authorization code, client secret and encryption key that baysync handles is registered the moment it
  is seen, so the value is masked wherever it later shows up (also in URL-encoded form);
* **key names**: mapping entries whose key looks secret (``Authorization``, ``access_token``,
  ``refresh_token``, ``client_secret``, ``code``, ``password``, anything containing ``token``/``secret``)
  have their value replaced;
* **patterns** for values never registered: ``Bearer``/``Basic``/``IAF`` credentials, ``Authorization:``
  header lines, secret-looking query/form parameters (``code=``, ``access_token=``, ...), JSON members
  named like secrets, and eBay OAuth token shapes (``v^1.1#...``).

:func:`strip_secret_params` removes secret-looking parameters from a query string entirely (used for the
``query`` field of http events).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
_MIN_SECRET_LEN = 6

MAX_REGISTERED = 4096  # oldest values are forgotten first (long-running workers mint many access tokens)

_lock = threading.Lock()
_secrets: dict[str, tuple[str, ...]] = {}  # value -> its masked forms, in registration order
_variants: tuple[str, ...] | None = ()  # all registered values and their encoded forms, longest first

# Parameter / member / key names whose values are secrets (compared lower-cased with '-' -> '_').
SECRET_NAMES = frozenset({
    "authorization", "proxy_authorization", "cookie", "set_cookie",
    "access_token", "refresh_token", "id_token", "token",
    "client_secret", "secret", "secret_key", "password", "passwd",
    "code", "auth_code", "authorization_code",
    "api_key", "apikey", "x_ebay_signature_key", "signature",
})
_SECRET_SUBSTRINGS = ("token", "secret", "password", "authorization")

_NAMES_RE = "|".join(sorted((re.escape(n) for n in SECRET_NAMES | {"proxy-authorization", "x-ebay-signature-key"}),
                            key=len, reverse=True))

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Authorization: Bearer xyz" / "authorization=Basic xyz" (header dumps, reprs)
    (re.compile(r"(?i)\b((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|iaf)\s+)?[^\s'\",;}]+"),
     r"\1\2 " + MASK),
    # bare credentials
    (re.compile(r"(?i)\b(bearer|basic|iaf)\s+[A-Za-z0-9\-._~+/=^#%|:]{8,}"), r"\1 " + MASK),
    # JSON members: "access_token": "..."
    (re.compile(r'(?i)("(?:[a-z_]*token|[a-z_]*secret|password|code|authorization)"\s*:\s*")[^"]*(")'),
     r"\1" + MASK + r"\2"),
    # query / form parameters: ?code=...&access_token=...
    (re.compile(r"(?i)((?:^|[?&;\s,(\[{'\"])(?:" + _NAMES_RE + r")=)[^&\s'\"#;,)\]}]*"), r"\1" + MASK),
    # eBay user/app token shapes, raw and URL-encoded
    (re.compile(r"v\^1\.1#[^\s'\"&,;)}\]]+"), MASK),
    (re.compile(r"(?i)v%5E1\.1%23[^\s'\"&,;)}\]]+"), MASK),
)


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_name(name: str) -> bool:
    """True if a header/parameter/member named ``name`` carries a secret."""
    n = _normalize_name(name)
    if n in SECRET_NAMES:
        return True
    if n.endswith(("_expires_at", "_expires_in", "_type")):  # token_type, refresh_token_expires_in: metadata
        return False
    return any(s in n for s in _SECRET_SUBSTRINGS)


def register_secret(value: str | bytes | None) -> None:
    """Remember ``value`` as a secret: it is masked wherever :func:`redact` later sees it.

    Values shorter than 6 characters are ignored (they would mask ordinary text).
    """
    global _variants
    if value is None:
        return
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return
    value = value.strip()
    if len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        forms = {value, quote(value, safe=""), quote_plus(value, safe=""), quote(quote(value, safe=""), safe="")}
        _secrets[value] = tuple(f for f in forms if len(f) >= _MIN_SECRET_LEN)
        while len(_secrets) > MAX_REGISTERED:
            del _secrets[next(iter(_secrets))]
        _variants = None  # rebuilt lazily by the next redaction


def _current_variants() -> tuple[str, ...]:
    global _variants
    v = _variants
    if v is None:
        with _lock:
            if _variants is None:
                _variants = tuple(sorted({f for fs in _secrets.values() for f in fs}, key=len, reverse=True))
            v = _variants
    return v


def registered_secret_count() -> int:
    return len(_secrets)


def redact_text(text: str) -> str:
    if not text:
        return text
    for v in _current_variants():
        if v in text:
            text = text.replace(v, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact(obj: Any) -> Any:
    """Return a copy of ``obj`` (str, bytes, mapping, list, tuple, set, exception, other) with secrets masked."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, (bytes, bytearray)):
        try:
            return redact_text(bytes(obj).decode()).encode()
        except UnicodeDecodeError:
            return obj
    if isinstance(obj, Mapping) or (hasattr(obj, "items") and hasattr(obj, "keys")):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and is_secret_name(k) and v not in (None, "", [], {}):
                out[k] = MASK
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, BaseException):
        return redact_text(f"{type(obj).__name__}: {obj}")
    return obj


def strip_secret_params(query: str | bytes) -> str:
    """A query string with every secret-looking parameter removed (the rest kept, re-encoded)."""
    if isinstance(query, bytes):
        query = query.decode("ascii", "replace")
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, redact_text(v)) for k, v in pairs if not is_secret_name(k)]
    return urlencode(kept, quote_via=quote, safe=":,.[]")


def redact_url(url: str) -> str:
    """A URL without userinfo and without secret query parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, strip_secret_params(parts.query), "")))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    return {k: (MASK if is_secret_name(k) else redact_text(v)) for k, v in items}
