"""The `baysync` command line (typer). Every command is a thin layer over sync_core.

Exit codes: 0 ok, 1 failure, 2 bad input (config or arguments), 3 schema not at head,
4 the (account, stream) pair is already running elsewhere.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable, Optional

import typer
import typer.exceptions as typer_exc

from sync_core import __version__

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


@functools.lru_cache(maxsize=1)
def settings():
    from sync_core.config import load_settings

    return load_settings()


def _setup_logging(fmt: str | None = None) -> None:
    from sync_core.logs import setup_logging

    s = settings()
    setup_logging(fmt or s.log_format, s.log_level)


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
    try:
        from console.app import run_console
    except ImportError:
        raise CliError("the console is not available in this build; use `baysync status`") from None
    run_console(settings(), read_only=read_only)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to head (safe to run concurrently)."""
    from sync_core import migrate as m

    _setup_logging()
    m.migrate(settings(), say)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object (stable interface).")) -> None:
    """Database, schema and per-stream state."""
    from sync_core import status as st

    data = st.gather(settings())
    if as_json:
        say(json.dumps(data, default=str))
        return
    d = data["database"]
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


@app.command()
def doctor() -> None:
    """Check configuration, database and schema; print the fix for each failure."""
    from sync_core import db, migrate as m
    from sync_core.config import ConfigError, load_settings

    ok = True

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
    for check in _extra_doctor_checks():
        good, what, detail = check(s, url)
        line(good, what, detail)
    if not ok:
        raise typer.Exit(EXIT_FAIL)


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
def demo(headless: bool = typer.Option(False, "--headless", help="No TUI: run the demo and print progress.")) -> None:
    """Start the embedded database, migrate and show status (the live demo grows with the sync core)."""
    from sync_core import migrate as m

    _setup_logging()
    s = settings()
    say("baysync demo: preparing the database" + (" (embedded PostgreSQL)" if s.embedded else ""))
    m.migrate(s, say)
    status(as_json=False)


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
