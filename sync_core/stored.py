"""Reads of stored rows that a stream's fetch needs (``ctx.read(query, **params)``): the streams hold no SQL.
Each query takes a connection and the account id; the runner runs it with the database retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

TS = sa.DateTime(timezone=True)


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


async def open_ids(conn: AsyncConnection, account_id: int, *, table: str, id_col: str, state_col: str,
                   closed: list[str], since: datetime | None) -> list[str]:
    """Ids of a Post-Order table's items stored as still open (``state_col`` null or not in ``closed``) and
    created before ``since`` (the current plan's start), oldest first."""
    t = sa.table(table, sa.column("account_id"), sa.column(id_col), sa.column(state_col), sa.column("creation_date"))
    c = t.c
    q = (sa.select(c[id_col]).where(c.account_id == account_id,
                                    sa.or_(c[state_col].is_(None), c[state_col].not_in(closed)),
                                    c.creation_date < since)
         .order_by(c.creation_date, c[id_col]))
    return list((await conn.execute(q)).scalars())


async def synced_mark(conn: AsyncConnection, account_id: int) -> datetime:
    """A point on the database's clock (rows' synced_at are ``now()`` of the transaction that wrote them)
    before which every write is visible: now(), or the start of the oldest transaction still running in
    this database, if earlier (its rows carry that start as synced_at and are not visible yet)."""
    return (await conn.execute(sa.text(
        "select least(now(), (select min(xact_start) from pg_stat_activity where datname = current_database() "
        "and pid <> pg_backend_pid() and xact_start is not null))"))).scalar_one()


async def shipped_orders_synced(conn: AsyncConnection, account_id: int, *, since: datetime | None,
                                after: list[str] | None) -> list[Any]:
    """(order_id, synced_at) of stored orders with something shipped (fulfillment status FULFILLED or
    IN_PROGRESS) whose row changed (synced_at) at or after ``since`` (None: all), past the position ``after``
    ([synced_at ISO, order_id]), in (synced_at, order_id) order."""
    t = sa.table("orders", sa.column("account_id"), sa.column("order_id"), sa.column("fulfillment_status"),
                 sa.column("synced_at"))
    c = t.c
    q = sa.select(c.order_id, c.synced_at).where(c.account_id == account_id,
                                                  c.fulfillment_status.in_(["FULFILLED", "IN_PROGRESS"]))
    if since is not None:
        q = q.where(c.synced_at >= since)
    if after:
        q = q.where(sa.tuple_(c.synced_at, c.order_id) > sa.tuple_(sa.literal(datetime.fromisoformat(after[0]), TS),
                                                                     sa.literal(after[1], sa.Text)))
    return list((await conn.execute(q.order_by(c.synced_at, c.order_id))).all())
