"""Serving the simulator over HTTP with uvicorn (loopback only unless ``allow_remote=True``).

* :func:`serve` blocks (used by ``baysync sim``).
* :func:`start_background` runs it inside the current event loop and returns ``(Simulator, stop)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Awaitable, Callable

import uvicorn

from .config import SimConfig
from .core import Simulator
from .faults import SimConnectionReset

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to bind the eBay simulator to non-loopback host {host!r} "
                         f"(pass allow_remote=True to override)")


class _DropResetNoise(logging.Filter):
    """Hide uvicorn's 'Exception in ASGI application' traceback for simulated connection resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimConnectionReset)


def _install_log_filter() -> None:
    lg = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropResetNoise) for f in lg.filters):
        lg.addFilter(_DropResetNoise())


def _uvicorn_config(sim: Simulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(sim.app, host=host, port=port, log_level=log_level, http="h11", lifespan="off",
                          access_log=False, ws="none")


def serve(host: str = "127.0.0.1", port: int = 8765, config: SimConfig | None = None, *,
          allow_remote: bool = False, log_level: str = "warning", simulator: Simulator | None = None) -> None:
    """Run the simulator in the foreground until interrupted (Ctrl-C)."""
    _check_host(host, allow_remote)
    sim = simulator or Simulator(config or SimConfig())
    sim.base_url = f"http://{host}:{port}"
    sim.prepare()
    _install_log_filter()
    uvicorn.Server(_uvicorn_config(sim, host, port, log_level)).run()


class _BackgroundServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # leave the host application's signal handlers alone
        yield


async def start_background(config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0, *,
                           allow_remote: bool = False, log_level: str = "warning",
                           simulator: Simulator | None = None) -> tuple[Simulator, Callable[[], Awaitable[None]]]:
    """Serve the simulator from a task of the running event loop.

    ``port=0`` picks a free port; ``sim.base_url`` is set to ``http://host:port``.  The sellers' data is
    built first (in a worker thread).  Returns ``(sim, stop)``: ``stop()`` asks the server to shut down
    at once and returns an awaitable that completes when it has (``await stop()``; idempotent)."""
    _check_host(host, allow_remote)
    sim = simulator or Simulator(config or SimConfig())
    await asyncio.to_thread(sim.prepare)
    _install_log_filter()
    server = _BackgroundServer(_uvicorn_config(sim, host, port, log_level))
    task = asyncio.create_task(server.serve(), name="ebay-sim-server")
    while not server.started:
        if task.done():
            task.result()  # raises the startup error
            raise RuntimeError("eBay simulator server exited during startup")
        await asyncio.sleep(0.01)
    sock = server.servers[0].sockets[0]
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    sim.base_url = f"http://{shown}:{real_port}"

    async def _wait() -> None:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except asyncio.TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stop() -> "asyncio.Future[None]":
        server.should_exit = True
        return asyncio.ensure_future(_wait())

    return sim, stop
