"""The declarative shape of a stream, the interface its fetch uses, and the helpers stream modules use to
describe their rows.

A stream is ONE declaration (:class:`Stream`): its name, table(s) (extracted, indexed columns + the raw
payload as jsonb), key, mapper (one eBay record -> one row, raising :class:`Invalid` for a malformed
record, which then goes to quarantine), OAuth scopes, page maximum, window limits (``max_window``,
``max_history_days``, ``rescan_days``) and default interval.  The declaration is the only source of these
facts: ``config.STREAM_NAMES``/``STREAM_DEFAULTS``, ``ebay.oauth.STREAM_SCOPES`` and the client's page
limits (``ebay.client.*_MAX_LIMIT``) read it.

How a stream reads (exactly one of):

- ``fetch_window(client, window, resume_url, limit)``: the eBay pages of one time window (``mode
  "windowed"``).  The runner plans the windows, fetches up to ``run_concurrency`` of them at once, keeps
  the position (a contiguous prefix of finished windows + the resume URL of each window under way) and
  writes every page.
- ``fetch_all(client, resume_url, limit)``: the eBay pages of a full listing (``mode "full"``); stored
  rows absent from a complete listing get ``absent_col`` set.
- ``fetch(ctx)``: an async generator of :class:`StreamPage` (``mode "custom"``); the stream owns its
  position (``StreamPage.position``, saved as the checkpoint and handed back as ``ctx.claim.checkpoint``).

and optionally ``refetch(ctx)``: after the windows, an async generator of position-less
:class:`StreamPage` (records re-read by id, e.g. open disputes).

A stream never writes: it yields pages, and the page writer (sync_core/writer.py) stores each page's
rows, children, quarantined records, position and (``mark_absent``) absent-marking in ONE fenced
transaction.  A stream reads stored rows only through ``ctx.read(fn)`` with a query of
sync_core/stored.py.  It sees the run only through :class:`StreamContext`; it raises :class:`StopRun`
(a cooperative stop) and :class:`Deferred` (eBay says "not now") from here, never importing the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, AsyncGenerator, Awaitable, Callable, Protocol, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

if TYPE_CHECKING:
    from ..ebay.client import EbayClient
    from ..ebay.paging import Page

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)


class Invalid(ValueError):
    """A record that cannot be stored as-is (reason goes to quarantine)."""


class StopRun(Exception):
    """Cooperative stop (cancel or pause) observed between pages."""


class Deferred(Exception):
    """eBay says "not now" for a long time (e.g. the Sell Feed task quota, 409 errorId 160025): the run ends
    without failing, the stream stays idle with ``message`` in last_error and its next run after ``wait_s``."""

    def __init__(self, wait_s: int, message: str):
        super().__init__(message)
        self.wait_s, self.message = int(wait_s), message


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
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    cur = rec
    try:
        for part in parts:
            cur = cur[part]  # a JSON value: only a dict has str keys (a list, str or number raises TypeError)
    except (KeyError, TypeError):
        if default is _MISSING:
            raise Invalid(f"missing {path}") from None
        return default
    return cur


_PATHS: dict[str, tuple[str, ...]] = {}  # a mapper's paths, split once


def text(rec: Any, path: str, *, required: bool = False) -> str | None:
    v = get(rec, path, _MISSING if required else None)
    if type(v) is str and (v or not required):
        return v
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


def _amount(rec: Any, path: str, required: bool, types: tuple[type, ...], want: str) -> tuple[Decimal | None, str | None]:
    v = get(rec, path, _MISSING if required else None)
    if v is None:
        if required:
            raise Invalid(f"missing {path}")
        return None, None
    if not isinstance(v, dict):
        raise Invalid(f"{path} should be an amount object, got {type(v).__name__}")
    raw, cur = v.get("value"), v.get("currency")
    if raw is None:
        return None, (str(cur) if cur is not None else None)
    if isinstance(raw, bool) or not isinstance(raw, types):
        raise Invalid(f"{path}.value should be {want}, got {type(raw).__name__}")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise Invalid(f"{path}.value is not a number: {str(raw)[:20]!r}") from None
    if not amount.is_finite():
        raise Invalid(f"{path}.value is not finite")
    return amount, (str(cur) if cur is not None else None)


def money(rec: Any, path: str, *, required: bool = False) -> tuple[Decimal | None, str | None]:
    """eBay amounts are {"value": "12.34", "currency": "USD"}: numeric + currency, never float."""
    return _amount(rec, path, required, (str, int), "a decimal string")


def po_ts(rec: Any, path: str, *, required: bool = False) -> datetime | None:
    """A Post-Order DateTime: ``{"value": "2015-05-15T03:52:39.000Z", "formattedValue": ...}`` (PO types
    DateTime); a plain ISO string is read too."""
    v = get(rec, path, _MISSING if required else None)
    if isinstance(v, dict):
        return ts(v, "value", required=required)
    if v is None or isinstance(v, str):
        return ts(rec, path, required=required)
    raise Invalid(f"{path} should be a DateTime object, got {type(v).__name__}")


def po_money(rec: Any, path: str, *, required: bool = False) -> tuple[Decimal | None, str | None]:
    """A Post-Order Amount: ``{"value": 12.34, "currency": "USD"}`` with ``value`` a JSON *number* (PO types
    Amount), read exactly as written (``Decimal(str(v))``: 12.3 -> Decimal("12.3")); bools, NaN and
    infinities are refused (a decimal string is accepted too)."""
    return _amount(rec, path, required, (int, float, str), "a number")


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


@dataclass
class StreamPage:
    """One page a stream hands to the page writer.

    ``records``: eBay's records as sent; ``position``: the checkpoint after this page (JSON; ``None`` for
    records without a position, e.g. re-fetched open disputes: they are written without moving the
    checkpoint); ``cursor``: set when the stream is complete up to that time; ``windows_done/total``:
    progress; ``snapshot``: the records belong to a full listing, so the writer collects their
    ``absent_by`` values (kept in the position as ``seen`` until the listing completes); ``mark_absent``:
    the listing is complete, stored rows whose ``absent_by`` was not collected get ``absent_col`` set, in
    the same transaction as this page; ``clear_backfill``: the plan of a requested backfill is done."""

    records: Sequence[Any]
    position: dict[str, Any] | None
    cursor: datetime | None = None
    windows_done: int | None = None
    windows_total: int | None = None
    snapshot: bool = False
    mark_absent: bool = False
    clear_backfill: bool = False


class StreamContext(Protocol):
    """What a stream's ``fetch``/``refetch`` may use of its run (sync_core.runner.Run implements it)."""

    client: "EbayClient"
    claim: Any  # coordination.Claim: checkpoint, cursor, kind, backfill_since, account
    settings: Any  # config.Settings
    stream: "Stream"
    now: datetime
    plan_start: datetime | None

    @property
    def stop_requested(self) -> bool: ...

    def page_size(self) -> int: ...

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None: ...

    async def read(self, query: Callable[..., Awaitable[Any]], **params: Any) -> Any: ...


