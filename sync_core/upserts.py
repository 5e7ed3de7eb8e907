"""Batched, set-based writes of stream rows: the only module that upserts stream data.

A page of rows is written in a constant number of statements, whatever its size (no per-row loop):

* **probe**: one query sends only the page's keys and payload hashes and returns which keys are stored and
  whether their hash is equal (one index probe per key);
* **all new** (a backfill, new orders): one ``COPY table FROM STDIN`` of the page, under a savepoint; a
  unique violation (another writer got there first) rolls back to it and the page takes the next path.
  When the caller's previous page was all new (``expect_new``), the COPY is tried before any probe;
* **otherwise**: rows stored with the same hash are dropped on the client (a re-sync of unchanged data sends
  keys and hashes only and writes nothing), the rest go through ONE ``INSERT ... SELECT FROM ROWS FROM
  (unnest(<typed arrays>), json_array_elements(<payloads>)) ON CONFLICT (key) DO UPDATE ... WHERE the
  payload hash differs``; ``RETURNING (xmax = 0)`` tells inserted from updated.

How the rows travel (measured by ``python -m bench.upsert``, see docs/performance.md):

* COPY text is built with str and bytes operations (:func:`_copy_data`): about half the client time of psycopg's
  ``write_row`` per row;
* for the statement, every non-json column is one array literal built with str operations
  (:func:`_array_literal`): psycopg's list dumper adapts each element in Python and escapes each double
  quote with a Python-level ``re.sub``; on ~1 KB JSON payloads that alone was over 90% of the time;
* json columns (the raw payload) travel as ONE json array, ``"[" + ",".join(payloads) + "]"``: no
  escaping at all on the client, and the server only validates it as ``json`` (no tree is built).

Child rows (order line items, conversation messages) of parents that were inserted or changed are
replaced in the same transaction: one DELETE and one COPY per page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Iterable, Sequence, cast

import orjson
import sqlalchemy as sa
from psycopg.errors import UniqueViolation
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

_PG = postgresql.dialect()
_SKIP_ON_WRITE = {"first_seen_at", "synced_at"}


def payload_bytes(record: Any) -> bytes:
    """The record as canonical JSON (keys sorted): what is stored as ``raw`` and hashed. A record decoded
    from JSON has only str keys; serialising with ``OPT_NON_STR_KEYS`` costs half again as much on every
    record (3-4 us of ~7 per order), so it is only the fallback for a dict with other keys (same bytes)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def without_nul(obj: Any) -> Any:
    """``obj`` with every NUL character in its strings (keys too) replaced by U+FFFD: PostgreSQL's text and
    jsonb types cannot store NUL, and one such record must not fail its whole page."""
    if isinstance(obj, str):
        return obj.replace("\x00", "\ufffd")
    if isinstance(obj, dict):
        return {without_nul(k): without_nul(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [without_nul(v) for v in obj]
    return obj


def payload_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_keys: list[tuple] = field(default_factory=list)

    def add(self, other: "UpsertResult") -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.changed_keys.extend(other.changed_keys)


def _array_type(col: sa.Column) -> str:
    t = col.type.compile(dialect=_PG)
    return f"{t}[]"


def _writable(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.columns if c.name not in _SKIP_ON_WRITE]


def _is_json(col: sa.Column) -> bool:
    return isinstance(col.type, (postgresql.JSONB, postgresql.JSON, sa.JSON))


_CACHE: dict[tuple, Any] = {}


def _source(cols: Sequence[sa.Column], json_as_array: bool) -> tuple[str, str]:
    """(FROM clause yielding one row per record as ``s(<columns>)``, projection of ``s`` onto the columns).

    ``json_as_array``: json columns arrive as one json array each (``json_array_elements``, zipped with the
    unnest()s by ROWS FROM); otherwise (a page with a NULL json value) as text[] like the others. Either
    way the jsonb parse happens in the projection, so rows filtered out before it are never parsed."""
    funcs = []
    for c in cols:
        if _is_json(c):
            funcs.append(f"json_array_elements(cast(:c_{c.name} as json))" if json_as_array
                         else f"unnest(cast(:c_{c.name} as text[]))")
        else:
            funcs.append(f"unnest(cast(:c_{c.name} as {_array_type(c)}))")
    src = f"rows from ({', '.join(funcs)}) as s({', '.join(c.name for c in cols)})"
    proj = ", ".join(f"cast(s.{c.name} as {c.type.compile(dialect=_PG)})" if _is_json(c) else f"s.{c.name}"
                     for c in cols)
    return src, proj


def upsert_sql(table: sa.Table, key: Sequence[str], reactivate: str | None = None, *,
               json_as_array: bool = True) -> sa.TextClause:
    ck = (table.name, tuple(key), reactivate, json_as_array)
    if ck in _CACHE:
        return _CACHE[ck]
    cols = _writable(table)
    names = [c.name for c in cols]
    src, proj = _source(cols, json_as_array)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in key)
    where = f"{table.name}.payload_hash is distinct from excluded.payload_hash"
    if reactivate:
        where += f" or {table.name}.{reactivate} is not null"
    # Rows stored with the same hash (and nothing to reactivate) are dropped before the projection: no
    # jsonb parse, no speculative insertion, no conflict handling for them (the re-sync path). The ON
    # CONFLICT ... WHERE still guards rows changed by someone else in between.
    same = " and ".join([*(f"t.{k} = s.{k}" for k in key), "t.payload_hash = s.payload_hash",
                         *([f"t.{reactivate} is null"] if reactivate else [])])
    sql = (f"insert into {table.name} ({', '.join(names)}) select {proj} from {src} "
           f"where not exists (select 1 from {table.name} t where {same}) "
           f"on conflict ({', '.join(key)}) do update set {updates}, synced_at = now() where {where} "
           f"returning (xmax = 0) as inserted, {', '.join(key)}")
    _CACHE[ck] = sa.text(sql)
    return _CACHE[ck]


def _json_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode()
    return orjson.dumps(v).decode()


def _literal(v: Any) -> str:
    """One element of a PostgreSQL array literal; the server parses it with the column type's input
    function, as it parsed psycopg's text-format arrays before."""
    if v is None:
        return "NULL"
    if isinstance(v, str):
        s = v
    elif isinstance(v, bool):
        return "t" if v else "f"
    elif isinstance(v, (int, Decimal)):
        return str(v)
    elif isinstance(v, (datetime, date, time)):
        return '"' + v.isoformat() + '"'
    elif isinstance(v, (bytes, bytearray, memoryview)):
        return '"\\\\x' + bytes(v).hex() + '"'
    elif isinstance(v, (dict, list)):
        s = orjson.dumps(v).decode()
    else:  # float and anything else: its str()
        s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array_literal(vals: Iterable[Any]) -> str:
    """A PostgreSQL array literal built with str operations (C speed)."""
    return "{" + ",".join(map(_literal, vals)) + "}"


def _params(table: sa.Table, rows: Sequence[dict[str, Any]]) -> tuple[dict[str, str], bool]:
    """(parameters, json_as_array): one string per column."""
    cols = _writable(table)
    json_vals = {c.name: [r.get(c.name) for r in rows] for c in cols if _is_json(c)}
    as_array = all(v is not None for vals in json_vals.values() for v in vals)
    out: dict[str, str] = {}
    for c in cols:
        if c.name in json_vals:
            texts = [None if v is None else _json_text(v) for v in json_vals[c.name]]
            out[f"c_{c.name}"] = "[" + ",".join(cast("list[str]", texts)) + "]" if as_array else _array_literal(texts)
        else:
            out[f"c_{c.name}"] = _array_literal([r.get(c.name) for r in rows])
    return out, as_array


# Pages smaller than this go through the statement directly: the probe's round trip would not pay off.
COPY_MIN_ROWS = 20


def _probe_sql(table: sa.Table, key: Sequence[str], reactivate: str | None) -> sa.TextClause:
    ck = (table.name, tuple(key), reactivate, "probe")
    if ck not in _CACHE:
        cols = {c.name: c for c in table.columns}
        funcs = ", ".join([*(f"unnest(cast(:k_{k} as {_array_type(cols[k])}))" for k in key),
                           "unnest(cast(:hashes as bytea[]))"])
        cond = " and ".join(f"t.{k} = n.{k}" for k in key)
        same = "t.payload_hash = n.h" + (f" and t.{reactivate} is null" if reactivate else "")
        # One primary-key lookup per key whatever the table's statistics say (a freshly filled table may
        # look empty to the planner, which would then hash-join a full scan): LIMIT keeps the LATERAL
        # subquery from being flattened into a join the planner could reorder.
        _CACHE[ck] = sa.text(f"select n.i, t.same from rows from ({funcs}) with ordinality as n({', '.join(key)}, h, i) "
                             f"cross join lateral (select {same} as same from {table.name} t where {cond} limit 1) t")
    return _CACHE[ck]


async def _stored(conn: AsyncConnection, table: sa.Table, key: Sequence[str], rows: Sequence[dict[str, Any]],
                  reactivate: str | None) -> dict[int, bool]:
    """{index in ``rows``: stored unchanged?} for the rows whose key is already stored: one index probe per
    key, only keys and hashes travel."""
    params = {f"k_{k}": _array_literal([r[k] for r in rows]) for k in key}
    params["hashes"] = _array_literal([r["payload_hash"] for r in rows])
    return {i - 1: bool(same) for i, same in await conn.execute(_probe_sql(table, key, reactivate), params)}


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_str(v: str) -> str:
    return v.translate(_COPY_ESCAPES) if ("\\" in v or "\t" in v or "\n" in v or "\r" in v) else v


def _copy_other(v: Any) -> str:
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\\\x" + bytes(v).hex()
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return _copy_str(orjson.dumps(v).decode())
    return _copy_str(str(v))


# COPY text format of one value by its exact type (a dict lookup, not an isinstance chain, per value)
_COPY_FORMAT: dict[type, Any] = {
    str: _copy_str, int: str, Decimal: str, float: repr, bool: _copy_other, type(None): lambda v: "\\N",
    datetime: datetime.isoformat, date: date.isoformat, bytes: lambda v: "\\\\x" + v.hex(),
}


def _json_bytes(v: Any) -> bytes:
    """A JSON value as UTF-8 JSON bytes: bytes as they are, text encoded, anything else serialised."""
    if type(v) is bytes:
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    return orjson.dumps(v)


def _copy_json(b: bytes) -> bytes:
    """JSON bytes escaped for COPY's text format. orjson's output has no raw tab, newline or CR (it escapes
    them inside strings and writes no whitespace), so usually only backslashes are doubled: one C call."""
    if b"\\" in b:
        b = b.replace(b"\\", b"\\\\")
    if b"\t" in b or b"\n" in b or b"\r" in b:  # JSON text from elsewhere may have whitespace between tokens
        b = b.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return b


def _copy_data(names: Sequence[str], json_idx: Sequence[int], rows: Sequence[dict[str, Any]]) -> bytes:
    """Rows in COPY's text format as UTF-8 bytes, built with str and bytes operations (about half the time
    of formatting them with ``write_row``). Values at ``json_idx`` are JSON (UTF-8 bytes, text or a
    dict/list) and stay bytes: the payload, most of a row, is never decoded, scanned per character or
    encoded again. The other columns of a row are joined as text and encoded once per run of columns."""
    fmt, other = _COPY_FORMAT, _copy_other
    segments: list[list[bytes]] = []  # runs of text columns and single JSON columns, in column order
    run: list[list[str]] = []

    def end_run() -> None:
        if run:
            segments.append(["\t".join(t).encode() for t in zip(*run)] if len(run) > 1 else
                            [v.encode() for v in run[0]])
            run.clear()

    for i, n in enumerate(names):  # column by column: a quarter less time than row by row
        vals = [r.get(n) for r in rows]
        if i in json_idx:
            end_run()
            segments.append([b"\\N" if v is None else _copy_json(_json_bytes(v)) for v in vals])
        else:
            run.append([fmt.get(type(v), other)(v) for v in vals])
    end_run()
    return b"\n".join([b"\t".join(t) for t in zip(*segments)]) + b"\n"


def copy_data(table: sa.Table, rows: Sequence[dict[str, Any]]) -> bytes:
    """``rows`` of ``table`` as the data of :func:`_copy_rows`'s COPY (the writer formats a backfill's pages
    with it right after mapping them and hands the chunks to :func:`upsert`)."""
    cols = _writable(table)
    return _copy_data([c.name for c in cols], [i for i, c in enumerate(cols) if _is_json(c)], rows)


async def _copy_rows(conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]],
                     formatted: Sequence[bytes] | None = None) -> None:
    """``COPY table FROM STDIN`` of ``rows`` in ``conn``'s transaction (``formatted``: those rows already
    formatted by :func:`copy_data`, in chunks). Columns left out get their defaults, as with the INSERT
    statements."""
    names = [c.name for c in _writable(table)]
    raw = (await conn.get_raw_connection()).driver_connection  # same session and transaction as conn
    assert raw is not None
    async with raw.cursor() as cur:
        async with cur.copy(f"copy {table.name} ({', '.join(names)}) from stdin") as cp:
            for chunk in formatted if formatted is not None else (copy_data(table, rows),):
                await cp.write(chunk)  # chunk by chunk: no second copy of a write's data in memory


