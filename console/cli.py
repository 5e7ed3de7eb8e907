"""The `baysync` command line (typer). Every command is a thin layer over sync_core.

Exit codes: 0 ok, 1 failure, 2 bad input (config or arguments), 3 schema not at head,
4 the (account, stream) pair is already running elsewhere.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer
import typer.exceptions as typer_exc

from sync_core import __version__

if TYPE_CHECKING:
    from sync_core.config import Settings

EXIT_FAIL, EXIT_USAGE, EXIT_SCHEMA, EXIT_BUSY = 1, 2, 3, 4

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  help="baysync: mirror eBay seller accounts into PostgreSQL.")
db_app = typer.Typer(help="The embedded PostgreSQL server (used when no database_url is set).", no_args_is_help=True)
app.add_typer(db_app, name="db")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL):
        super().__init__(message)
        self.code = code


def say(msg: str = "") -> None:
    print(msg, flush=True)


def say_err(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    from sync_core.config import load_settings

    return load_settings()


def _setup_logging(fmt: str | None = None, file: str | None = None) -> None:
    from sync_core.logs import setup_logging

    s = settings()
    setup_logging(fmt or s.log_format, s.log_level, file)


def _version_cb(value: bool) -> None:
    if value:
        say(f"baysync {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context,
         version: bool = typer.Option(False, "--version", callback=_version_cb, is_eager=True, help="Print the version."),
         read_only: bool = typer.Option(False, "--read-only", help="Open the console without any actions.")) -> None:
    if ctx.invoked_subcommand is None:
        console(read_only=read_only)


@app.command()
def console(read_only: bool = typer.Option(False, "--read-only", help="Hide every action.")) -> None:
    """Open the operations console (the default command)."""
    from console.app import run_console
    from sync_core import migrate as m
    from sync_core.worker import console_pool_factory

    s = settings()
    if s.embedded:  # baysync's own database follows the code (an external one is migrated on purpose)
        m.migrate(s, say_err, quiet_at_head=True)
    else:  # behind: the console opens and offers the migration; a newer baysync's schema: refuse
        m.check_schema(s, allow_behind=True)
    _setup_logging(file=str(_console_log(s)))  # the console owns the terminal
    run_console(s, read_only=read_only, worker_pool_factory=None if read_only else console_pool_factory(s))


def _console_log(s):
    s.home.mkdir(parents=True, exist_ok=True)
    return s.home / "console.log"


@app.command()
def web(host: str = typer.Option("127.0.0.1", "--host", help="Listen address (loopback unless --public)."),
        port: int = typer.Option(8080, "--port", help="Listen port (0: any free port)."),
        public: bool = typer.Option(False, "--public", help="Allow a non-loopback --host."),
        allow_actions: bool = typer.Option(False, "--allow-actions",
                                           help="Sessions get the console's actions (default: read-only).")) -> None:
    """The console in a browser (textual-serve): each browser session runs `baysync console`, read-only
    unless --allow-actions. Prints the URL with a random access token once; other requests get 403."""
    import secrets
    import socket

    from console import web as w
    from sync_core import migrate as m

    if not 0 <= port < 65536:
        raise CliError(f"--port {port}: expected 0..65535", EXIT_USAGE)
    if not w.is_loopback(host) and not public:
        raise CliError(f"--host {host}: not a loopback address; add --public to serve the console beyond this "
                       f"machine, or keep the default and use an SSH tunnel (see README)", EXIT_USAGE)
    s = settings()
    if s.embedded:  # as `baysync console` does, so that a database problem shows here, not in the browser
        m.migrate(s, say_err, quiet_at_head=True)
    else:
        m.check_schema(s, allow_behind=True)
    _setup_logging()
    if not w.is_loopback(host):
        say_err(f"warning: serving the console on {host}, beyond this machine: anyone with the URL's token "
                "can open it, over plain HTTP")
    token = secrets.token_urlsafe(24)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    mode = "actions allowed" if allow_actions else "read-only"

    def announce(bound: int) -> None:
        say(f"baysync web ({mode}): http://{shown}:{bound}/?token={token}")
        say("Ctrl+C stops it; the URL works until then.")

    try:
        w.serve(w.console_command(allow_actions), host, port, token, announce)
    except w.WebError as e:
        raise CliError(str(e)) from None


@app.command()
def migrate() -> None:
    """Upgrade the database schema to head (safe to run concurrently)."""
    from sync_core import migrate as m

    _setup_logging()
    m.migrate(settings(), say, origin="cli")


@app.command()
def prune(dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing.")) -> None:
    """Delete run events, finished runs and their quarantined records older than the retention settings."""
    from sync_core import retention

    s = settings()

    async def go():
        engine = await _gated_engine()
        try:
            return await retention.prune(engine, s, dry_run=dry_run, origin="cli")
        finally:
            await engine.dispose()
    r = _run_async(go())
    if r.skipped:
        raise CliError("another baysync process is pruning right now; try again in a few minutes", EXIT_BUSY)
    verb = "would delete" if dry_run else "deleted"
    ev, runs = s.events_retention_days, s.runs_retention_days
    for table, n, rule in (("run_events", r.events, f"older than {ev} days" if ev else None),
                           ("sync_runs", r.runs, f"finished more than {runs} days ago" if runs else None),
                           ("quarantine", r.quarantine, "of those runs" if runs else None)):
        say(f"{table:<11} {verb} {n:>9}  ({rule})" if rule else f"{table:<11} kept (retention 0 = forever)")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object (stable interface).")) -> None:
    """Database, schema and per-stream state."""
    from sync_core import status as st

    data = st.gather(settings())
    unknown = data["database"].get("schema_error")
    if as_json:
        say(json.dumps(data, default=str))
        if unknown:
            raise typer.Exit(EXIT_SCHEMA)
        return
    d = data["database"]
    if unknown:
        say(f"baysync {data['version']}")
        say_err(f"error: {unknown}")
        raise typer.Exit(EXIT_SCHEMA)
    say(f"baysync {data['version']}")
    say(f"database  {d['url'] or '-'}  {'reachable' if d['reachable'] else 'UNREACHABLE'}"
        + (f" ({d['error']})" if d.get("error") else ""))
    say(f"schema    {d['revision'] or 'none'} (head {d['head']})" + ("" if d["revision"] == d["head"] else "  -> run baysync migrate"))
    if not data["accounts"]:
        say("accounts  none (baysync accounts add NAME)")
    for acc in data["accounts"]:
        say(f"account {acc['name']} [{acc['status']}]")
        for s in acc["streams"]:
            say(f"  {s['stream']:<17} {s['status']:<13} records {s['records']:>9}  cursor {s['cursor'] or '-'}")
            if s.get("last_error"):  # a failure, or a note of an idle stream (e.g. a deferred report: until when)
                label = "note" if s["status"] in ("idle", "queued", "paused") else "error"
                say(f"    {label}: {' '.join(str(s['last_error']).split())[:300]}")


@app.command()
def doctor(live: bool = typer.Option(False, "--live", help="also call eBay: a token refresh per account and "
                                     "one read-only limit=1 call per enabled stream")) -> None:
    """Check configuration, database and schema; print the fix for each failure."""
    from sync_core import db, migrate as m
    from sync_core.config import ConfigError, load_settings

    ok, code = True, EXIT_FAIL

    def line(good: bool, what: str, detail: str) -> None:
        nonlocal ok
        ok &= good
        say(f"{'OK  ' if good else 'FAIL'}  {what:<10} {detail}")

    try:
        s = load_settings()
        line(True, "config", f"home {s.home}" + (f", file {s.config_file}" if s.config_file else ", no config file"))
    except ConfigError as e:
        line(False, "config", str(e))
        raise typer.Exit(EXIT_USAGE)
    try:
        url = db.database_url(s)
        version = db.check_connect(s, url)
        line(True, "database", f"PostgreSQL {version}" + (" (embedded)" if s.embedded else ""))
    except (db.DatabaseFatal, db.DatabaseUnavailable) as e:
        line(False, "database", str(e))
        raise typer.Exit(EXIT_FAIL)
    try:
        rev = m.check_schema(s, url)
        line(True, "schema", f"at head {rev}")
    except m.SchemaMismatch as e:
        line(False, "schema", str(e))
        if isinstance(e, m.SchemaUnknown):
            code = EXIT_SCHEMA
    for check in _extra_doctor_checks():
        good, what, detail = check(s, url)
        line(good, what, detail)
    if live:
        ok &= _doctor_live(s, url)
    if not ok:
        raise typer.Exit(code)


def _doctor_live(s: Settings, url: str) -> bool:
    """`doctor --live`: OK/FAIL per (account, stream) with eBay's own (redacted) error text."""
    from sync_core import doctor as d

    warning = d.base_url_warning(s)
    if warning:
        say(f"WARN  {'hosts':<10} {warning}")
    try:
        rows = _run_async(d.live_checks(s, url))
    except Exception as e:  # the database went away or is not migrated: the checks above said which
        from sync_core import db

        say(f"FAIL  {'live':<10} cannot read the accounts ({db.describe(e)})")
        return False
    if not rows:
        say(f"OK    {'live':<10} no accounts to check (baysync accounts add NAME)")
    for good, account, what, detail in rows:
        say(f"{'OK  ' if good else 'FAIL'}  {account + '/' + what:<28} {detail}")
    return all(r[0] for r in rows)


