"""Messages (Commerce Message API): conversations of both types, and the messages of every
conversation that is new or changed (replaced atomically with their conversation)."""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .. import stored
from .base import TS, Child, Stream, StreamPage, common_columns, integer, metadata, text, ts

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


async def fetch(ctx):
    """List each type, fetch the messages of every conversation whose summary changed (replaced atomically).

    Only what changed where the API allows it (commerce_message_v1_oas3.json getConversations): ``start_time``
    ("only messages sent after this time will be retrieved") exists only for FROM_MEMBERS, so after a first
    complete run FROM_MEMBERS is listed from the cursor minus ``lookback_s`` (at least the last
    ``rescan_days``); FROM_EBAY has no time filter
    (nor has either type a sort or last-modified filter) and is listed in full, its unchanged conversations
    skipped by their summary.  A backfill or full run lists everything.  A status-only change (read,
    archived) of a FROM_MEMBERS conversation whose last message is older than ``rescan_days`` is not seen by
    the time filter: it is picked up by the next full listing (docs/ebay-api.md "Messages incremental")."""
    cp = ctx.claim.checkpoint or {}
    start_type = int(cp.get("type_index", 0))
    next_url = cp.get("next")
    since = _since(ctx) if not cp else (datetime.fromisoformat(cp["since"]) if cp.get("since") else None)
    known = await ctx.read(stored.conversation_signatures)
    size = min(ctx.page_size(), 50)
    for ti in range(start_type, len(TYPES)):
        ctype = TYPES[ti]
        start = since if ctype == "FROM_MEMBERS" else None
        async for page in ctx.client.get_conversations(ctype, start, limit=size, resume_url=next_url):
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
            cpn = {"type_index": ti + 1 if last else ti, "next": page.next_url,
                   "since": since.isoformat() if since else None}
            yield StreamPage(records, cpn, cursor=ctx.now if (last and last_type) else None,
                             windows_done=ti + (1 if last else 0), windows_total=len(TYPES))
        next_url = None


def _since(ctx) -> datetime | None:
    """FROM_MEMBERS start_time: the cursor minus the look-back, and at least the last ``rescan_days`` (so a
    recent conversation that was read or archived without a new message is listed again); None (everything)
    on a first, full or backfill run."""
    claim = ctx.claim
    if claim.cursor is None or claim.kind == "full" or claim.backfill_since is not None:
        return None
    return min(claim.cursor - timedelta(seconds=ctx.settings.lookback_s),
               ctx.now - timedelta(days=ctx.stream.rescan_days))


def _signature(conv) -> str:
    latest = conv.get("latestMessage") if isinstance(conv.get("latestMessage"), dict) else {}
    return f"{latest.get('messageId')}|{conv.get('conversationStatus')}|{conv.get('unreadCount')}"


STREAM = Stream(
    name="messages", table=table, key=("account_id", "conversation_id"), map=map_conversation,
    scopes=("commerce.message",), max_page_size=50, mode="custom", fetch=fetch, rescan_days=7,
    children=(Child(messages, "conversation_id", map_messages),), raw_exclude=("_messages",),
)
