"""The one place that creates database engines, and the retry policy for database work.

Every engine (console, CLI, workers, Alembic's env.py) comes from :func:`make_engine` /
:func:`make_async_engine`: psycopg 3, connect timeout, TCP keepalives, pre-ping, a bounded pool,
recycling, ``application_name = baysync/<role>`` and per-role statement/lock timeouts.

Connecting and idempotent units of work go through :func:`retrying` / :func:`run_retrying`:
exponential backoff with jitter (``db_retry_attempts`` tries in all, default 3: waits of about 2 and 4 s, each
at most ``db_retry_max_s``), each failed attempt logged with its reason.
Errors that no retry can fix (bad password, missing database, unknown host) fail at once with
:class:`DatabaseFatal` and a message naming the fix.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import (AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt,
                      wait_exponential_jitter)

from . import embedded
from .config import Settings, redact_url
from .retry import first_then_retrying

log = logging.getLogger("baysync.db")
T = TypeVar("T")

# statement_timeout (ms, 0 = none) per role; lock_timeout comes from settings for every role.
ROLE_STATEMENT_TIMEOUT = {"migrate": 0, "bench": 0}


class DatabaseFatal(RuntimeError):
    """A database error that retrying cannot fix; the message says what to change."""


class DatabaseUnavailable(RuntimeError):
    """The database stayed unreachable through every retry."""


def database_url(settings: Settings, *, start_embedded: bool = True) -> str:
    """The SQLAlchemy URL to use: the configured one, or the embedded server's."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    if not start_embedded:
        info = embedded.status(settings.pgdata)
        return info.url() if info.running else ""
    try:
        return embedded.url_for(settings.home)
    except embedded.EmbeddedError as e:
        raise DatabaseFatal(f"embedded PostgreSQL: {e}") from None


def migrate_url(settings: Settings) -> str:
    """The URL migrations use: ``migrate_database_url`` (a direct connection, for when database_url goes
    through a pooler) or else the database_url."""
    if settings.migrate_database_url:
        return normalize_url(settings.migrate_database_url)
    return database_url(settings)


def normalize_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _connect_args(settings: Settings, role: str) -> dict[str, Any]:
    stmt_ms = ROLE_STATEMENT_TIMEOUT.get(role, settings.db_statement_timeout_s * 1000)
    lock_ms = settings.db_lock_timeout_s * 1000
    return {
        "connect_timeout": settings.db_connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": settings.db_keepalives_idle_s,
        "keepalives_interval": settings.db_keepalives_interval_s,
        "keepalives_count": settings.db_keepalives_count,
        "application_name": f"baysync/{role}",
        # plan_cache_mode: psycopg prepares a statement after 5 runs and PostgreSQL may then keep one generic
        # plan for it; ours take arrays (a page's keys) and a generic plan made while a table looked empty
        # (a backfill into a new or truncated table, before autovacuum's ANALYZE) seq-scans it for every key:
        # re-syncing 200-row pages took 0.6 s each instead of 2 ms (docs/performance.md, "Upsert").
        "options": f"-c statement_timeout={stmt_ms} -c lock_timeout={lock_ms} -c timezone=UTC "
                   f"-c plan_cache_mode=force_custom_plan",
    }


def _engine_kwargs(settings: Settings, role: str) -> dict[str, Any]:
    return dict(
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle_s,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args=_connect_args(settings, role),
    )


def make_engine(settings: Settings, role: str, url: str | None = None) -> Engine:
    """A synchronous engine (Alembic, short CLI commands)."""
    return sa.create_engine(url or database_url(settings), **_engine_kwargs(settings, role))


def make_async_engine(settings: Settings, role: str, url: str | None = None, **overrides: Any) -> AsyncEngine:
    """An asyncio engine (workers, console)."""
    kw = _engine_kwargs(settings, role)
    kw.update(overrides)
    return create_async_engine(url or database_url(settings), **kw)


def psycopg_conninfo(url: str) -> dict[str, Any]:
    """Keyword arguments for a raw psycopg connection (LISTEN, COPY) from a SQLAlchemy URL."""
    u: URL = make_url(url)
    kw: dict[str, Any] = {"dbname": u.database or "postgres"}
    if u.username:
        kw["user"] = u.username
    if u.password:
        kw["password"] = u.password
    if u.host:
        kw["host"] = u.host
    if u.port:
        kw["port"] = u.port
    for k, v in u.query.items():
        kw[k] = v if isinstance(v, str) else v[0]
    return kw


