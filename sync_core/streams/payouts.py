"""Finances payouts (apiz, payoutDate windows of at most 90 days; status changes later: re-scan)."""

from datetime import timedelta

import sqlalchemy as sa

from .base import TS, Stream, common_columns, integer, metadata, money, text, ts

table = sa.Table(
    "payouts", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("payout_id", sa.Text, primary_key=True),
    sa.Column("payout_date", TS, nullable=False),
    sa.Column("payout_status", sa.Text),
    sa.Column("amount_value", sa.Numeric),
    sa.Column("amount_currency", sa.Text),
    sa.Column("transaction_count", sa.Integer),
    *common_columns(),
    sa.Index("ix_payouts_date", "account_id", "payout_date"),
)


def map_payout(rec):
    amount, cur = money(rec, "amount")
    return {
        "payout_id": text(rec, "payoutId", required=True),
        "payout_date": ts(rec, "payoutDate", required=True),
        "payout_status": text(rec, "payoutStatus"),
        "amount_value": amount,
        "amount_currency": cur,
        "transaction_count": integer(rec, "transactionCount"),
    }


def fetch(client, window, resume_url, limit):
    return client.get_payouts(window.start, window.end, limit, resume_url=resume_url)


STREAM = Stream(
    name="payouts", table=table, key=("account_id", "payout_id"), map=map_payout, scopes=("sell.finances",),
    max_page_size=200, mode="windowed", fetch_window=fetch, max_window=timedelta(days=90),
    max_history_days=5 * 365, rescan_days=14,
)
