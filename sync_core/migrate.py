"""Schema migrations (Alembic, one linear head) and the schema gate.

``migrate()`` upgrades to head under a session advisory lock: concurrent invocations wait, then find
the schema at head and say so. Each revision runs in its own transaction (PostgreSQL DDL is
transactional, so a failure leaves nothing half-applied); its start, end and duration are printed at
once and recorded in migration_log in the same transaction. Only connection loss is retried.

``check_schema()`` is the gate every command that touches synced data passes: a database that is
behind (or unknown to) this code raises :class:`SchemaMismatch`; nothing ever "continues anyway".
"""

from __future__ import annotations

import functools
import getpass
import importlib.resources
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from . import db
from .config import Settings, redact_url

MIGRATE_LOCK_KEY = 0x62617973796E63  # "baysync"
LOCK_POLL_S = 0.25


class SchemaMismatch(RuntimeError):
    def __init__(self, current: str | None, head: str):
        self.current, self.head = current, head
        super().__init__(f"database schema at {current or 'none (empty database)'}, this baysync expects {head}: "
                         "run baysync migrate")


class SchemaUnknown(SchemaMismatch):
    """The database was stamped by a newer baysync: nothing here may read, write or migrate it."""

    def __init__(self, current: str, head: str):
        self.current, self.head = current, head
        RuntimeError.__init__(self, f"database schema at {current}, which this baysync (head {head}) does not know: "
                                    "upgrade baysync")


class MigrationFailed(RuntimeError):
    """A revision raised (its transaction rolled back: the database stays at the previous revision)."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files("migrations")))
    return cfg


@functools.lru_cache(maxsize=1)
def script() -> ScriptDirectory:
    """The revisions this code has (read once per process: they are part of the installed package)."""
    return ScriptDirectory.from_config(alembic_config())


def heads() -> list[str]:
    return list(script().get_heads())


def head() -> str:
    hs = heads()
    if len(hs) != 1:
        raise RuntimeError(f"migrations have {len(hs)} heads ({', '.join(hs)}); there must be exactly one")
    return hs[0]


def current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def is_known(revision: str | None) -> bool:
    return revision is None or revision in {r.revision for r in script().walk_revisions()}


def check_known(current: str | None) -> None:
    """Raise SchemaUnknown if ``current`` is a revision this code does not have (a newer baysync's)."""
    if current is not None and not is_known(current):
        raise SchemaUnknown(current, head())


def check_schema_conn(conn: sa.Connection) -> str:
    cur, h = current_revision(conn), head()
    check_known(cur)
    if cur != h:
        raise SchemaMismatch(cur, h)
    return cur


async def check_schema_async(engine) -> str:
    async with engine.connect() as conn:
        return await conn.run_sync(check_schema_conn)


def check_schema(settings: Settings, url: str | None = None, *, allow_behind: bool = False) -> str | None:
    """Raise SchemaMismatch unless the database is at head (``allow_behind``: only SchemaUnknown, for a
    revision this code does not know); returns the revision."""
    engine = db.make_engine(settings, "cli", url)
    try:
        def probe() -> str | None:
            with engine.connect() as conn:
                if allow_behind:
                    cur = current_revision(conn)
                    check_known(cur)
                    return cur
                return check_schema_conn(conn)
        return db.run_retrying_sync(settings, "schema check", probe)
    finally:
        engine.dispose()


def pending_revisions(current: str | None) -> list[str]:
    """Revisions from current (exclusive) to head, oldest first (SchemaUnknown for a revision not here)."""
    check_known(current)
    sd = script()
    revs = [r.revision for r in sd.iterate_revisions(head(), current)]
    revs.reverse()
    return [r for r in revs if r != current]


@dataclass
class MigrateResult:
    applied: list[str] = field(default_factory=list)
    revision: str | None = None
    already_at_head: bool = False


def _applied_by() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _acquire_lock(conn: sa.Connection, say: Callable[[str], None], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        got = conn.execute(sa.text("select pg_try_advisory_lock(:k)"), {"k": MIGRATE_LOCK_KEY}).scalar_one()
        conn.commit()
        if got:
            return
        if not told:
            say("another baysync migrate holds the migration lock; waiting for it to finish")
            told = True
        if time.monotonic() > deadline:
            raise TimeoutError(f"migration lock still held after {timeout_s:.0f}s")
        time.sleep(LOCK_POLL_S)


def _migrate_once(settings: Settings, url: str, say: Callable[[str], None], lock_timeout_s: float,
                  target: str | None = None, quiet_at_head: bool = False) -> MigrateResult:
    engine = db.make_engine(settings, "migrate", url)
    result = MigrateResult()
    try:
        with engine.connect() as conn:
            _acquire_lock(conn, say, lock_timeout_s)
            try:
                current = current_revision(conn)
                conn.commit()
                h = head()
                todo = pending_revisions(current)
                if target is not None:
                    todo = todo[: todo.index(target) + 1] if target in todo else []
                if not todo:
                    result.already_at_head = current == h
                    result.revision = current
                    if not (quiet_at_head and current == h):
                        say(f"already at head ({h})" if current == h else f"at {current}")
                    return result
                cfg = alembic_config()
                started: dict[str, datetime] = {}

                def on_apply(*, ctx, step, heads, run_args) -> None:  # same transaction as the revision
                    rev = step.up_revision_id if step.is_upgrade else step.down_revision_ids[0] if step.down_revision_ids else None
                    t0 = started.get(step.up_revision_id, datetime.now(timezone.utc))
                    t1 = datetime.now(timezone.utc)
                    if step.is_upgrade:
                        ctx.connection.execute(
                            sa.text("insert into migration_log (revision, direction, started_at, finished_at, duration_ms, applied_by) "
                                    "values (:r, 'upgrade', :s, :f, :d, :b)"),
                            {"r": rev, "s": t0, "f": t1, "d": int((t1 - t0).total_seconds() * 1000), "b": _applied_by()})

                cfg.attributes["connection"] = conn
                cfg.attributes["on_version_apply"] = on_apply
                for rev in todo:
                    say(f"applying {rev} ...")
                    t0 = time.monotonic()
                    started[rev] = datetime.now(timezone.utc)
                    try:
                        command.upgrade(cfg, rev)
                        conn.commit()
                    except Exception as e:
                        if db.is_retryable(e):
                            raise
                        conn.rollback()
                        at = current_revision(conn)
                        conn.commit()
                        raise MigrationFailed(f"migration {rev} failed: {db.describe(e)} "
                                              f"(nothing of it applied; database at {at or 'none'})") from e
                    say(f"applied  {rev} in {(time.monotonic() - t0) * 1000:.0f} ms")
                    result.applied.append(rev)
                result.revision = current_revision(conn)
                conn.commit()
                say(f"schema at head ({result.revision})")
                return result
            finally:
                if not conn.closed and not conn.invalidated:
                    try:
                        conn.rollback()
                        conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK_KEY})
                        conn.commit()
                    except Exception:
                        pass  # connection gone: the server released the session lock with it
    finally:
        engine.dispose()