async def _copy_new(conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]],
                    formatted: Sequence[bytes] | None = None) -> bool:
    """COPY rows believed new straight into the table, under a savepoint: False (and nothing written) if one
    of them is stored after all (a unique violation: another writer, or a wrong guess)."""
    try:
        async with conn.begin_nested():
            await _copy_rows(conn, table, rows, formatted)
    except UniqueViolation:
        return False
    return True


async def upsert(conn: AsyncConnection, table: sa.Table, key: Sequence[str], rows: Sequence[dict[str, Any]], *,
                 reactivate: str | None = None, expect_new: bool = False,
                 formatted: Sequence[bytes] | None = None) -> UpsertResult:
    """Insert or update ``rows`` (dicts of column values incl. ``raw`` and ``payload_hash``), a page at a time.

    Pages of at least COPY_MIN_ROWS rows: one probe of keys and hashes; if no key is stored, one COPY (under a
    savepoint); otherwise the rows stored unchanged are dropped and the rest go through one
    ``INSERT ... ON CONFLICT DO UPDATE`` statement. ``expect_new`` (the caller's previous page was all new,
    as in a backfill) skips the probe and tries the COPY first; a unique violation rolls it back and the
    page takes the probe path. Either way the result is the same.

    Rows with the same key within the batch are collapsed (last wins): ON CONFLICT cannot touch a row twice.
    ``reactivate``: a nullable "gone since" column to clear when a row shows up again.
    A json column's value may be JSON text (str), UTF-8 JSON bytes (passed through) or a dict/list.
    ``formatted``: ``rows`` already formatted for COPY (:func:`copy_data`, in chunks), used if the page is
    written by COPY and no key repeats."""
    if not rows:
        return UpsertResult()
    dedup: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        dedup[tuple(r[k] for k in key)] = r
    batch = list(dedup.values())
    chunks = formatted if len(batch) == len(rows) else None
    if reactivate:
        for r in batch:
            r.setdefault(reactivate, None)
    unchanged = 0
    if len(batch) >= COPY_MIN_ROWS:
        if expect_new and await _copy_new(conn, table, batch, chunks):
            return UpsertResult(inserted=len(batch), changed_keys=[tuple(r[k] for k in key) for r in batch])
        stored = await _stored(conn, table, key, batch, reactivate)
        if not stored and await _copy_new(conn, table, batch, chunks):
            return UpsertResult(inserted=len(batch), changed_keys=[tuple(r[k] for k in key) for r in batch])
        # Rows stored with the same hash need nothing: only the others travel (a re-sync sends keys and hashes
        # only). The statement's own guards still cover rows changed by someone else meanwhile.
        keep = [r for i, r in enumerate(batch) if not stored.get(i)]
        unchanged = len(batch) - len(keep)
        batch = keep
        if not batch:
            return UpsertResult(unchanged=unchanged)
    params, as_array = _params(table, batch)
    res = (await conn.execute(upsert_sql(table, key, reactivate, json_as_array=as_array), params)).all()
    out = UpsertResult(unchanged=unchanged + len(batch) - len(res))
    for row in res:
        if row[0]:
            out.inserted += 1
        else:
            out.updated += 1
        out.changed_keys.append(tuple(row[1:]))
    return out


