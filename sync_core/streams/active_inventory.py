"""Active-inventory report (Sell Feed LMS_ACTIVE_INVENTORY_REPORT): create a task, wait for it,
download the result file, then upsert the whole snapshot in ONE transaction; listings absent from the
newer snapshot are marked inactive."""

import asyncio

import sqlalchemy as sa

from .base import TS, Invalid, Stream, common_columns, metadata, text

table = sa.Table(
    "active_inventory", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("listing_key", sa.Text, primary_key=True),  # ItemID/SKU
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("sku", sa.Text),
    sa.Column("price_value", sa.Numeric),
    sa.Column("price_currency", sa.Text),
    sa.Column("quantity", sa.Integer),
    sa.Column("inactive_since", TS),
    *common_columns(),
    sa.Index("ix_active_inventory_sku", "account_id", "sku"),
)

POLL_S = 2.0
MAX_WAIT_S = 1800


def map_row(rec):
    from decimal import Decimal, InvalidOperation

    item = text(rec, "ItemID", required=True)
    sku = text(rec, "SKU")
    price = rec.get("Price")
    try:
        price_v = Decimal(price) if isinstance(price, str) and price else None
    except InvalidOperation:
        raise Invalid(f"Price is not a number: {price[:20]!r}") from None
    qty = rec.get("Quantity")
    try:
        qty_v = int(qty) if qty not in (None, "") else None
    except (TypeError, ValueError):
        raise Invalid(f"Quantity is not an integer: {str(qty)[:20]!r}") from None
    return {"listing_key": f"{item}/{sku or ''}", "item_id": item, "sku": sku, "price_value": price_v,
            "price_currency": rec.get("Price@currencyID"), "quantity": qty_v}


async def run(ctx):
    cp = ctx.claim.checkpoint or {}
    task_id = cp.get("task_id")
    if not task_id:
        task_id = await _create_or_reuse_task(ctx)
        await ctx.store_page([], {"task_id": task_id}, windows_done=0, windows_total=1)
        ctx.event("feed_task", f"report task {task_id} created")
    waited, last = 0.0, None
    while True:
        task = await ctx.client.get_inventory_task(task_id)
        status = task.get("status")
        if status != last:  # visible at info level while the run waits (HTTP polls are debug events)
            ctx.event("feed_task", f"report task {task_id} {status} after {waited:.0f}s", task_id=task_id,
                      status=status)
            last = status
        if status in ("COMPLETED", "COMPLETED_WITH_ERROR", "PARTIALLY_PROCESSED"):
            break
        if status in ("FAILED",):
            raise RuntimeError(f"report task {task_id} failed")
        if ctx.stop_requested:
            from ..runner import StopRun
            raise StopRun()
        if waited > MAX_WAIT_S:
            raise RuntimeError(f"report task {task_id} still {status} after {MAX_WAIT_S}s")
        await asyncio.sleep(POLL_S)
        waited += POLL_S
    records = await ctx.client.download_active_inventory_report(task_id)
    rows, _, _ = await asyncio.to_thread(ctx.map_records, records)
    present = [r["listing_key"] for r in rows]
    # the whole snapshot and the "inactive" marking commit together
    await ctx.store_page(records, {}, cursor=ctx.now, windows_done=1, windows_total=1, present_keys=present)


async def _create_or_reuse_task(ctx) -> str:
    """Create a report task; eBay answers 409 while a similar one is unfinished (e.g. created by a run
    that died before checkpointing it): then reuse the newest unfinished task."""
    from ..ebay.errors import EbayRequestError

    try:
        return await ctx.client.create_inventory_task()
    except EbayRequestError as e:
        if e.status != 409:
            raise
    tasks = []
    async for page in ctx.client.get_inventory_tasks(look_back_days=1):
        tasks.extend(t for t in page.records if isinstance(t, dict) and t.get("taskId"))
    open_ = [t for t in tasks if t.get("status") in ("QUEUED", "IN_PROCESS")] or tasks
    if not open_:
        raise RuntimeError("eBay reports a report task in progress (409) but lists none")
    newest = max(open_, key=lambda t: t.get("creationDate") or "")
    ctx.event("feed_task", f"reusing report task {newest['taskId']} (409: one is already in progress)")
    return newest["taskId"]


STREAM = Stream(
    name="active_inventory", table=table, key=("account_id", "listing_key"), map=map_row,
    scope="sell.inventory", max_page_size=0, mode="custom", run_custom=run, absent_col="inactive_since",
)
