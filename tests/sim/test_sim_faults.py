"""Fault knobs: each has an observable effect and is reproducible with a fixed seed."""

from __future__ import annotations

import time

import httpx
import pytest
from simfixtures import app_authed, authed, make_sim
from simschema import validate_error

from sync_core.sim import Faults, SimConnectionReset

ORDERS = "/sell/fulfillment/v1/order"
TX = "/sell/finances/v1/transaction"


async def outcomes(sim, n: int = 60, path: str = ORDERS) -> list:
    c = await authed(sim)
    out = []
    try:
        for _ in range(n):
            try:
                r = await c.get(path, params={"limit": 5})
                out.append((r.status_code, r.headers.get("retry-after")))
            except httpx.TransportError as e:
                out.append(("reset", type(e).__name__))
    finally:
        await c.aclose()
    return out


async def test_429_without_retry_after():
    """eBay documents no Retry-After on its 429s (docs/ebay-api.md "Errors, retries and 429": unverified
    either way): with retry_after_s=None the simulator's 429s carry none, so clients meet both kinds."""
    hits = [x for x in await outcomes(make_sim(faults=Faults(rate_429=0.3, retry_after_s=None, seed=11)))
            if x[0] == 429]
    assert hits and all(x[1] is None for x in hits)


async def test_429_with_retry_after_and_reproducible():
    f = Faults(rate_429=0.3, retry_after_s=7, seed=11)
    a = await outcomes(make_sim(faults=f))
    b = await outcomes(make_sim(faults=f))
    assert a == b
    hits = [x for x in a if x[0] == 429]
    assert 5 < len(hits) < 35 and all(x[1] == "7" for x in hits)
    c = await outcomes(make_sim(faults=Faults(rate_429=0.3, retry_after_s=7, seed=12)))
    assert c != a
    sim = make_sim(faults=Faults(rate_429=1.0))
    cl = await authed(sim)
    r = await cl.get(ORDERS)
    await cl.aclose()
    assert r.status_code == 429
    validate_error(r.json())
    assert r.json()["errors"][0]["errorId"] == 2001
    assert sim.stats["faults"]["429"] == 1


async def test_5xx_codes_and_reproducible():
    f = Faults(rate_5xx=0.5, seed=3)
    a = await outcomes(make_sim(faults=f))
    assert a == await outcomes(make_sim(faults=f))
    codes = {x[0] for x in a if x[0] != 200}
    assert codes <= {500, 502, 503, 504} and len(codes) >= 3
    a = await outcomes(make_sim(faults=Faults(rate_5xx=1.0, codes_5xx=(503,))), n=5)
    assert {x[0] for x in a} == {503}


async def test_reset_in_process_is_a_transport_error_and_reproducible():
    f = Faults(rate_reset=0.25, seed=5)
    a = await outcomes(make_sim(faults=f))
    assert a == await outcomes(make_sim(faults=f))
    resets = [x for x in a if x[0] == "reset"]
    assert 5 < len(resets) < 30 and {x[1] for x in resets} == {"SimConnectionReset"}
    assert issubclass(SimConnectionReset, httpx.RemoteProtocolError)
    assert issubclass(SimConnectionReset, httpx.TransportError)
    sim = make_sim(faults=Faults(rate_reset=1.0))
    c = await authed(sim)
    with pytest.raises(httpx.TransportError) as ei:
        await c.get(ORDERS)
    assert ei.value.request.url.path == ORDERS
    await c.aclose()


async def test_latency_fixed_plus_jitter():
    sim = make_sim(faults=Faults(latency_ms=30, latency_jitter_ms=20))
    c = await authed(sim)
    t0 = time.perf_counter()
    for _ in range(5):
        assert (await c.get(ORDERS, params={"limit": 1})).status_code == 200
    el = time.perf_counter() - t0
    await c.aclose()
    assert 0.15 <= el < 2.0
    assert sim.stats["faults"]["latency"] == 5


