"""The stream registry: each module declares one stream (tables, key, mapper, how it reads).
Adding a stream = one module here (listed below) + one migration."""

from .base import Stream, metadata

from . import orders, transactions, payouts, disputes, messages, inventory_items, offers, active_inventory  # noqa: E402
from . import returns, inquiries, cases, cancellations, shipping_fulfillments  # noqa: E402  (after-sale, issue 11)

STREAMS: dict[str, Stream] = {m.STREAM.name: m.STREAM for m in (
    orders, transactions, payouts, disputes, messages, inventory_items, offers, active_inventory,
    returns, inquiries, cases, cancellations, shipping_fulfillments)}

__all__ = ["STREAMS", "Stream", "metadata"]
