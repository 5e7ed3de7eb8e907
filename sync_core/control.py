"""Operator actions, one API for the CLI, the console and any future HTTP endpoint.

Each request (STOP, pause/resume, backfill, run now, clear error) makes its coordination call and
writes an audit event in the same transaction, so a request is never recorded without happening (or
the other way round). Account changes, key rotation, migrate and prune record their audit event
through :func:`audit` as well.

An audit event is a ``run_events`` row of kind ``audit``, level info, with the account and stream
when they apply and ``data = {action, user, host, origin, ...details}``: the OS user and host of the
operator's process and where the action came from (``cli``, ``console`` or ``http``). Details are
counts, names, dates and revisions, never a token, code or key.
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import coordination as co, events

if TYPE_CHECKING:
    from .config import Settings

ORIGINS = ("cli", "console", "http")


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "?"


def audit_event(action: str, origin: str, message: str, *, account_id: int | None = None,
                stream: str | None = None, **details: Any) -> events.Event:
    if origin not in ORIGINS:
        raise ValueError(f"origin {origin!r}: expected one of {', '.join(ORIGINS)}")
    user, host = os_user(), socket.gethostname()
    data = {"action": action, "user": user, "host": host, "origin": origin, **details}
    return events.Event("audit", f"{message} by {user}@{host} via {origin}", "info", None, account_id, stream, data)


async def audit(conn: AsyncConnection, action: str, origin: str, message: str, *, account_id: int | None = None,
                stream: str | None = None, **details: Any) -> None:
    """Record one operator action inside the caller's transaction (with the account's name, so the
    event still reads well after the account is removed), and NOTIFY ``baysync_state`` with it: every
    operator action may change what the dashboard shows."""
    if account_id is not None and "account" not in details:
        details["account"] = (await conn.execute(sa.text("select name from accounts where id = :a"),
                                                 dict(a=account_id))).scalar()
    await events.emit_many(conn, [audit_event(action, origin, message, account_id=account_id, stream=stream,
                                              **details)])
    await co.notify_state(conn, action)


def _streams(n: int) -> str:
    return f"{n} stream" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- requests on (account, stream) pairs


async def _request(conn: AsyncConnection, request, action: str, what: str, account_id: int, stream: str | None,
                   origin: str) -> int:
    """A coordination request on one stream or all of an account's, audited: ``what`` names the streams."""
    n = await request(conn, account_id, stream)
    await audit(conn, action, origin, what.format(_streams(n)), account_id=account_id, stream=stream, streams=n)
    return n


async def stop(conn: AsyncConnection, account_id: int, stream: str | None = None, *, origin: str) -> int:
    return await _request(conn, co.request_stop, "stop", "STOP requested for {}", account_id, stream, origin)


async def run_now(conn: AsyncConnection, account_id: int, stream: str | None = None, *, origin: str) -> int:
    return await _request(conn, co.request_run_now, "run_now", "run now requested for {}", account_id, stream, origin)


async def set_paused(conn: AsyncConnection, account_id: int, stream: str | None, paused: bool, *, origin: str) -> int:
    n = await co.set_paused(conn, account_id, stream, paused)
    verb = "pause" if paused else "resume"
    await audit(conn, verb, origin, f"{verb}d " + (f"the whole account ({_streams(n)})" if stream is None else _streams(n)),
                account_id=account_id, stream=stream, streams=n)
    return n


async def pause(conn: AsyncConnection, account_id: int, stream: str | None = None, *, origin: str) -> int:
    return await set_paused(conn, account_id, stream, True, origin=origin)


async def resume(conn: AsyncConnection, account_id: int, stream: str | None = None, *, origin: str) -> int:
    return await set_paused(conn, account_id, stream, False, origin=origin)


async def backfill(conn: AsyncConnection, account_id: int, stream: str | Sequence[str], *, since: datetime,
                   origin: str) -> int:
    """Backfill one stream, or several of one account (one audit event for all of them)."""
    streams = [stream] if isinstance(stream, str) else list(stream)
    n = 0
    for s in streams:
        n += await co.request_backfill(conn, account_id, s, since)
    await audit(conn, "backfill", origin, f"backfill from {since:%Y-%m-%d %H:%M} UTC requested for {_streams(n)}",
                account_id=account_id, stream=streams[0] if len(streams) == 1 else None, streams=n,
                since=since.isoformat(), **({} if len(streams) == 1 else {"stream_names": streams}))
    return n


async def clear_error(conn: AsyncConnection, account_id: int, stream: str | None = None, *, origin: str) -> int:
    return await _request(conn, co.clear_error, "clear_error", "error cleared on {}", account_id, stream, origin)


ACTIONS: dict[str, Callable[..., Awaitable[int]]] = {"stop": stop, "run-now": run_now, "pause": pause, "resume": resume, "clear-error": clear_error,
           "backfill": backfill}


async def perform(engine: AsyncEngine, action: str, account_id: int, stream: Any = None, *, origin: str,
                  **kw: Any) -> int:
    """One action (a key of ACTIONS) in its own transaction; returns the number of streams it matched."""
    async with engine.begin() as conn:
        return await ACTIONS[action](conn, account_id, stream, origin=origin, **kw)


# ---------------------------------------------------------------- accounts and keys


