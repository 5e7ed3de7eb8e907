"""Active-inventory report (Sell Feed LMS_ACTIVE_INVENTORY_REPORT): create a task, wait for it,
download the result file, then upsert the whole snapshot in ONE transaction; listings absent from the
newer snapshot are marked inactive.

Task outcomes (spec sell_feed_v1, docs/ebay-api.md "Sell Feed: inventory tasks"): FAILED, 404 160003 (no such task) and 404 160014 (no result
file) drop the checkpointed task and create a new one; 409 160024 reuses a recent in-flight task; 409 160025
defers the stream (quota); a report with Ack=Failure or no listings is not applied (see :func:`_trusted`)."""

import asyncio
from typing import Any

import sqlalchemy as sa

from .base import TS, Deferred, Invalid, StopRun, Stream, StreamPage, common_columns, metadata, text

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

MAX_WAIT_S = 1800
# Sell Feed (spec sell_feed_v1 / docs/ebay-api.md "Sell Feed: inventory tasks"): the result file exists only in these states.  The spec's
# InventoryTask.completionDate also names PARTIALLY_PROCESSED among "the three completed values".
DONE = ("COMPLETED", "COMPLETED_WITH_ERROR", "PARTIALLY_PROCESSED")
IN_FLIGHT = ("CREATED", "QUEUED", "IN_PROCESS")  # FeedStatusEnum [DOC]
REUSE_MAX_AGE_S = 6 * 3600  # an in-flight task older than this is not adopted on a 409 160024
# createInventoryTask 409 errorId 160025: "the maximum number of ... tasks ... in the period (hourly or
# daily)".  eBay does not say which period applies: wait for the longer one (UNVERIFIED; docs/ebay-api.md).
QUOTA_WAIT_S = 24 * 3600
ERR_NO_TASK, ERR_NO_FILE, ERR_TOO_MANY, ERR_QUOTA = 160003, 160014, 160024, 160025


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
    var = rec.get("VariationIndex")  # a variation without a SKU of its own: keyed by its position
    key = f"{item}/#{var}" if var is not None and not sku else f"{item}/{sku or ''}"
    return {"listing_key": key, "item_id": item, "sku": sku, "price_value": price_v,
            "price_currency": rec.get("Price@currencyID"), "quantity": qty_v}


def expand_variations(records):
    """One record per variation for multi-variation listings: eBay's ActiveInventoryReport XML reference
    documents SKUDetails/Variations/Variation{SKU, Price, Quantity}, and for such listings price and
    quantity only at the variation level (SKUDetailsType).  Other records pass unchanged."""
    out = []
    for rec in records:
        vs = rec.get("Variations") if isinstance(rec, dict) else None
        vs = vs.get("Variation") if isinstance(vs, dict) else None
        if vs is None:
            out.append(rec)
            continue
        base = {k: v for k, v in rec.items() if k not in ("Variations", "SKU", "Price", "Price@currencyID", "Quantity")}
        if rec.get("SKU"):
            base["ParentSKU"] = rec["SKU"]
        for i, v in enumerate(vs if isinstance(vs, list) else [vs]):
            v = v if isinstance(v, dict) else {}
            row = {**base, **{k: v[k] for k in ("SKU", "Price", "Price@currencyID", "Quantity") if k in v}}
            if not v.get("SKU"):
                row["VariationIndex"] = i
            out.append(row)
    return out


async def fetch(ctx):
    from ..ebay.errors import EbayRequestError

    cp = ctx.claim.checkpoint or {}
    task_id = cp.get("task_id")
    if task_id:
        ctx.event("feed_task", f"resuming report task {task_id}", task_id=task_id)
    for attempt in range(2):  # a dropped checkpointed task is replaced at once, once
        if not task_id:
            task_id = await _create_or_reuse_task(ctx)
            yield StreamPage([], {"task_id": task_id}, windows_done=0, windows_total=1)
        try:
            await _wait_done(ctx, task_id)
            records = await ctx.client.download_active_inventory_report(task_id)
            break
        except _TaskGone as e:
            reason = str(e)
        except EbayRequestError as e:
            if e.status != 404 or e.error_id not in (ERR_NO_TASK, ERR_NO_FILE):
                raise
            # spec getInventoryTask/getResultFile 404: 160003 "Task does not exist" (expired, or another
            # eBay/simulator), 160014 "No file found for task ID"
            reason = f"eBay has {'no such task' if e.error_id == ERR_NO_TASK else 'no result file'} " \
                     f"(404 errorId {e.error_id})"
        ctx.event("feed_task", f"report task {task_id} dropped: {reason}"
                  + ("; creating a new one" if attempt == 0 else ""), "warning", task_id=task_id, reason=reason)
        yield StreamPage([], {}, windows_done=0, windows_total=1)
        task_id = None
    else:
        raise RuntimeError(f"report task dropped twice in one run ({reason}); the next run starts a new one")
    records = await _trusted(ctx, task_id, records)
    # the whole snapshot and the "inactive" marking commit together
    yield StreamPage(records, {}, cursor=ctx.now, windows_done=1, windows_total=1, snapshot=True, mark_absent=True)


class _TaskGone(Exception):
    pass


