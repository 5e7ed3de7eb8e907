"""Shared plumbing of the benchmarks: a throwaway database server, fresh migrated databases, the eBay
simulator in a child process on loopback, RSS probes, timers and the final JSON line.

Database: ``BAYSYNC_BENCH_DATABASE_URL`` (a server the benchmark may create and drop databases on) or,
when unset, a throwaway embedded PostgreSQL under a temp ``BAYSYNC_HOME`` in /tmp, stopped and removed
at the end. Load only ever goes to 127.0.0.1 (the simulator refuses other hosts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import psycopg
from sqlalchemy.engine import make_url

from sync_core import embedded
from sync_core.config import load_settings
from sync_core.db import normalize_url, psycopg_conninfo

LOOPBACK = "127.0.0.1"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def emit_json(name: str, result: dict[str, Any]) -> None:
    """The last line a benchmark prints: one JSON object."""
    print(json.dumps({"bench": name, **result}, default=str, separators=(",", ":")), flush=True)


# ---------------------------------------------------------------- memory

def _status_kb(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid: int | str = "self") -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int | str = "self") -> float:
    return _status_kb(pid, "VmHWM") / 1024


def _proc_stat(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from "state" on (the name may hold spaces)


def proc_cpu_s(pid: int | str, children: bool = True) -> float:
    """CPU seconds (user + system) of ``pid``, its waited-for children and, with ``children``, its live
    children: e.g. a PostgreSQL postmaster and all its backends. 0.0 if it is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        st = _proc_stat(pid)
    except OSError:
        return 0.0
    total = sum(int(x) for x in st[11:15])
    if children:
        for d in os.listdir("/proc"):
            if d.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    c = _proc_stat(d)
                    if c[1] == str(pid):
                        total += sum(int(x) for x in c[11:15])
    return total / tick


def machine_busy_s() -> tuple[float, float]:
    """(busy CPU seconds, all CPU seconds) of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / tick, sum(v) / tick


def host_loop_s(n: int = 20_000_000) -> float:
    """Seconds this machine takes, right now, to add up ``n`` integers in a bare Python loop. The figures of a
    shared host move with its state (docs/performance.md, "Sixth pass": the same code gave 0.093 and 0.113 ms
    of CPU per order an hour apart), so benches print this beside absolute figures such as CPU per record,
    to tell a slower host from slower code."""
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return round(time.perf_counter() - t0, 3)


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")


# ---------------------------------------------------------------- database server

class Server:
    """Where benchmark databases live: an admin URL plus create/drop helpers."""

    def __init__(self, admin_url: str, home: Path | None):
        self.admin_url = admin_url
        self.home = home
        self.created: list[str] = []

    @property
    def embedded(self) -> bool:
        return self.home is not None

    def _admin(self) -> dict:
        kw = psycopg_conninfo(self.admin_url)
        kw["dbname"] = "postgres"
        return kw

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create_db(self, prefix: str = "bench", migrate: bool = True) -> str:
        """A fresh database (migrated to head unless migrate=False); returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(**self._admin(), autocommit=True) as c:
            c.execute(f'create database "{name}"')
        self.created.append(name)
        url = self.url(name)
        if migrate:
            from sync_core import migrate as mig

            mig.migrate(settings(Path(tempfile.gettempdir()), url), say=lambda m: None, url=url)
        return url

    def drop_all(self, keep: str | None = None) -> None:
        """Drop the databases made by :meth:`create_db`, except the one whose URL is ``keep``."""
        kept = [n for n in self.created if keep is not None and self.url(n) == keep]
        for name in self.created:
            if name in kept:
                continue
            with contextlib.suppress(Exception):
                with psycopg.connect(**self._admin(), autocommit=True) as c:
                    c.execute(f'drop database if exists "{name}" with (force)')
        self.created[:] = kept

    def checkpoint(self) -> None:
        """CHECKPOINT: the dirty buffers of earlier work written now, not during the next measurement."""
        with psycopg.connect(**self._admin(), autocommit=True) as c:
            c.execute("checkpoint")

    def describe(self) -> str:
        if self.embedded:
            return f"throwaway embedded PostgreSQL (unix socket) under {self.home}"
        return "BAYSYNC_BENCH_DATABASE_URL"

    def version(self) -> str:
        with psycopg.connect(**self._admin()) as c:
            return c.execute("show server_version").fetchone()[0]

    def postmaster_pid(self) -> int | None:
        """The server's postmaster pid when it runs on this machine (embedded), else None."""
        if not self.embedded:
            return None
        with psycopg.connect(**self._admin()) as c:  # the backend's parent, read while it is alive
            return int(_proc_stat(c.execute("select pg_backend_pid()").fetchone()[0])[1])

    def setting(self, name: str) -> str:
        with psycopg.connect(**self._admin()) as c:
            return c.execute(f"show {name}").fetchone()[0]