def listen_conninfo(settings: Settings, role: str, url: str) -> dict[str, Any]:
    """Keyword arguments for a LISTEN connection outside the pool: the URL's, with the pool's connect
    timeout, TCP keepalives (a dead connection is noticed) and ``application_name = baysync/<role>``."""
    return {**psycopg_conninfo(url), **_connect_args(settings, role)}


# ---------------------------------------------------------------- error classification

_FATAL_SQLSTATES = {
    "28P01",  # invalid_password
    "28000",  # invalid_authorization_specification
    "3D000",  # invalid_catalog_name (database does not exist)
    "42501",  # insufficient_privilege
}
_FATAL_TEXT = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "could not translate host name",
    "Name or service not known",
    "role \"",
)


def _root(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc


def is_fatal(exc: BaseException) -> bool:
    orig = _root(exc)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _FATAL_SQLSTATES:
        return True
    msg = str(orig)
    return any(t in msg for t in _FATAL_TEXT)


def _is_disconnect_text(msg: str) -> bool:
    m = msg.lower()
    return any(t in m for t in (
        "server closed the connection", "connection refused", "terminating connection",
        "connection reset", "ssl syscall", "consuming input failed", "connection is closed",
        "connection timeout", "timeout expired", "could not receive data", "could not send data",
        "the database system is starting up", "the database system is shutting down", "no such file or directory",
        "connection failed", "connection to server", "eof detected", "broken pipe", "is not open",
    ))


def is_retryable(exc: BaseException) -> bool:
    """Connection loss and the like: worth another attempt for idempotent work."""
    import psycopg

    if is_fatal(exc):
        return False
    if isinstance(exc, sa.exc.TimeoutError):  # every pooled connection stayed busy: wait another round
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _root(exc)
    if getattr(orig, "sqlstate", None) in ("40P01", "40001"):  # deadlock / serialization: the unit can rerun
        return True
    if isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError)):
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate in ("57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004") or sqlstate is None:
            return True
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return _is_disconnect_text(str(orig)) or getattr(orig, "sqlstate", None) is None
    if isinstance(orig, (ConnectionError, TimeoutError, OSError)):
        return True
    return False


def describe(exc: BaseException) -> str:
    """One line describing a database error, without credentials."""
    orig = _root(exc)
    text = " ".join(str(orig).split())
    return text[:300] or type(orig).__name__


def fatal_message(exc: BaseException, url: str, key: str = "database_url") -> str:
    return f"cannot use database {redact_url(url)}: {describe(exc)} (check {key} / BAYSYNC_{key.upper()})"


def _before_sleep(what: str) -> Callable[[RetryCallState], None]:
    def hook(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("database: %s failed (attempt %d): %s; retrying in %.1fs",
                    what, state.attempt_number, describe(exc) if exc else "?", wait)
    return hook


def _policy(settings: Settings, what: str, attempts: int | None = None) -> dict[str, Any]:
    return dict(
        stop=stop_after_attempt(attempts or settings.db_retry_attempts),
        wait=wait_exponential_jitter(multiplier=settings.db_retry_initial_s, max=settings.db_retry_max_s,
                                     jitter=min(1.0, settings.db_retry_initial_s)),
        retry=retry_if_exception(is_retryable),
        before_sleep=_before_sleep(what),
        reraise=True,
    )


async def run_retrying(settings: Settings, what: str, fn: Callable[[], Awaitable[T]], attempts: int | None = None) -> T:
    """Run an idempotent async unit of work, retrying on connection loss (the first attempt without the
    retry machinery: sync_core/retry.py)."""
    return await first_then_retrying(fn, is_retryable, lambda: AsyncRetrying(**_policy(settings, what, attempts)))


def run_retrying_sync(settings: Settings, what: str, fn: Callable[[], T], attempts: int | None = None) -> T:
    for attempt in Retrying(**_policy(settings, what, attempts)):
        with attempt:
            return fn()
    raise AssertionError("unreachable")


def check_connect(settings: Settings, url: str | None = None) -> str:
    """Connect once (with retries); return the server version. Raises DatabaseFatal/DatabaseUnavailable."""
    url = url or database_url(settings)
    engine = make_engine(settings, "cli", url)
    try:
        def probe() -> str:
            with engine.connect() as c:
                return c.execute(sa.text("show server_version")).scalar_one()
        return run_retrying_sync(settings, "connect", probe)
    except Exception as e:
        if is_fatal(e):
            raise DatabaseFatal(fatal_message(e, url)) from None
        if is_retryable(e):
            raise DatabaseUnavailable(f"database {redact_url(url)} unreachable: {describe(e)}") from None
        raise
    finally:
        engine.dispose()
