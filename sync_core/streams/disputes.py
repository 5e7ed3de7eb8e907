"""Payment disputes (apiz, open_date windows of at most 90 days, at most 18 months back). eBay has no
"last modified" filter, so disputes still open are re-fetched by id after every run until they close."""

from datetime import timedelta

import sqlalchemy as sa

from .. import stored
from .base import TS, Stream, StreamPage, common_columns, metadata, money, text, ts

table = sa.Table(
    "payment_disputes", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("payment_dispute_id", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text),
    sa.Column("buyer", sa.Text),
    sa.Column("open_date", TS, nullable=False),
    sa.Column("closed_date", TS),
    sa.Column("respond_by_date", TS),
    sa.Column("status", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("amount_value", sa.Numeric),
    sa.Column("amount_currency", sa.Text),
    *common_columns(),
    sa.Index("ix_payment_disputes_open", "account_id", "open_date"),
    sa.Index("ix_payment_disputes_status", "account_id", "status"),
)

OPEN_STATES = ("OPEN", "ACTION_NEEDED", "WAITING_FOR_BUYER_RESPONSE", "WAITING_FOR_SELLER_RESPONSE")


def map_dispute(rec):
    amount, cur = money(rec, "amount")
    return {
        "payment_dispute_id": text(rec, "paymentDisputeId", required=True),
        "order_id": text(rec, "orderId"),
        "buyer": text(rec, "buyerUsername"),
        "open_date": ts(rec, "openDate", required=True),
        "closed_date": ts(rec, "closedDate"),
        "respond_by_date": ts(rec, "respondByDate"),
        "status": text(rec, "paymentDisputeStatus"),
        "reason": text(rec, "reason"),
        "amount_value": amount,
        "amount_currency": cur,
    }


def fetch(client, window, resume_url, limit):
    return client.get_payment_dispute_summaries(window.start, window.end, limit, resume_url=resume_url)


async def refetch_open(ctx):
    """Disputes opened before the current windows may still change: re-read the open ones by id, in
    chunks of 50 stored together. STOP is honoured between calls: what was fetched is stored, the run
    ends cancelled, and the next run re-reads the disputes still open."""
    ids = await ctx.read(stored.open_dispute_ids, open_states=list(OPEN_STATES), since=ctx.plan_start)
    for chunk_start in range(0, len(ids), 50):
        records = []
        for did in ids[chunk_start:chunk_start + 50]:
            if ctx.stop_requested:
                break
            records.append(await ctx.client.get_payment_dispute(did))
        yield StreamPage(records, None)  # the runner stops after writing it if a STOP came


STREAM = Stream(
    name="disputes", table=table, key=("account_id", "payment_dispute_id"), map=map_dispute,
    scopes=("sell.payment.dispute",), max_page_size=200, mode="windowed", fetch_window=fetch,
    max_window=timedelta(days=90), max_history_days=540, refetch=refetch_open,
)