def migrate(settings: Settings, say: Callable[[str], None] = print, *, url: str | None = None,
            lock_timeout_s: float = 600.0, target: str | None = None, quiet_at_head: bool = False,
            origin: str | None = None) -> MigrateResult:
    """Upgrade to head (or ``target``), retrying only on connection loss. Migrations use
    ``migrate_database_url`` when it is set (a direct connection: they hold a session advisory lock).
    A database at a revision this code does not know raises SchemaUnknown and is not touched; a failing
    revision raises MigrationFailed. ``quiet_at_head``: say nothing when there is nothing to do (the
    embedded database's automatic upgrade). ``origin`` (an operator ran it: cli or console) records an
    audit event with the revisions applied afterwards."""
    key = "migrate_database_url" if url is None and settings.migrate_database_url else "database_url"
    url = url or db.migrate_url(settings)
    try:
        result = db.run_retrying_sync(settings, "migrate",
                                      lambda: _migrate_once(settings, url, say, lock_timeout_s, target, quiet_at_head))
        if origin is not None and result.revision is not None:
            _record(settings, url, result, origin)
        return result
    except (SchemaMismatch, MigrationFailed):
        raise
    except Exception as e:
        if db.is_fatal(e):
            raise db.DatabaseFatal(db.fatal_message(e, url, key)) from None
        if db.is_retryable(e) and not isinstance(e, TimeoutError):  # (not the migration lock's wait)
            raise db.DatabaseUnavailable(f"database {redact_url(url)} unreachable: {db.describe(e)} "
                                         f"(check {key} / BAYSYNC_{key.upper()})") from None
        raise


def _record(settings: Settings, url: str, result: MigrateResult, origin: str) -> None:
    from .control import record_migrate

    engine = db.make_engine(settings, "migrate", url)
    try:
        with engine.begin() as conn:
            record_migrate(conn, result.applied, result.revision, origin)
    finally:
        engine.dispose()


def downgrade(settings: Settings, target: str, url: str | None = None, say: Callable[[str], None] = print) -> None:
    """Downgrade (developers and tests); same lock and URL as migrate."""
    url = url or db.migrate_url(settings)
    engine = db.make_engine(settings, "migrate", url)
    try:
        with engine.connect() as conn:
            _acquire_lock(conn, say, 600)
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, target)
            conn.commit()
            conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK_KEY})
            conn.commit()
    finally:
        engine.dispose()


def history(conn: sa.Connection) -> list[dict]:
    """Applied history from migration_log (newest first), empty if the table does not exist yet."""
    if conn.execute(sa.text("select to_regclass('migration_log')")).scalar() is None:
        return []
    rows = conn.execute(sa.text("select revision, direction, started_at, finished_at, duration_ms, applied_by "
                                "from migration_log order by id desc")).mappings().all()
    return [dict(r) for r in rows]
