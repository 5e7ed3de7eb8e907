"""Per-account marketplace: `accounts add NAME --marketplace EBAY_GB` (eBay's MarketplaceIdEnum,
developer.ebay.com/api-docs/sell/fulfillment/types/ba:MarketplaceIdEnum), stored in accounts.marketplace_id,
sent by the client as X-EBAY-C-MARKETPLACE-ID; the simulator rejects an unknown id (400; eBay's errorId for
it is unverified) and, for the operations whose spec declares the header `required: true` (Feed createTask,
Negotiation findEligibleItems), a missing one."""

import json
import subprocess
import sys

import httpx
import pytest

from sync_core import accounts
from sync_core.sim.app import MARKETPLACE_ERROR_ID, marketplace_error
from tests.support.env import q
from tests.support.simenv import SIM_BASE, make_env, make_sim
from tests.test_sync_e2e import NOW, run_pair, seller


def bs(env, *args):
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_marketplace_is_validated_stored_and_listed(cli_env, db_url):
    r = bs(cli_env, "accounts", "add", "alice", "--marketplace", "EBAY_XX")
    assert r.returncode == 2 and "EBAY_XX" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert q(db_url, "select count(*) from accounts")[0][0] == 0  # nothing changed
    assert bs(cli_env, "accounts", "add", "alice", "--marketplace", "EBAY_GB").returncode == 0
    assert bs(cli_env, "accounts", "add", "bob").returncode == 0
    rows = dict(q(db_url, "select name, marketplace_id from accounts"))
    assert rows == {"alice": "EBAY_GB", "bob": "EBAY_US"}  # bob: the configured ebay_marketplace_id
    assert bs(cli_env, "accounts", "add", "alice").returncode == 0  # re-adding keeps the account's own
    assert q(db_url, "select marketplace_id from accounts where name = 'alice'")[0][0] == "EBAY_GB"
    r = bs(cli_env, "accounts", "list", "--json")
    assert {d["name"]: d["marketplace_id"] for d in json.loads(r.stdout)} == {"alice": "EBAY_GB", "bob": "EBAY_US"}
    r = bs(dict(cli_env, BAYSYNC_EBAY_MARKETPLACE_ID="EBAY_DE"), "accounts", "add", "carol")
    assert r.returncode == 0
    assert q(db_url, "select marketplace_id from accounts where name = 'carol'")[0][0] == "EBAY_DE"


@pytest.fixture
async def env(tmp_path, db_url):
    sim = make_sim(seller("alice", orders=60, days=30), seller("bob", orders=60, days=30), now=NOW)
    e = make_env(tmp_path, db_url, sim)
    yield e
    await e.engine.dispose()


async def test_each_account_sends_its_own_marketplace(env):
    async with env.engine.begin() as conn:
        await accounts.add_account(conn, env.settings, "alice", env.sim.mint_refresh_token("alice"),
                                   marketplace="EBAY_GB")
        await accounts.add_account(conn, env.settings, "bob", env.sim.mint_refresh_token("bob"))
    for name in ("alice", "bob"):
        assert (await run_pair(env, name, "orders"))[0] == "succeeded"
    seen = env.sim.stats["marketplaces"]
    assert set(seen["alice"]) == {"EBAY_GB"} and seen["alice"]["EBAY_GB"] >= 1
    assert set(seen["bob"]) == {"EBAY_US"}


async def test_an_unknown_marketplace_is_refused_by_add_account(env):
    with pytest.raises(accounts.AccountError, match="EBAY_XX"):
        async with env.engine.begin() as conn:
            await accounts.add_account(conn, env.settings, "alice", marketplace="EBAY_XX")
    assert await env.scalar("select count(*) from accounts") == 0


async def test_sim_answers_an_invalid_marketplace_header_with_400(env):
    token = env.sim.mint_access_token("alice")
    async with httpx.AsyncClient(transport=env.transport, base_url=SIM_BASE) as http:
        url = "/sell/fulfillment/v1/order?limit=1"
        bad = await http.get(url, headers={"Authorization": f"Bearer {token}", "X-EBAY-C-MARKETPLACE-ID": "EBAY_XX"})
        assert bad.status_code == 400
        err = bad.json()["errors"][0]
        assert err["errorId"] == MARKETPLACE_ERROR_ID and "X-EBAY-C-MARKETPLACE-ID" in err["message"]
        # getOrders does not declare the header (sell_fulfillment_v1_oas3.json): missing is fine
        assert (await http.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
        ok = await http.get(url, headers={"Authorization": f"Bearer {token}", "X-EBAY-C-MARKETPLACE-ID": "EBAY_GB"})
        assert ok.status_code == 200
    # Feed createTask declares it required: true (sell_feed_v1_oas3.json POST /task)
    assert marketplace_error("createTask", None).status == 400
    assert marketplace_error("getOrders", None) is None
