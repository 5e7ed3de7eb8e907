"""Paging primitives shared by the eBay endpoints: :class:`Page`, timestamp/window helpers, URL building.

eBay pages its collections with ``limit``/``offset`` and returns ``next`` (a full URI) until the last page.
``offset`` is a record offset for Fulfillment, Finances, payment disputes, Message and Feed lists, and a
**page index** for the Inventory API.  The client always follows ``next`` when present; only when eBay
omits it on a full page while ``total`` says more records exist is the next URL computed here.

A caller checkpoints ``page.next_url`` after storing ``page.records`` and later resumes an iterator with
``resume_url=<that url>``.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncGenerator, Callable, Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# payment disputes (spec), finances (unverified): docs/ebay-api.md, "Filters, windows and date formats"
MAX_WINDOW_DAYS = 90
MAX_WINDOW_REREADS = 3  # re-reads of a window whose result set moved while it was paged


@dataclass
class Page:
    """One page of an eBay collection.

    ``records``: the items (dicts as eBay sent them); ``total``: eBay's total for the whole query (None if
    not sent); ``url``: the URL this page came from; ``next_url``: where the next page is (None = last
    page) -- checkpoint it and pass it as ``resume_url`` to continue later.
    """

    records: list[dict[str, Any]]
    total: int | None
    url: str
    next_url: str | None
    offset: int | None = None
    limit: int | None = None
    status: int = 200
    warnings: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] | None = field(default=None, repr=False)  # the body without the records list

    @property
    def is_last(self) -> bool:
        return self.next_url is None

    def __len__(self) -> int:
        return len(self.records)


def format_ts(dt: datetime) -> str:
    """eBay timestamp ``YYYY-MM-DDTHH:MM:SS.sssZ`` (UTC, milliseconds).  Naive datetimes are rejected."""
    if not isinstance(dt, datetime):
        raise TypeError(f"expected a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("naive datetime: pass a timezone-aware (UTC) datetime")
    u = dt.astimezone(timezone.utc)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def check_window(start: datetime, end: datetime | None, *, max_days: int | None = MAX_WINDOW_DAYS,
                 what: str = "window") -> None:
    """ValueError when ``end`` < ``start`` or the window is longer than ``max_days``."""
    format_ts(start)
    if end is None:
        return
    format_ts(end)
    if end < start:
        raise ValueError(f"{what}: end {format_ts(end)} is before start {format_ts(start)}")
    if max_days is not None and end - start > timedelta(days=max_days):
        raise ValueError(f"{what}: {format_ts(start)}..{format_ts(end)} is longer than eBay's {max_days}-day maximum; "
                         f"split it into windows of at most {max_days} days")


def range_filter(field_name: str, start: datetime | None, end: datetime | None) -> str:
    """``field:[start..end]`` (either end may be open).  Brackets are percent-encoded by :func:`build_query`."""
    a = format_ts(start) if start is not None else ""
    b = format_ts(end) if end is not None else ""
    return f"{field_name}:[{a}..{b}]"


def parse_range_filter(url: str, field_name: str) -> tuple[datetime, datetime] | None:
    """The (start, end) of the ``field:[start..end]`` filter in ``url``, as :func:`range_filter` writes it;
    None if ``url`` has none, or an open or malformed one."""
    f = dict(parse_qsl(urlsplit(url).query)).get("filter", "")
    _, found, rest = f.partition(f"{field_name}:[")
    a, dots, rest = rest.partition("..")
    b, closed, _ = rest.partition("]")
    if not (found and dots and closed and a and b):
        return None
    try:
        return (datetime.fromisoformat(a.replace("Z", "+00:00")), datetime.fromisoformat(b.replace("Z", "+00:00")))
    except ValueError:
        return None


def build_query(params: Iterable[tuple[str, Any]] | dict[str, Any]) -> str:
    """A query string; ``[ ] { | }`` and spaces percent-encoded, ``:`` and ``,`` kept (eBay's examples)."""
    items = params.items() if isinstance(params, dict) else params
    clean = [(k, str(v)) for k, v in items if v is not None]
    return urlencode(clean, quote_via=quote, safe=":,")


def build_url(base: str, path: str, params: Iterable[tuple[str, Any]] | dict[str, Any] | None = None) -> str:
    q = build_query(params or [])
    return f"{base.rstrip('/')}{path}" + (f"?{q}" if q else "")


def query_int(url: str, name: str) -> int | None:
    for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if k == name:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def with_query_param(url: str, name: str, value: Any) -> str:
    """``url`` with parameter ``name`` set to ``value`` (other parameters keep their raw encoding)."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != name]
    kept.append(f"{name}={quote(str(value), safe='')}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def computed_next_url(url: str, body: dict[str, Any], n_records: int, *, page_index: bool) -> str | None:
    """The next page's URL when eBay sent no ``next`` but ``total`` says more exist after a full page."""
    total = body.get("total")
    limit = body.get("limit") if isinstance(body.get("limit"), int) else query_int(url, "limit")
    offset = body.get("offset")
    if not isinstance(offset, int):
        offset = query_int(url, "offset") or 0
    if not isinstance(total, int) or not limit or n_records < limit:
        return None
    if page_index:
        consumed = (offset + 1) * limit
        nxt = offset + 1
    else:
        consumed = offset + n_records
        nxt = consumed
    if consumed >= total:
        return None
    return with_query_param(url, "offset", nxt)


async def reread_on_drift(open_pages: Callable[[str | None], AsyncGenerator[Page, None]], resume_url: str | None,
                          key_field: str, *, on_drift: Callable[[str, int], None],
                          max_rereads: int = MAX_WINDOW_REREADS) -> AsyncGenerator[Page, None]:
    """Pages of an offset-paged, filtered query, re-read from offset 0 when the result set moved meanwhile.

    eBay pages by record offset over a live result set (getOrders: ``offset`` "the number of orders to skip
    in the result set", ``total`` "based on the current input criteria" -- sell_fulfillment_v1_oas3.json).
    A record that leaves the filter while it is paged (an order modified after its lastmodifieddate window
    ends) shifts every later offset down, so a record is skipped without any error.  Detected as: ``total``
    differs from the first page's, or the last page arrives with fewer distinct ``key_field`` values than
    ``total`` minus the starting offset.  The page that shows it is still yielded (storing it is harmless:
    upserts) but with ``next_url`` = the query at offset 0, so a checkpoint taken then re-reads the whole
    window.  After ``max_rereads`` re-reads :class:`~sync_core.ebay.errors.EbayPagingDrift` is raised.

    Across a restart: every yielded ``next_url`` carries the first page's ``total`` in its fragment
    (``#total=N``; a fragment is never sent), so a run resumed from a checkpointed URL compares the totals it
    now reads with the one the window started with: a record that left the window while the run was down
    (a kill -9 between two pages) is detected the same way and the window re-read.
    """
    from .errors import EbayPagingDrift

    url, rereads = resume_url, 0
    resumed_total: int | None = None
    if url and "#" in url:
        url, frag = url.split("#", 1)
        t = dict(parse_qsl(frag)).get("total")
        resumed_total = int(t) if t and t.isdigit() else None
    while True:
        start = (query_int(url, "offset") or 0) if url else 0
        first_total, resumed_total = resumed_total, None
        keys: set[str] = set()
        unkeyed = 0
        drift = None
        async with aclosing(open_pages(url)) as pages:
            async for page in pages:
                for rec in page.records:
                    k = rec.get(key_field) if isinstance(rec, dict) else None
                    if isinstance(k, str) and k:
                        keys.add(k)
                    else:
                        unkeyed += 1  # malformed: counted, quarantined by the runner
                if page.total is not None:
                    if first_total is None:
                        first_total = page.total
                    elif page.total != first_total:
                        drift = f"total changed from {first_total} to {page.total} between pages"
                if drift is None and page.is_last and first_total is not None \
                        and len(keys) + unkeyed < first_total - start:
                    drift = f"{len(keys) + unkeyed} distinct records read where total promised {first_total - start}"
                if drift is None:
                    if page.next_url and first_total is not None:
                        page = replace(page, next_url=f"{page.next_url}#total={first_total}")
                    yield page
                    continue
                if rereads >= max_rereads:
                    raise EbayPagingDrift(None, None, None,
                                          f"the window's results kept changing while paged ({drift}) after "
                                          f"{rereads} re-read(s); the window is not marked done and is read "
                                          f"again by the next run")
                rereads += 1
                on_drift(drift, rereads)
                url = with_query_param(page.url, "offset", 0)
                yield replace(page, next_url=url)
                break
            else:
                return
