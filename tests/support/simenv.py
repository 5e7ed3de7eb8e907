"""A baysync setup wired to the in-process eBay simulator (httpx.ASGITransport) and a test database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from sync_core import accounts, db
from sync_core.sim import Faults, SellerSpec, SimConfig, Simulator
from tests.support.env import test_settings

SIM_BASE = "http://sim.test"


def sim_settings(home: Path, url: str, sim: Simulator, **env: str):
    e = dict(BAYSYNC_EBAY_API_BASE_URL=SIM_BASE, BAYSYNC_EBAY_APIZ_BASE_URL=SIM_BASE, BAYSYNC_EBAY_AUTH_BASE_URL=SIM_BASE,
             BAYSYNC_EBAY_CLIENT_ID=sim.config.client_id, BAYSYNC_EBAY_CLIENT_SECRET=sim.config.client_secret,
             BAYSYNC_EBAY_RUNAME="sim-runame", BAYSYNC_SAFETY_LAG_S="0")
    e.update(env)
    return test_settings(home, url, **e)


@dataclass
class SimEnv:
    sim: Simulator
    settings: Any
    engine: Any
    transport: httpx.ASGITransport

    async def add_account(self, seller: str) -> int:
        token = self.sim.mint_refresh_token(seller)
        async with self.engine.begin() as conn:
            return await accounts.add_account(conn, self.settings, seller, token)

    async def scalar(self, sql: str, **p) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.text(sql), p)).scalar()

    async def rows(self, sql: str, **p) -> list:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.text(sql), p)).all()


def make_sim(*sellers: SellerSpec, seed: int = 7, faults: Faults | None = None, now=None) -> Simulator:
    return Simulator(SimConfig(seed=seed, sellers=list(sellers), faults=faults or Faults(), now=now))


def make_env(tmp_path: Path, url: str, sim: Simulator, **env: str) -> SimEnv:
    s = sim_settings(tmp_path, url, sim, **env)
    return SimEnv(sim, s, db.make_async_engine(s, "test", pool_size=10, max_overflow=20),
                  httpx.ASGITransport(app=sim.app))