async def test_faults_never_hit_admin_and_only_paths_scopes_them():
    sim = make_sim(faults=Faults(rate_5xx=1.0, only_paths=("/sell/finances/",)))
    c = await authed(sim)
    try:
        assert (await c.get(ORDERS)).status_code == 200
        assert (await c.get(TX)).status_code >= 500
        sim.set_faults(only_paths=(), rate_reset=1.0)
        for path in ("/sim/stats", "/sim/faults", "/sim/health", "/sim/clock"):
            assert (await c.get(path)).status_code == 200
        assert (await c.post("/sim/sellers/alice/refresh_token")).status_code == 200
    finally:
        await c.aclose()


async def test_set_faults_at_runtime_via_admin():
    sim = make_sim()
    c = await authed(sim)
    try:
        assert (await c.get(ORDERS)).status_code == 200
        r = await c.post("/sim/faults", json={"rate_429": 1.0, "retry_after_s": 3})
        assert r.status_code == 200 and r.json()["rate_429"] == 1.0
        r = await c.get(ORDERS)
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert (await c.post("/sim/faults", json={"bogus": 1})).status_code == 400
        assert (await c.post("/sim/faults", json={"rate_429": 2})).status_code == 400
        r = await c.post("/sim/faults", json={"reset": True})
        assert r.json()["rate_429"] == 0.0
        assert (await c.get(ORDERS)).status_code == 200
    finally:
        await c.aclose()


async def test_reseed_reproduces_the_same_sequence():
    sim = make_sim(faults=Faults(rate_429=0.5, seed=9))
    a = await outcomes(sim, 20)
    sim.set_faults(seed=9)  # re-seeds the fault streams
    b = await outcomes(sim, 20)
    assert a == b


async def test_malformed_records_are_deterministic():
    sim = make_sim(faults=Faults(malformed_rate=0.2, seed=4))
    c = await authed(sim)
    try:
        body = (await c.get(ORDERS, params={"limit": 200})).json()
        clean = sim.truth("alice", "orders")[:len(body["orders"])]
        bad = [o for o, t in zip(body["orders"], clean) if o != t]
        assert 3 <= len(bad) <= len(body["orders"]) // 2
        kinds = set()
        for o in bad:
            if "orderId" not in o:
                kinds.add("missing pk")
            elif isinstance(o["pricingSummary"]["total"], (int, float)):
                kinds.add("amount number")
            elif isinstance(o["creationDate"], int):
                kinds.add("ts int")
        assert len(kinds) >= 2
        again = (await c.get(ORDERS, params={"limit": 200})).json()
        assert again["orders"] == body["orders"]
        r = await c.get(TX, params={"limit": 200})
        assert any("transactionId" not in t or not isinstance(t["amount"], dict) or isinstance(t["transactionDate"], int)
                   for t in r.json()["transactions"])
        assert sim.stats["faults"]["malformed"] >= len(bad)
    finally:
        await c.aclose()


async def test_quota_enforced_and_reported():
    sim = make_sim(daily_limits={"sell.finances": 3})
    c = await authed(sim)
    try:
        for _ in range(3):
            assert (await c.get(TX)).status_code == 200
        r = await c.get(TX)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        r = await c.get("/developer/analytics/v1_beta/user_rate_limit/", params={"api_name": "Finances"})
        rate = r.json()["rateLimits"][0]["resources"][0]["rates"][0]
        assert rate == {**rate, "count": 3, "limit": 3, "remaining": 0, "timeWindow": 86400}
        app = await app_authed(sim)
        r = await app.get("/developer/analytics/v1_beta/rate_limit/", params={"api_context": "buy"})
        await app.aclose()
        assert r.status_code == 204
    finally:
        await c.aclose()


