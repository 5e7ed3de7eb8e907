"""Orders (Fulfillment getOrders by lastmodifieddate) and their line items."""

from contextlib import aclosing
from datetime import timedelta

import sqlalchemy as sa

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
        })
    return rows


# A window holding more orders than this is read in time slices of about this many (each paged in seconds).
# getOrders pages by offset over a live result set: a modified order leaves a window whose end is past, and
# the window is re-read from offset 0 (:func:`~sync_core.ebay.paging.reread_on_drift`). A seller with
# 10k+ orders a day (390,000 in a 30-day window: 1,950 pages, minutes) has orders modified all the time, so
# such a window was re-read until it failed; a slice of 10,000 orders (50 pages) rarely moves while read,
# and when it does, only that slice is read again.
SLICE_ORDERS = 10_000
MIN_SLICE = timedelta(minutes=1)  # never narrower (more orders modified in one minute: read as it is)


def fetch(client, window, resume_url, limit):
    """getOrders over one lastmodifieddate window, re-read from offset 0 when orders move while it is paged,
    and read in time slices of about SLICE_ORDERS orders when it holds more (its first page's ``total``
    says so; that page is not used: the slices are read from their own first pages).

    An order modified during paging leaves the window (its lastModifiedDate is now later than the window's
    end), the orders after it move up one offset and one of them would be skipped (see
    :func:`~sync_core.ebay.paging.reread_on_drift`; docs/ebay-api.md "Orders paging"). A slice's last page
    points at the next slice's first page, so a checkpoint inside a window resumes in its slice and goes on
    with the rest of the window; only the window's last slice ends it. Slices share their boundary instant
    (the filter is inclusive), as windows do: an order modified exactly then is read twice (upserted once)."""
    from collections import deque
    from dataclasses import replace
    from math import ceil

    from ..ebay.paging import (MAX_WINDOW_REREADS, format_ts, parse_range_filter, query_int,  # importing a stream
                               reread_on_drift)  # loads no client

    async def pages():
        todo: deque = deque()
        url = resume_url
        rng = parse_range_filter(url, "lastmodifieddate") if url else None
        if rng is None:
            todo.append((window.start, window.end))
        else:  # resumed inside a slice: that slice, then the rest of the window
            todo.append(rng)
            if format_ts(rng[1]) < format_ts(window.end):
                todo.append((rng[1], window.end))
        while todo:
            start, end = todo.popleft()
            fresh = url is None or ((query_int(url, "offset") or 0) == 0 and "#" not in url)
            label = f"orders window {start.isoformat(timespec='seconds')}..{end.isoformat(timespec='seconds')}"

            def on_drift(reason, n, label=label):
                client.emit({"type": "window_reread", "op": "getOrders", "attempt": n,
                             "reason": f"{label} changed while paged ({reason}): "
                                       f"re-reading it from the first page (re-read {n}/{MAX_WINDOW_REREADS})"})

            def open_pages(u, start=start, end=end):
                return client.get_orders(start, end, limit, resume_url=u)

            async with aclosing(reread_on_drift(open_pages, url, "orderId", on_drift=on_drift)) as it:
                async for page in it:
                    if fresh and page.total is not None and page.total > SLICE_ORDERS and end - start >= 2 * MIN_SLICE:
                        k = min(ceil(page.total / SLICE_ORDERS), int((end - start) / MIN_SLICE))
                        step = (end - start) / k
                        todo.extendleft(reversed([(start + step * i, end if i == k - 1 else start + step * (i + 1))
                                                  for i in range(k)]))
                        client.emit({"type": "window_sliced", "op": "getOrders", "total": page.total, "slices": k,
                                     "reason": f"{label} holds {page.total} orders: "
                                               f"read in {k} time slices of about {SLICE_ORDERS}"})
                        break
                    fresh = False
                    if page.next_url is None and todo:  # this slice is done, the window is not
                        page = replace(page, next_url=client.orders_url(todo[0][0], todo[0][1], limit))
                    yield page
            url = None

    return pages()


STREAM = Stream(
    name="orders", table=table, key=("account_id", "order_id"), map=map_order,
    scopes=("sell.fulfillment.readonly",), max_page_size=200, mode="windowed", fetch_window=fetch,
    max_window=timedelta(days=30), max_history_days=730,
    children=(Child(line_items, "order_id", map_line_items),),
)
