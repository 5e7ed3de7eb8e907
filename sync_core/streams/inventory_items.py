"""Inventory items (Inventory API getInventoryItems): a full listing every run; items no longer
listed get removed_at set (and cleared if they come back)."""

import sqlalchemy as sa

from .base import TS, Stream, common_columns, integer, metadata, text

table = sa.Table(
    "inventory_items", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.Text, primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("condition", sa.Text),
    sa.Column("quantity", sa.Integer),
    sa.Column("locale", sa.Text),
    sa.Column("removed_at", TS),
    *common_columns(),
)


def map_item(rec):
    return {
        "sku": text(rec, "sku", required=True),
        "title": text(rec, "product.title"),
        "condition": text(rec, "condition"),
        "quantity": integer(rec, "availability.shipToLocationAvailability.quantity"),
        "locale": text(rec, "locale"),
    }


def fetch(client, resume_url, limit):
    return client.get_inventory_items(limit, resume_url=resume_url)


STREAM = Stream(
    name="inventory_items", table=table, key=("account_id", "sku"), map=map_item,
    scopes=("sell.inventory.readonly",), max_page_size=200, mode="full", fetch_all=fetch, absent_col="removed_at",
)
