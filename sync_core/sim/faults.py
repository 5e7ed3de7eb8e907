"""Seeded, reproducible fault injection."""

from __future__ import annotations

import copy
import random
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from .config import Faults
from .util import h32, unit


class SimConnectionReset(httpx.RemoteProtocolError):
    """Raised inside the ASGI app to abort a request without a complete response.

    In-process (``httpx.ASGITransport``) the client receives this exception, which is an
    ``httpx.RemoteProtocolError`` (a ``TransportError``), just as for a real dropped connection.  Under
    uvicorn the response headers have been sent, so the server closes the socket mid-response and the
    client sees ``httpx.RemoteProtocolError`` from the network stack.
    """


@dataclass
class Decision:
    latency_s: float = 0.0
    action: str | None = None  # None | "reset" | "429" | "5xx"
    status: int = 200


# per stream: (primary key, path to an Amount object or None, a timestamp field or None, an int field or None)
MALFORM_SHAPES: dict[str, tuple[str, tuple[str, ...] | None, str | None, tuple[str, ...] | None]] = {
    "orders": ("orderId", ("pricingSummary", "total"), "creationDate", None),
    "transactions": ("transactionId", ("amount",), "transactionDate", None),
    "payouts": ("payoutId", ("amount",), "payoutDate", ("transactionCount",)),
    "disputes": ("paymentDisputeId", ("amount",), "openDate", None),
    "conversations": ("conversationId", None, "createdDate", ("unreadCount",)),
    "messages": ("messageId", None, "createdDate", None),
    "inventory_items": ("sku", None, None, ("availability", "shipToLocationAvailability", "quantity")),
    "offers": ("offerId", None, None, ("availableQuantity",)),
    # after-sale (sim/after_sale.py); Post-Order dates are {"value": ...} objects: a number there is malformed too
    "returns": ("returnId", ("sellerTotalRefund", "estimatedRefundAmount"), None, None),
    "inquiries": ("inquiryId", ("claimAmount",), "creationDate", None),
    "cases": ("caseId", ("claimAmount",), "creationDate", None),
    "cancellations": ("cancelId", ("requestRefundAmount",), "cancelRequestDate", None),
    "shipping_fulfillments": ("fulfillmentId", None, "shippedDate", None),
}


class FaultEngine:
    STREAMS = ("latency", "reset", "429", "5xx")

    def __init__(self, faults: Faults, default_seed: int):
        self._lock = threading.Lock()
        self._default_seed = default_seed
        self.faults = faults
        self._reseed()
        self.orders_touched_times = 0

    @property
    def seed(self) -> int:
        return self.faults.seed if self.faults.seed is not None else self._default_seed

    def _reseed(self) -> None:
        s = self.seed
        self.rng = {k: random.Random(f"{s}:fault:{k}") for k in self.STREAMS}

    def update(self, changes: dict[str, Any], reseed: bool = False) -> Faults:
        with self._lock:
            self.faults = self.faults.updated(changes)
            if any(k.startswith("touch_orders_") for k in changes):
                self.orders_touched_times = 0
            if reseed or "seed" in changes:
                self._reseed()
            return copy.deepcopy(self.faults)

    def replace(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._reseed()
            self.orders_touched_times = 0

    def take_orders_touch(self, page_index: int) -> int:
        """How many orders to modify now that page ``page_index`` of a lastmodifieddate query is served
        (the ``touch_orders_*`` knobs); 0 = none."""
        f = self.faults
        with self._lock:
            if f.touch_orders_after_page != page_index or self.orders_touched_times >= f.touch_orders_times:
                return 0
            self.orders_touched_times += 1
            return f.touch_orders_n

    def applies(self, path: str) -> bool:
        only = self.faults.only_paths
        return not only or any(path.startswith(p) for p in only)

    def decide(self, path: str) -> Decision:
        """One decision per request; every stream advances by a fixed number of draws per request."""
        f = self.faults
        with self._lock:
            lat_u = self.rng["latency"].random()
            reset_u = self.rng["reset"].random()
            r429_u = self.rng["429"].random()
            r5_u, r5_code_u = self.rng["5xx"].random(), self.rng["5xx"].random()
        d = Decision()
        if not self.applies(path):
            return d
        ms = f.latency_ms + f.latency_jitter_ms * lat_u
        d.latency_s = ms / 1000.0 if ms > 0 else 0.0
        if reset_u < f.rate_reset:
            d.action = "reset"
        elif r429_u < f.rate_429:
            d.action, d.status = "429", 429
        elif r5_u < f.rate_5xx:
            codes = f.codes_5xx or (500,)
            d.action, d.status = "5xx", int(codes[int(r5_code_u * len(codes))])
        return d

    def is_malformed(self, stream: str, record_id: Any, path: str) -> bool:
        rate = self.faults.malformed_rate
        if rate <= 0 or not self.applies(path):
            return False
        return unit(self.seed, "malformed", stream, record_id) < rate

    def malform(self, stream: str, record: dict[str, Any]) -> dict[str, Any]:
        """A corrupted deep copy of ``record``: primary key missing, an amount/int with the wrong type, or a
        timestamp as epoch seconds (which corruption is a deterministic function of the record)."""
        pk, amount_path, ts_field, int_path = MALFORM_SHAPES.get(stream, (None, None, None, None))
        rec = copy.deepcopy(record)
        kinds = ["pk"] if pk else []
        if amount_path and _get(rec, amount_path) is not None:
            kinds.append("amount")
        if ts_field and ts_field in rec:
            kinds.append("ts")
        if int_path and _get(rec, int_path) is not None:
            kinds.append("int")
        if not kinds:
            return rec
        kind = kinds[h32(self.seed, "malform-kind", stream, record.get(pk) if pk else "") % len(kinds)]
        if kind == "pk" and pk:
            rec.pop(pk, None)
        elif kind == "amount" and amount_path:
            parent = _get(rec, amount_path[:-1]) if len(amount_path) > 1 else rec
            amt = parent[amount_path[-1]]
            try:
                parent[amount_path[-1]] = float(amt.get("value", "0"))
            except (TypeError, ValueError, AttributeError):
                parent[amount_path[-1]] = 0.0
        elif kind == "ts" and ts_field:
            rec[ts_field] = 1700000000
        elif kind == "int" and int_path:
            parent = _get(rec, int_path[:-1]) if len(int_path) > 1 else rec
            parent[int_path[-1]] = str(parent[int_path[-1]])
        return rec


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d
