"""Extra `baysync doctor` checks: session-keeping connections (no transaction-mode pooler), eBay
reachability, credentials and the encryption key.

Each check takes (settings, database url) and returns (ok, name, detail-with-the-fix)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Sequence

import httpx
import sqlalchemy as sa

from . import db

if TYPE_CHECKING:
    from .config import Settings


def check_ebay(settings: Settings, url: str) -> tuple[bool, str, str]:
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


def check_tokens(settings: Settings, url: str) -> tuple[bool, str, str]:
    engine = db.make_engine(settings, "cli", url)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("select to_regclass('credentials')")).scalar() is None:
                return False, "tokens", "schema not migrated"
            rows = conn.execute(sa.text("""
                select a.name, a.status, c.refresh_token_ct is not null as has, c.refresh_expires_at
                from accounts a left join credentials c on c.account_id = a.id order by a.name""")).all()
            unsigned: Sequence[str] = []  # EU/UK sellers while no signing key is stored (docs/ebay-api.md "Digital Signatures": Finances calls fail)
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


def check_key(settings: Settings, url: str) -> tuple[bool, str, str]:
    import os

    from .crypto import ENV_KEY, CryptoError, Vault, key_file_path

    if not os.environ.get(ENV_KEY, "").strip() and not key_file_path(settings).exists():
        return True, "key", f"none yet: generated on first use at {key_file_path(settings)} (or set {ENV_KEY})"
    try:
        Vault.from_settings(settings, create=False)
    except CryptoError as e:
        return False, "key", str(e)
    return True, "key", "token-encryption key usable"


def _value(conn: Any, sql: str) -> Any:
    """The first column of a one-row query's row (None when there is no row)."""
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def session_problem(settings: Settings, url: str) -> str | None:
    """What a transaction-mode pooler (pgbouncer ``pool_mode=transaction``) gives away: None when the
    connection keeps one server session, else the symptom seen. Probes, outside any transaction:
    successive statements of one connection run on one backend; a session setting survives to the next
    statement; a second open connection never shares the first one's backend."""
    import psycopg

    info = dict(db.psycopg_conninfo(url), connect_timeout=settings.db_connect_timeout_s,
                application_name="baysync/doctor")
    with psycopg.connect(**info, autocommit=True, prepare_threshold=None) as a, \
            psycopg.connect(**info, autocommit=True, prepare_threshold=None) as b:
        pids = {_value(a, "select pg_backend_pid()") for _ in range(3)}
        a.execute("set baysync.doctor_probe = 'kept'")
        kept = _value(a, "select current_setting('baysync.doctor_probe', true)")
        other = _value(b, "select pg_backend_pid()")
    if len(pids) > 1:
        return "successive statements ran on different server backends"
    if kept != "kept":
        return "a session setting was lost between two statements"
    if other in pids:
        return "two open connections shared one server backend"
    return None


def check_pooler(settings: Settings, url: str) -> tuple[bool, str, str]:
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


# ---------------------------------------------------------------- doctor --live (docs/ebay-api.md "Hosts")


def _env_of(url: str) -> str | None:
    """"sandbox" / "production" for an eBay host; None for anything else (a simulator, a proxy)."""
    host = (httpx.URL(url).host or "").lower()
    if host.endswith(".sandbox.ebay.com"):
        return "sandbox"
    if host.endswith(".ebay.com"):
        return "production"
    return None


def base_url_warning(settings: Settings) -> str | None:
    """One line when the api/apiz/auth base URLs mix eBay's sandbox and production hosts (the sandbox
    inserts ``.sandbox`` after ``api.``/``apiz.``/``auth.``: see docs/ebay-api.md, "Hosts")."""
    keys = ("ebay_api_base_url", "ebay_apiz_base_url", "ebay_auth_base_url")
    envs = {k: _env_of(getattr(settings, k)) for k in keys}
    if {"sandbox", "production"} <= set(envs.values()):
        detail = ", ".join(f"{k}={getattr(settings, k)} ({e})" for k, e in envs.items() if e)
        return (f"the eBay base URLs mix sandbox and production: {detail}; a token from one environment is "
                "refused by the other: set all three to the same environment")
    return None


async def _first_page(pages) -> Any:
    """The first page of a paged iterator (the generator is closed: no further calls)."""
    try:
        return await pages.__anext__()
    finally:
        await pages.aclose()


