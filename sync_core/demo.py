"""`baysync demo`: the simulator on loopback with three demo sellers of different sizes, their accounts
connected, and a worker pool syncing them, all in this process, on a private event loop in a thread
(the console, when shown, runs on the main thread and sees everything through the database).

The demo stays alive: the simulator runs with accelerated arrivals (``--speed``, SimConfig.speed): new
orders, payments, disputes and messages arrive every few seconds while the clock stays real, and the demo's
stream intervals follow the speed.  It keeps its data apart: its own database (the operator's database name
+ ``_demo``, on the same server), emptied at every start; the operator's database is never touched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from . import accounts
from .config import Settings, redact_url

if TYPE_CHECKING:
    from .sim import Simulator
    from .worker import WorkerPool

log = logging.getLogger("baysync.demo")

DEMO_SELLERS = (  # name, orders over the last `days` days; the other volumes scale with it
    ("demo-small", 300),
    ("demo-medium", 3_000),
    ("demo-large", 12_000),
)
DEMO_DAYS = 120
# --speed default: one real second is 1000 s (~17 min) of the sellers' seeded life.  With the volumes below,
# across the three sellers (measured on the simulator): ~1.4 new orders and ~2.8 transactions a second, a
# dispute every ~7 s, a conversation every ~5 s (and their messages), a payout every ~20 s.
DEFAULT_SPEED = 1000.0
DEMO_ALIVE_S = 3600  # generate enough future for an hour of real time at the chosen speed ...
MAX_FUTURE_DAYS = 365  # ... but no more than a year of it (a very high --speed runs out sooner)
DEMO_RUN_EVERY_SIM_S = 10_000  # streams whose records arrive run every ~2.8 simulated hours ...
DEMO_INTERVAL_RANGE = (5, 60)  # ... clamped to 5..60 real seconds (10 s at the default speed)
DEMO_INVENTORY_INTERVAL_S = 60  # inventory does not arrive (only the seeded catalog): no need to poll it faster
INVENTORY_STREAMS = ("inventory_items", "offers", "active_inventory")
DEMO_DB_SUFFIX = "_demo"


class DemoRefused(RuntimeError):
    """The demo cannot get a database of its own; the message (one line) says what to do."""


def demo_interval_s(speed: float) -> int:
    lo, hi = DEMO_INTERVAL_RANGE
    return int(min(hi, max(lo, round(DEMO_RUN_EVERY_SIM_S / speed))))


def future_days_for(speed: float) -> int:
    """Days of seeded future an accelerated simulator needs to stay alive DEMO_ALIVE_S real seconds (capped)."""
    return min(MAX_FUTURE_DAYS, math.ceil(speed * DEMO_ALIVE_S / 86400) + 1)


def demo_sim_config(seed: int = 7, speed: float = DEFAULT_SPEED):
    from .sim import Faults, SellerSpec, SimConfig

    future_days = future_days_for(speed)
    # more disputes and conversations than a typical seller has, so that they too arrive every few seconds
    sellers = [SellerSpec(name, orders=n, transactions=n * 2, payouts=max(4, n // 30), disputes=max(2, n // 10),
                          conversations=max(5, n // 8), inventory_items=max(20, n // 25), days=DEMO_DAYS,
                          future_days=future_days)
               for name, n in DEMO_SELLERS]
    # a little realism: some latency, an occasional 429/5xx the client retries, a few malformed records
    faults = Faults(latency_ms=20, latency_jitter_ms=40, rate_429=0.01, rate_5xx=0.01, malformed_rate=0.002,
                    report_delay_s=5)
    # the demo's 60 s inventory cadence creates a report task per seller every ~65 s: above the simulator's
    # default (unverified) hourly task quota, which would defer active_inventory for a day (409 errorId 160025)
    return SimConfig(seed=seed, sellers=sellers, faults=faults, feed_hourly_tasks=1000, feed_daily_tasks=20000,
                     speed=speed)


def demo_settings(settings: Settings, sim) -> Settings:
    """The user's settings pointed at the simulator, with intervals that follow the arrival speed."""
    s = settings.with_values(
        ebay_api_base_url=sim.base_url, ebay_apiz_base_url=sim.base_url, ebay_auth_base_url=sim.base_url,
        ebay_client_id=sim.config.client_id, ebay_client_secret=sim.config.client_secret, ebay_runame="baysync-demo",
        safety_lag_s=0, report_poll_s=min(settings.report_poll_s, 2.0))
    every = demo_interval_s(sim.config.speed)
    streams = {name: dataclasses.replace(st, interval_s=DEMO_INVENTORY_INTERVAL_S if name in INVENTORY_STREAMS
                                         else every) for name, st in s.streams.items()}
    return dataclasses.replace(s, streams=streams)


