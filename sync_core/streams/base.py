"""The declarative shape of a stream and the helpers stream modules use to describe their rows.

A stream module declares: its table(s) (extracted, indexed columns + the raw payload as jsonb), its
key, how to map one eBay record to a row (raising :class:`Invalid` for a malformed record, which then
goes to quarantine), how its data is read (time windows, a full listing, or a custom plan), and the
OAuth scope it needs. The runner (sync_core/runner.py) does everything else the same way for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

if TYPE_CHECKING:
    from ..ebay.client import EbayClient
    from ..ebay.paging import Page
    from ..runner import RunContext

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)


class Invalid(ValueError):
    """A record that cannot be stored as-is (reason goes to quarantine)."""


def common_columns() -> list[sa.Column]:
    return [
        sa.Column("raw", JSONB, nullable=False),
        sa.Column("payload_hash", BYTEA, nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("first_seen_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("synced_at", TS, nullable=False, server_default=sa.func.now()),
    ]


# ---------------------------------------------------------------- value extraction

_MISSING = object()


def get(rec: Any, path: str, default: Any = _MISSING) -> Any:
    """``get(rec, "pricingSummary.total.value")``; missing -> default, or Invalid if no default."""
    cur = rec
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            if default is _MISSING:
                raise Invalid(f"missing {path}")
            return default
    return cur


def text(rec: Any, path: str, *, required: bool = False) -> str | None:
    v = get(rec, path, _MISSING if required else None)
    if v is None:
        if required:
            raise Invalid(f"missing {path}")
        return None
    if isinstance(v, (dict, list)):
        raise Invalid(f"{path} should be a string, got {type(v).__name__}")
    s = str(v)
    if required and not s:
        raise Invalid(f"empty {path}")
    return s


def ts(rec: Any, path: str, *, required: bool = False) -> datetime | None:
    v = get(rec, path, _MISSING if required else None)
    if v is None:
        if required:
            raise Invalid(f"missing {path}")
        return None
    if not isinstance(v, str):
        raise Invalid(f"{path} should be an ISO-8601 timestamp, got {type(v).__name__}")
    try:
        d = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{path} is not an ISO-8601 timestamp: {v[:40]!r}") from None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def money(rec: Any, path: str, *, required: bool = False) -> tuple[Decimal | None, str | None]:
    """eBay amounts are {"value": "12.34", "currency": "USD"}: numeric + currency, never float."""
    v = get(rec, path, _MISSING if required else None)
    if v is None:
        if required:
            raise Invalid(f"missing {path}")
        return None, None
    if not isinstance(v, dict):
        raise Invalid(f"{path} should be an amount object, got {type(v).__name__}")
    raw, cur = v.get("value"), v.get("currency")
    if raw is None:
        return None, cur
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise Invalid(f"{path}.value should be a decimal string, got {type(raw).__name__}")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise Invalid(f"{path}.value is not a number: {str(raw)[:20]!r}") from None
    if not amount.is_finite():
        raise Invalid(f"{path}.value is not finite")
    return amount, (str(cur) if cur is not None else None)


def integer(rec: Any, path: str, *, required: bool = False) -> int | None:
    v = get(rec, path, _MISSING if required else None)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise Invalid(f"{path} should be an integer, got {type(v).__name__}")
    try:
        return int(v)
    except ValueError:
        raise Invalid(f"{path} is not an integer: {str(v)[:20]!r}") from None


# ---------------------------------------------------------------- the declaration


@dataclass(frozen=True)
class Child:
    """Rows owned by a parent record (order line items, conversation messages): replaced atomically
    with their parent whenever the parent changes."""

    table: sa.Table
    parent_key: str  # column in the child table holding the parent's key value
    rows: Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]  # (record, parent row) -> rows


@dataclass
class Window:
    start: datetime
    end: datetime

    def as_json(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]

    @classmethod
    def from_json(cls, v: list[str]) -> "Window":
        return cls(datetime.fromisoformat(v[0]), datetime.fromisoformat(v[1]))


FetchWindow = Callable[["EbayClient", Window, "str | None", int], AsyncIterator["Page"]]
FetchAll = Callable[["EbayClient", "str | None", int], AsyncIterator["Page"]]


@dataclass
class Stream:
    name: str
    table: sa.Table
    key: tuple[str, ...]  # conflict key columns, account_id first
    map: Callable[[dict[str, Any]], dict[str, Any]]  # record -> extracted columns (no account_id/raw/hash)
    scope: str
    max_page_size: int
    mode: str = "windowed"  # windowed | full | custom
    fetch_window: FetchWindow | None = None
    fetch_all: FetchAll | None = None
    run_custom: Callable[["RunContext"], Awaitable[None]] | None = None
    max_window: timedelta = timedelta(days=30)
    max_history_days: int | None = None  # what eBay serves, e.g. disputes 18 months
    rescan_days: int = 0  # re-read this trailing slice on every run (finances: status changes later)
    children: tuple[Child, ...] = ()
    after_complete: Callable[["RunContext"], Awaitable[None]] | None = None
    extra_tables: tuple[sa.Table, ...] = field(default=())
    raw_exclude: tuple[str, ...] = ()  # keys added by the reader (e.g. fetched children), not part of the payload
    absent_col: str | None = None  # snapshot streams: "gone since" column set for keys absent from a full listing

    def all_tables(self) -> list[sa.Table]:
        return [self.table, *(c.table for c in self.children), *self.extra_tables]

    def record_key(self, rec: Any) -> str | None:
        try:
            row = self.map(rec)
            return "/".join(str(row.get(k)) for k in self.key if k != "account_id")
        except Exception:
            if isinstance(rec, dict):
                for k in self.key:
                    camel = "".join(w.capitalize() if i else w for i, w in enumerate(k.split("_")))
                    if camel in rec and not isinstance(rec[camel], (dict, list)):
                        return str(rec[camel])
            return None