def _extra_doctor_checks() -> list[Callable[[Any, str], tuple[bool, str, str]]]:
    """Checks contributed by other parts (eBay reachability, tokens) once they exist."""
    try:
        from sync_core.doctor import CHECKS
    except ImportError:
        return []
    return list(CHECKS)


@db_app.command("status")
def db_status() -> None:
    """Is the embedded server running?"""
    from sync_core import embedded

    s = settings()
    if not s.embedded:
        say("database_url is set: baysync uses that server, not the embedded one")
        return
    info = embedded.status(s.pgdata)
    say(f"embedded PostgreSQL {'running' if info.running else 'stopped'}  data {s.pgdata}"
        + (f"  pid {info.pid}  socket {info.socket_dir}" if info.running else ""))


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (initialising it on first use)."""
    from sync_core import embedded

    s = settings()
    try:
        info = embedded.ensure_running(s.home)
    except embedded.EmbeddedError as e:
        raise CliError(f"embedded PostgreSQL: {e}") from None
    say(f"embedded PostgreSQL running  pid {info.pid}  data {s.pgdata}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    from sync_core import embedded

    s = settings()
    say("embedded PostgreSQL stopped" if embedded.stop(s.home) else "embedded PostgreSQL was not running")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (password removed)."""
    from sync_core import db
    from sync_core.config import redact_url

    say(redact_url(db.database_url(settings())))


