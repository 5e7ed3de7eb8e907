"""OAuth: consent redirect -> code -> tokens -> refresh; invalid_grant / invalid_client; bearer checks."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from simfixtures import BASIC, NOW, access_token, client_for, make_sim
from simschema import validate_error

from sync_core.sim import Faults

SCOPES = " ".join([
    "https://api.ebay.com/oauth/api_scope",
    "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly",
    "https://api.ebay.com/oauth/api_scope/sell.finances",
])
TOKEN = "/identity/v1/oauth2/token"


async def consent(c, **extra) -> dict:
    params = {"client_id": "sim-client", "redirect_uri": "My_RuName-1", "response_type": "code",
              "scope": SCOPES, "state": "st-123", **extra}
    r = await c.get("/oauth2/authorize", params=params)
    assert r.status_code == 302, r.text
    loc = r.headers["location"]
    assert loc.startswith("http://127.0.0.1/accept?")
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


async def test_full_code_flow_and_refresh():
    sim = make_sim()
    async with client_for(sim) as c:
        q = await consent(c)
        assert q["state"] == "st-123" and q["expires_in"] == "299" and "#" in q["code"]
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "My_RuName-1"}, auth=BASIC)
        assert r.status_code == 200, r.text
        tok = r.json()
        assert set(tok) == {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type"}
        assert tok["expires_in"] == 7200 and tok["refresh_token_expires_in"] == 47304000
        assert tok["token_type"] == "User Access Token"
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        r = await c.get("/sell/fulfillment/v1/order", headers=h)
        assert r.status_code == 200 and r.json()["orders"][0]["sellerId"] == "alice"
        # consented scopes only: disputes need sell.payment.dispute
        r = await c.get("/sell/fulfillment/v1/payment_dispute_summary", headers=h)
        assert r.status_code == 403 and r.json()["errors"][0]["errorId"] == 1100
        # refresh: new access token, no new refresh token
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=BASIC)
        assert r.status_code == 200
        assert set(r.json()) == {"access_token", "expires_in", "token_type"}
        assert r.json()["access_token"] != tok["access_token"]
        # refresh with a subset of the scopes works, a superset does not
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                      "scope": "https://api.ebay.com/oauth/api_scope/sell.finances"}, auth=BASIC)
        assert r.status_code == 200
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                      "scope": "https://api.ebay.com/oauth/api_scope/sell.inventory"}, auth=BASIC)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
        # reused code
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "My_RuName-1"}, auth=BASIC)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and r.json()["error_description"]


async def test_sim_user_selects_seller_and_errors():
    sim = make_sim()
    async with client_for(sim) as c:
        q = await consent(c, sim_user="bob")
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "My_RuName-1"}, auth=BASIC)
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        body = (await c.get("/sell/fulfillment/v1/order", headers=h)).json()
        assert {o["sellerId"] for o in body["orders"]} == {"bob"}
        assert (await c.get("/oauth2/authorize", params={"client_id": "sim-client", "redirect_uri": "x",
                                                         "response_type": "code", "scope": SCOPES,
                                                         "sim_user": "mallory"})).status_code == 400
        assert (await c.get("/oauth2/authorize", params={"client_id": "other", "redirect_uri": "x",
                                                         "response_type": "code", "scope": SCOPES})).status_code == 400
        q = await consent(c, scope="not-a-scope")
        assert q["error"] == "invalid_scope" and q["state"] == "st-123"
        # code with a different redirect_uri
        q = await consent(c)
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "Other_RuName"}, auth=BASIC)
        assert r.json()["error"] == "invalid_grant"


async def test_expired_code():
    sim = make_sim()
    async with client_for(sim) as c:
        q = await consent(c)
        sim.set_now(NOW + timedelta(minutes=5, seconds=1))
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "My_RuName-1"}, auth=BASIC)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        q = await consent(c)
        sim.advance(290)
        r = await c.post(TOKEN, data={"grant_type": "authorization_code", "code": q["code"],
                                      "redirect_uri": "My_RuName-1"}, auth=BASIC)
        assert r.status_code == 200


async def test_revoked_and_unknown_refresh_tokens():
    sim = make_sim()
    async with client_for(sim) as c:
        rt = sim.mint_refresh_token("alice")
        await access_token(c, rt)
        r = await c.post("/sim/sellers/alice/revoke")
        assert r.json()["revoked"] >= 1
        for tok in (rt, "v^1.1#i^1#r^1#unknown"):
            r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tok}, auth=BASIC)
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # knob: refresh tokens of listed sellers are treated as revoked while set
        rt_bob = sim.mint_refresh_token("bob")
        sim.set_faults(revoke_refresh_tokens=["bob"])
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": rt_bob}, auth=BASIC)
        assert r.json()["error"] == "invalid_grant"
        sim.set_faults(revoke_refresh_tokens=False)
        await access_token(c, rt_bob)
        # refresh tokens expire after 18 months
        sim.set_now(NOW + timedelta(seconds=47304000 + 1))
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": rt_bob}, auth=BASIC)
        assert r.json()["error"] == "invalid_grant"


async def test_invalid_client_and_request_shape():
    sim = make_sim()
    async with client_for(sim) as c:
        rt = sim.mint_refresh_token("alice")
        data = {"grant_type": "refresh_token", "refresh_token": rt}
        for auth in [("sim-client", "wrong"), ("other", "sim-secret")]:
            r = await c.post(TOKEN, data=data, auth=auth)
            assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await c.post(TOKEN, data=data)
        assert r.status_code == 401
        r = await c.post(TOKEN, data=data, headers={"Authorization": "Basic !!!notbase64"})
        assert r.status_code == 401
        r = await c.post(TOKEN, json=data, auth=BASIC)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
        r = await c.post(TOKEN, data={"grant_type": "password"}, auth=BASIC)
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
        # client credentials -> application token: fine for getRateLimits, not for seller data
        r = await c.post(TOKEN, data={"grant_type": "client_credentials",
                                      "scope": "https://api.ebay.com/oauth/api_scope"}, auth=BASIC)
        assert r.json()["token_type"] == "Application Access Token"
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.get("/developer/analytics/v1_beta/rate_limit/", headers=h)).status_code == 200
        assert (await c.get("/sell/fulfillment/v1/order", headers=h)).status_code == 403


async def test_bearer_required_and_expiry():
    sim = make_sim()
    async with client_for(sim) as c:
        for headers in [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                        {"Authorization": "Bearer not-a-token"}]:
            r = await c.get("/sell/finances/v1/transaction", headers=headers)
            assert r.status_code == 401
            validate_error(r.json(), "finances")
            e = r.json()["errors"][0]
            assert e["errorId"] == 1001 and e["message"] == "Invalid access token"
        tok = await access_token(c, sim.mint_refresh_token("alice"))
        h = {"Authorization": f"Bearer {tok}"}
        assert (await c.get("/sell/finances/v1/transaction", headers=h)).status_code == 200
        sim.advance(7199)
        assert (await c.get("/sell/finances/v1/transaction", headers=h)).status_code == 200
        sim.advance(2)
        assert (await c.get("/sell/finances/v1/transaction", headers=h)).status_code == 401


async def test_access_token_ttl_knob_forces_early_expiry():
    sim = make_sim(faults=Faults(access_token_ttl_s=60))
    async with client_for(sim) as c:
        r = await c.post(TOKEN, data={"grant_type": "refresh_token",
                                      "refresh_token": sim.mint_refresh_token("alice")}, auth=BASIC)
        assert r.json()["expires_in"] == 7200  # eBay's documented value; the server enforces the knob
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.get("/sell/fulfillment/v1/order", headers=h)).status_code == 200
        sim.advance(61)
        assert (await c.get("/sell/fulfillment/v1/order", headers=h)).status_code == 401
        assert sim.stats["faults"]["401"] == 1


async def test_token_endpoint_free_of_faults_unless_knob():
    sim = make_sim(faults=Faults(rate_5xx=1.0))
    async with client_for(sim) as c:
        rt = sim.mint_refresh_token("alice")
        tok = await access_token(c, rt)  # the token endpoint is not affected
        r = await c.get("/sell/fulfillment/v1/order", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code >= 500
        sim.set_faults(token_faults=True)
        r = await c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": rt}, auth=BASIC)
        assert r.status_code >= 500
