"""Retries (429 with Retry-After, 5xx, timeouts, resets), no retry on other 4xx, 401 refresh, ReauthNeeded,
rate budget waits, and secret-free events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import httpx
import pytest

from tests.ebay.conftest import ACCESS1, ACCESS2, API, APIZ, CLIENT_SECRET, REFRESH, TOKEN_URL, assert_no_secrets, token_response
from sync_core.ebay.client import MAX_REFRESHES_PER_CALL, EbayClient
from sync_core.ebay.errors import (
    EbayAuthError,
    EbayRateLimited,
    EbayRequestError,
    EbayServerError,
    EbayTransportError,
    ReauthNeeded,
)
from sync_core.ebay.oauth import RefreshingTokenSource
from sync_core.ebay.ratelimit import RateBudget, RateBudgetExhausted

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
T1 = datetime(2024, 5, 2, tzinfo=timezone.utc)
ORDERS = f"{API}/sell/fulfillment/v1/order"
OK = httpx.Response(200, json={"orders": [{"orderId": "1"}], "total": 1})


async def collect(it):
    return [p async for p in it]


def err(status, error_id=1234, category="APPLICATION", message="boom", headers=None):
    return httpx.Response(status, headers=headers or {}, json={"errors": [
        {"errorId": error_id, "domain": "API_FULFILLMENT", "category": category, "message": message}]})


async def test_429_retry_after_honoured(client, mock, events):
    route = mock.get(ORDERS).mock(side_effect=[err(429, headers={"Retry-After": "0.04"}), OK])
    t = time.monotonic()
    pages = await collect(client.get_orders(T0, T1))
    assert time.monotonic() - t >= 0.035
    assert pages[0].records == [{"orderId": "1"}] and route.call_count == 2
    http = [e for e in events if e["type"] == "http" and e["api"] == "fulfillment"]
    assert [(e["status"], e["attempt"]) for e in http] == [(429, 1), (200, 2)]


async def test_429_retry_after_capped(client, settings, mock):
    assert settings.api_retry_max_s == 0.05
    mock.get(ORDERS).mock(side_effect=[err(429, headers={"Retry-After": "3600"}), OK])
    t = time.monotonic()
    await collect(client.get_orders(T0, T1))
    assert time.monotonic() - t < 1.0


async def test_429_exhausts_attempts(client, mock):
    route = mock.get(ORDERS).mock(return_value=err(429, error_id=2001, category="REQUEST", message="Too many requests"))
    with pytest.raises(EbayRateLimited) as ei:
        await collect(client.get_orders(T0, T1))
    assert route.call_count == 4  # api_retry_attempts
    assert ei.value.status == 429 and ei.value.error_id == 2001 and ei.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_retried(client, mock, status):
    route = mock.get(ORDERS).mock(side_effect=[err(status), httpx.Response(status, text="<html>gateway</html>"), OK])
    pages = await collect(client.get_orders(T0, T1))
    assert len(pages[0].records) == 1 and route.call_count == 3


async def test_5xx_gives_up_with_server_error(client, mock):
    route = mock.get(ORDERS).mock(return_value=err(500, error_id=30500, message="System error"))
    with pytest.raises(EbayServerError) as ei:
        await collect(client.get_orders(T0, T1))
    assert route.call_count == 4
    assert ei.value.error_id == 30500 and "System error" in str(ei.value) and "500" in str(ei.value)


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("timed out"),
                                 httpx.ReadError("Connection reset by peer"), httpx.ConnectError("refused"),
                                 httpx.RemoteProtocolError("peer closed connection")])
async def test_transport_errors_retried(client, mock, events, exc):
    route = mock.get(ORDERS).mock(side_effect=[exc, OK])
    pages = await collect(client.get_orders(T0, T1))
    assert len(pages) == 1 and route.call_count == 2
    failed = [e for e in events if e.get("error")]
    assert failed and failed[0]["status"] is None and failed[0]["error"] == type(exc).__name__


async def test_transport_error_exhausted(client, mock):
    mock.get(ORDERS).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(EbayTransportError, match="timeout"):
        await collect(client.get_orders(T0, T1))


@pytest.mark.parametrize("status,cls", [(400, EbayRequestError), (404, EbayRequestError), (403, EbayRequestError),
                                        (409, EbayRequestError), (501, EbayServerError)])
async def test_other_errors_not_retried(client, mock, status, cls):
    route = mock.get(ORDERS).mock(return_value=err(status, error_id=32100, category="REQUEST",
                                                   message="Invalid filter name"))
    with pytest.raises(cls) as ei:
        await collect(client.get_orders(T0, T1))
    assert route.call_count == 1
    e = ei.value
    assert e.status == status and e.error_id == 32100 and e.category == "REQUEST"
    assert "Invalid filter name" in str(e) and "/sell/fulfillment/v1/order" in str(e)


async def test_post_not_retried_on_5xx(client, mock):
    route = mock.post(f"{API}/sell/feed/v1/inventory_task").mock(return_value=err(500))
    with pytest.raises(EbayServerError):
        await client.create_inventory_task()
    assert route.call_count == 1


async def test_post_retried_on_429_and_connect_error(client, mock):
    route = mock.post(f"{API}/sell/feed/v1/inventory_task").mock(side_effect=[
        err(429), httpx.ConnectError("refused"),
        httpx.Response(202, headers={"Location": f"{API}/sell/feed/v1/inventory_task/task-7-123"})])
    assert await client.create_inventory_task() == "task-7-123"
    assert route.call_count == 3


async def test_401_refresh_once_then_success(client, mock, token_route, events):
    route = mock.get(ORDERS).mock(side_effect=[err(401, error_id=1001, message="Invalid access token"), OK])
    pages = await collect(client.get_orders(T0, T1))
    assert len(pages[0].records) == 1
    assert token_route.call_count == 2  # initial mint + the forced refresh
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS1}"
    assert route.calls[1].request.headers["Authorization"] == f"Bearer {ACCESS2}"
    form = token_route.calls[1].request.content.decode()
    assert "grant_type=refresh_token" in form
    assert_no_secrets(events)


async def test_401_after_a_successful_refresh_fails_the_call_not_the_account(client, mock, token_route):
    """A 401 right after a refresh that worked is not a revoked consent (the refresh token is good: the
    new token may have expired before use); the call fails with EbayAuthError, never ReauthNeeded."""
    route = mock.get(ORDERS).mock(return_value=err(401, error_id=1001, message="Invalid access token"))
    with pytest.raises(EbayAuthError) as ei:
        await collect(client.get_orders(T0, T1))
    assert not isinstance(ei.value, ReauthNeeded)
    assert route.call_count == 1 + MAX_REFRESHES_PER_CALL and token_route.call_count == 1 + MAX_REFRESHES_PER_CALL
    assert ei.value.account == "seller1" and ei.value.status == 401
    assert "tried again" in str(ei.value)
    for s in (ACCESS1, ACCESS2, REFRESH):
        assert s not in str(ei.value)
    # the next call starts afresh: a 401 refreshes once more, and the retry goes through
    route.mock(side_effect=[err(401), OK])
    pages = await collect(client.get_orders(T0, T1))
    assert len(pages[0].records) == 1 and token_route.call_count == 2 + MAX_REFRESHES_PER_CALL


async def test_invalid_grant_on_refresh_reauth_needed(settings, http, mock, events):
    mock.post(TOKEN_URL).mock(return_value=httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "the provided authorization refresh token is invalid "
                   "or was issued to another client"}))
    orders = mock.get(ORDERS).mock(return_value=OK)
    tokens = RefreshingTokenSource(http, settings, REFRESH, [], account="seller9")
    client = EbayClient(settings, http=http, tokens=tokens, account="seller9", on_event=events.append)
    with pytest.raises(ReauthNeeded) as ei:
        await collect(client.get_orders(T0, T1))
    assert not orders.called
    assert "invalid_grant" in str(ei.value) and ei.value.account == "seller9"
    assert REFRESH not in str(ei.value)


async def test_invalid_grant_during_401_refresh(settings, http, mock):
    tok = mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1), httpx.Response(400, json={"error": "invalid_grant"})])
    mock.get(ORDERS).mock(return_value=err(401))
    client = EbayClient(settings, http=http, tokens=RefreshingTokenSource(http, settings, REFRESH, []), account="a")
    with pytest.raises(ReauthNeeded):
        await collect(client.get_orders(T0, T1))
    assert tok.call_count == 2


async def test_concurrent_callers_refresh_once(settings, http, mock):
    tok = mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1), token_response(ACCESS2),
                                                 token_response(ACCESS2)])
    ts = RefreshingTokenSource(http, settings, REFRESH, [])
    got = await asyncio.gather(*(ts.access_token() for _ in range(20)))
    assert set(got) == {ACCESS1} and tok.call_count == 1
    got = await asyncio.gather(*(ts.access_token(force_refresh=True, rejected=ACCESS1) for _ in range(10)))
    assert set(got) == {ACCESS2} and tok.call_count == 2
    assert await ts.access_token(force_refresh=True) == ACCESS2 and tok.call_count == 3


async def test_a_rejected_caller_does_not_wait_for_the_new_token_to_be_persisted(settings, http, mock):
    """on_refresh (a database write) runs after the waiters are released: a caller whose token eBay
    just rejected gets the new one at once, not after the write."""
    mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1), token_response(ACCESS2)])
    release, persisted = asyncio.Event(), []

    async def slow_persist(ts):
        await release.wait()
        persisted.append(ts.access_token)

    ts = RefreshingTokenSource(http, settings, REFRESH, [], on_refresh=slow_persist)
    first = asyncio.create_task(ts.access_token())
    await asyncio.sleep(0.05)
    release.set()
    assert await first == ACCESS1
    release.clear()
    refresher = asyncio.create_task(ts.access_token(force_refresh=True, rejected=ACCESS1))
    await asyncio.sleep(0.05)  # the refresh is done, its persist is waiting
    assert not refresher.done()
    got = await asyncio.wait_for(ts.access_token(force_refresh=True, rejected=ACCESS1), 1)
    assert got == ACCESS2 and persisted == [ACCESS1]
    release.set()
    assert await refresher == ACCESS2 and persisted == [ACCESS1, ACCESS2]


async def test_concurrent_401s_refresh_once(client, mock, token_route):

    def handler(request):
        if request.headers["Authorization"] == f"Bearer {ACCESS1}":
            return err(401)
        return OK

    mock.get(ORDERS).mock(side_effect=handler)
    results = await asyncio.gather(*(collect(client.get_orders(T0, T1)) for _ in range(8)))
    assert all(len(r[0].records) == 1 for r in results)
    assert token_route.call_count == 2


async def test_access_token_refreshed_before_expiry(settings, http, mock):
    tok = mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1, expires_in=200), token_response(ACCESS2)])
    ts = RefreshingTokenSource(http, settings, REFRESH, [])  # margin 300 s > 200 s lifetime
    assert await ts.access_token() == ACCESS1
    assert await ts.access_token() == ACCESS2
    assert tok.call_count == 2


async def test_events_never_carry_secrets(client, mock, token_route, events):
    mock.get(ORDERS).mock(side_effect=[err(401), httpx.ReadError("reset"), err(503), OK])
    mock.get(f"{APIZ}/sell/finances/v1/transaction").mock(return_value=httpx.Response(204))
    await collect(client.get_orders(T0, T1))
    await collect(client.get_transactions(T0, T1))
    # a next link carrying a secret-looking parameter: stripped from the event's query
    mock.get(f"{API}/sell/inventory/v1/inventory_item").mock(return_value=httpx.Response(200, json={"inventoryItems": []}))
    await collect(client.get_inventory_items(resume_url=f"{API}/sell/inventory/v1/inventory_item?offset=1&access_token={ACCESS1}&code=abcdef123"))
    assert len(events) >= 6
    text = json.dumps(events)
    for s in (ACCESS1, ACCESS2, REFRESH, CLIENT_SECRET, "abcdef123", "Authorization", "Bearer"):
        assert s not in text
    assert_no_secrets(events)
    inv = [e for e in events if e.get("api") == "inventory"][0]
    assert inv["query"] == "offset=1"
    assert {"type", "method", "host", "path", "query", "status", "duration_ms", "bytes", "records", "attempt",
            "api"} <= set(inv)
    oauth = [e for e in events if e.get("api") == "oauth"]
    assert [e["status"] for e in oauth] == [200, 200]  # first mint + the forced refresh
    assert all(e["path"] == "/identity/v1/oauth2/token" and e["query"] == "" for e in oauth)


async def test_event_callback_failure_is_contained(settings, http, mock):
    mock.get(ORDERS).mock(return_value=OK)

    def boom(event):
        raise RuntimeError("sink down")

    from sync_core.ebay.oauth import StaticTokenSource

    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="a", on_event=boom)
    assert len((await collect(client.get_orders(T0, T1)))[0].records) == 1


async def test_rate_budget_waits_visibly(settings, http, mock, events):
    from sync_core.ebay.oauth import StaticTokenSource

    # the budget's own clock: a wait moves it on, nothing else does (a loaded machine changes nothing)
    now = [1000.0]

    async def sleep(s):
        now[0] += s

    budget = RateBudget({"fulfillment": 3}, window_s=60, reserve_fraction=0.0, clock=lambda: now[0], sleep=sleep)
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="a", on_event=events.append,
                        budget=budget)
    route = mock.get(ORDERS).mock(return_value=OK)
    for _ in range(5):
        await collect(client.get_orders(T0, T1))
    assert route.call_count == 5
    waits = [e for e in events if e["type"] == "rate_wait"]
    assert len(waits) == 1 and waits[0]["api"] == "fulfillment" and waits[0]["seconds"] == 60
    assert now[0] == 1060.0  # the 4th call waited for the window's reset; the 5th fits the new window
    assert "budget" in waits[0]["reason"]


async def test_rate_budget_max_wait_raises(settings, http, mock):
    from sync_core.ebay.oauth import StaticTokenSource

    budget = RateBudget({"fulfillment": 1}, reserve_fraction=0.0, max_wait_s=1)
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="a", budget=budget)
    mock.get(ORDERS).mock(return_value=OK)
    await collect(client.get_orders(T0, T1))
    with pytest.raises(RateBudgetExhausted):
        await collect(client.get_orders(T0, T1))


async def test_429_marks_budget_exhausted_until_retry_after(settings, http, mock, events):
    from sync_core.ebay.oauth import StaticTokenSource

    budget = RateBudget()
    client = EbayClient(settings, http=http, tokens=StaticTokenSource(ACCESS1), account="a", on_event=events.append,
                        budget=budget)
    mock.get(ORDERS).mock(side_effect=[err(429, headers={"Retry-After": "0.02"}), OK])
    client.settings = settings.with_values(api_retry_attempts=1)
    with pytest.raises(EbayRateLimited):
        await collect(client.get_orders(T0, T1))
    await collect(client.get_orders(T0, T1))  # waits for the Retry-After via the budget
    waits = [e for e in events if e["type"] == "rate_wait"]
    assert len(waits) == 1 and waits[0]["seconds"] <= 0.02


async def test_invalid_client_on_forced_refresh_is_not_reauth(settings, http, mock):
    mock.post(TOKEN_URL).mock(side_effect=[token_response(ACCESS1), httpx.Response(
        401, json={"error": "invalid_client", "error_description": "client authentication failed"})])
    mock.get(ORDERS).mock(return_value=err(401))
    client = EbayClient(settings, http=http, tokens=RefreshingTokenSource(http, settings, REFRESH, []), account="a")
    with pytest.raises(EbayAuthError, match="invalid_client") as ei:
        await collect(client.get_orders(T0, T1))
    assert not isinstance(ei.value, ReauthNeeded)


async def test_budget_application_quota_is_shared_by_accounts():
    from sync_core.ebay.ratelimit import APP, RateBudget

    budget = RateBudget({"fulfillment": 1000}, reserve_fraction=0.0)
    budget.set_limit(APP, "fulfillment", 3)
    for account in ("a", "b", "c"):
        await budget.acquire(account, "fulfillment")
    snap = budget.snapshot()
    assert snap[f"{APP}/fulfillment"]["remaining"] == 0
    assert snap["a/fulfillment"]["remaining"] == 999


async def test_retry_wait_emits_an_event_before_sleeping(client, mock, events):
    """A 429's Retry-After wait is announced (a ``retry`` event with the seconds) before the sleep, after
    the 429's own http event: a long wait is visible while it lasts."""
    seen_at_second_call = []

    def second(request):
        seen_at_second_call.extend(e["type"] for e in events)
        return OK

    mock.get(ORDERS).mock(side_effect=[err(429, headers={"Retry-After": "0.04"}), second])
    await collect(client.get_orders(T0, T1))
    assert seen_at_second_call[-2:] == ["http", "retry"]
    retry = [e for e in events if e["type"] == "retry"]
    assert len(retry) == 1
    r = retry[0]
    assert r["status"] == 429 and r["attempt"] == 1 and r["seconds"] == pytest.approx(0.04)
    assert "Retry-After 0.04s" in r["reason"] and "attempt 2/" in r["reason"] and r["path"].endswith("/order")