@app.command()
def demo(headless: bool = typer.Option(False, "--headless", help="No TUI: sync and print progress."),
         seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this many seconds (headless)."),
         until_synced: bool = typer.Option(False, "--until-synced",
                                           help="Stop once every enabled stream of every demo seller has finished "
                                                "its first run (headless; --seconds still caps it)."),
         workers: int = typer.Option(12, "--workers", help="Concurrent runs."),
         speed: float = typer.Option(1000.0, "--speed",
                                     help="Simulated seconds of the sellers' activity per real second "
                                          "(1 = the seeded pace; the default: new records every few seconds)."),
         ) -> None:
    """The live demo: the eBay simulator on loopback with 3 demo sellers, in-process workers and the
    console (or, with --headless, progress lines), in a database of its own (<database>_demo, emptied
    at every start; the operator's accounts and data are never touched)."""
    import math
    import time

    from sync_core.demo import DemoRefused, DemoRuntime, prepare_database

    if seconds is not None and seconds <= 0:
        raise CliError("--seconds must be positive", EXIT_USAGE)
    if not 1 <= workers <= 256:
        raise CliError(f"--workers {workers}: expected 1..256", EXIT_USAGE)
    if not (math.isfinite(speed) and speed > 0):
        raise CliError(f"--speed {speed}: expected a positive number (simulated seconds per real second)", EXIT_USAGE)
    _setup_logging()
    s = settings()
    say("baysync demo: preparing its own database" + (" (embedded PostgreSQL)" if s.embedded else ""))
    try:
        s = prepare_database(s, say)
    except DemoRefused as e:
        raise CliError(str(e)) from None
    if not headless:  # the console owns the terminal: the demo's workers log to a file
        s.home.mkdir(parents=True, exist_ok=True)
        log_file = s.home / "demo.log"
        _setup_logging(file=str(log_file))
        say(f"demo log: {log_file}")
    rt = DemoRuntime(s, workers=workers, speed=speed)
    run_settings = rt.start()
    sim = rt.sim
    assert sim is not None  # start() returns once the simulator is up (DemoRuntime sets sim before ready)
    say(f"eBay simulator on {sim.base_url} at {speed:g}x; demo accounts: demo-small, demo-medium, demo-large")
    try:
        if not headless:
            from console.app import run_console

            run_console(run_settings, demo_info={"label": "DEMO: simulator + workers in this process"})
            return
        deadline = time.monotonic() + seconds if seconds else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(min(3.0, max(0.1, deadline - time.monotonic())) if deadline else 3.0)
                if _print_progress(run_settings) and until_synced:
                    break
        except KeyboardInterrupt:
            pass
    finally:
        say("stopping the demo workers ...")
        rt.stop()
    _print_progress(run_settings)


def _print_progress(s) -> bool:
    """One whole progress line; True once every enabled pair has finished a run (succeeded or failed)."""
    from sync_core import db, status as st

    engine = db.make_engine(s, "cli")
    try:
        with engine.connect() as conn:
            rows = [r for r in st.overview(conn) if r["stream"] is not None]
    finally:
        engine.dispose()
    total = sum(r["records_total"] for r in rows)
    busy = sum(1 for r in rows if r["status"] == "running")
    say(f"[demo] {total} records stored, {busy} stream(s) running: "
        + ", ".join(f"{r['account']}/{r['stream']}={r['records_total']}" for r in rows if r["records_total"]))
    return bool(rows) and all((r["last_success_at"] or r["last_error_at"]) and r["status"] != "running"
                              for r in rows if r["enabled"])


# ---------------------------------------------------------------- engine access behind the schema gate

