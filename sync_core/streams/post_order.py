"""What the four Post-Order streams (returns, inquiries, cases, cancellations) share: creation-date
windows of at most 90 days, at most 18 months back (the PO Search pages), paged to the end; then the
detail of every item stored as still open and created before the current windows is re-read by id
(like payment disputes), so an item is updated, and marked closed, as it changes; a missing scope fails
the stream (the runner's error line names the declared scope; the other streams go on). docs/ebay-api.md "Post-Order API and
shipping fulfillments" for every eBay fact used."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, AsyncGenerator, Callable

import sqlalchemy as sa

from .. import stored
from .base import Stream, StreamPage

MAX_WINDOW = timedelta(days=90)  # PO Search pages: `_from` without `_to` "goes forward 90 days"
MAX_HISTORY_DAYS = 540  # PO Search pages: `_from` "cannot be set to more than 18 months in the past"
MAX_PAGE_SIZE = 200  # unverified: no Post-Order page states a maximum (the simulator refuses > 200)
SCOPES = ("sell.fulfillment.readonly",)  # unverified: no Post-Order page names one (the orders stream's)
REFETCH_CHUNK = 50


def windowed(name: str) -> Callable[..., AsyncGenerator[Any, None]]:
    def fetch_window(client: Any, window: Any, resume_url: str | None, limit: int) -> AsyncGenerator[Any, None]:
        return client.search_post_order(name, window.start, window.end, limit, resume_url=resume_url)
    return fetch_window


def refetch_open(table: sa.Table, id_col: str, state_col: str, closed: tuple[str, ...], *,
                 fieldgroups: str | None = None, unwrap: str | None = None) -> Callable[[Any], AsyncGenerator[StreamPage, None]]:
    """After the windows: re-read by id every item stored with ``state_col`` not in ``closed`` and created
    before the plan's start (those after it were just searched), ``REFETCH_CHUNK`` per page. ``unwrap``:
    the detail's container holding the record (a return read with SUMMARY: ``summary``; a cancellation:
    ``cancelDetail``). STOP is honoured between calls: what was read is stored, the run ends cancelled and
    the next run re-reads the items still open."""
    async def refetch(ctx: Any) -> AsyncGenerator[StreamPage, None]:
        from ..ebay.errors import EbayRequestError

        name = ctx.stream.name
        ids = await ctx.read(stored.open_ids, table=table.name, id_col=id_col, state_col=state_col,
                             closed=list(closed), since=ctx.plan_start)
        for start in range(0, len(ids), REFETCH_CHUNK):
            records = []
            for rid in ids[start:start + REFETCH_CHUNK]:
                if ctx.stop_requested:
                    break
                try:
                    body = await ctx.client.get_post_order(name, rid, fieldgroups)
                except EbayRequestError as e:
                    if e.status != 404:
                        raise
                    # eBay no longer serves it: keep the stored row, say so, go on (asked again next run)
                    ctx.event("skip", f"{name} {rid}: eBay answers 404 ({e.message}); kept as stored", "warning")
                    continue
                records.append(body.get(unwrap, body) if unwrap and isinstance(body, dict) else body)
            yield StreamPage(records, None)  # the runner stops after writing it if a STOP came
            if ctx.stop_requested:
                return
    return refetch


def declare(name: str, table: sa.Table, id_col: str, mapper: Callable[[dict[str, Any]], dict[str, Any]],
            refetch: Callable[[Any], AsyncGenerator[StreamPage, None]]) -> Stream:
    return Stream(name=name, table=table, key=("account_id", id_col), map=mapper, scopes=SCOPES,
                  max_page_size=MAX_PAGE_SIZE, mode="windowed", fetch_window=windowed(name),
                  max_window=MAX_WINDOW, max_history_days=MAX_HISTORY_DAYS, refetch=refetch)
