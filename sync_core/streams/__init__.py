"""The stream registry: each module declares one stream (tables, key, mapper, how it reads).
Adding a stream = one module here (listed below) + one migration."""

from .base import Stream, metadata

from . import orders, transactions, payouts, disputes, messages, inventory_items, offers, active_inventory  # noqa: E402
from . import after_sale_tables  # noqa: E402,F401  (tables of the after-sale streams, issue 11; streams to come)

STREAMS: dict[str, Stream] = {m.STREAM.name: m.STREAM for m in (
    orders, transactions, payouts, disputes, messages, inventory_items, offers, active_inventory)}

__all__ = ["STREAMS", "Stream", "metadata"]