@contextlib.contextmanager
def server() -> Iterator[Server]:
    external = os.environ.get("BAYSYNC_BENCH_DATABASE_URL")
    if external:
        srv = Server(normalize_url(external), None)
        try:
            yield srv
        finally:
            srv.drop_all()
        return
    home = Path(tempfile.mkdtemp(prefix="bsb-", dir="/tmp"))
    try:
        info = embedded.ensure_running(home)
        srv = Server(info.url("postgres"), home)
        try:
            yield srv
        finally:
            srv.drop_all()
    finally:
        with contextlib.suppress(Exception):
            embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def settings(home: Path, url: str | None = None, **env: str):
    """Settings for a benchmark process: private home, quick retries, the given database."""
    e = {"BAYSYNC_HOME": str(home), "BAYSYNC_DB_RETRY_INITIAL_S": "0.05", "BAYSYNC_DB_RETRY_MAX_S": "0.2",
         "BAYSYNC_API_RETRY_INITIAL_S": "0.05", "BAYSYNC_API_RETRY_MAX_S": "1", "BAYSYNC_LOG_LEVEL": "warning"}
    if url:
        e["BAYSYNC_DATABASE_URL"] = url
    e.update(env)
    return load_settings(e)


def sim_env(base_url: str, client_id: str = "sim-client", client_secret: str = "sim-secret") -> dict[str, str]:
    """BAYSYNC_* variables pointing every eBay host at a simulator on loopback."""
    return dict(BAYSYNC_EBAY_API_BASE_URL=base_url, BAYSYNC_EBAY_APIZ_BASE_URL=base_url,
                BAYSYNC_EBAY_AUTH_BASE_URL=base_url, BAYSYNC_EBAY_CLIENT_ID=client_id,
                BAYSYNC_EBAY_CLIENT_SECRET=client_secret, BAYSYNC_EBAY_RUNAME="sim-runame",
                BAYSYNC_SAFETY_LAG_S="0")


# ---------------------------------------------------------------- simulator in a child process

class SimProcess:
    """The eBay simulator served by a child Python process on 127.0.0.1 (its own CPU and memory, so the
    benchmarked process's RSS and CPU are baysync's alone)."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> "SimProcess":
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.common", "serve-sim", json.dumps(self.spec)],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     cwd=str(Path(__file__).resolve().parent.parent))
        line = self.proc.stdout.readline().strip()  # "SIM http://127.0.0.1:PORT" once the data is built
        if not line.startswith("SIM "):
            self.proc.kill()
            raise RuntimeError(f"simulator child did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def admin(self, method: str, path: str, body: dict | None = None) -> Any:
        import httpx

        r = httpx.request(method, self.base_url + path, json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    def refresh_token(self, seller: str) -> str:
        return self.admin("POST", f"/sim/sellers/{seller}/refresh_token")["refresh_token"]

    def stats(self) -> dict:
        return self.admin("GET", "/sim/stats")


def _serve_sim(spec_json: str) -> None:
    from sync_core.sim import Faults, SellerSpec, SimConfig
    from sync_core.sim.server import start_background

    spec = json.loads(spec_json)
    sellers = [SellerSpec(**s) for s in spec["sellers"]]
    cfg = SimConfig(seed=spec.get("seed", 1), sellers=sellers, faults=Faults(**spec.get("faults", {})))

    async def main() -> None:
        sim, stop = await start_background(cfg, LOOPBACK, 0)
        print(f"SIM {sim.base_url}", flush=True)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        import signal

        loop.add_signal_handler(signal.SIGTERM, done.set)
        await done.wait()
        await stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# ---------------------------------------------------------------- misc

class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def s(self) -> float:
        return time.perf_counter() - self.t0


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help="smaller size (a smoke run)")
    return p


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-sim":
        _serve_sim(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.common serve-sim SPEC_JSON")
