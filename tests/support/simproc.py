"""The simulator in its own process on loopback (for tests that run the real `baysync` in subprocesses),
with a frozen clock so the test process can compute the same truth in-process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime

import httpx

from sync_core.sim import SellerSpec, SimConfig, Simulator

_SERVE = """
import json, sys
from datetime import datetime
from sync_core.sim import SellerSpec, SimConfig, Faults
from sync_core.sim.server import serve
cfg = json.loads(sys.argv[1])
sellers = [SellerSpec(**s) for s in cfg["sellers"]]
serve("127.0.0.1", cfg["port"], SimConfig(seed=cfg["seed"], sellers=sellers, now=datetime.fromisoformat(cfg["now"]),
      faults=Faults(**cfg.get("faults", {})), daily_limits=cfg.get("daily_limits", {})))
"""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sim_config(sellers: list[dict], now: datetime, seed: int = 7) -> SimConfig:
    return SimConfig(seed=seed, sellers=[SellerSpec(**s) for s in sellers], now=now)


@contextmanager
def sim_process(sellers: list[dict], now: datetime, seed: int = 7, faults: dict | None = None,
                daily_limits: dict[str, int] | None = None):
    port = free_port()
    cfg = {"sellers": sellers, "seed": seed, "now": now.isoformat(), "port": port, "faults": faults or {},
           "daily_limits": daily_limits or {}}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, json.dumps(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/sim/stats", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    raise RuntimeError("simulator exited: " + proc.stderr.read()[-2000:])
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def mint(base: str, seller: str) -> str:
    r = httpx.post(f"{base}/sim/sellers/{seller}/refresh_token", timeout=10)
    r.raise_for_status()
    return r.json()["refresh_token"]


def baysync_env(base_env: dict, base: str) -> dict:
    from sync_core.sim.config import SimConfig as _C

    c = _C()
    env = dict(base_env)
    env.update(BAYSYNC_EBAY_API_BASE_URL=base, BAYSYNC_EBAY_APIZ_BASE_URL=base, BAYSYNC_EBAY_AUTH_BASE_URL=base,
               BAYSYNC_EBAY_CLIENT_ID=c.client_id, BAYSYNC_EBAY_CLIENT_SECRET=c.client_secret,
               BAYSYNC_EBAY_RUNAME="sim-runame", BAYSYNC_SAFETY_LAG_S="0")
    return env


def truth(sellers: list[dict], now: datetime, seller: str, stream: str, seed: int = 7) -> list[dict]:
    return Simulator(sim_config(sellers, now, seed)).truth(seller, stream)
