"""Fixtures for the eBay client tests: settings with tiny waits, a shared httpx client, respx, events."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from sync_core.config import load_settings
from sync_core.ebay.client import EbayClient, make_http_client
from sync_core.ebay.oauth import RefreshingTokenSource

API = "https://api.ebay.com"
APIZ = "https://apiz.ebay.com"
TOKEN_URL = f"{API}/identity/v1/oauth2/token"

CLIENT_ID = "TestApp-baysync-PRD-0123456789-abcdef01"
CLIENT_SECRET = "PRD-secret0123456789abcdef-4242"
REFRESH = "v^1.1#i^1#r^1#f^0#I^3#p^3#t^REFRESHTOKEN0123456789abcdef=="
ACCESS1 = "v^1.1#i^1#f^0#p^3#r^0#I^3#t^ACCESSONE0123456789abcdef=="
ACCESS2 = "v^1.1#i^1#f^0#p^3#r^0#I^3#t^ACCESSTWO0123456789abcdef=="
SECRETS = (CLIENT_SECRET, REFRESH, ACCESS1, ACCESS2)


@pytest.fixture
def settings(tmp_path):
    s = load_settings({
        "BAYSYNC_HOME": str(tmp_path),
        "BAYSYNC_EBAY_CLIENT_ID": CLIENT_ID,
        "BAYSYNC_EBAY_CLIENT_SECRET": CLIENT_SECRET,
        "BAYSYNC_EBAY_RUNAME": "Test_Seller-TestApp-baysyn-abcdefg",
    })
    return s.with_values(api_retry_initial_s=0.005, api_retry_max_s=0.05, api_retry_attempts=4, api_timeout_s=5.0)


@pytest.fixture
def events():
    return []


@pytest.fixture
async def http(settings):
    client = make_http_client(settings)
    yield client
    await client.aclose()


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as m:
        yield m


def token_response(access=ACCESS1, expires_in=7200):
    return httpx.Response(200, json={"access_token": access, "expires_in": expires_in, "token_type": "User Access Token"})


@pytest.fixture
def token_route(mock):
    """The token endpoint: first refresh gives ACCESS1, later ones ACCESS2."""
    return mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1)] + [token_response(ACCESS2)] * 10)


@pytest.fixture
def tokens(http, settings, token_route, events):
    return RefreshingTokenSource(http, settings, REFRESH, ["https://api.ebay.com/oauth/api_scope"], account="seller1",
                                 on_event=events.append)


@pytest.fixture
def client(settings, http, tokens, events):
    return EbayClient(settings, http=http, tokens=tokens, account="seller1", on_event=events.append)


def assert_no_secrets(obj) -> None:
    text = json.dumps(obj, default=str)
    for s in SECRETS:
        assert s not in text
        assert s.split("#t^")[-1] not in text
    assert "Bearer" not in text and "Basic" not in text