accounts_app = typer.Typer(help="Seller accounts and their eBay tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="The token-encryption key and eBay's signing key.", no_args_is_help=True)
signing_app = typer.Typer(help="eBay Digital Signatures (EU/UK sellers' Finances calls).", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
keys_app.add_typer(signing_app, name="signing")


def _run_async(coro):
    import asyncio

    return asyncio.run(coro)


async def _gated_engine(role: str = "cli"):
    """An async engine on a database at head. The embedded default migrates itself (each revision it
    applies is printed on stderr); an external database that is behind, or any database at a revision
    this code does not know, stops the command (exit 3)."""
    from sync_core import db, migrate as m

    s = settings()
    url = db.database_url(s)
    if s.embedded:
        import asyncio

        await asyncio.to_thread(m.migrate, s, say_err, quiet_at_head=True)
    engine = db.make_async_engine(s, role, url)
    try:
        await db.run_retrying(s, "schema check", lambda: m.check_schema_async(engine))
    except BaseException:
        await engine.dispose()
        raise
    return engine


def _parse_date(value: str | None, what: str):
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{what} {value!r}: expected a date like 2026-01-31 or 2026-01-31T12:00:00Z", EXIT_USAGE) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    if d > datetime.now(timezone.utc):
        raise CliError(f"{what} {value!r} is in the future", EXIT_USAGE)
    return d


def _check_stream(stream: str | None) -> str | None:
    from sync_core.config import STREAM_NAMES

    if stream is not None and stream not in STREAM_NAMES:
        raise CliError(f"unknown stream {stream!r}; streams: {', '.join(STREAM_NAMES)}", EXIT_USAGE)
    return stream


async def _account_id(engine, name: str) -> int:
    from sync_core import accounts as acc

    async with engine.connect() as conn:
        try:
            return await acc.account_id(conn, name)
        except acc.AccountError as e:
            raise CliError(str(e), EXIT_USAGE) from None


# ---------------------------------------------------------------- accounts


@accounts_app.command("add")
def accounts_add(name: str,
                 refresh_token_stdin: bool = typer.Option(False, "--refresh-token-stdin",
                                                          help="Read a refresh token from stdin (headless provisioning)."),
                 eu: bool = typer.Option(False, "--eu", help="The seller is EU/UK-domiciled (Finances calls are signed)."),
                 region: Optional[str] = typer.Option(None, "--region", help="EU, UK or other (EU/UK = --eu)."),
                 marketplace: str | None = typer.Option(None, "--marketplace", metavar="EBAY_XX",
                                                        help="The account's eBay marketplace, sent as "
                                                             "X-EBAY-C-MARKETPLACE-ID (default: ebay_marketplace_id).")) -> None:
    """Add an account (optionally with a refresh token read from stdin)."""
    from sync_core import accounts as acc
    from sync_core.config import parse_marketplace

    try:
        acc.check_name(name)
        if marketplace is not None:
            parse_marketplace(marketplace)
    except (acc.AccountError, ValueError) as e:
        raise CliError(f"--marketplace: {e}" if isinstance(e, ValueError) else str(e), EXIT_USAGE) from None
    if region is not None and region.upper() not in ("EU", "UK", "OTHER"):
        raise CliError(f"--region {region!r}: use EU, UK or other", EXIT_USAGE)
    if eu and region is not None and region.upper() == "OTHER":
        raise CliError("--eu and --region other contradict each other", EXIT_USAGE)
    signing_required = True if eu or (region or "").upper() in ("EU", "UK") else (False if region else None)
    token = None
    if refresh_token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            raise CliError("--refresh-token-stdin: no token on stdin", EXIT_USAGE)

    async def go():
        from sync_core import control

        engine = await _gated_engine()
        try:
            async with engine.begin() as conn:
                await control.add_account(conn, settings(), name, token, origin="cli",
                                          signing_required=signing_required, marketplace=marketplace)
        finally:
            await engine.dispose()
    _run_async(go())
    say(f"account {name} added" + (" with a refresh token" if token else "; connect it: baysync accounts connect " + name))


@accounts_app.command("list")
def accounts_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Accounts with their token state."""
    from sync_core import accounts as acc

    async def go():
        engine = await _gated_engine()
        try:
            async with engine.connect() as conn:
                return await acc.list_accounts(conn)
        finally:
            await engine.dispose()
    rows = _run_async(go())
    default_mkt = settings().ebay_marketplace_id
    for r in rows:
        r["marketplace_id"] = r["marketplace_id"] or default_mkt
    if as_json:
        keep = ("name", "status", "paused", "token_state", "refresh_expires_at", "access_expires_at", "streams",
                "marketplace_id")
        say(json.dumps([{k: r[k] for k in keep} for r in rows], default=str))
        return
    if not rows:
        say("no accounts (baysync accounts add NAME)")
    for r in rows:
        say(f"{r['name']:<20} {r['status']:<14} {r['marketplace_id']:<10} {r['token_state']}"
            + ("  [EU/UK: signed]" if r["signing_required"] else ""))


@accounts_app.command("remove")
def accounts_remove(name: str, purge: bool = typer.Option(False, "--purge", help="Also delete the synced data."),
                    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove an account and its tokens (synced data kept unless --purge)."""
    from sync_core import accounts as acc

    if not yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to remove without confirmation: pass --yes", EXIT_USAGE)
        if not typer.confirm(f"remove account {name}" + (" AND its synced data" if purge else "") + "?"):
            raise typer.Exit(EXIT_FAIL)

    async def go():
        from sync_core import control

        engine = await _gated_engine()
        try:
            async with engine.begin() as conn:
                await control.remove_account(conn, name, purge, origin="cli")
        except acc.AccountError as e:
            raise CliError(str(e), EXIT_USAGE) from None
        finally:
            await engine.dispose()
    _run_async(go())
    say(f"account {name} removed" + (" with its data" if purge else " (synced data kept)"))


@accounts_app.command("connect")
def accounts_connect(name: str) -> None:
    """OAuth consent: prints the URL to open anywhere, then reads the redirected URL (or the code) back."""
    from sync_core import control

    s = settings()
    if not s.ebay_client_id or not s.ebay_client_secret or not s.ebay_runame:
        raise CliError("set ebay_client_id, ebay_client_secret and ebay_runame first (see README: Configuration)", EXIT_USAGE)
    try:
        url, state = control.consent_start(s, name)
    except ValueError as e:  # AccountError: a bad name
        raise CliError(str(e), EXIT_USAGE) from None
    say("Open this URL in a browser (any machine), approve, then paste the address you were redirected to")
    say("(or just the code) here within 5 minutes:")
    say(url)
    pasted = sys.stdin.readline().strip()
    if not pasted:
        raise CliError("nothing pasted", EXIT_USAGE)

    async def go():
        engine = await _gated_engine()
        try:
            await control.connect_account(engine, s, name, pasted, state, origin="cli")
        finally:
            await engine.dispose()
    try:
        _run_async(go())
    except ValueError as e:  # ConsentError, AccountError: what to fix, nothing stored
        raise CliError(str(e), EXIT_USAGE) from None
    except control.TokenExchangeFailed as e:
        raise CliError(f"token exchange failed: {e}") from None
    say(f"account {name} connected")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Generate a new key and re-encrypt every stored token with it."""
    from sync_core import control, crypto

    s = settings()

    async def go():
        engine = await _gated_engine()
        try:
            old = crypto.Vault.from_settings(s)
            new = crypto.begin_key_rotation(s)
            n = await control.rotate_keys(engine, old, new, origin="cli")
            crypto.finish_key_rotation(s)
            return n
        finally:
            await engine.dispose()
    try:
        n = _run_async(go())
    except crypto.CryptoError as e:
        raise CliError(str(e)) from None
    say(f"re-encrypted tokens of {n} account(s) with the new key")


@signing_app.command("create")
def signing_create(cipher: str = typer.Option("ED25519", "--cipher", help="ED25519 (recommended) or RSA.")) -> None:
    """Create the application's signing key with eBay's Key Management API and store it (encrypted)."""
    from sync_core import control
    from sync_core.crypto import CryptoError

    s = settings()
    if cipher.upper() not in ("ED25519", "RSA"):
        raise CliError(f"--cipher {cipher!r}: use ED25519 or RSA", EXIT_USAGE)
    if not s.ebay_client_id or not s.ebay_client_secret:
        raise CliError("set ebay_client_id and ebay_client_secret first (see README: Configuration)", EXIT_USAGE)

    async def go():
        engine = await _gated_engine()
        try:
            return await control.create_signing_key(engine, s, cipher.upper(), origin="cli")
        finally:
            await engine.dispose()
    try:
        key = _run_async(go())
    except control.SigningKeyFailed as e:
        raise CliError(str(e)) from None
    except CryptoError as e:
        raise CliError(str(e)) from None
    say(f"signing key {key['key_id'] or '(no id)'} created and stored encrypted; EU/UK sellers' Finances calls are signed")


@signing_app.command("import")
def signing_import(file: str = typer.Option(..., "--file", help="createSigningKey's JSON, or PEM private key + JWE line.")) -> None:
    """Store an existing signing key (the private key eBay returned once, with its JWE)."""
    from pathlib import Path

    from sync_core import control
    from sync_core.crypto import CryptoError

    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"--file {file}: cannot read it ({type(e).__name__})", EXIT_USAGE) from None
    try:
        key, cipher = control.parse_signing_key(text)
    except ValueError as e:
        raise CliError(f"--file {file}: {e}", EXIT_USAGE) from None

    async def go():
        engine = await _gated_engine()
        try:
            await control.store_signing_key(engine, settings(), key, source="imported", origin="cli")
        finally:
            await engine.dispose()
    try:
        _run_async(go())
    except CryptoError as e:
        raise CliError(str(e)) from None
    say(f"signing key imported ({cipher}); "
        "EU/UK sellers' Finances calls are signed")


# ---------------------------------------------------------------- sync, run, control, logs


PROGRESS_LINE_S = 5.0  # progress of `sync` when stderr is not a terminal: one whole line this often


@app.command()
def sync(account: str = typer.Option(..., "--account", "-a"), stream: str = typer.Option(..., "--stream", "-s"),
         since: Optional[str] = typer.Option(None, "--since", help="Re-read history from this date."),
         full: bool = typer.Option(False, "--full", help="Re-read everything eBay serves for this stream.")) -> None:
    """One run of one (account, stream) in the foreground. SIGINT/SIGTERM stop it at its next checkpoint
    (run cancelled, exit 130/143); a second signal stops it at once."""
    import signal
    import time

    import sqlalchemy as sa

    from sync_core import control, coordination as co, db
    from sync_core.runner import Run
    from sync_core.worker import Clients

    _check_stream(stream)
    since_dt = _parse_date(since, "--since")
    _setup_logging()
    s = settings()
    signals: list[int] = []
    tty = sys.stderr.isatty()

    async def go() -> tuple[str, str | None]:
        import asyncio

        engine = await _gated_engine("worker")
        clients = Clients(s, engine)
        owner = co.new_owner("cli")
        loop = asyncio.get_running_loop()
        try:
            aid = await _account_id(engine, account)
            async with engine.begin() as conn:
                if since_dt:
                    await control.backfill(conn, aid, stream, since=since_dt, origin="cli")
                claim = await co.claim_pair(conn, owner, aid, stream, s.lease_ttl_s, kind="full" if full else "incremental")
                holder = None if claim else await co.lease_holder(conn, aid, stream)
            if claim is None:
                if holder:
                    raise CliError(f"already running (owner {holder})", EXIT_BUSY)
                raise CliError(f"{account}/{stream} is paused, disabled or needs reauth (baysync status)")
            ctx = Run(s, engine, claim, owner)
            task = None

            def on_signal(signum: int) -> None:  # first: stop at the next checkpoint; second: at once
                signals.append(signum)
                ctx.stop_requested = ctx.shutdown = True
                if len(signals) > 1 and task is not None:
                    task.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig)
            task = asyncio.create_task(ctx.execute(clients))  # no usable tokens: the run fails with the reason

            def progress() -> str:
                t = ctx.totals
                return (f"{account}/{stream}: {t.pages} pages, +{t.inserted} ~{t.updated} ={t.unchanged}"
                        + (f" quarantined {t.quarantined}" if t.quarantined else ""))
            last_line = time.monotonic()
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                if tty:
                    print("\r" + progress(), end="", file=sys.stderr, flush=True)
                elif time.monotonic() - last_line >= PROGRESS_LINE_S:
                    say_err(progress())
                    last_line = time.monotonic()
            if tty:
                print(file=sys.stderr)
            else:
                say_err(progress())
            try:
                status = task.result()
            except asyncio.CancelledError:
                # a second signal cancelled the run wherever it was, possibly inside its own final
                # transaction: end it here (a no-op if it already ended; its checkpoint is kept)
                async with engine.begin() as conn:
                    await co.finish(conn, owner, claim.run_id, "cancelled", interval_s=0,
                                    error="interrupted by a second signal")
                return "cancelled", "interrupted"
            async with engine.connect() as conn:
                error = (await conn.execute(sa.text("select error from sync_runs where id = :r"),
                                            dict(r=claim.run_id))).scalar()
            return status, error
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            try:  # whatever happened above, this process holds no lease when it exits
                async with engine.begin() as conn:
                    await co.release_all(conn, owner)
            except Exception as e:
                say_err(f"warning: could not release the lease ({db.describe(e)}); it expires in {s.lease_ttl_s}s")
            await clients.aclose()
            await engine.dispose()
    status, error = _run_async(go())
    if status == "succeeded":
        say(f"run {status}")
        return
    if status == "deferred":  # eBay said "not now" (e.g. the report task quota): not an error, nothing stored
        say(f"run deferred: {error}")
        return
    if signals:
        name = signal.Signals(signals[0]).name
        say_err(f"run {status} by {name}: stopped at its last checkpoint; the next run resumes from there")
        raise typer.Exit(128 + signals[0])
    say_err(f"error: run {status}" + (f": {error}" if error else ""))
    raise typer.Exit(EXIT_FAIL)


@app.command()
def backfill(account: str = typer.Option(..., "--account", "-a"), stream: str = typer.Option(..., "--stream", "-s"),
             since: str = typer.Option(..., "--since", help="Re-read history from this date.")) -> None:
    """Ask the workers to re-read a stream's history from a date."""
    _check_stream(stream)
    since_dt = _parse_date(since, "--since")
    _control("backfill", account, stream, since=since_dt)
    say(f"backfill of {account}/{stream} from {since_dt.isoformat()} requested")


def _control(action: str, account: str, stream: str | None, **kw) -> int:
    """One operator request through sync_core.control (the request and its audit event commit together)."""
    from sync_core import control

    _check_stream(stream)

    async def go():
        engine = await _gated_engine()
        try:
            aid = await _account_id(engine, account)
            return await control.perform(engine, action, aid, stream, origin="cli", **kw)
        finally:
            await engine.dispose()
    return _run_async(go())


@app.command()
def stop(account: str = typer.Option(..., "--account", "-a"), stream: Optional[str] = typer.Option(None, "--stream", "-s")) -> None:
    """Cooperative STOP: running pairs commit their current page and end cancelled."""
    n = _control("stop", account, stream)
    say(f"stop requested for {n} stream(s) of {account}")


@app.command("run-now")
def run_now(account: str = typer.Option(..., "--account", "-a"), stream: Optional[str] = typer.Option(None, "--stream", "-s")) -> None:
    """Ask the workers to run these pairs now."""
    say(f"run requested for {_control('run-now', account, stream)} stream(s) of {account}")


@app.command()
def pause(account: str = typer.Option(..., "--account", "-a"), stream: Optional[str] = typer.Option(None, "--stream", "-s")) -> None:
    """Pause a stream or a whole account."""
    say(f"paused {_control('pause', account, stream)} stream(s) of {account}")


@app.command()
def resume(account: str = typer.Option(..., "--account", "-a"), stream: Optional[str] = typer.Option(None, "--stream", "-s")) -> None:
    """Resume a paused stream or account."""
    say(f"resumed {_control('resume', account, stream)} stream(s) of {account}")


@app.command("clear-error")
def clear_error(account: str = typer.Option(..., "--account", "-a"),
                stream: Optional[str] = typer.Option(None, "--stream", "-s")) -> None:
    """Clear the last error of failed pairs and queue them again."""
    say(f"error cleared for {_control('clear-error', account, stream)} stream(s) of {account}")


@app.command()
def logs(follow: bool = typer.Option(False, "--follow", "-f"), account: Optional[str] = typer.Option(None, "--account", "-a"),
         stream: Optional[str] = typer.Option(None, "--stream", "-s"), run: Optional[int] = typer.Option(None, "--run"),
         level: str = typer.Option("info", "--level", help="debug, info, warning or error"),
         kind: Optional[str] = typer.Option(None, "--kind", help="Only events of this kind (audit: operator actions)."),
         limit: int = typer.Option(100, "--limit", help="Lines of history to show first.")) -> None:
    """Run events; --follow streams new ones live (LISTEN/NOTIFY, no polling timer)."""
    from sync_core import db, events as ev

    _check_stream(stream)
    if level not in ev.LEVELS:
        raise CliError(f"--level {level!r}: expected one of {', '.join(ev.LEVELS)}", EXIT_USAGE)
    as_json = settings().log_format == "json"

    def show(e: dict) -> None:
        if as_json:
            say(json.dumps({k: e[k] for k in ("id", "ts", "level", "kind", "account", "stream", "run_id", "message",
                                              "data")}, default=str))
        else:
            account = e["account"] or (e["data"] or {}).get("account") if e["kind"] == "audit" else e["account"]
            say(f"{e['ts']:%Y-%m-%d %H:%M:%S} {e['level']:<7} {(account or '-')}/{e['stream'] or '-'} "
                f"run {e['run_id'] or '-'} {e['kind']}: {e['message']}")

    async def go():
        engine = await _gated_engine()
        try:
            aid = await _account_id(engine, account) if account else None
            read = functools.partial(ev.read_since, run_id=run, account_id=aid, stream=stream, min_level=level,
                                     kind=kind)  # the filters of every read below
            async with engine.connect() as conn:
                top = await ev.last_id(conn)  # read before the history: nothing committed after it is skipped
                if kind and limit:  # a rare kind (audit) may be far back: the newest `limit` of that kind
                    rows = await read(conn, 0, limit=limit, newest=True)
                else:
                    last = max(0, top - limit * 20) if limit else top
                    rows = await read(conn, last, limit=100000)
            for e in rows[-limit:] if limit else []:
                show(e)
            last = max([top] + [e["id"] for e in rows])
            if not follow:
                return
            async for _ in ev.listen(db.psycopg_conninfo(engine.url.render_as_string(hide_password=False)), timeout=30):
                async with engine.connect() as conn:
                    while True:
                        rows = await read(conn, last, limit=1000)
                        for e in rows:
                            show(e)
                        if rows:
                            last = rows[-1]["id"]
                        if len(rows) < 1000:
                            break
        finally:
            await engine.dispose()
    try:
        _run_async(go())
    except KeyboardInterrupt:
        pass


@app.command("run")
def run_workers(workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Concurrent runs (default: config workers)."),
                health: Optional[str] = typer.Option(None, "--health", help="HOST:PORT for /healthz and /metrics."),
                log_format: Optional[str] = typer.Option(None, "--log-format", help="text or json")) -> None:
    """Headless: scheduler plus worker pool for every enabled (account, stream) pair."""
    import asyncio
    import signal

    from sync_core import health as h
    from sync_core.config import _parse_bind
    from sync_core.worker import WorkerPool

    if log_format not in (None, "text", "json"):
        raise CliError(f"--log-format {log_format!r}: expected text or json", EXIT_USAGE)
    if workers is not None and not (1 <= workers <= 1024):
        raise CliError(f"--workers {workers}: expected 1..1024", EXIT_USAGE)
    bind = health if health is not None else settings().health_bind
    if bind:
        try:
            _parse_bind(bind)
        except ValueError as e:
            raise CliError(f"--health {bind!r}: {e}", EXIT_USAGE) from None
    _setup_logging(log_format)
    s = settings()

    async def go():
        from sync_core.worker import worker_engine

        gate = await _gated_engine("worker")
        await gate.dispose()
        engine = worker_engine(s)
        pool = WorkerPool(s, engine, kind="headless", concurrency=workers)
        stop_ev = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_ev.set)
        health = await h.serve(pool, bind) if bind else None
        try:
            await pool.run_until(stop_ev)
        finally:
            if health is not None:
                await health.stop()  # a graceful stop
            await engine.dispose()
    _run_async(go())


@app.command("sim")
def sim(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8765, "--port"),
        seed: int = typer.Option(7, "--seed"),
        sellers: str = typer.Option("demo-small:300,demo-medium:2000,demo-large:8000", "--sellers",
                                    help="name:orders,... (other volumes scale with orders)"),
        speed: float = typer.Option(1.0, "--speed",
                                    help="accelerated arrivals: simulated seconds per real second (as `baysync demo "
                                         "--speed`; 1 = new records arrive in real time)")) -> None:
    """Serve the eBay simulator on loopback (point the ebay_*_base_url settings at it)."""
    import math

    from sync_core.sim import server as sim_server

    if not (0 < port < 65536):
        raise CliError(f"--port {port}: expected 1..65535", EXIT_USAGE)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise CliError(f"--host {host!r}: the simulator only listens on loopback", EXIT_USAGE)
    if not (math.isfinite(speed) and speed > 0):
        raise CliError(f"--speed {speed}: expected a positive number (simulated seconds per real second)", EXIT_USAGE)
    cfg = _sim_config(seed, sellers, speed)
    say(f"eBay simulator on http://{host}:{port} at {speed:g}x  (client id {cfg.client_id})")
    sim_server.serve(host=host, port=port, config=cfg)


