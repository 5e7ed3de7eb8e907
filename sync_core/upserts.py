"""Batched, set-based writes of stream rows: the only module that upserts stream data.

One page = one ``INSERT ... SELECT FROM unnest(<typed arrays>) ON CONFLICT (key) DO UPDATE ... WHERE
the payload hash differs``: one statement and one round trip whatever the page size, no per-row loop,
a stable statement text (plan cached) and rows whose content did not change are left untouched (no
dead tuples, no WAL). ``RETURNING (xmax = 0)`` tells inserted from updated; the rest were unchanged.

Child rows (order line items, conversation messages) of parents that were inserted or changed are
replaced in the same transaction: one DELETE and one INSERT per page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

_PG = postgresql.dialect()
_SKIP_ON_WRITE = {"first_seen_at", "synced_at"}


def payload_bytes(record: Any) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


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


_CACHE: dict[tuple, sa.TextClause] = {}


def upsert_sql(table: sa.Table, key: Sequence[str], reactivate: str | None = None) -> sa.TextClause:
    ck = (table.name, tuple(key), reactivate)
    if ck in _CACHE:
        return _CACHE[ck]
    cols = _writable(table)
    names = [c.name for c in cols]
    arrays = ", ".join(f"cast(:c_{c.name} as {_array_type(c)})" for c in cols)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in key)
    where = f"{table.name}.payload_hash is distinct from excluded.payload_hash"
    if reactivate:
        where += f" or {table.name}.{reactivate} is not null"
    sql = (f"insert into {table.name} ({', '.join(names)}) select * from unnest({arrays}) "
           f"on conflict ({', '.join(key)}) do update set {updates}, synced_at = now() where {where} "
           f"returning (xmax = 0) as inserted, {', '.join(key)}")
    _CACHE[ck] = sa.text(sql)
    return _CACHE[ck]


def insert_sql(table: sa.Table) -> sa.TextClause:
    ck = (table.name, "insert")
    if ck not in _CACHE:
        cols = _writable(table)
        arrays = ", ".join(f"cast(:c_{c.name} as {_array_type(c)})" for c in cols)
        _CACHE[ck] = sa.text(f"insert into {table.name} ({', '.join(c.name for c in cols)}) select * from unnest({arrays})")
    return _CACHE[ck]


def _params(table: sa.Table, rows: Sequence[dict[str, Any]]) -> dict[str, list]:
    out: dict[str, list] = {}
    for c in _writable(table):
        vals = [r.get(c.name) for r in rows]
        if isinstance(c.type, postgresql.JSONB):
            vals = [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in vals]
        out[f"c_{c.name}"] = vals
    return out


async def upsert(conn: AsyncConnection, table: sa.Table, key: Sequence[str], rows: Sequence[dict[str, Any]], *,
                 reactivate: str | None = None) -> UpsertResult:
    """Insert or update ``rows`` (dicts of column values incl. ``raw`` and ``payload_hash``) in one statement.

    Rows with the same key within the batch are collapsed (last wins): ON CONFLICT cannot touch a row twice.
    ``reactivate``: a nullable "gone since" column to clear when a row shows up again."""
    if not rows:
        return UpsertResult()
    dedup: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        dedup[tuple(r[k] for k in key)] = r
    batch = list(dedup.values())
    if reactivate:
        for r in batch:
            r.setdefault(reactivate, None)
    res = (await conn.execute(upsert_sql(table, key, reactivate), _params(table, batch))).all()
    out = UpsertResult(unchanged=len(batch) - len(res))
    for r in res:
        if r[0]:
            out.inserted += 1
        else:
            out.updated += 1
        out.changed_keys.append(tuple(r[1:]))
    return out


async def replace_children(conn: AsyncConnection, table: sa.Table, account_id: int, parent_col: str,
                           parent_ids: Sequence[Any], rows: Sequence[dict[str, Any]]) -> int:
    """Delete the children of ``parent_ids`` and insert ``rows`` (two statements for the whole page)."""
    if not parent_ids:
        return 0
    await conn.execute(sa.text(f"delete from {table.name} where account_id = :a and {parent_col} = any(:ids)"),
                       dict(a=account_id, ids=list(parent_ids)))
    if rows:
        await conn.execute(insert_sql(table), _params(table, rows))
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
        dict(run=run_id, a=account_id, s=stream, keys=[b[0] for b in bad], reasons=[b[1] for b in bad],
             payloads=[payload_bytes(b[2]).decode() for b in bad]))
    return len(bad)
