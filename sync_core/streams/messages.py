"""Messages (Commerce Message API): conversations of both types, and the messages of every
conversation that is new or changed (replaced atomically with their conversation)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .base import TS, Child, Stream, common_columns, integer, metadata, text, ts

TYPES = ("FROM_MEMBERS", "FROM_EBAY")

table = sa.Table(
    "conversations", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Text, primary_key=True),
    sa.Column("conversation_type", sa.Text, nullable=False),
    sa.Column("conversation_status", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("created_date", TS),
    sa.Column("reference_id", sa.Text),
    sa.Column("reference_type", sa.Text),
    sa.Column("unread_count", sa.Integer),
    sa.Column("latest_message_at", TS),
    *common_columns(),
    sa.Index("ix_conversations_latest", "account_id", "latest_message_at"),
)

messages = sa.Table(
    "conversation_messages", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("created_date", TS),
    sa.Column("sender", sa.Text),
    sa.Column("recipient", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("read_status", sa.Boolean),
    sa.Column("body", sa.Text),
    sa.Column("raw", JSONB, nullable=False),
)


def map_conversation(rec):
    return {
        "conversation_id": text(rec, "conversationId", required=True),
        "conversation_type": text(rec, "conversationType", required=True),
        "conversation_status": text(rec, "conversationStatus"),
        "title": text(rec, "conversationTitle"),
        "created_date": ts(rec, "createdDate"),
        "reference_id": text(rec, "referenceId"),
        "reference_type": text(rec, "referenceType"),
        "unread_count": integer(rec, "unreadCount"),
        "latest_message_at": ts(rec, "latestMessage.createdDate"),
    }


def map_messages(rec, parent):
    rows = []
    for m in rec.get("_messages") or []:
        rows.append({
            "conversation_id": parent["conversation_id"],
            "message_id": text(m, "messageId", required=True),
            "created_date": ts(m, "createdDate"),
            "sender": text(m, "senderUsername"),
            "recipient": text(m, "recipientUsername"),
            "subject": text(m, "subject"),
            "read_status": bool(m.get("readStatus")) if m.get("readStatus") is not None else None,
            "body": text(m, "messageBody"),
            "raw": m,
        })
    return rows


async def run(ctx):
    """Each type is listed in full (eBay filters by time only for FROM_MEMBERS and conversations are
    few); a conversation whose summary changed gets its messages fetched and replaced."""
    cp = ctx.claim.checkpoint or {}
    start_type = int(cp.get("type_index", 0))
    next_url = cp.get("next")
    known = await _known(ctx)
    size = min(ctx.page_size(), 50)
    for ti in range(start_type, len(TYPES)):
        ctype = TYPES[ti]
        async for page in ctx.client.get_conversations(ctype, limit=size, resume_url=next_url):
            records = []
            for conv in page.records:
                cid = conv.get("conversationId") if isinstance(conv, dict) else None
                if isinstance(cid, str) and known.get(cid) == _signature(conv):
                    continue  # unchanged conversation: keep its stored messages
                if isinstance(cid, str) and cid:
                    msgs = []
                    async for mp in ctx.client.get_conversation_messages(cid, ctype, limit=50):
                        msgs.extend(mp.records)
                    conv = dict(conv, _messages=msgs)
                records.append(conv)
            last_type = ti == len(TYPES) - 1
            last = page.next_url is None
            cpn = {"type_index": ti + 1 if last else ti, "next": page.next_url}
            if await ctx.store_page(records, cpn, cursor=ctx.now if (last and last_type) else None,
                                    windows_done=ti + (1 if last else 0), windows_total=len(TYPES)):
                if not (last and last_type):
                    from ..runner import StopRun
                    raise StopRun()
        next_url = None


def _signature(conv) -> str:
    latest = conv.get("latestMessage") if isinstance(conv.get("latestMessage"), dict) else {}
    return f"{latest.get('messageId')}|{conv.get('conversationStatus')}|{conv.get('unreadCount')}"


async def _known(ctx) -> dict[str, str]:
    rows = await ctx.query_column(
        "select conversation_id || chr(31) || coalesce(raw->'latestMessage'->>'messageId', 'None') || '|' || "
        "coalesce(raw->>'conversationStatus', 'None') || '|' || coalesce(raw->>'unreadCount', 'None') "
        "from conversations where account_id = :a")
    return dict(r.split("\x1f", 1) for r in rows)


STREAM = Stream(
    name="messages", table=table, key=("account_id", "conversation_id"), map=map_conversation,
    scope="commerce.message", max_page_size=50, mode="custom", run_custom=run,
    children=(Child(messages, "conversation_id", map_messages),), raw_exclude=("_messages",),
)