async def _wait_done(ctx, task_id: str) -> None:
    """Poll the task until it is done: first at once, then after report_poll_s, x1.5 each time up to 10x."""
    poll = ctx.settings.report_poll_s
    waited, last, delay = 0.0, None, poll
    while True:
        task = await ctx.client.get_inventory_task(task_id)
        status = task.get("status")
        if status != last:  # visible at info level while the run waits (HTTP polls are debug events)
            ctx.event("feed_task", f"report task {task_id} {status} after {waited:.0f}s", task_id=task_id,
                      status=status)
            last = status
        if status in DONE:
            return
        if status == "FAILED":
            raise _TaskGone("eBay reports it FAILED")
        if waited > MAX_WAIT_S:
            raise RuntimeError(f"report task {task_id} still {status} after {MAX_WAIT_S}s; the next run resumes it")
        end = asyncio.get_running_loop().time() + delay
        while (left := end - asyncio.get_running_loop().time()) > 0:  # STOP is seen within a second
            if ctx.stop_requested:
                raise StopRun()
            await asyncio.sleep(min(left, 1.0))
        if ctx.stop_requested:
            raise StopRun()
        waited += delay
        delay = min(delay * 1.5, poll * 10)


async def _trusted(ctx, task_id: str, records):
    """The report's records, or Deferred when the snapshot cannot be trusted: ``Ack=Failure`` or no listing
    at all would otherwise mark every listing inactive.  The stream keeps its rows and tries again at its
    next interval (an empty report for a seller who really has no listings is therefore not applied)."""
    ack = getattr(records, "ack", "")
    why = None
    if ack == "Failure":
        errs = "; ".join(e for e in getattr(records, "errors", []) if e)
        why = f"report {task_id} says Ack=Failure" + (f" ({errs[:200]})" if errs else "")
    elif not records:
        why = f"report {task_id} lists no listings at all"
    if why:
        ctx.event("feed_report", f"{why}: snapshot not applied, no listing marked inactive", "warning",
                  task_id=task_id, ack=ack)
        raise Deferred(ctx.settings.stream("active_inventory").interval_s,
                       f"{why}; listings kept as they were, next report at the next interval")
    if ack == "Warning":
        ctx.event("feed_report", f"report {task_id} says Ack=Warning", "warning", task_id=task_id)
    expanded = expand_variations(records)
    if len(expanded) != len(records):
        n = sum(1 for r in records if isinstance(r, dict) and isinstance(r.get("Variations"), dict))
        ctx.event("feed_report", f"{n} multi-variation listing(s): one row per variation "
                  f"({len(expanded) - len(records) + n} rows)", task_id=task_id)
    return expanded


async def _create_or_reuse_task(ctx) -> str:
    """Create a report task.  409 errorId 160024 (too many tasks queued or in process; e.g. one created by a
    run that died before checkpointing it): reuse the newest IN-FLIGHT task of this feed type created within
    REUSE_MAX_AGE_S, never a finished snapshot.  409 errorId 160025 (hourly/daily task quota spent): the run
    is deferred by QUOTA_WAIT_S without failing the stream."""
    from datetime import datetime, timedelta, timezone

    from ..ebay.errors import EbayRequestError

    try:
        task_id = await ctx.client.create_inventory_task()
        ctx.event("feed_task", f"report task {task_id} created", task_id=task_id)
        return task_id
    except EbayRequestError as e:
        if e.status != 409:
            raise
        if e.error_id == ERR_QUOTA:
            until = datetime.now(timezone.utc) + timedelta(seconds=QUOTA_WAIT_S)
            msg = (f"eBay's report task quota is spent (409 errorId {ERR_QUOTA}, hourly or daily); "
                   f"waiting until {until:%Y-%m-%d %H:%M} UTC")
            ctx.event("feed_task", msg, "warning", until=until.isoformat())
            raise Deferred(QUOTA_WAIT_S, msg) from None
        conflict = e
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=REUSE_MAX_AGE_S)
    tasks: list[dict[str, Any]] = []
    async for page in ctx.client.get_inventory_tasks(look_back_days=1):
        tasks.extend(t for t in page.records if isinstance(t, dict) and t.get("taskId"))
    open_ = [t for t in tasks if t.get("status") in IN_FLIGHT
             and t.get("feedType", "LMS_ACTIVE_INVENTORY_REPORT") == "LMS_ACTIVE_INVENTORY_REPORT"
             and _parse_ts(t.get("creationDate")) >= cutoff]
    if not open_:
        raise RuntimeError(f"eBay refused a new report task ({conflict}) and lists no recent one in progress")
    newest = max(open_, key=lambda t: t.get("creationDate") or "")
    ctx.event("feed_task", f"reusing report task {newest['taskId']} ({newest.get('status')}; 409 errorId "
              f"{conflict.error_id}: one is already in progress)", task_id=newest["taskId"])
    return newest["taskId"]


def _parse_ts(v):
    from datetime import datetime, timezone

    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


STREAM = Stream(
    name="active_inventory", table=table, key=("account_id", "listing_key"), map=map_row,
    scopes=("sell.inventory",),  # Feed inventory_task has no readonly option
    max_page_size=0, mode="custom", fetch=fetch, absent_col="inactive_since", interval_s=6 * 3600,
)
