"""The :class:`Simulator`: sellers' data, clock, OAuth state, faults, stats and the ASGI app."""

from __future__ import annotations

import copy
import random
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from .after_sale import AFTER_SALE_KIND_ALIASES, AFTER_SALE_STREAMS, AfterSaleData
from .auth import ALL_SCOPES, ACCESS_TTL_S, AuthStore
from .clock import Arrivals, SimClock
from .config import Faults, SimConfig
from .data import STREAMS, TOUCHABLE, SellerData
from .faults import FaultEngine
from .feed import FeedStore
from .util import MS_DAY, fmt_ms

# Analytics "resources": op -> (apiContext, apiName, apiVersion, resource name)
API_OF_OP = {
    "getOrders": ("sell", "Fulfillment", "v1", "sell.fulfillment"),
    "getOrder": ("sell", "Fulfillment", "v1", "sell.fulfillment"),
    "getPaymentDisputeSummaries": ("sell", "Fulfillment", "v1", "sell.payment.dispute"),
    "getPaymentDispute": ("sell", "Fulfillment", "v1", "sell.payment.dispute"),
    "getTransactions": ("sell", "Finances", "v1", "sell.finances"),
    "getPayouts": ("sell", "Finances", "v1", "sell.finances"),
    "getPayout": ("sell", "Finances", "v1", "sell.finances"),
    "getConversations": ("commerce", "Message", "v1", "commerce.message"),
    "getConversation": ("commerce", "Message", "v1", "commerce.message"),
    "getInventoryItems": ("sell", "Inventory", "v1", "sell.inventory"),
    "getOffers": ("sell", "Inventory", "v1", "sell.inventory"),
    "createInventoryTask": ("sell", "Feed", "v1", "sell.feed"),
    "getInventoryTask": ("sell", "Feed", "v1", "sell.feed"),
    "getInventoryTasks": ("sell", "Feed", "v1", "sell.feed"),
    "getResultFile": ("sell", "Feed", "v1", "sell.feed"),
    "getRateLimits": ("developer", "Analytics", "v1_beta", "developer.analytics"),
    # after-sale (docs/ebay-api.md "Post-Order API and shipping fulfillments"); how eBay reports the
    # Post-Order quota in getRateLimits is unverified: the simulator counts it as its own API
    "getShippingFulfillments": ("sell", "Fulfillment", "v1", "sell.fulfillment"),
    "getShippingFulfillment": ("sell", "Fulfillment", "v1", "sell.fulfillment"),
    **{op: ("post-order", "PostOrder", "v2", "post-order") for op in (
        "searchReturns", "getReturn", "searchInquiries", "getInquiry", "searchCases", "getCase",
        "searchCancellations", "getCancellation")},
    "getUserRateLimits": ("developer", "Analytics", "v1_beta", "developer.analytics"),
}

DEFAULT_DAILY_LIMITS = {
    "sell.fulfillment": 100_000,
    "sell.payment.dispute": 250_000,
    "sell.finances": 50_000,
    "commerce.message": 50_000,
    "sell.inventory": 2_000_000,
    "sell.feed": 100_000,
    "developer.analytics": 10_000,
    "post-order": 100_000,  # unverified
}

KIND_ALIASES = {
    "order": "orders", "transaction": "transactions", "payout": "payouts", "dispute": "disputes",
    "payment_dispute": "disputes", "conversation": "conversations", "message": "conversations",
    "messages": "conversations", "inventory_item": "inventory_items", "offer": "offers",
}


