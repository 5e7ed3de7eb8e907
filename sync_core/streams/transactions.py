"""Finances transactions (apiz, transactionDate windows of at most 90 days). Status and payout change
after the fact without changing transactionDate, so every run re-reads a trailing window; and since funds
may be held for weeks before they are paid out (later than that window), the transactions of recent payouts
that the table does not fully account for are re-read by eBay's payoutId filter."""

from datetime import timedelta

import sqlalchemy as sa

from .. import stored
from .base import TS, StopRun, Stream, StreamPage, common_columns, metadata, money, text, ts

table = sa.Table(
    "transactions", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("transaction_id", sa.Text, primary_key=True),
    sa.Column("transaction_type", sa.Text, primary_key=True),
    sa.Column("transaction_date", TS, nullable=False),
    sa.Column("transaction_status", sa.Text),
    sa.Column("order_id", sa.Text),
    sa.Column("payout_id", sa.Text),
    sa.Column("amount_value", sa.Numeric),
    sa.Column("amount_currency", sa.Text),
    sa.Column("booking_entry", sa.Text),
    sa.Column("buyer", sa.Text),
    *common_columns(),
    sa.Index("ix_transactions_date", "account_id", "transaction_date"),
    sa.Index("ix_transactions_order", "account_id", "order_id"),
    sa.Index("ix_transactions_payout", "account_id", "payout_id"),
)


def map_transaction(rec):
    amount, cur = money(rec, "amount")
    return {
        "transaction_id": text(rec, "transactionId", required=True),
        "transaction_type": text(rec, "transactionType", required=True),
        "transaction_date": ts(rec, "transactionDate", required=True),
        "transaction_status": text(rec, "transactionStatus"),
        "order_id": text(rec, "orderId"),
        "payout_id": text(rec, "payoutId"),
        "amount_value": amount,
        "amount_currency": cur,
        "booking_entry": text(rec, "bookingEntry"),
        "buyer": text(rec, "buyer.username"),
    }


def fetch(client, window, resume_url, limit):
    return client.get_transactions(window.start, window.end, limit, resume_url=resume_url)


REPAIR_DAYS = 45  # eBay holds funds for up to 30 days, then pays out on the seller's schedule


async def refetch_paid_out(ctx):
    """Transactions paid out after the trailing re-scan still read FUNDS_ON_HOLD/... without a payoutId here.
    Each payout of the last REPAIR_DAYS (stored by the payouts stream) whose transactionCount exceeds the
    transactions stored with its payoutId gets its transactions re-read (filter payoutId:{id})."""
    payouts = await ctx.read(stored.payouts_not_accounted, since=ctx.now - timedelta(days=REPAIR_DAYS))
    for payout_id, payout_date in payouts:
        if ctx.stop_requested:
            raise StopRun()
        records = []
        async for page in ctx.client.get_transactions(payout_date - timedelta(days=89), payout_date,
                                                      extra_filters=[f"payoutId:{{{payout_id}}}"]):
            records.extend(page.records)
        yield StreamPage(records, None)


STREAM = Stream(
    name="transactions", table=table, key=("account_id", "transaction_id", "transaction_type"),
    map=map_transaction, scopes=("sell.finances",), max_page_size=200, mode="windowed", fetch_window=fetch,
    max_window=timedelta(days=90), max_history_days=5 * 365, rescan_days=14, refetch=refetch_paid_out,
)