async def replace_children(conn: AsyncConnection, table: sa.Table, account_id: int, parent_col: str,
                           parent_ids: Sequence[Any], rows: Sequence[dict[str, Any]], *,
                           formatted: Sequence[bytes] | None = None) -> int:
    """Delete the children of ``parent_ids`` and insert ``rows`` (two statements for the whole page;
    ``formatted``: ``rows`` already formatted, see :func:`upsert`)."""
    if not parent_ids:
        return 0
    await conn.execute(sa.text(f"delete from {table.name} where account_id = :a and {parent_col} = any(:ids)"),
                       dict(a=account_id, ids=list(parent_ids)))
    if rows:
        await _copy_rows(conn, table, rows, formatted)
    return len(rows)


async def mark_absent(conn: AsyncConnection, table: sa.Table, account_id: int, key_col: str, present: Iterable[Any],
                      flag_col: str, *, where: str = "") -> int:
    """Set ``flag_col = now()`` on this account's rows whose key is not in ``present`` (snapshot streams:
    inventory items deleted, offers of vanished SKUs ended, listings gone from the active report)."""
    res = await conn.execute(sa.text(
        f"update {table.name} set {flag_col} = now(), synced_at = now() where account_id = :a and {flag_col} is null "
        f"and not ({key_col} = any(:present)) {where}"), dict(a=account_id, present=list(present)))
    return res.rowcount or 0


async def quarantine(conn: AsyncConnection, run_id: int, account_id: int, stream: str,
                     bad: Sequence[tuple[str | None, str, Any]]) -> int:
    """Store malformed records (key, reason, payload) in one statement."""
    if not bad:
        return 0
    await conn.execute(sa.text("""
        insert into quarantine (run_id, account_id, stream, record_key, reason, payload)
        select :run, :a, :s, k, r, cast(p as jsonb)
        from unnest(cast(:keys as text[]), cast(:reasons as text[]), cast(:payloads as text[])) as q(k, r, p)"""),
        dict(run=run_id, a=account_id, s=stream, keys=_array_literal(without_nul(b[0]) for b in bad),
             reasons=_array_literal(without_nul(b[1]) for b in bad),
             payloads=_array_literal(payload_bytes(without_nul(b[2])).decode() for b in bad)))
    return len(bad)