async def test_rate_limits_reflect_calls_per_user_and_app():
    sim = make_sim()
    a, b = await authed(sim, "alice"), await authed(sim, "bob")
    try:
        for _ in range(4):
            await a.get(ORDERS)
        await b.get(ORDERS)
        r = await a.get("/developer/analytics/v1_beta/user_rate_limit/", params={"api_name": "fulfillment"})
        res = {x["name"]: x["rates"][0]["count"] for x in r.json()["rateLimits"][0]["resources"]}
        assert res["sell.fulfillment"] == 4
        app = await app_authed(sim)
        r = await app.get("/developer/analytics/v1_beta/rate_limit/", params={"api_context": "sell", "api_name": "Fulfillment"})
        await app.aclose()
        res = {x["name"]: x["rates"][0]["count"] for x in r.json()["rateLimits"][0]["resources"]}
        assert res["sell.fulfillment"] == 5
        assert sim.stats["by_seller"]["alice"]["getOrders"] == 4
    finally:
        await a.aclose()
        await b.aclose()


async def test_admin_faults_accepts_json_lists_and_revocation():
    sim = make_sim()
    c = await authed(sim)
    try:
        r = await c.post("/sim/faults", json={"codes_5xx": [502], "rate_5xx": 1.0, "only_paths": ["/sell/finances/"],
                                              "revoke_refresh_tokens": True})
        assert r.status_code == 200 and r.json()["codes_5xx"] == [502]
        assert (await c.get(TX)).status_code == 502
        assert (await c.get(ORDERS)).status_code == 200
        rt = sim.mint_refresh_token("bob")
        r = await c.post("/identity/v1/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                         auth=("sim-client", "sim-secret"))
        assert r.json()["error"] == "invalid_grant"
        assert (await c.post("/sim/faults", json={"codes_5xx": [404]})).status_code == 400
    finally:
        await c.aclose()


def test_fault_decisions_reproducible_per_stream():
    from sync_core.sim.faults import FaultEngine

    f = Faults(latency_ms=10, latency_jitter_ms=50, rate_reset=0.1, rate_429=0.1, rate_5xx=0.1, malformed_rate=0.3)
    a, b, c = FaultEngine(f, 1), FaultEngine(f, 1), FaultEngine(f, 2)
    seq = lambda e: [(d.latency_s, d.action, d.status) for d in (e.decide(ORDERS) for _ in range(200))]  # noqa: E731
    sa, sb, sc = seq(a), seq(b), seq(c)
    assert sa == sb and sa != sc
    assert len({x[0] for x in sa}) > 100 and all(0.010 <= x[0] <= 0.060 for x in sa)
    assert {x[1] for x in sa} == {None, "reset", "429", "5xx"}
    bad_a = [i for i in range(500) if a.is_malformed("orders", i, ORDERS)]
    assert bad_a == [i for i in range(500) if b.is_malformed("orders", i, ORDERS)]
    assert bad_a != [i for i in range(500) if c.is_malformed("orders", i, ORDERS)]
    assert 100 < len(bad_a) < 200


async def test_rate_limits_need_the_right_token():
    """developer_analytics spec: getRateLimits requires an application token (client_credentials grant,
    security ``api_auth: [.../oauth/api_scope]``), getUserRateLimits a user token (authorization code grant,
    security sell.inventory* / sell.marketing* / ...).  What eBay answers to the wrong token is not
    documented: the simulator's 403 envelope is UNVERIFIED (docs/ebay-api.md)."""
    sim = make_sim()
    user, app = await authed(sim), await app_authed(sim)
    try:
        r = await user.get("/developer/analytics/v1_beta/rate_limit/")
        assert r.status_code == 403
        validate_error(r.json(), "analytics")
        r = await app.get("/developer/analytics/v1_beta/user_rate_limit/")
        assert r.status_code == 403
        assert (await app.get("/developer/analytics/v1_beta/rate_limit/")).status_code == 200
        assert (await user.get("/developer/analytics/v1_beta/user_rate_limit/")).status_code == 200
    finally:
        await user.aclose()
        await app.aclose()
