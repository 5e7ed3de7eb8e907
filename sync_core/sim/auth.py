"""OAuth state of the simulator: authorization codes, refresh tokens, access tokens.

Token strings look like eBay's (``v^1.1#i^1#...``: they contain ``#`` and ``^`` and therefore must be
URL-encoded by the client in form bodies).  They are random and never logged.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field


SCOPE_PREFIX = "https://api.ebay.com/oauth/api_scope"
ALL_SCOPES = (
    SCOPE_PREFIX,
    f"{SCOPE_PREFIX}/sell.fulfillment",
    f"{SCOPE_PREFIX}/sell.fulfillment.readonly",
    f"{SCOPE_PREFIX}/sell.finances",
    f"{SCOPE_PREFIX}/sell.payment.dispute",
    f"{SCOPE_PREFIX}/sell.inventory",
    f"{SCOPE_PREFIX}/sell.inventory.readonly",
    f"{SCOPE_PREFIX}/commerce.message",
    f"{SCOPE_PREFIX}/sell.account",
    f"{SCOPE_PREFIX}/sell.account.readonly",
    f"{SCOPE_PREFIX}/sell.marketing",
    f"{SCOPE_PREFIX}/sell.marketing.readonly",
    f"{SCOPE_PREFIX}/sell.analytics.readonly",
    f"{SCOPE_PREFIX}/commerce.identity.readonly",
)

CODE_TTL_MS = 299 * 1000  # eBay: expires_in=299 on the consent redirect
ACCESS_TTL_S = 7200
REFRESH_TTL_S = 47_304_000


@dataclass
class Grant:
    seller: str
    scopes: frozenset[str]
    expires_ms: int
    redirect_uri: str = ""
    used: bool = False
    revoked: bool = False


@dataclass
class AccessToken:
    seller: str | None  # None = application token (client_credentials)
    scopes: frozenset[str]
    expires_ms: int
    uses_left: int | None = None  # None = unlimited; see Faults.access_token_uses


@dataclass
class AuthStore:
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_code(self, seller: str, scopes: frozenset[str], redirect_uri: str, now: int) -> str:
        code = "v^1.1#i^1#f^0#p^3#I^3#r^1#t^" + secrets.token_urlsafe(48)
        with self.lock:
            self.codes[code] = Grant(seller, scopes, now + CODE_TTL_MS, redirect_uri)
        return code

    def redeem_code(self, code: str, redirect_uri: str, now: int) -> Grant | None:
        """The grant of a valid code (single use: any redemption attempt burns it)."""
        with self.lock:
            g = self.codes.get(code)
            if g is None or g.used:
                return None
            g.used = True
            if g.expires_ms < now or g.redirect_uri != redirect_uri:
                return None
            return g

    def new_refresh(self, seller: str, scopes: frozenset[str], now: int) -> str:
        tok = "v^1.1#i^1#r^1#p^3#f^0#I^3#t^" + secrets.token_urlsafe(64)
        with self.lock:
            self.refresh[tok] = Grant(seller, scopes, now + REFRESH_TTL_S * 1000)
        return tok

    def check_refresh(self, tok: str, now: int) -> Grant | None:
        g = self.refresh.get(tok)
        if g is None or g.revoked or g.expires_ms < now:
            return None
        return g

    def revoke_seller(self, seller: str) -> int:
        n = 0
        with self.lock:
            for g in self.refresh.values():
                if g.seller == seller and not g.revoked:
                    g.revoked = True
                    n += 1
            for t in [t for t, a in self.access.items() if a.seller == seller]:
                del self.access[t]
        return n

    def new_access(self, seller: str | None, scopes: frozenset[str], ttl_s: float, now: int,
                   uses: int | None = None) -> str:
        tok = "v^1.1#i^1#p^3#f^0#I^3#r^0#t^" + secrets.token_urlsafe(96)
        with self.lock:
            if len(self.access) > 50_000:  # drop expired ones now and then
                for t in [t for t, a in self.access.items() if a.expires_ms < now]:
                    del self.access[t]
            self.access[tok] = AccessToken(seller, scopes, now + int(ttl_s * 1000), uses)
        return tok

    def lookup_access(self, tok: str | None, now: int) -> AccessToken | None:
        if not tok:
            return None
        with self.lock:
            a = self.access.get(tok)
            if a is None or a.expires_ms <= now:
                return None
            if a.uses_left is not None:
                if a.uses_left <= 0:
                    return None
                a.uses_left -= 1
            return a


def parse_scopes(text: str | None) -> frozenset[str] | None:
    """Space-separated scopes -> set; None when any scope is unknown."""
    parts = frozenset(s for s in (text or "").split() if s)
    if any(p not in ALL_SCOPES for p in parts):
        return None
    return parts

