"""`baysync demo`: the simulator on loopback with three demo sellers of different sizes, their accounts
connected, and a worker pool syncing them, all in this process, on a private event loop in a thread
(the console, when shown, runs on the main thread and sees everything through the database).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import accounts
from .config import Settings

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
DEMO_INTERVAL_S = 20


def demo_sim_config(seed: int = 7):
    from .sim import Faults, SellerSpec, SimConfig

    sellers = [SellerSpec(name, orders=n, transactions=n * 2, payouts=max(4, n // 60), disputes=max(2, n // 150),
                          conversations=max(5, n // 40), inventory_items=max(20, n // 25), days=DEMO_DAYS)
               for name, n in DEMO_SELLERS]
    # a little realism: some latency, an occasional 429/5xx the client retries, a few malformed records
    faults = Faults(latency_ms=20, latency_jitter_ms=40, rate_429=0.01, rate_5xx=0.01, malformed_rate=0.002,
                    report_delay_s=5)
    # the demo's 20 s cadence creates a report task per seller every ~25 s: above the simulator's default
    # (unverified) hourly task quota, which would defer active_inventory for a day (409 errorId 160025)
    return SimConfig(seed=seed, sellers=sellers, faults=faults, feed_hourly_tasks=1000, feed_daily_tasks=20000)


def demo_settings(settings: Settings, sim) -> Settings:
    """The user's settings pointed at the simulator, with short intervals so data keeps moving."""
    s = settings.with_values(
        ebay_api_base_url=sim.base_url, ebay_apiz_base_url=sim.base_url, ebay_auth_base_url=sim.base_url,
        ebay_client_id=sim.config.client_id, ebay_client_secret=sim.config.client_secret, ebay_runame="baysync-demo",
        safety_lag_s=0, report_poll_s=min(settings.report_poll_s, 2.0))
    streams = {name: dataclasses.replace(st, interval_s=DEMO_INTERVAL_S) for name, st in s.streams.items()}
    return dataclasses.replace(s, streams=streams)


@dataclass
class DemoRuntime:
    """Runs the simulator and the worker pool on a private loop in a background thread."""

    settings: Settings
    workers: int = 12
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
        sim, stop_sim = await start_background(demo_sim_config(), "127.0.0.1", 0)
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


def progress_lines(conn_rows: list[Any]) -> list[str]:
    return [f"{r.account:<12} {r.stream:<17} {r.status:<13} {r.records_total:>8} records" for r in conn_rows]
