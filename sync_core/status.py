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


# Runs that count as failures in a row (``failures``, /metrics ``baysync_consecutive_failures``): failed
# (reauth_needed is stored as failed) and abandoned (its worker died). cancelled, lost and running
# neither count nor reset.
FAILED_STATUSES = ("failed", "abandoned")

# The state overview: one row per (account, stream) -- an account without streams has one row with
# stream None -- with the current run's window and the database's ``now()`` (``read_at``). ``runs=True``
# adds each pair's last run, its failed or abandoned runs since its last success and its API calls
# (status --json and /metrics; not the dashboard, which reads it up to several times a second). Every picture of the sync state (the console's
# dashboard, `status --json`, /metrics, the demo's progress line, the benchmarks) is this query.
_OVERVIEW = """
    select a.id as account_id, a.name as account, a.status as account_status, a.paused as account_paused,
           s.stream, s.status, s.enabled, s.paused, s.cursor, s.backfill_since, s.lease_owner, s.run_id,
           s.cancel_requested, s.run_now_requested, s.last_error, s.last_error_at, s.last_success_at,
           s.records_total, s.windows_done, s.windows_total, s.next_run_at,
           cr.kind as run_kind, cr.window_from, cr.window_to, cr.started_at as run_started_at,
           now() as read_at{runs_cols}
    from accounts a
    left join sync_state s on s.account_id = a.id
    left join sync_runs cr on cr.id = s.run_id{runs_joins}
    order by a.name, s.stream"""
_RUNS_COLS = """,
           lr.id as last_run_id, lr.status as last_run_status, lr.kind as last_run_kind,
           lr.started_at as last_run_started_at, lr.finished_at as last_run_finished_at,
           lr.records_inserted, lr.records_updated, lr.records_unchanged, lr.records_quarantined,
           lr.api_calls as last_run_api_calls, lr.error as last_run_error,
           rs.failures, rs.api_calls"""
_RUNS_JOINS = """
    left join lateral (select * from sync_runs r where r.account_id = a.id and r.stream = s.stream
                       order by r.id desc limit 1) lr on true
    left join lateral (select count(*) filter (where r.status in {failed}
                                                 and r.started_at >= coalesce(s.last_success_at, '-infinity'))
                              as failures,
                              coalesce(sum(r.api_calls), 0) as api_calls
                       from sync_runs r where r.account_id = a.id and r.stream = s.stream) rs on true"""
_OVERVIEW_SQL = {False: sa.text(_OVERVIEW.format(runs_cols="", runs_joins="")),
                 True: sa.text(_OVERVIEW.format(runs_cols=_RUNS_COLS, runs_joins=_RUNS_JOINS.format(
                     failed="(" + ", ".join(f"'{s}'" for s in FAILED_STATUSES) + ")")))}


def overview(conn: sa.Connection, runs: bool = False) -> list[dict[str, Any]]:
    """The state overview (see ``_OVERVIEW``) as plain dicts, ordered by account name and stream.
    Synchronous; on an AsyncConnection: ``await conn.run_sync(status.overview)``."""
    return [dict(r) for r in conn.execute(_OVERVIEW_SQL[runs]).mappings()]


def _accounts(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = overview(conn, runs=True)
    now = datetime.now(timezone.utc)
    accounts: dict[str, dict[str, Any]] = {}
    for r in rows:
        acc = accounts.setdefault(r["account"], {"name": r["account"], "status": r["account_status"],
                                             "reauth_needed": r["account_status"] == "reauth_needed",
                                             "paused": r["account_paused"], "streams": []})
        if r["stream"] is None:
            continue
        last_run = None
        if r["last_run_id"] is not None:
            last_run = {k: _iso(r[k2]) for k, k2 in (
                ("id", "last_run_id"), ("status", "last_run_status"), ("kind", "last_run_kind"),
                ("started_at", "last_run_started_at"), ("finished_at", "last_run_finished_at"),
                ("records_inserted", "records_inserted"), ("records_updated", "records_updated"),
                ("records_unchanged", "records_unchanged"), ("records_quarantined", "records_quarantined"),
                ("api_calls", "last_run_api_calls"), ("error", "last_run_error"))}
        lag = (now - r["cursor"]).total_seconds() if r["cursor"] else None
        acc["streams"].append({
            "stream": r["stream"], "status": r["status"], "cursor": _iso(r["cursor"]),
            "records": int(r["records_total"] or 0), "last_run": last_run,
            "lag_s": round(lag, 1) if lag is not None else None, "last_error": r["last_error"],
            "last_success_at": _iso(r["last_success_at"]), "paused": r["paused"], "owner": r["lease_owner"],
            "windows_done": r["windows_done"], "windows_total": r["windows_total"],
        })
    return list(accounts.values())