async def add_account(conn: AsyncConnection, settings: Settings, name: str, refresh_token: str | None = None, *,
                      origin: str, signing_required: bool | None = None, marketplace: str | None = None) -> int:
    from . import accounts

    aid = await accounts.add_account(conn, settings, name, refresh_token, signing_required=signing_required,
                                     marketplace=marketplace)
    await audit(conn, "account_add", origin, f"account {name} added" + (" with a refresh token" if refresh_token else "")
                + (f" on {marketplace}" if marketplace else ""),
                account_id=aid, account=name, with_refresh_token=bool(refresh_token), marketplace=marketplace)
    return aid


async def remove_account(conn: AsyncConnection, name: str, purge: bool = False, *, origin: str) -> None:
    from . import accounts

    aid = await accounts.account_id(conn, name)
    await accounts.remove_account(conn, name, purge)
    await audit(conn, "account_remove", origin, f"account {name} removed" + (" with its synced data" if purge else ""),
                account_id=aid, account=name, purge=purge)


# The console and the CLI reach eBay's OAuth (the consent URL, the token endpoint) only through the three
# functions below: sync_core.accounts and sync_core.ebay are imported here, when an account action runs.


class TokenExchangeFailed(RuntimeError):
    """eBay refused the pasted code or could not be reached; ``str()`` is one redacted line."""


def consent_start(settings: Settings, name: str) -> tuple[str, str]:
    """The consent URL to open (anywhere, e.g. a laptop browser) and the state to expect back.
    A bad account name raises ValueError (AccountError)."""
    from . import accounts

    return accounts.consent_start(settings, name)


def refresh_expiry_warn_days() -> int:
    """How long before a refresh token expires the operator is told to reconnect."""
    from . import accounts

    return int(accounts.REFRESH_EXPIRY_WARN_DAYS)


async def connect_account(engine: AsyncEngine, settings: Settings, name: str, pasted: str, state: str, *, origin: str,
                          http: Any = None) -> None:
    """Finish the consent flow; the tokens and the audit event are stored in one transaction.
    An unusable paste or name raises ValueError (ConsentError, AccountError): nothing is stored;
    a failed token exchange raises :class:`TokenExchangeFailed`."""
    from . import accounts
    from .ebay.errors import EbayError

    async def record(conn: AsyncConnection, aid: int) -> None:
        await audit(conn, "account_connect", origin, f"account {name} connected", account_id=aid, account=name)
    try:
        await accounts.consent_finish(engine, settings, name, pasted, state, http=http, on_stored=record)
    except EbayError as e:
        raise TokenExchangeFailed(str(e)) from e


async def rotate_keys(engine: AsyncEngine, old: Any, new: Any, *, origin: str) -> int:
    from . import accounts

    async def record(conn: AsyncConnection, n: int) -> None:
        await audit(conn, "keys_rotate", origin, f"token-encryption key rotated ({n} account(s) re-encrypted)",
                    accounts=n)
    return await accounts.rotate_keys(engine, old, new, on_done=record)


async def store_signing_key(engine: AsyncEngine, settings: Settings, key: dict[str, Any], *, source: str,
                            origin: str) -> int:
    """Store an eBay signing key (encrypted) and audit it -- the event names the key id, never the key."""
    from . import accounts
    from .crypto import Vault

    vault = Vault.from_settings(settings)
    async with engine.begin() as conn:
        kid = await accounts.store_signing_key(conn, vault, key, source, key.get("expires_at"))
        await audit(conn, "signing_key_" + source, origin,
                    f"eBay signing key {key.get('key_id') or '#' + str(kid)} {source}; Finances calls are signed",
                    signing_key_id=key.get("key_id") or "")
    return kid


# `baysync keys signing create|import` reach eBay's Key Management API and the key parser through these,
# like the OAuth functions above: the console never imports sync_core.ebay (pyproject.toml [tool.importlinter]).


class SigningKeyFailed(RuntimeError):
    """createSigningKey failed (refused, unreachable, or an unusable key); ``str()`` is one redacted line."""


async def create_signing_key(engine: AsyncEngine, settings: Settings, cipher: str, *, origin: str) -> dict[str, Any]:
    """Create the application's signing key with eBay's Key Management API and store it (encrypted, audited)."""
    import httpx

    from .ebay import signing
    from .ebay.errors import EbayError

    try:
        async with httpx.AsyncClient(timeout=settings.api_timeout_s) as http:
            key = await signing.create_signing_key(http, settings, cipher)
        await store_signing_key(engine, settings, key, source="created", origin=origin)  # validates it too
    except (EbayError, signing.SigningKeyError) as e:
        raise SigningKeyFailed(f"createSigningKey failed: {e}") from e
    return key


def parse_signing_key(text: str) -> tuple[dict[str, str], str]:
    """(key, cipher) of a key file (createSigningKey's JSON, or a PEM private key and the JWE line).
    An unusable file raises ValueError (SigningKeyError) naming what is wrong, never key material."""
    from .ebay import signing

    key = signing.parse_key_file(text)
    return key, signing.Signer(key["jwe"], key["private_key"]).cipher


# ---------------------------------------------------------------- migrate (synchronous, like migrate itself)


def record_migrate(conn: sa.Connection, applied: list[str], revision: str | None, origin: str) -> None:
    msg = f"migrate: applied {', '.join(applied)}" if applied else f"migrate: nothing to apply (at {revision})"
    events.emit_sync(conn, audit_event("migrate", origin, msg, revisions=applied, revision=revision))