async def probe_stream(client: Any, stream: str, now: datetime) -> str:
    """The cheapest read of ``stream``'s endpoint (``limit=1``, one page): what a sync of it needs first.
    Returns a short detail; eBay's errors propagate (EbayError, redacted)."""
    day = now - timedelta(days=1)
    if stream == "orders":
        page = await _first_page(client.get_orders(day, None, 1))
    elif stream == "disputes":
        page = await _first_page(client.get_payment_dispute_summaries(day, now, 1))
    elif stream == "transactions":
        page = await _first_page(client.get_transactions(day, now, 1))
    elif stream == "payouts":
        page = await _first_page(client.get_payouts(day, now, 1))
    elif stream == "messages":
        page = await _first_page(client.get_conversations("FROM_MEMBERS", limit=1))
    elif stream == "inventory_items":
        page = await _first_page(client.get_inventory_items(1))
    elif stream == "offers":  # getOffers needs a SKU: take the first one, if the seller has any
        items = await _first_page(client.get_inventory_items(1))
        sku = next((r.get("sku") for r in items.records if isinstance(r, dict) and r.get("sku")), None)
        if sku is None:
            return "getInventoryItems answered (no SKU to read offers of)"
        page = await _first_page(client.get_offers(sku, 1))
    elif stream == "active_inventory":  # list report tasks: creating one would start a report
        page = await _first_page(client.get_inventory_tasks(look_back_days=1, limit=1))
    elif stream in ("returns", "inquiries", "cases", "cancellations"):  # Post-Order (IAF auth): also checks the scope
        page = await _first_page(client.search_post_order(stream, day, now, 1))
    elif stream == "shipping_fulfillments":  # needs an order: the last one modified, if any in 90 days
        orders = await _first_page(client.get_orders(now - timedelta(days=90), None, 1))
        oid = next((r.get("orderId") for r in orders.records if isinstance(r, dict) and r.get("orderId")), None)
        if oid is None:
            return "getOrders answered (no order to read shipping fulfillments of)"
        got = await client.get_shipping_fulfillments(oid)
        return f"getShippingFulfillments answered, {len(got)} fulfillment(s) for order {oid}"
    else:
        raise ValueError(f"unknown stream {stream!r}")
    total = page.total if page.total is not None else len(page.records)
    return f"HTTP {page.status}, {total} record(s) in the probe's range"


async def live_checks(settings: Settings, url: str, *, transport: httpx.AsyncBaseTransport | None = None
                      ) -> list[tuple[bool, str, str, str]]:
    """``doctor --live``: per connected account a forced token refresh, then one ``limit=1`` read per
    enabled stream.  Read-only at eBay (the fresh access token is stored like a worker's).  Returns
    (ok, account, stream or "token", detail) rows; details are eBay's own (redacted) error text."""
    from .accounts import AccountError, enabled_streams, signing_for, token_source
    from .crypto import CryptoError, Vault
    from .ebay.client import EbayClient, make_http_client
    from .ebay.errors import EbayError

    engine = db.make_async_engine(settings, "cli", url)
    http = make_http_client(settings, transport=transport)
    rows: list[tuple[bool, str, str, str]] = []
    try:
        async with engine.connect() as conn:
            accounts = (await conn.execute(sa.text(
                "select id, name from accounts where status <> 'disabled' order by name"))).all()
        streams = enabled_streams(settings)
        now = datetime.now(timezone.utc)
        vault = None
        for aid, name in accounts:
            try:
                vault = vault or Vault.from_settings(settings, create=False)
                tokens = await token_source(engine, settings, aid, name, http, vault)
                await tokens.access_token(force_refresh=True)
            except (EbayError, AccountError, CryptoError) as e:
                rows.append((False, name, "token", str(e)))
                rows.extend((False, name, s, "not probed: no access token") for s in streams)
                continue
            rows.append((True, name, "token", "refreshed"))
            signer, required = await signing_for(engine, settings, vault, aid)  # EU/UK: Finances reads signed
            client = EbayClient(settings, http=http, tokens=tokens, account=name, signer=signer,
                                signing_required=required)
            for s in streams:
                try:
                    rows.append((True, name, s, await probe_stream(client, s, now)))
                except EbayError as e:
                    rows.append((False, name, s, str(e)))
    finally:
        await http.aclose()
        await engine.dispose()
    return rows
