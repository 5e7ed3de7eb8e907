"""Configuration dataclasses of the eBay simulator: :class:`SimConfig`, :class:`SellerSpec`, :class:`Faults`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

ALL_5XX = (500, 502, 503, 504)
REPORT_OUTCOMES = ("COMPLETED", "COMPLETED_WITH_ERROR", "FAILED", "NO_FILE", "ACK_FAILURE", "EMPTY")


@dataclass
class SellerSpec:
    """One simulated seller account.

    The volume knobs count records *visible at the data anchor* (``SimConfig.now``, or the start of the
    current UTC day when ``now`` is None) spread over the last ``days`` days.  In addition,
    ``future_days`` worth of records at the same rate are generated after the anchor: they become visible
    as the simulator clock advances.  ``inventory_items`` SKUs are managed through the Inventory API; the
    seller also has ``legacy_skus`` SKUs listed outside it (they show up in orders and in the active
    inventory report, but not in getInventoryItems/getOffers); ``None`` means ``max(3, inventory_items // 4)``.
    ``signing_required``: an EU/UK-domiciled seller -- its Finances calls need eBay's digital signature
    (docs/ebay-api.md "Digital Signatures"), made with a key the simulator issued (``createSigningKey``).
    """

    name: str
    orders: int = 200
    transactions: int = 400
    payouts: int = 20
    disputes: int = 5
    conversations: int = 20
    inventory_items: int = 50
    days: int = 730
    future_days: int = 14
    legacy_skus: int | None = None
    currency: str = "USD"
    marketplace_id: str = "EBAY_US"
    signing_required: bool = False


@dataclass
class Faults:
    """Fault-injection knobs.  All random decisions come from dedicated ``random.Random`` streams seeded
    from ``seed`` (default: ``SimConfig.seed``), one stream per fault kind, so a run with the same
    config and the same request sequence injects the same faults.

    * ``latency_ms`` + uniform(0, ``latency_jitter_ms``) delay before every API response.
    * ``rate_429``: probability of HTTP 429 (eBay error 2001) with ``Retry-After: retry_after_s``; with
      ``retry_after_s=None`` the 429 carries no Retry-After (eBay documents neither sending it nor not:
      docs/ebay-api.md "Errors, retries and 429", unverified), so clients meet both.
    * ``rate_5xx``: probability of a 5xx (status drawn from ``codes_5xx``; error 2003 envelope).
    * ``rate_reset``: probability the connection is aborted without a complete response
      (the client sees ``httpx.RemoteProtocolError``, a ``TransportError``).
    * ``access_token_ttl_s``: server-side lifetime of new access tokens (the token response still says
      ``expires_in: 7200`` like eBay; a shorter TTL forces unexpected 401s).  None = 7200.
    * ``access_token_uses``: a new access token is accepted for this many API calls, then answered
      401 like an expired one.  The same fault as a short TTL (eBay's tokens expire by time, whenever a
      call happens to come), but it does not depend on how fast the client runs: a token is never
      rejected before its first use, so tests stay deterministic.  None = unlimited.
    * ``revoke_refresh_tokens``: True (all sellers) or a list of seller names whose refresh tokens are
      treated as revoked while the knob is set (refresh -> ``invalid_grant``).
    * ``malformed_rate``: fraction of served records that are corrupted (missing primary key, amount as a
      number, timestamp as an integer).  Which records is a deterministic function of (seed, stream,
      record id), so a bad record stays bad.  ``Simulator.truth`` always returns clean records.
    * ``report_delay_s``: sim-clock seconds a feed task needs to complete (QUEUED for the first 30%,
      then IN_PROCESS, then COMPLETED); minutes are realistic for eBay (docs/ebay-api.md "Sell Feed: inventory tasks": latency unverified).
    * ``report_outcome``: how feed tasks created while it is set end (Sell Feed spec, FeedStatusEnum and
      getResultFile 404s; docs/ebay-api.md "Sell Feed: inventory tasks"): ``COMPLETED`` (default), ``COMPLETED_WITH_ERROR``, ``FAILED`` (no
      result file), ``NO_FILE`` (COMPLETED but getResultFile answers 404 errorId 160014), ``ACK_FAILURE``
      (the report's ``Ack`` is ``Failure`` and it carries no SKUDetails), ``EMPTY`` (Ack Success, no listings).
    * ``report_variations``: the report also carries one multi-variation listing (item 190000000001 with
      three ``Variations/Variation`` rows), as eBay's ActiveInventoryReport XML reference documents.
    * ``token_faults``: also apply latency/reset/429/5xx to ``POST /identity/v1/oauth2/token``.
    * ``touch_orders_after_page``: orders that move while a client pages.  When getOrders serves page
      ``k`` (0-based, ``offset // limit``) of a ``lastmodifieddate`` query, the first ``touch_orders_n``
      orders of that page are modified at the sim's now (their lastModifiedDate becomes now, so they
      leave a window that ends earlier and every later offset shifts down by n -- the spec's filter
      selects by last-modified time; its sort order is not documented, the sim sorts by creationDate).
      Fires ``touch_orders_times`` times (counted since the knob was last set), then stops.  None = off.
    * ``only_paths``: when non-empty, latency/reset/429/5xx/malformed apply only to API paths starting
      with one of these prefixes.
    Faults never apply to ``/sim/*``.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after_s: int | None = 1
    rate_5xx: float = 0.0
    codes_5xx: tuple[int, ...] = ALL_5XX
    rate_reset: float = 0.0
    access_token_ttl_s: float | None = None
    access_token_uses: int | None = None
    revoke_refresh_tokens: bool | list[str] = False
    malformed_rate: float = 0.0
    report_delay_s: float = 2.0
    report_outcome: str = "COMPLETED"
    report_variations: bool = False
    token_faults: bool = False
    only_paths: tuple[str, ...] = ()
    touch_orders_after_page: int | None = None
    touch_orders_n: int = 1
    touch_orders_times: int = 1
    seed: int | None = None

    def updated(self, changes: dict[str, Any]) -> "Faults":
        """A copy with ``changes`` applied (unknown keys -> ValueError; values are type-checked loosely)."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ValueError(f"unknown fault knob(s): {', '.join(bad)}")
        clean: dict[str, Any] = {}
        for k, v in changes.items():
            if k in ("codes_5xx", "only_paths") and v is not None:
                v = tuple(v)
                if k == "codes_5xx" and (not v or any(int(c) < 500 or int(c) > 599 for c in v)):
                    raise ValueError("codes_5xx must be a non-empty list of 5xx status codes")
            elif k in ("latency_ms", "latency_jitter_ms", "rate_429", "rate_5xx", "rate_reset",
                       "malformed_rate", "report_delay_s"):
                v = float(v)
                if v < 0 or (k.startswith("rate_") or k == "malformed_rate") and v > 1:
                    raise ValueError(f"{k} out of range: {v}")
            elif k == "retry_after_s" and v is not None:
                v = int(v)
            elif k in ("touch_orders_after_page", "touch_orders_n", "touch_orders_times") and v is not None:
                v = int(v)
                if v < (0 if k == "touch_orders_after_page" else 1):
                    raise ValueError(f"{k} out of range: {v}")
            elif k == "access_token_ttl_s" and v is not None:
                v = float(v)
            elif k == "access_token_uses" and v is not None:
                v = int(v)
                if v < 1:
                    raise ValueError(f"access_token_uses must be at least 1: {v}")
            elif k == "revoke_refresh_tokens" and not isinstance(v, bool):
                v = [str(s) for s in v]
            elif k in ("token_faults", "report_variations"):
                v = bool(v)
            elif k == "report_outcome":
                v = str(v).upper()
                if v not in REPORT_OUTCOMES:
                    raise ValueError(f"report_outcome must be one of {', '.join(REPORT_OUTCOMES)}: {v}")
            clean[k] = v
        return replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["codes_5xx"] = list(self.codes_5xx)
        out["only_paths"] = list(self.only_paths)
        return out


@dataclass
class SimConfig:
    """Everything a :class:`~sync_core.sim.Simulator` needs.

    ``now``: fixed simulator time (timezone-aware datetime; the clock then stays put until
    ``set_now``/``advance``) and the data anchor.  None = real UTC time, anchor = start of today (UTC).
    ``accept_url``: where ``/oauth2/authorize`` redirects (eBay's "auth accepted URL" of the RuName).
    ``ru_name``: if set, ``redirect_uri`` must equal it at authorize and token exchange.
    ``daily_limits``: per-resource daily call quota reported by getRateLimits and enforced (429) when hit.
    ``feed_conflict``: creating an inventory task while an identical one is still queued/in process -> 409
    errorId 160024 (spec createInventoryTask 409).  ``feed_max_in_flight``: 160024 also once this many of the
    seller's tasks are queued/in process.  ``feed_hourly_tasks`` / ``feed_daily_tasks``: tasks a seller may
    create per rolling sim-clock hour / day, then 409 errorId 160025 (spec: "in the period (hourly or
    daily)").  eBay does not publish these numbers: the defaults are UNVERIFIED guesses (docs/ebay-api.md).
    ``speed``: accelerated arrivals (``baysync demo --speed``): what the seeded data would do after the
    simulator's start happens ``speed`` times sooner, on the real clock (:class:`~sync_core.sim.clock.Arrivals`;
    docs/simulator.md "Accelerated arrivals").  1 = the seeded rate.
    """

    seed: int = 1
    sellers: list[SellerSpec] = field(default_factory=lambda: [SellerSpec("alice")])
    faults: Faults = field(default_factory=Faults)
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"
    now: datetime | None = None
    accept_url: str = "http://127.0.0.1/accept"
    ru_name: str | None = None
    daily_limits: dict[str, int] = field(default_factory=dict)
    feed_conflict: bool = True
    feed_max_in_flight: int = 3
    feed_hourly_tasks: int = 20
    feed_daily_tasks: int = 100
    speed: float = 1.0