def _sim_config(seed: int, sellers: str, speed: float = 1.0):
    """The simulator of `baysync sim`: ``sellers`` ("name:orders,..."), their future generated for an hour at
    ``speed`` (at least the simulator's default two weeks)."""
    from sync_core.demo import future_days_for
    from sync_core.sim import SellerSpec, SimConfig

    future_days = max(SellerSpec.future_days, future_days_for(speed))  # (the dataclass default: 14)
    specs = []
    for part in sellers.split(","):
        name, _, n = part.partition(":")
        try:
            orders = int(n)
        except ValueError:
            raise CliError(f"--sellers {part!r}: expected name:orders", EXIT_USAGE) from None
        specs.append(SellerSpec(name, orders=orders, transactions=orders * 2, payouts=max(3, orders // 40),
                                disputes=max(1, orders // 100), conversations=max(2, orders // 20),
                                inventory_items=max(5, orders // 10), days=120, future_days=future_days))
    return SimConfig(seed=seed, sellers=specs, speed=speed)


def _run_typer(args: list[str] | None) -> int:
    from sync_core import db, migrate as m
    from sync_core.config import ConfigError

    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=args, prog_name="baysync", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except typer_exc.Exit as e:
        return e.exit_code
    except typer_exc.Abort:
        print("aborted", file=sys.stderr)
        return EXIT_FAIL
    except typer_exc.TyperException as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help(), file=sys.stderr)
            return EXIT_USAGE
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        print(f"error: {e.format_message()}{where}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except m.SchemaMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SCHEMA
    except m.MigrationFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except (db.DatabaseFatal, db.DatabaseUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


def main(args: Optional[list[str]] = None) -> None:
    sys.exit(_run_typer(args))


if __name__ == "__main__":
    main()