FetchWindow = Callable[["EbayClient", Window, "str | None", int], AsyncGenerator["Page", None]]
FetchAll = Callable[["EbayClient", "str | None", int], AsyncGenerator["Page", None]]
Fetch = Callable[[StreamContext], AsyncGenerator[StreamPage, None]]

SCOPE_PREFIX = "https://api.ebay.com/oauth/api_scope"
DEFAULT_INTERVAL_S = 900


@dataclass
class Stream:
    name: str
    table: sa.Table
    key: tuple[str, ...]  # conflict key columns, account_id first
    map: Callable[[dict[str, Any]], dict[str, Any]]  # record -> extracted columns (no account_id/raw/hash)
    scopes: tuple[str, ...]  # OAuth scopes (short names under SCOPE_PREFIX; docs/ebay-api.md "Scopes per stream")
    max_page_size: int  # the endpoint's page maximum (0: not paged); the client's limit reads it
    mode: str = "windowed"  # windowed | full | custom
    fetch_window: FetchWindow | None = None
    fetch_all: FetchAll | None = None
    fetch: Fetch | None = None
    refetch: Fetch | None = None  # after the windows: position-less pages (records re-read by id)
    max_window: timedelta = timedelta(days=30)
    max_history_days: int | None = None  # what eBay serves, e.g. disputes 18 months
    rescan_days: int = 0  # re-read this trailing slice on every run (finances: status changes later)
    interval_s: int = DEFAULT_INTERVAL_S  # default seconds between incremental runs (config may override)
    children: tuple[Child, ...] = ()
    extra_tables: tuple[sa.Table, ...] = field(default=())
    raw_exclude: tuple[str, ...] = ()  # keys added by the reader (e.g. fetched children), not part of the payload
    absent_col: str | None = None  # snapshot streams: "gone since" column set for keys absent from a full listing
    absent_by: str | None = None  # the column a listing is complete over (default: the key's second column)

    @property
    def absent_key(self) -> str:
        return self.absent_by or self.key[1]

    @property
    def scope_urls(self) -> tuple[str, ...]:
        return tuple(f"{SCOPE_PREFIX}/{s}" for s in self.scopes)

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
