"""Offers: getInventoryItems, then getOffers per SKU. Offers of SKUs that disappeared are marked ended."""

import sqlalchemy as sa

from ..ebay.client import OFFERS_LIMIT
from .base import TS, Stream, common_columns, integer, metadata, money, text

table = sa.Table(
    "offers", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("offer_id", sa.Text, primary_key=True),
    sa.Column("sku", sa.Text, nullable=False),
    sa.Column("marketplace_id", sa.Text),
    sa.Column("format", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("listing_id", sa.Text),
    sa.Column("listing_status", sa.Text),
    sa.Column("price_value", sa.Numeric),
    sa.Column("price_currency", sa.Text),
    sa.Column("available_quantity", sa.Integer),
    sa.Column("ended_at", TS),
    *common_columns(),
    sa.Index("ix_offers_sku", "account_id", "sku"),
    sa.Index("ix_offers_listing", "account_id", "listing_id"),
)


def map_offer(rec):
    price, cur = money(rec, "pricingSummary.price")
    return {
        "offer_id": text(rec, "offerId", required=True),
        "sku": text(rec, "sku", required=True),
        "marketplace_id": text(rec, "marketplaceId"),
        "format": text(rec, "format"),
        "status": text(rec, "status"),
        "listing_id": text(rec, "listing.listingId"),
        "listing_status": text(rec, "listing.listingStatus"),
        "price_value": price,
        "price_currency": cur,
        "available_quantity": integer(rec, "availableQuantity"),
    }


async def run(ctx):
    cp = ctx.claim.checkpoint or {}
    skus = cp.get("skus")
    if skus is None:  # step 1: the current SKUs, from eBay (not from our table: it may be stale)
        skus = []
        async for page in ctx.client.get_inventory_items(200):
            skus.extend(r["sku"] for r in page.records if isinstance(r, dict) and isinstance(r.get("sku"), str))
        skus = sorted(set(skus))
    start = int(cp.get("i", 0))
    batch: list[dict] = []
    for i in range(start, len(skus)):
        async for page in ctx.client.get_offers(skus[i], OFFERS_LIMIT):
            batch.extend(page.records)
        last = i == len(skus) - 1
        if len(batch) >= 200 or last:
            stop = await ctx.store_page(batch, {"skus": skus, "i": i + 1}, windows_done=1 if last else 0,
                                        windows_total=1, cursor=ctx.now if last else None)
            batch = []
            if stop and not last:
                from ..runner import StopRun
                raise StopRun()
    if not skus:  # nothing was stored in the loop: still complete the run's single window
        await ctx.store_page([], {"skus": skus, "i": 0}, cursor=ctx.now, windows_done=1, windows_total=1)
    from .. import coordination as co, db, upserts

    async def mark_ended() -> int:
        async with ctx.engine.begin() as conn:
            await co.fence(conn, ctx.owner, ctx.run_id)
            return await upserts.mark_absent(conn, table, ctx.account_id, "sku", skus, "ended_at")
    n = await db.run_retrying(ctx.settings, "mark ended offers", mark_ended)
    if n:
        ctx.event("ended", f"{n} offer(s) of vanished SKUs marked ended")


STREAM = Stream(
    name="offers", table=table, key=("account_id", "offer_id"), map=map_offer, scope="sell.inventory.readonly",
    max_page_size=OFFERS_LIMIT, mode="custom", run_custom=run, absent_col="ended_at",
)
