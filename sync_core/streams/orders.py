"""Orders (Fulfillment getOrders by lastmodifieddate) and their line items."""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .base import TS, Child, Invalid, Stream, common_columns, integer, metadata, money, text, ts

table = sa.Table(
    "orders", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("creation_date", TS),
    sa.Column("last_modified_date", TS, nullable=False),
    sa.Column("fulfillment_status", sa.Text),
    sa.Column("payment_status", sa.Text),
    sa.Column("buyer", sa.Text),
    sa.Column("total_value", sa.Numeric),
    sa.Column("total_currency", sa.Text),
    *common_columns(),
    sa.Index("ix_orders_modified", "account_id", "last_modified_date"),
    sa.Index("ix_orders_buyer", "account_id", "buyer"),
)

line_items = sa.Table(
    "order_line_items", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("line_item_id", sa.Text, primary_key=True),
    sa.Column("sku", sa.Text),
    sa.Column("listing_id", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("quantity", sa.Integer),
    sa.Column("total_value", sa.Numeric),
    sa.Column("total_currency", sa.Text),
    sa.Column("raw", JSONB, nullable=False),
    sa.Index("ix_order_line_items_sku", "account_id", "sku"),
)


def map_order(rec):
    total, cur = money(rec, "pricingSummary.total")
    return {
        "order_id": text(rec, "orderId", required=True),
        "creation_date": ts(rec, "creationDate"),
        "last_modified_date": ts(rec, "lastModifiedDate", required=True),
        "fulfillment_status": text(rec, "orderFulfillmentStatus"),
        "payment_status": text(rec, "orderPaymentStatus"),
        "buyer": text(rec, "buyer.username"),
        "total_value": total,
        "total_currency": cur,
    }


def map_line_items(rec, parent):
    items = rec.get("lineItems") or []
    if not isinstance(items, list):
        raise Invalid("lineItems should be a list")
    rows = []
    for li in items:
        value, cur = money(li, "total")
        rows.append({
            "order_id": parent["order_id"],
            "line_item_id": text(li, "lineItemId", required=True),
            "sku": text(li, "sku"),
            "listing_id": text(li, "legacyItemId"),
            "title": text(li, "title"),
            "quantity": integer(li, "quantity"),
            "total_value": value,
            "total_currency": cur,
            "raw": li,
        })
    return rows


def fetch(client, window, resume_url, limit):
    """getOrders over one lastmodifieddate window, re-read from offset 0 when orders move while it is paged.

    An order modified during paging leaves the window (its lastModifiedDate is now later than the window's
    end), the orders after it move up one offset and one of them would be skipped (see
    :func:`~sync_core.ebay.paging.reread_on_drift`; docs/ebay-api.md "Orders paging")."""
    from ..ebay.paging import MAX_WINDOW_REREADS, reread_on_drift  # here: importing a stream loads no client

    def on_drift(reason, n):
        client.emit({"type": "window_reread", "op": "getOrders", "attempt": n,
                     "reason": f"orders window {window.start.isoformat(timespec='seconds')}.."
                               f"{window.end.isoformat(timespec='seconds')} changed while paged ({reason}): "
                               f"re-reading it from the first page (re-read {n}/{MAX_WINDOW_REREADS})"})

    return reread_on_drift(lambda url: client.get_orders(window.start, window.end, limit, resume_url=url),
                           resume_url, "orderId", on_drift=on_drift)


STREAM = Stream(
    name="orders", table=table, key=("account_id", "order_id"), map=map_order,
    scopes=("sell.fulfillment.readonly",), max_page_size=200, mode="windowed", fetch_window=fetch,
    max_window=timedelta(days=30), max_history_days=730,
    children=(Child(line_items, "order_id", map_line_items),),
)
