"""Seller accounts and their OAuth tokens (encrypted at rest with sync_core.crypto.Vault).

Only ciphertext reaches the database. A token source per account mints access tokens from the stored
refresh token and persists each new access token (encrypted) so other processes reuse it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import coordination, db
from .config import STREAM_NAMES, Settings, parse_marketplace
from .crypto import Vault
from .ebay import oauth

REFRESH_EXPIRY_WARN_DAYS = 30
NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class AccountError(ValueError):
    """Bad account input (one line, names the fix)."""


def check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name.lower()) <= NAME_OK:
        raise AccountError(f"account name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return name


def enabled_streams(settings: Settings) -> list[str]:
    return [s for s in STREAM_NAMES if settings.stream(s).enabled]


async def account_id(conn: AsyncConnection, name: str) -> int:
    aid = (await conn.execute(sa.text("select id from accounts where name = :n"), dict(n=name))).scalar()
    if aid is None:
        raise AccountError(f"no account named {name!r} (baysync accounts list)")
    return aid


async def add_account(conn: AsyncConnection, settings: Settings, name: str, refresh_token: str | None = None, *,
                      refresh_expires_at: datetime | None = None, vault: Vault | None = None,
                      signing_required: bool | None = None, marketplace: str | None = None) -> int:
    """Create (or update the tokens of) an account and its (account, stream) pairs.

    ``signing_required``: the seller is EU/UK-domiciled (its Finances calls need eBay's digital signature);
    None keeps the flag.  ``marketplace``: its X-EBAY-C-MARKETPLACE-ID (one of config.MARKETPLACE_IDS); a new
    account without one gets ``ebay_marketplace_id``; an existing account keeps its own unless one is given."""
    check_name(name)
    if marketplace is not None:
        try:
            parse_marketplace(marketplace)
        except ValueError as e:
            raise AccountError(str(e)) from None
    streams = enabled_streams(settings)
    aid = (await conn.execute(sa.text("""
        insert into accounts (name, scopes, signing_required, marketplace_id)
        values (:n, :scopes, coalesce(:sr, false), coalesce(:m, :default_m))
        on conflict (name) do update set updated_at = now(),
            signing_required = coalesce(:sr, accounts.signing_required),
            marketplace_id = coalesce(:m, accounts.marketplace_id, :default_m) returning id"""),
        dict(n=name, scopes=oauth.scopes_for(streams), sr=signing_required, m=marketplace,
             default_m=settings.ebay_marketplace_id))).scalar_one()
    await coordination.ensure_pairs(conn, aid, streams)
    if refresh_token:
        await store_tokens(conn, aid, vault or Vault.from_settings(settings), refresh_token=refresh_token,
                           refresh_expires_at=refresh_expires_at or datetime.now(timezone.utc) + timedelta(days=547))
    return aid


async def store_tokens(conn: AsyncConnection, aid: int, vault: Vault, *, refresh_token: str | None = None,
                       refresh_expires_at: datetime | None = None, access_token: str | None = None,
                       access_expires_at: datetime | None = None) -> None:
    await conn.execute(sa.text("""
        insert into credentials (account_id, refresh_token_ct, refresh_expires_at, access_token_ct, access_expires_at)
        values (:a, :rt, :rexp, :at, :aexp)
        on conflict (account_id) do update set
            refresh_token_ct = coalesce(excluded.refresh_token_ct, credentials.refresh_token_ct),
            refresh_expires_at = coalesce(excluded.refresh_expires_at, credentials.refresh_expires_at),
            access_token_ct = case when excluded.refresh_token_ct is not null and excluded.access_token_ct is null
                                   then null else coalesce(excluded.access_token_ct, credentials.access_token_ct) end,
            access_expires_at = case when excluded.refresh_token_ct is not null and excluded.access_token_ct is null
                                   then null else coalesce(excluded.access_expires_at, credentials.access_expires_at) end,
            updated_at = now()"""),
        dict(a=aid, rt=vault.encrypt(refresh_token) if refresh_token else None, rexp=refresh_expires_at,
             at=vault.encrypt(access_token) if access_token else None, aexp=access_expires_at))
    if refresh_token:
        await conn.execute(sa.text("update accounts set status = 'active', updated_at = now() where id = :a and status = 'reauth_needed'"),
                           dict(a=aid))
        await conn.execute(sa.text("""update sync_state set status = 'queued', last_error = null, next_run_at = now()
                                      where account_id = :a and status = 'reauth_needed'"""), dict(a=aid))


async def list_accounts(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = (await conn.execute(sa.text("""
        select a.id, a.name, a.status, a.paused, a.scopes, a.created_at, a.signing_required, a.marketplace_id,
               c.refresh_token_ct is not null as has_refresh_token, c.refresh_expires_at, c.access_expires_at,
               (select count(*) from sync_state s where s.account_id = a.id) as streams
        from accounts a left join credentials c on c.account_id = a.id order by a.name"""))).mappings().all()
    now = datetime.now(timezone.utc)
    out = []
    for r in rows:
        d = dict(r)
        exp = d["refresh_expires_at"]
        if d["status"] == "reauth_needed":
            d["token_state"] = "reauth needed"
        elif not d["has_refresh_token"]:
            d["token_state"] = "not connected"
        elif exp and exp < now:
            d["token_state"] = "refresh token expired"
        elif exp and exp < now + timedelta(days=REFRESH_EXPIRY_WARN_DAYS):
            d["token_state"] = f"refresh token expires in {(exp - now).days} days: reconnect soon"
        else:
            d["token_state"] = "ok"
        out.append(d)
    return out


async def remove_account(conn: AsyncConnection, name: str, purge: bool = False) -> None:
    """Remove an account and its tokens. Synced rows stay unless ``purge``."""
    aid = await account_id(conn, name)
    if purge:
        from .streams import STREAMS

        for stream in STREAMS.values():
            for table in stream.all_tables():
                await conn.execute(sa.text(f"delete from {table.name} where account_id = :a"), dict(a=aid))
    # stream tables keep account_id without a foreign key, so un-purged data survives this delete
    await conn.execute(sa.text("delete from accounts where id = :a"), dict(a=aid))


def consent_start(settings: Settings, name: str) -> tuple[str, str]:
    """The consent URL to open (anywhere, e.g. a laptop browser) and the state to expect back."""
    check_name(name)
    state = secrets.token_urlsafe(16)
    return oauth.consent_url(settings, state, oauth.scopes_for(enabled_streams(settings))), state


async def consent_finish(engine: AsyncEngine, settings: Settings, name: str, pasted: str, state: str, *,
                         http: httpx.AsyncClient | None = None, on_stored=None) -> None:
    """Exchange the pasted redirect URL (or bare code) for tokens and store them encrypted.
    ``on_stored(conn, account_id)`` runs in the same transaction (the audit event)."""
    code = oauth.parse_redirect(pasted, state)
    own = http is None
    http = http or httpx.AsyncClient(timeout=settings.api_timeout_s)
    try:
        ts = await oauth.exchange_code(http, settings, code)
    finally:
        if own:
            await http.aclose()
    vault = Vault.from_settings(settings)
    async with engine.begin() as conn:
        aid = await add_account(conn, settings, name)
        await store_tokens(conn, aid, vault, refresh_token=ts.refresh_token, refresh_expires_at=ts.refresh_expires_at,
                           access_token=ts.access_token, access_expires_at=ts.access_expires_at)
        if on_stored is not None:
            await on_stored(conn, aid)


async def token_source(engine: AsyncEngine, settings: Settings, aid: int, account: str, http: httpx.AsyncClient,
                       vault: Vault, on_event=None) -> oauth.RefreshingTokenSource:
    """A RefreshingTokenSource for a stored account; new access tokens are persisted (encrypted)."""
    async def load():
        async with engine.connect() as conn:
            return (await conn.execute(sa.text("""
                select refresh_token_ct, access_token_ct, access_expires_at from credentials where account_id = :a"""),
                dict(a=aid))).first()
    row = await db.run_retrying(settings, "load tokens", load)  # retried: a wait for a pooled connection is normal
    if row is None or row.refresh_token_ct is None:
        raise AccountError(f"account {account!r} has no tokens: baysync accounts connect {account}")
    refresh = vault.decrypt(row.refresh_token_ct)
    access = vault.decrypt(row.access_token_ct) if row.access_token_ct else None

    async def persist(ts: oauth.TokenSet) -> None:
        async def unit() -> None:
            async with engine.begin() as conn:
                await store_tokens(conn, aid, vault, access_token=ts.access_token, access_expires_at=ts.access_expires_at,
                                   refresh_token=ts.refresh_token if ts.refresh_token != refresh else None,
                                   refresh_expires_at=ts.refresh_expires_at)
        await db.run_retrying(settings, "save tokens", unit)

    return oauth.RefreshingTokenSource(http, settings, refresh, None, persist, access_token=access,
                                       access_expires_at=row.access_expires_at if access else None,
                                       on_event=on_event, account=account)


async def marketplace_of(engine: AsyncEngine, settings: Settings, aid: int) -> str:
    """The account's X-EBAY-C-MARKETPLACE-ID (``ebay_marketplace_id`` when it has none of its own)."""
    async def load() -> str | None:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text("select marketplace_id from accounts where id = :a"),
                                       dict(a=aid))).scalar()
    return await db.run_retrying(settings, "load marketplace", load) or settings.ebay_marketplace_id


