"""Reads of stored rows that a stream's fetch needs (``ctx.read(query, **params)``): the streams hold no SQL.
Each query takes a connection and the account id; the runner runs it with the database retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def open_dispute_ids(conn: AsyncConnection, account_id: int, *, open_states: list[str],
                           since: datetime | None) -> list[str]:
    """Disputes stored as still open and opened before ``since`` (the current plan's start)."""
    return list((await conn.execute(sa.text(
        "select payment_dispute_id from payment_disputes where account_id = :a and closed_date is null "
        "and (status is null or status = any(:open)) and open_date < :since"),
        dict(a=account_id, open=open_states, since=since))).scalars())


async def conversation_signatures(conn: AsyncConnection, account_id: int) -> dict[str, str]:
    """{conversation_id: "<latest messageId>|<status>|<unreadCount>"} of the stored conversations."""
    rows = (await conn.execute(sa.text(
        "select conversation_id || chr(31) || coalesce(raw->'latestMessage'->>'messageId', 'None') || '|' || "
        "coalesce(raw->>'conversationStatus', 'None') || '|' || coalesce(raw->>'unreadCount', 'None') "
        "from conversations where account_id = :a"), dict(a=account_id))).scalars()
    return dict(r.split("\x1f", 1) for r in rows)


async def payouts_not_accounted(conn: AsyncConnection, account_id: int, *, since: datetime) -> list[Any]:
    """(payout_id, payout_date) of stored payouts since ``since`` whose transactionCount exceeds the
    transactions stored with their payoutId."""
    return list((await conn.execute(sa.text(
        "select p.payout_id, p.payout_date from payouts p where p.account_id = :a and p.payout_date >= :since "
        "and p.transaction_count > (select count(*) from transactions t where t.account_id = p.account_id "
        "and t.payout_id = p.payout_id) order by p.payout_date"), dict(a=account_id, since=since))).all())
