"""Shipping fulfillments (Fulfillment getShippingFulfillments, one call per order): tracking number,
carrier, shipped date and line items of the orders that changed.

A stream of its own, driven by the orders stream's table rather than a child inside the orders stream: a
failure here (a missing scope, a slow call per order) never holds back orders, and it runs at its own
interval. Which orders: those stored with something shipped (orderFulfillmentStatus FULFILLED or
IN_PROGRESS) whose row changed since this stream's last run (``orders.synced_at``, which moves only when
the order's payload changed, e.g. when a tracking number is uploaded eBay moves its lastModifiedDate;
the previous run's mark is on the database's clock and before every write still in flight:
``stored.synced_mark``); all of them on a first, full or backfill run. The position is the last order done
((synced_at, order_id) order), so a stopped or crashed run resumes after it."""

from datetime import datetime
from typing import Any

from .. import stored
from .after_sale_tables import shipping_fulfillment_line_items as line_items
from .after_sale_tables import shipping_fulfillments as table
from .base import Child, Invalid, Stream, StreamPage, integer, text, ts

SCOPES = ("sell.fulfillment.readonly",)  # fulfillment spec, getShippingFulfillments security
CHUNK = 50  # orders per page written
INVALID_ORDER = 32100  # fulfillment spec getShippingFulfillments 400 "Invalid order ID": eBay no longer has it


def map_fulfillment(rec):
    return {
        "order_id": text(rec, "orderId", required=True),  # added by fetch (the order asked for)
        "fulfillment_id": text(rec, "fulfillmentId", required=True),
        "tracking_number": text(rec, "shipmentTrackingNumber"),
        "carrier": text(rec, "shippingCarrierCode"),
        "shipped_date": ts(rec, "shippedDate"),
    }


def map_line_items(rec, parent):
    items = rec.get("lineItems") or []
    if not isinstance(items, list):
        raise Invalid("lineItems should be a list")
    return [{"order_id": parent["order_id"], "fulfillment_id": parent["fulfillment_id"],
             "line_item_id": text(li, "lineItemId", required=True), "quantity": integer(li, "quantity"), "raw": li}
            for li in items]


async def fetch(ctx):
    from ..ebay.errors import EbayRequestError

    # bound first: an account without usable tokens fails this stream like the others, orders or not
    get_fulfillments = ctx.client.get_shipping_fulfillments
    claim = ctx.claim
    cp = claim.checkpoint or {}
    if cp.get("mark"):  # resume the same plan
        mark = datetime.fromisoformat(cp["mark"])
        since = datetime.fromisoformat(cp["since"]) if cp.get("since") else None
    else:
        mark = await ctx.read(stored.synced_mark)
        since = None
        if claim.cursor is not None and claim.kind != "full" and claim.backfill_since is None:
            since = claim.cursor  # the previous run's mark
    after = cp.get("after") if cp.get("mark") else None
    orders = await ctx.read(stored.shipped_orders_synced, since=since, after=after)
    ctx.event("plan", f"{len(orders)} order(s) changed" + (f" since {since.isoformat(timespec='seconds')}"
                                                           if since else "") + ": reading their shipping fulfillments",
              orders=len(orders))
    base = {"mark": mark.isoformat(), "since": since.isoformat() if since else None}
    total = len(orders)
    done = 0
    if not orders:
        yield StreamPage([], dict(base, after=None), cursor=mark, windows_done=1, windows_total=1, clear_backfill=True)
        return
    for start in range(0, total, CHUNK):
        records: list[Any] = []
        last = after
        for order_id, synced_at in orders[start:start + CHUNK]:
            if ctx.stop_requested:
                break
            try:
                got = await get_fulfillments(order_id)
            except EbayRequestError as e:
                if e.error_id != INVALID_ORDER:
                    raise
                ctx.event("skip", f"order {order_id}: eBay no longer knows it ({e.message}); skipped", "warning")
                got = []
            records.extend(dict(f, orderId=order_id) if isinstance(f, dict) else f for f in got)
            last = [synced_at.isoformat(), order_id]
            done += 1
        end = done == total
        yield StreamPage(records, dict(base, after=last), cursor=mark if end else None,
                         windows_done=1 if end else 0, windows_total=1, clear_backfill=end)
        if ctx.stop_requested:
            return


STREAM = Stream(
    name="shipping_fulfillments", table=table, key=("account_id", "order_id", "fulfillment_id"),
    map=map_fulfillment, scopes=SCOPES, max_page_size=0, mode="custom", fetch=fetch,
    children=(Child(line_items, "fulfillment_id", map_line_items),), raw_exclude=("orderId",),
)