class Stats:
    """Call counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_seller: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            self.by_endpoint: dict[str, int] = defaultdict(int)
            self.by_status: dict[str, int] = defaultdict(int)
            self.faults: dict[str, int] = defaultdict(int)
            self.tokens: dict[str, int] = defaultdict(int)
            self.marketplaces: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def call(self, seller: str | None, op: str, marketplace: str | None = None) -> None:
        with self._lock:
            self.requests += 1
            self.by_seller[seller or "-"][op] += 1
            self.by_endpoint[op] += 1
            self.marketplaces[seller or "-"][marketplace or "-"] += 1

    def status(self, code: int) -> None:
        with self._lock:
            self.by_status[str(code)] += 1

    def fault(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.faults[kind] += n

    def token(self, kind: str) -> None:
        with self._lock:
            self.tokens[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_seller": {s: dict(v) for s, v in self.by_seller.items()},
                "by_endpoint": dict(self.by_endpoint),
                "by_status": dict(self.by_status),
                "faults": dict(self.faults),
                "tokens": dict(self.tokens),
                "marketplaces": {s: dict(v) for s, v in self.marketplaces.items()},
            }


class RateCounter:
    """Per-day call counts per (seller, resource), for getRateLimits / getUserRateLimits and quotas."""

    def __init__(self, limits: dict[str, int]):
        self._lock = threading.Lock()
        self.limits = {**DEFAULT_DAILY_LIMITS, **limits}
        self.counts: dict[tuple[int, str, str], int] = defaultdict(int)

    def count(self, now: int, seller: str, resource: str) -> None:
        with self._lock:
            self.counts[(now // MS_DAY, seller, resource)] += 1

    def used(self, now: int, resource: str, seller: str | None = None) -> int:
        day = now // MS_DAY
        with self._lock:
            return sum(n for (d, s, r), n in self.counts.items()
                       if d == day and r == resource and (seller is None or s == seller))

    def exhausted(self, now: int, resource: str) -> bool:
        return self.used(now, resource) >= self.limits.get(resource, 10**12)

    def report(self, now: int, seller: str | None, api_context: str | None, api_name: str | None) -> list[dict]:
        reset = fmt_ms((now // MS_DAY + 1) * MS_DAY)
        apis: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for ctx, name, ver, res in API_OF_OP.values():
            apis[(ctx, name, ver)].add(res)
        out = []
        for (ctx, name, ver), resources in sorted(apis.items()):
            if api_context and ctx.lower() != api_context.lower():
                continue
            if api_name and name.lower() != api_name.lower():
                continue
            res_list = []
            for r in sorted(resources):
                used = self.used(now, r, seller)
                limit = self.limits.get(r, 0)
                res_list.append({"name": r, "rates": [{"count": used, "limit": limit,
                                                       "remaining": max(0, limit - used),
                                                       "reset": reset, "timeWindow": 86400}]})
            out.append({"apiContext": ctx, "apiName": name, "apiVersion": ver, "resources": res_list})
        return out


class Simulator:
    """An eBay sandbox look-alike for one or more sellers.  See docs/simulator.md."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config = config or SimConfig()
        names = [s.name for s in config.sellers]
        if not names:
            raise ValueError("SimConfig.sellers is empty")
        if len(set(names)) != len(names):
            raise ValueError("seller names must be unique")
        self.clock = SimClock(config.now)
        if config.now is not None:
            self.anchor_ms = self.clock.now_ms()
        else:
            self.anchor_ms = self.clock.now_ms() // MS_DAY * MS_DAY
        # accelerated arrivals: the data's future after this instant comes `speed` times sooner (real clock kept)
        self.arrivals = Arrivals(self.clock.now_ms(), config.speed) if config.speed != 1 else None
        self._specs = {s.name: s for s in config.sellers}
        self._numbers = {s.name: i + 1 for i, s in enumerate(config.sellers)}
        self._data: dict[str, SellerData] = {}
        self._data_lock = threading.Lock()
        self.faults = FaultEngine(copy.deepcopy(config.faults), config.seed)
        self.orders_touched_while_paging: list[str] = []  # ids modified by the touch_orders_* knobs
        self.auth = AuthStore()
        self.feed = FeedStore(self._numbers)
        self._stats = Stats()
        self.rates = RateCounter(config.daily_limits)
        self._touch_rng = {n: random.Random(f"{config.seed}:touch:{n}") for n in names}
        self._qcache: dict[tuple, Any] = {}
        self._after_sale: dict[str, AfterSaleData] = {}
        self.signing_keys: dict[str, Any] = {}  # JWE -> public key, issued by createSigningKey
        self.base_url: str | None = None  # set by server.start_background
        from .app import build_app

        self.app = build_app(self)

    # ------------------------------------------------------------------ sellers / data
    @property
    def sellers(self) -> list[str]:
        return list(self._specs)

    def has_seller(self, seller: str) -> bool:
        return seller in self._specs

    def data(self, seller: str) -> SellerData:
        """The seller's data (built on first use; ~2 s for 100k orders + 300k transactions)."""
        d = self._data.get(seller)
        if d is not None:
            return d
        if seller not in self._specs:
            raise KeyError(f"unknown seller {seller!r}")
        with self._data_lock:
            d = self._data.get(seller)
            if d is None:
                d = SellerData(self._specs[seller], self.config.seed, self._numbers[seller], self.anchor_ms,
                               arrivals=self.arrivals)
                self._data[seller] = d
        return d

    def after_sale(self, seller: str) -> AfterSaleData:
        """The seller's after-sale records (returns, inquiries, cases, cancellations, shipping
        fulfillments), derived from its orders on first use (sim/after_sale.py)."""
        a = self._after_sale.get(seller)
        if a is None:
            d = self.data(seller)
            with self._data_lock:
                a = self._after_sale.get(seller)
                if a is None:
                    a = self._after_sale[seller] = AfterSaleData(d)
        return a

    def prepare(self) -> None:
        """Build every seller's data now (otherwise it happens on first use)."""
        for s in self._specs:
            self.data(s)

    def signing_required(self, seller: str | None) -> bool:
        spec = self._specs.get(seller or "")
        return bool(spec and spec.signing_required)

    def create_signing_key(self, cipher: str = "ED25519") -> dict[str, Any]:
        """Key Management ``createSigningKey`` (docs/ebay-api.md "Digital Signatures"): a new key pair; the private key is returned
        here only.  The "JWE" is an opaque five-part token the simulator maps to the public key (eBay's is
        an encrypted JWT holding it; the client treats it as opaque either way)."""
        import base64
        import secrets

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        key = ed25519.Ed25519PrivateKey.generate() if cipher == "ED25519" else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwe = ".".join(secrets.token_urlsafe(n) for n in (24, 32, 12, 48, 16))
        self.signing_keys[jwe] = key.public_key()
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        now_s = self.now_ms() // 1000
        return {"signingKeyId": secrets.token_hex(16), "signingKeyCipher": cipher,
                "privateKey": b64(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())),
                "publicKey": b64(key.public_key().public_bytes(serialization.Encoding.DER,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo)),
                "jwe": jwe, "creationTime": now_s, "expirationTime": now_s + 3 * 365 * 86400}

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def now(self) -> datetime:
        return self.clock.now()

    def set_now(self, dt: datetime | None) -> None:
        """Freeze the clock at ``dt`` (timezone-aware); None = back to real UTC time."""
        self.clock.set(dt)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ python API
    def mint_refresh_token(self, seller: str, scopes: list[str] | None = None) -> str:
        """A refresh token for ``seller`` without the consent dance (all scopes unless given)."""
        if seller not in self._specs:
            raise KeyError(f"unknown seller {seller!r}")
        sc = frozenset(scopes) if scopes else frozenset(ALL_SCOPES)
        return self.auth.new_refresh(seller, sc, self.now_ms())

    def mint_access_token(self, seller: str, scopes: list[str] | None = None) -> str:
        """An access token for ``seller`` (TTL from the faults knob, default 7200 s)."""
        if seller not in self._specs:
            raise KeyError(f"unknown seller {seller!r}")
        sc = frozenset(scopes) if scopes else frozenset(ALL_SCOPES)
        return self.auth.new_access(seller, sc, self.access_ttl_s(), self.now_ms())

    def access_ttl_s(self) -> float:
        t = self.faults.faults.access_token_ttl_s
        return float(t) if t is not None else float(ACCESS_TTL_S)

    def revoke(self, seller: str) -> int:
        """Revoke all refresh tokens (and drop the access tokens) of ``seller``; returns how many."""
        if seller not in self._specs:
            raise KeyError(f"unknown seller {seller!r}")
        return self.auth.revoke_seller(seller)

    def refresh_revoked_by_knob(self, seller: str) -> bool:
        k = self.faults.faults.revoke_refresh_tokens
        return k is True or (isinstance(k, list) and seller in k)

    def truth(self, seller: str, stream: str, **kw: Any) -> list[dict[str, Any]]:
        """Records of ``stream`` as currently visible, rendered exactly as the API serves them (without
        malformed-record faults), in the API's default order.  ``messages`` accepts ``conversation_id=``;
        ``active_inventory`` accepts ``listing_format=``; ``disputes`` accepts ``detail=True``."""
        if stream in AFTER_SALE_STREAMS:  # ``detail=True`` (Post-Order) / ``order_id=`` (shipping_fulfillments)
            return self.after_sale(seller).truth(stream, self.now_ms(), **kw)
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS + AFTER_SALE_STREAMS)}")
        return self.data(seller).truth(stream, self.now_ms(), **kw)

    def touch(self, seller: str, kind: str, n: int = 1) -> list[str]:
        """Modify ``n`` visible records now (orders: lastModifiedDate bumped, unshipped ones ship, a note
        changes; transactions: funds become available / memo changes; payouts: succeed; disputes:
        revision+1; conversations: a new unread message; inventory_items/offers: quantity changes).
        Returns the ids (orderId, transactionId, payoutId, paymentDisputeId, conversationId, sku, offerId)."""
        kind = KIND_ALIASES.get(kind, AFTER_SALE_KIND_ALIASES.get(kind, kind))
        if kind in AFTER_SALE_STREAMS:  # a return approved, an inquiry closed, a case escalated, a
            # cancellation approved, a tracking number appearing (AfterSaleData.touch)
            ids = self.after_sale(seller).touch(kind, int(n), self.now_ms(), self._touch_rng[seller])
            self._qcache.clear()
            return ids
        if kind not in TOUCHABLE:
            raise ValueError(f"cannot touch {kind!r}; touchable: {', '.join(TOUCHABLE + AFTER_SALE_STREAMS)}")
        d = self.data(seller)
        ids = d.touch(kind, int(n), self.now_ms(), self._touch_rng[seller])
        self._qcache.clear()
        return ids

    def remove_inventory_item(self, seller: str, sku: str, removed: bool = True) -> None:
        """deleteInventoryItem: the SKU leaves getInventoryItems, its offers leave getOffers and its
        listings leave the active-inventory report; ``removed=False`` brings all of it back."""
        self.data(seller).set_removed(sku, removed)
        self._qcache.clear()

    @property
    def stats(self) -> dict[str, Any]:
        """Snapshot: ``requests``, ``by_seller`` {seller: {operationId: n}}, ``by_endpoint``,
        ``by_status``, ``faults`` {latency/reset/429/5xx/malformed/401/quota_429: n}, ``tokens``."""
        return self._stats.snapshot()

    @property
    def counters(self) -> Stats:
        return self._stats

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (``faults=``) or change some knobs; fault RNG streams are re-seeded when
        replaced or when ``seed`` changes."""
        if faults is not None:
            self.faults.replace(copy.deepcopy(faults))
        if changes:
            return self.faults.update(changes)
        return copy.deepcopy(self.faults.faults)

    # ------------------------------------------------------------------ query cache
    def cached(self, key: tuple, fn):
        """Memoise an expensive query result for the current (seller data version, sim instant).

        With a frozen clock the key is the exact instant; with the real clock it is the current second."""
        now = self.now_ms()
        bucket = now if self.clock.frozen else now // 1000
        full = key + (bucket,)
        hit = self._qcache.get(full)
        if hit is not None:
            return hit
        val = fn(now)
        if len(self._qcache) > 64:
            self._qcache.clear()
        self._qcache[full] = val
        return val
