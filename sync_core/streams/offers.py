"""Offers: getInventoryItems, then getOffers per SKU. Offers of SKUs that no longer list an offer are
marked ended, in the transaction of the listing's last page."""

import sqlalchemy as sa

from .base import TS, Stream, StreamPage, common_columns, integer, metadata, money, text

# getOffers `limit` (sell_inventory_v1_oas3.json GET /offer): "If this query parameter is not set, up to 100
# records will be returned on each page"; no maximum is documented, so the client never asks for more than
# the documented 100 (a SKU has one offer per format, at most two per marketplace: the same spec, `sku`).
OFFERS_LIMIT = 100

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


async def fetch(ctx):
    cp = ctx.claim.checkpoint or {}
    if cp.get("i") and "seen" not in cp:
        cp = {}  # a position from before offers were collected as a snapshot: list them again from the start
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
            yield StreamPage(batch, {"skus": skus, "i": i + 1}, windows_done=1 if last else 0, windows_total=1,
                             cursor=ctx.now if last else None, snapshot=True, mark_absent=last)
            batch = []
    if not skus:  # nothing was listed: still complete the run's single window (every stored offer ended)
        yield StreamPage([], {"skus": skus, "i": 0}, cursor=ctx.now, windows_done=1, windows_total=1,
                         snapshot=True, mark_absent=True)


STREAM = Stream(
    name="offers", table=table, key=("account_id", "offer_id"), map=map_offer, scopes=("sell.inventory.readonly",),
    max_page_size=OFFERS_LIMIT, mode="custom", fetch=fetch, absent_col="ended_at", absent_by="sku",
)