async def rotate_keys(engine: AsyncEngine, old: Vault, new: Vault, on_done=None) -> int:
    """Re-encrypt every stored token (and signing key) with ``new`` (which must also decrypt ``old``'s tokens).
    ``on_done(conn, n)`` runs in the same transaction (the audit event)."""
    n = 0
    async with engine.begin() as conn:
        for k in (await conn.execute(sa.text("select id, private_key_ct from signing_keys for update"))).all():
            await conn.execute(sa.text("update signing_keys set private_key_ct = :ct where id = :i"),
                               dict(ct=new.encrypt(old.decrypt(k.private_key_ct)), i=k.id))
        rows = (await conn.execute(sa.text(
            "select account_id, refresh_token_ct, access_token_ct from credentials for update"))).all()
        for r in rows:
            rt = new.encrypt(old.decrypt(r.refresh_token_ct)) if r.refresh_token_ct else None
            at = new.encrypt(old.decrypt(r.access_token_ct)) if r.access_token_ct else None
            await conn.execute(sa.text("update credentials set refresh_token_ct = :rt, access_token_ct = :at, "
                                       "updated_at = now() where account_id = :a"), dict(rt=rt, at=at, a=r.account_id))
            n += 1
        if on_done is not None:
            await on_done(conn, n)
    return n


