"""Extra `baysync doctor` checks: session-keeping connections (no transaction-mode pooler), eBay
reachability, credentials and the encryption key.

Each check takes (settings, database url) and returns (ok, name, detail-with-the-fix)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import sqlalchemy as sa

from . import db


def check_ebay(settings: Any, url: str) -> tuple[bool, str, str]:
    if not settings.ebay_client_id or not settings.ebay_client_secret:
        return False, "ebay", "ebay_client_id / ebay_client_secret not set (BAYSYNC_EBAY_CLIENT_ID, BAYSYNC_EBAY_CLIENT_SECRET)"
    hosts = sorted({settings.ebay_api_base_url, settings.ebay_apiz_base_url})
    bad = []
    for h in hosts:
        try:
            httpx.get(h, timeout=5.0)  # any HTTP answer proves DNS, TCP and TLS work
        except httpx.HTTPError as e:
            bad.append(f"{h}: {type(e).__name__}")
    if bad:
        return False, "ebay", "unreachable: " + "; ".join(bad) + " (check network/proxy and ebay_*_base_url)"
    return True, "ebay", "reachable: " + ", ".join(hosts)


def check_tokens(settings: Any, url: str) -> tuple[bool, str, str]:
    engine = db.make_engine(settings, "cli", url)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("select to_regclass('credentials')")).scalar() is None:
                return False, "tokens", "schema not migrated"
            rows = conn.execute(sa.text("""
                select a.name, a.status, c.refresh_token_ct is not null as has, c.refresh_expires_at
                from accounts a left join credentials c on c.account_id = a.id order by a.name""")).all()
            unsigned = []  # EU/UK sellers while no signing key is stored (FACTS.md §12: Finances calls fail)
            if conn.execute(sa.text("select to_regclass('signing_keys')")).scalar() is not None:
                unsigned = conn.execute(sa.text("""
                    select name from accounts where signing_required
                    and not exists (select 1 from signing_keys) order by name""")).scalars().all()
    finally:
        engine.dispose()
    if not rows:
        return True, "tokens", "no accounts yet (baysync accounts add NAME)"
    soon = datetime.now(timezone.utc) + timedelta(days=30)
    problems = []
    for r in rows:
        if r.status == "reauth_needed":
            problems.append(f"{r.name}: reauth needed (baysync accounts connect {r.name})")
        elif not r.has:
            problems.append(f"{r.name}: not connected (baysync accounts connect {r.name})")
        elif r.refresh_expires_at and r.refresh_expires_at < soon:
            problems.append(f"{r.name}: refresh token expires {r.refresh_expires_at:%Y-%m-%d} (reconnect)")
    problems += [f"{n}: EU/UK seller without an eBay signing key (baysync keys signing create)" for n in unsigned]
    if problems:
        return False, "tokens", "; ".join(problems)
    return True, "tokens", f"{len(rows)} account(s) connected"


def check_key(settings: Any, url: str) -> tuple[bool, str, str]:
    import os

    from .crypto import ENV_KEY, CryptoError, Vault, key_file_path

    if not os.environ.get(ENV_KEY, "").strip() and not key_file_path(settings).exists():
        return True, "key", f"none yet: generated on first use at {key_file_path(settings)} (or set {ENV_KEY})"
    try:
        Vault.from_settings(settings, create=False)
    except CryptoError as e:
        return False, "key", str(e)
    return True, "key", "token-encryption key usable"


def session_problem(settings: Any, url: str) -> str | None:
    """What a transaction-mode pooler (pgbouncer ``pool_mode=transaction``) gives away: None when the
    connection keeps one server session, else the symptom seen. Probes, outside any transaction:
    successive statements of one connection run on one backend; a session setting survives to the next
    statement; a second open connection never shares the first one's backend."""
    import psycopg

    info = dict(db.psycopg_conninfo(url), connect_timeout=settings.db_connect_timeout_s,
                application_name="baysync/doctor")
    with psycopg.connect(**info, autocommit=True, prepare_threshold=None) as a, \
            psycopg.connect(**info, autocommit=True, prepare_threshold=None) as b:
        pids = {a.execute("select pg_backend_pid()").fetchone()[0] for _ in range(3)}
        a.execute("set baysync.doctor_probe = 'kept'")
        kept = a.execute("select current_setting('baysync.doctor_probe', true)").fetchone()[0]
        other = b.execute("select pg_backend_pid()").fetchone()[0]
    if len(pids) > 1:
        return "successive statements ran on different server backends"
    if kept != "kept":
        return "a session setting was lost between two statements"
    if other in pids:
        return "two open connections shared one server backend"
    return None


def check_pooler(settings: Any, url: str) -> tuple[bool, str, str]:
    urls = [("database_url", url)]
    if settings.migrate_database_url:
        urls.append(("migrate_database_url", db.migrate_url(settings)))
    for key, u in urls:
        try:
            problem = session_problem(settings, u)
        except Exception as e:
            return False, "pooler", f"{key}: cannot connect ({db.describe(e)})"
        if problem:
            return False, "pooler", (f"{key} goes through a transaction-mode pooler ({problem}): LISTEN, session "
                                     "advisory locks and prepared statements break there; use a session-mode "
                                     "pooler or a direct URL")
    return True, "pooler", "sessions kept (direct connection or session-mode pooler)"


CHECKS = (check_pooler, check_key, check_tokens, check_ebay)
