"""`baysync doctor --live` against the simulator in its own process: a token refresh per account and one
read-only limit=1 call per enabled stream; OK/FAIL per (account, stream) with eBay's own error text."""

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sync_core.config import STREAM_NAMES
from sync_core.sim.auth import ALL_SCOPES, SCOPE_PREFIX
from tests.support.simproc import baysync_env, mint, sim_process
from tests.test_cli_sync import bs

NOW = (datetime.now(timezone.utc) - timedelta(minutes=2)).replace(microsecond=0)
SELLERS = [dict(name=n, orders=30, transactions=30, payouts=3, disputes=2, conversations=3, inventory_items=4,
                days=10) for n in ("alice", "bob", "carol")]


@pytest.fixture(scope="module")
def sim_base():
    with sim_process(SELLERS, NOW) as base:
        yield base


def lines(out: str) -> dict[str, str]:
    """{"alice/orders": "OK  ...", ...} from the live section of the doctor's output."""
    got = {}
    for line in out.splitlines():
        m = re.match(r"(OK  |FAIL)  (\S+/\S+)\s+(.*)", line)
        if m:
            got[m.group(2)] = f"{m.group(1).strip()} {m.group(3)}"
    return got


def add(env, name, token):
    r = bs(env, "accounts", "add", name, "--refresh-token-stdin", input=token + "\n")
    assert r.returncode == 0, r.stderr


def test_doctor_live_healthy_then_revoked(cli_env, sim_base):
    env = baysync_env(cli_env, sim_base)
    add(env, "alice", mint(sim_base, "alice"))
    add(env, "bob", mint(sim_base, "bob"))

    r = bs(env, "doctor", "--live")
    got = lines(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("alice", "bob"):
        assert got[f"{name}/token"] == "OK refreshed"
        for s in STREAM_NAMES:
            assert got[f"{name}/{s}"].startswith("OK "), (name, s, got)

    httpx.post(f"{sim_base}/sim/sellers/bob/revoke", timeout=10).raise_for_status()
    r = bs(env, "doctor", "--live")
    got = lines(r.stdout)
    assert r.returncode == 1, r.stdout
    assert all(got[f"alice/{s}"].startswith("OK ") for s in ("token", *STREAM_NAMES)), got
    # eBay's own OAuth error text for a revoked refresh token
    assert got["bob/token"].startswith("FAIL ") and "invalid_grant" in got["bob/token"]
    assert "refresh token is invalid" in got["bob/token"]
    assert all(got[f"bob/{s}"].startswith("FAIL not probed") for s in STREAM_NAMES)
    assert "WARN" not in r.stdout  # the simulator is neither sandbox nor production
    assert "v^1.1#" not in r.stdout + r.stderr  # no token reaches the screen


def test_doctor_live_missing_scope_fails_that_stream_only(cli_env, sim_base):
    """carol consented without commerce.message (docs/ebay-api.md, "Scopes per stream")."""
    env = baysync_env(cli_env, sim_base)
    scopes = [s for s in ALL_SCOPES if s != f"{SCOPE_PREFIX}/commerce.message"]
    r = httpx.post(f"{sim_base}/sim/sellers/carol/refresh_token", json={"scopes": scopes}, timeout=10)
    add(env, "carol", r.json()["refresh_token"])
    r = bs(env, "doctor", "--live")
    got = lines(r.stdout)
    assert r.returncode == 1, r.stdout
    assert got["carol/token"] == "OK refreshed"
    assert got["carol/messages"].startswith("FAIL eBay 403 [errorId 1100"), got
    assert "Insufficient permissions" in got["carol/messages"]
    assert [k for k, v in got.items() if v.startswith("FAIL")] == ["carol/messages"]


def test_doctor_live_warns_on_mixed_sandbox_and_production_hosts(cli_env, sim_base):
    env = baysync_env(cli_env, sim_base)
    env.update(BAYSYNC_EBAY_APIZ_BASE_URL="https://apiz.sandbox.ebay.com",
               BAYSYNC_EBAY_AUTH_BASE_URL="https://auth.ebay.com")
    r = bs(env, "doctor", "--live")  # no accounts: nothing is called, the hosts are still checked
    warn = [line for line in r.stdout.splitlines() if line.startswith("WARN")]
    assert len(warn) == 1 and "mix sandbox and production" in warn[0], r.stdout
    assert "apiz.sandbox.ebay.com (sandbox)" in warn[0] and "auth.ebay.com (production)" in warn[0]
    assert "no accounts to check" in r.stdout


def test_base_url_warning_only_for_a_real_mix():
    from types import SimpleNamespace

    from sync_core.doctor import base_url_warning

    def s(api, apiz, auth):
        return SimpleNamespace(ebay_api_base_url=api, ebay_apiz_base_url=apiz, ebay_auth_base_url=auth)

    assert base_url_warning(s("https://api.ebay.com", "https://apiz.ebay.com", "https://auth.ebay.com")) is None
    assert base_url_warning(s("https://api.sandbox.ebay.com", "https://apiz.sandbox.ebay.com",
                              "https://auth.sandbox.ebay.com")) is None
    assert base_url_warning(s("http://127.0.0.1:8080", "http://127.0.0.1:8080", "https://auth.ebay.com")) is None
    w = base_url_warning(s("https://api.sandbox.ebay.com", "https://apiz.sandbox.ebay.com", "https://auth.ebay.com"))
    assert w and "ebay_auth_base_url=https://auth.ebay.com (production)" in w