# ---------------------------------------------------------------- eBay Digital Signatures (docs/ebay-api.md "Digital Signatures")
# One signing key per eBay *application* (createSigningKey is called with the application token), used for
# every EU/UK account: the table signing_keys, newest row in use, private key encrypted with the vault.


async def store_signing_key(conn: AsyncConnection, vault: Vault, key: dict[str, Any], source: str,
                            expires_at: datetime | None = None) -> int:
    """Store a key from :func:`sync_core.ebay.signing.parse_key_file` (or createSigningKey); it becomes the one in use."""
    from .ebay.signing import Signer

    signer = Signer(key["jwe"], key["private_key"], key_id=key.get("key_id") or "")  # validates; registers it
    return (await conn.execute(sa.text("""
        insert into signing_keys (signing_key_id, cipher, private_key_ct, jwe, public_key, source, expires_at)
        values (:kid, :c, :ct, :jwe, :pub, :src, :exp) returning id"""),
        dict(kid=signer.key_id, c=signer.cipher, ct=vault.encrypt(key["private_key"]), jwe=key["jwe"],
             pub=key.get("public_key") or "", src=source, exp=expires_at))).scalar_one()


async def load_signer(conn: AsyncConnection, vault: Vault):
    """The :class:`~sync_core.ebay.signing.Signer` of the newest stored key, or None."""
    from .ebay.signing import Signer

    row = (await conn.execute(sa.text(
        "select signing_key_id, private_key_ct, jwe from signing_keys order by id desc limit 1"))).first()
    if row is None:
        return None
    return Signer(row.jwe, vault.decrypt(row.private_key_ct), key_id=row.signing_key_id)


async def signing_for(engine: AsyncEngine, settings: Settings, vault: Vault, account_id: int) -> tuple[Any, bool]:
    """The application's signing key (read each time: one created by the CLI meanwhile is used at once)
    and whether the account is EU/UK (docs/ebay-api.md, Digital Signatures)."""
    async def load():
        async with engine.connect() as conn:
            required = (await conn.execute(sa.text("select signing_required from accounts where id = :a"),
                                           dict(a=account_id))).scalar()
            return await load_signer(conn, vault), bool(required)
    return await db.run_retrying(settings, "load signing key", load)


async def mark_signing_required(conn: AsyncConnection, aid: int) -> bool:
    """eBay asked for a signature: mark the account EU/UK.  True when it was not marked yet."""
    res = await conn.execute(sa.text("""update accounts set signing_required = true, updated_at = now()
                                        where id = :a and not signing_required"""), dict(a=aid))
    return bool(res.rowcount)
