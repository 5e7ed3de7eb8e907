"""Shared helpers and fixtures for the simulator tests: test modules import the helpers; the fixtures
(``sim``, ``client``) reach them through tests/sim/conftest.py."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from sync_core.sim import Faults, SellerSpec, SimConfig, Simulator

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
BASIC = ("sim-client", "sim-secret")


def small_config(**kw: Any) -> SimConfig:
    sellers = kw.pop("sellers", None) or [
        SellerSpec("alice", orders=500, transactions=1000, payouts=30, disputes=20, conversations=40,
                   inventory_items=120, days=730),
        SellerSpec("bob", orders=60, transactions=100, payouts=10, disputes=3, conversations=6,
                   inventory_items=10, days=365),
    ]
    faults = kw.pop("faults", None) or Faults(report_delay_s=3.0)
    return SimConfig(seed=kw.pop("seed", 7), sellers=sellers, faults=faults, now=kw.pop("now", NOW), **kw)


def make_sim(**kw: Any) -> Simulator:
    return Simulator(small_config(**kw))


def client_for(sim: Simulator, base_url: str = "http://sim") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=base_url)


async def access_token(client: httpx.AsyncClient, refresh_token: str, scope: str | None = None) -> str:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        data["scope"] = scope
    r = await client.post("/identity/v1/oauth2/token", data=data, auth=BASIC)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def authed(sim: Simulator, seller: str = "alice", base_url: str = "http://sim") -> httpx.AsyncClient:
    """A client whose default headers carry a fresh access token of ``seller``."""
    c = client_for(sim, base_url)
    tok = await access_token(c, sim.mint_refresh_token(seller))
    c.headers["Authorization"] = f"Bearer {tok}"
    return c


async def app_authed(sim: Simulator, base_url: str = "http://sim") -> httpx.AsyncClient:
    """A client carrying an application token (client_credentials grant, base scope): what getRateLimits
    wants (developer_analytics spec, getRateLimits security)."""
    c = client_for(sim, base_url)
    r = await c.post("/identity/v1/oauth2/token", auth=BASIC,
                     data={"grant_type": "client_credentials", "scope": "https://api.ebay.com/oauth/api_scope"})
    assert r.status_code == 200, r.text
    c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return c


async def follow_all(client: httpx.AsyncClient, url: str, key: str, params: dict | None = None,
                     **kw: Any) -> tuple[list[dict], int, int]:
    """Follow ``next`` from ``url``; returns (records, total reported by the first page, number of calls)."""
    r = await client.get(url, params=params, **kw)
    assert r.status_code == 200, r.text
    body = r.json()
    total = body["total"]
    out = list(body.get(key, []))
    calls = 1
    while body.get("next"):
        nxt = body["next"]
        assert nxt.startswith(str(client.base_url).rstrip("/")), nxt
        r = await client.get(nxt, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body.get(key, [])
        calls += 1
        assert calls < 10_000
    return out, total, calls


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
async def client(sim):
    c = await authed(sim)
    try:
        yield c
    finally:
        await c.aclose()
