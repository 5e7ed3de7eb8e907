"""`baysync status` / `doctor`: a read-only picture of the database, the schema and every stream."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from . import __version__, db, migrate
from .config import Settings, redact_url


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def gather(settings: Settings, *, start_embedded: bool = True) -> dict[str, Any]:
    """The stable `status --json` object."""
    out: dict[str, Any] = {
        "version": __version__,
        "database": {"url": "", "reachable": False, "revision": None, "head": migrate.head(), "embedded": settings.embedded},
        "accounts": [],
    }
    try:
        url = db.database_url(settings, start_embedded=start_embedded)
    except db.DatabaseFatal as e:
        out["database"]["error"] = str(e)
        return out
    out["database"]["url"] = redact_url(url) if url else ""
    if not url:
        out["database"]["error"] = "embedded server not running (baysync db start)"
        return out
    engine = db.make_engine(settings, "cli", url)
    try:
        with engine.connect() as conn:
            out["database"]["reachable"] = True
            rev = migrate.current_revision(conn)
            out["database"]["revision"] = rev
            if rev is not None and not migrate.is_known(rev):
                out["database"]["schema_error"] = str(migrate.SchemaUnknown(rev, out["database"]["head"]))
            if rev == out["database"]["head"]:
                out["accounts"] = _accounts(conn)
    except Exception as e:  # unreachable: report, don't raise (status must always answer)
        out["database"]["error"] = db.describe(e)
    finally:
        engine.dispose()
    return out


def _accounts(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.text("""
        select a.id, a.name, a.status as account_status, a.paused as account_paused,
               s.stream, s.status, s.cursor, s.records_total, s.last_error, s.last_success_at, s.paused,
               s.lease_owner, s.windows_done, s.windows_total,
               r.id as run_id, r.status as run_status, r.kind as run_kind, r.started_at, r.finished_at,
               r.records_inserted, r.records_updated, r.records_unchanged, r.records_quarantined,
               r.api_calls, r.error as run_error
        from accounts a
        left join sync_state s on s.account_id = a.id
        left join lateral (select * from sync_runs r where r.account_id = a.id and r.stream = s.stream
                           order by r.id desc limit 1) r on true
        order by a.name, s.stream""")).mappings().all()
    now = datetime.now(timezone.utc)
    accounts: dict[str, dict[str, Any]] = {}
    for r in rows:
        acc = accounts.setdefault(r["name"], {"name": r["name"], "status": r["account_status"],
                                             "reauth_needed": r["account_status"] == "reauth_needed",
                                             "paused": r["account_paused"], "streams": []})
        if r["stream"] is None:
            continue
        last_run = None
        if r["run_id"] is not None:
            last_run = {k: _iso(r[k2]) for k, k2 in (
                ("id", "run_id"), ("status", "run_status"), ("kind", "run_kind"), ("started_at", "started_at"),
                ("finished_at", "finished_at"), ("records_inserted", "records_inserted"),
                ("records_updated", "records_updated"), ("records_unchanged", "records_unchanged"),
                ("records_quarantined", "records_quarantined"), ("api_calls", "api_calls"), ("error", "run_error"))}
        lag = (now - r["cursor"]).total_seconds() if r["cursor"] else None
        acc["streams"].append({
            "stream": r["stream"], "status": r["status"], "cursor": _iso(r["cursor"]),
            "records": int(r["records_total"] or 0), "last_run": last_run,
            "lag_s": round(lag, 1) if lag is not None else None, "last_error": r["last_error"],
            "last_success_at": _iso(r["last_success_at"]), "paused": r["paused"], "owner": r["lease_owner"],
            "windows_done": r["windows_done"], "windows_total": r["windows_total"],
        })
    return list(accounts.values())