def demo_database_url(settings: Settings) -> tuple[str, str]:
    """(the operator's database URL, the demo's): same server, database name + ``_demo``.  With a
    ``migrate_database_url`` (database_url goes through a pooler) the demo uses the direct route."""
    from sqlalchemy.engine import make_url

    from . import db

    base = db.migrate_url(settings)
    u = make_url(base)
    return base, u.set(database=f"{u.database or 'postgres'}{DEMO_DB_SUFFIX}").render_as_string(hide_password=False)


def prepare_database(settings: Settings, say: Callable[[str], None]) -> Settings:
    """Create (first use), migrate and empty the demo's own database; return the settings pointing at it.

    Refuses (DemoRefused) when the database cannot be created, or while another demo is using it.
    The operator's database is only connected to (to create the demo's), never written."""
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from . import db
    from . import migrate as m

    base, url = demo_database_url(settings)
    name = make_url(url).database
    try:
        with psycopg.connect(**db.psycopg_conninfo(base), autocommit=True,
                             connect_timeout=settings.db_connect_timeout_s) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                conn.execute(f'create database "{name}"')
    except psycopg.errors.DuplicateDatabase:  # another demo created it a moment ago
        pass
    except psycopg.errors.InsufficientPrivilege:
        raise DemoRefused(f"the demo needs a database of its own and may not create {name!r} on "
                          f"{redact_url(base)}: grant CREATEDB, create it for this user, or use the embedded "
                          f"server (BAYSYNC_DATABASE_URL= baysync demo)") from None
    except psycopg.OperationalError as e:
        key = "migrate_database_url" if settings.migrate_database_url else "database_url"
        if db.is_fatal(e):
            raise db.DatabaseFatal(db.fatal_message(e, base, key)) from None
        raise db.DatabaseUnavailable(f"database {redact_url(base)} unreachable: {db.describe(e)}") from None
    say(f"demo database: {redact_url(url)} (emptied now; {make_url(base).database!r} is not touched)")
    s = settings.with_values(database_url=url, migrate_database_url="")
    engine = db.make_engine(s, "cli")
    try:
        with engine.connect() as conn:
            others = conn.execute(sa.text(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid() and backend_type = 'client backend'")).scalar()
        if others:
            raise DemoRefused(f"another baysync demo is using {name!r} ({others} connection(s)); stop it first")
        m.migrate(s, say, quiet_at_head=True)
        with engine.begin() as conn:  # a clean start: nothing of the last demo run stays
            tables = conn.execute(sa.text("select quote_ident(tablename) from pg_tables where schemaname = "
                                          "current_schema() and tablename <> 'alembic_version'")).scalars().all()
            if tables:
                conn.execute(sa.text(f"truncate {', '.join(tables)} restart identity cascade"))
    finally:
        engine.dispose()
    return s


@dataclass
class DemoRuntime:
    """Runs the simulator and the worker pool on a private loop in a background thread."""

    settings: Settings
    workers: int = 12
    speed: float = DEFAULT_SPEED
    on_ready: Callable[[Settings], None] | None = None

    def __post_init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.sim: Simulator | None = None
        self.run_settings: Settings | None = None
        self.pool: WorkerPool | None = None

    def start(self, timeout: float = 120) -> Settings:
        self._thread = threading.Thread(target=self._main, name="baysync-demo", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError("demo did not start in time")
        if self.error:
            raise self.error
        assert self.run_settings is not None
        return self.run_settings

    def stop(self, timeout: float = 30) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as e:  # surfaced to the caller through start()
            self.error = e
            self.ready.set()

    async def _amain(self) -> None:
        from .sim.server import start_background
        from .worker import WorkerPool

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sim, stop_sim = await start_background(demo_sim_config(speed=self.speed), "127.0.0.1", 0)
        self.sim = sim
        s = demo_settings(self.settings, sim)
        self.run_settings = s
        from .worker import worker_engine

        engine = worker_engine(s)
        try:
            async with engine.begin() as conn:
                for name, _ in DEMO_SELLERS:
                    # the simulator is new each time: give each demo account a fresh refresh token
                    await accounts.add_account(conn, s, name, sim.mint_refresh_token(name))
            self.pool = WorkerPool(s, engine, kind="demo", concurrency=self.workers)
            await self.pool.start()
            self.ready.set()
            await self._stop.wait()
            await self.pool.stop()
        finally:
            await engine.dispose()
            await stop_sim()

