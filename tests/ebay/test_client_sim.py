"""The client against the in-process eBay simulator: every endpoint paged to the end and compared with the
simulator's truth; consent flow; resume; faults (429/5xx/resets, short-lived tokens, revoked grants)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sync_core.config import load_settings
from sync_core.ebay.client import EbayClient, make_http_client
from sync_core.ebay.errors import ReauthNeeded
from sync_core.ebay.oauth import (
    STREAM_SCOPES,
    RefreshingTokenSource,
    consent_url,
    exchange_code,
    parse_redirect,
    scopes_for,
)
from sync_core.ebay.ratelimit import RateBudget
from sync_core.sim import Faults, SellerSpec, SimConfig, Simulator

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DAYS = 400
BASE = "http://sim"
ALL_STREAMS = list(STREAM_SCOPES)


def windows(days: int, step: int = 90):
    end = NOW
    start = NOW - timedelta(days=days)
    cur = start
    while cur < end:
        nxt = min(cur + timedelta(days=step), end)
        yield cur, nxt
        cur = nxt + timedelta(milliseconds=1)


@pytest.fixture
def sim():
    return Simulator(SimConfig(seed=3, now=NOW, ru_name="baysync-RuName", faults=Faults(report_delay_s=2.0),
                               sellers=[SellerSpec("alice", orders=450, transactions=450, payouts=30, disputes=25,
                                                   conversations=60, inventory_items=230, days=DAYS)]))


@pytest.fixture
def settings(tmp_path):
    return load_settings({
        "BAYSYNC_HOME": str(tmp_path),
        "BAYSYNC_EBAY_API_BASE_URL": BASE, "BAYSYNC_EBAY_APIZ_BASE_URL": BASE, "BAYSYNC_EBAY_AUTH_BASE_URL": BASE,
        "BAYSYNC_EBAY_CLIENT_ID": "sim-client", "BAYSYNC_EBAY_CLIENT_SECRET": "sim-secret",
        "BAYSYNC_EBAY_RUNAME": "baysync-RuName",
    }).with_values(api_retry_initial_s=0.001, api_retry_max_s=0.01, api_retry_attempts=12)


@pytest.fixture
async def http(settings, sim):
    c = make_http_client(settings, transport=httpx.ASGITransport(app=sim.app))
    yield c
    await c.aclose()


@pytest.fixture
def events():
    return []


@pytest.fixture
def refresh_token(sim):
    return sim.mint_refresh_token("alice")


@pytest.fixture
def client(settings, http, refresh_token, events):
    tokens = RefreshingTokenSource(http, settings, refresh_token, scopes_for(ALL_STREAMS), account="alice",
                                   on_event=events.append)
    return EbayClient(settings, http=http, tokens=tokens, account="alice", on_event=events.append, budget=RateBudget())


async def records(it):
    out, pages = [], 0
    async for p in it:
        out += p.records
        pages += 1
    return out, pages


async def test_every_endpoint_paged_to_the_end(sim, client, events, refresh_token, settings, http):
    # orders: one window, 200 per page, minimal calls
    orders, pages = await records(client.get_orders(NOW - timedelta(days=DAYS + 30), NOW))
    truth = sim.truth("alice", "orders")
    assert sorted(o["orderId"] for o in orders) == sorted(o["orderId"] for o in truth)
    assert pages == -(-len(truth) // 200)
    one = await client.get_order(orders[0]["orderId"])
    assert one["orderId"] == orders[0]["orderId"]

    # finances: <= 90-day windows on apiz
    txs = []
    for a, b in windows(DAYS):
        txs += (await records(client.get_transactions(a, b)))[0]
    assert Counter((t["transactionId"], t["transactionType"]) for t in txs) == \
        Counter((t["transactionId"], t["transactionType"]) for t in sim.truth("alice", "transactions"))
    payouts = []
    for a, b in windows(DAYS):
        payouts += (await records(client.get_payouts(a, b)))[0]
    assert sorted(p["payoutId"] for p in payouts) == sorted(p["payoutId"] for p in sim.truth("alice", "payouts"))

    # disputes: <= 90-day windows, detail by id
    disputes = []
    for a, b in windows(DAYS):
        disputes += (await records(client.get_payment_dispute_summaries(a, b)))[0]
    assert sorted(d["paymentDisputeId"] for d in disputes) == \
        sorted(d["paymentDisputeId"] for d in sim.truth("alice", "disputes"))
    detail = await client.get_payment_dispute(disputes[0]["paymentDisputeId"])
    assert detail["paymentDisputeId"] == disputes[0]["paymentDisputeId"]

    # conversations of both types, then the messages of a few
    convs = []
    for ctype in ("FROM_EBAY", "FROM_MEMBERS"):
        convs += (await records(client.get_conversations(ctype)))[0]
    assert sorted(c["conversationId"] for c in convs) == \
        sorted(c["conversationId"] for c in sim.truth("alice", "conversations"))
    for c in convs[:5]:
        msgs, _ = await records(client.get_conversation_messages(c["conversationId"], c["conversationType"]))
        assert sorted(m["messageId"] for m in msgs) == \
            sorted(m["messageId"] for m in sim.truth("alice", "messages", conversation_id=c["conversationId"]))

    # inventory items (page-index offsets), offers per SKU
    items, pages = await records(client.get_inventory_items())
    assert sorted(i["sku"] for i in items) == sorted(i["sku"] for i in sim.truth("alice", "inventory_items"))
    assert pages == 2
    offers = []
    for it in items:
        offers += (await records(client.get_offers(it["sku"])))[0]
    assert sorted(o["offerId"] for o in offers) == sorted(o["offerId"] for o in sim.truth("alice", "offers"))

    # feed: create, poll (advancing the simulator clock), download, parse
    task_id = await client.create_inventory_task()
    assert (await client.get_inventory_task(task_id))["status"] in ("QUEUED", "IN_PROCESS")
    sim.advance(5)
    assert (await client.get_inventory_task(task_id))["status"] == "COMPLETED"
    tasks, _ = await records(client.get_inventory_tasks(look_back_days=1))
    assert task_id in [t["taskId"] for t in tasks]
    report = await client.download_active_inventory_report(task_id)
    assert report == sim.truth("alice", "active_inventory")

    # rate limits: getRateLimits wants an application token (developer_analytics spec; the seller's token
    # is refused), getUserRateLimits the seller's
    from sync_core.ebay.errors import EbayRequestError
    from sync_core.ebay.oauth import AppTokenSource

    with pytest.raises(EbayRequestError) as ei:
        await client.get_rate_limits()
    assert ei.value.status == 403
    app_client = EbayClient(settings, http=http, tokens=AppTokenSource(http, settings), account="(application)",
                            on_event=events.append)
    rl = await app_client.get_rate_limits()
    assert rl.get("rateLimits")
    url = await client.get_user_rate_limits()
    assert "rateLimits" in url

    # events: one per attempt, never a secret
    http_events = [e for e in events if e["type"] == "http"]
    assert len(http_events) >= 40 and all(e["host"] == "sim" for e in http_events)
    text = json.dumps(events)
    assert refresh_token not in text and "sim-secret" not in text and "Bearer" not in text
    assert client._tokens.token_set.access_token not in text


async def test_resume_from_checkpoint(sim, client):
    it = client.get_orders(NOW - timedelta(days=DAYS + 30), NOW)
    first = await it.__anext__()
    await it.aclose()
    assert first.next_url and first.next_url.startswith(BASE)
    rest, _ = await records(client.get_orders(NOW - timedelta(days=DAYS + 30), NOW, resume_url=first.next_url))
    assert len(first.records) + len(rest) == len(sim.truth("alice", "orders"))
    assert not {o["orderId"] for o in first.records} & {o["orderId"] for o in rest}


async def test_consent_flow(sim, settings, http):
    url = consent_url(settings, "state-123", scopes_for(ALL_STREAMS))
    r = await http.get(url)
    assert r.status_code == 302
    code = parse_redirect(r.headers["location"], "state-123")
    ts = await exchange_code(http, settings, code)
    assert ts.refresh_token and ts.refresh_expires_at and ts.access_expires_at > sim.now()
    with pytest.raises(ReauthNeeded):  # a code works once
        await exchange_code(http, settings, code)


async def test_faults_are_survived(sim, client, events):
    sim.set_faults(rate_429=0.15, rate_5xx=0.15, rate_reset=0.1, retry_after_s=1, access_token_ttl_s=1)
    sim.advance(0)
    got, _ = await records(client.get_orders(NOW - timedelta(days=DAYS + 30), NOW))
    sim.set_faults(rate_429=0.0, rate_5xx=0.0, rate_reset=0.0)
    assert sorted(o["orderId"] for o in got) == sorted(o["orderId"] for o in sim.truth("alice", "orders"))
    statuses = Counter(e["status"] for e in events if e["type"] == "http" and e["api"] == "fulfillment")
    assert statuses[200] >= 3 and (statuses[429] + statuses[500] + statuses[502] + statuses[503] + statuses[504]
                                   + statuses[None]) > 0


async def test_expired_access_token_refreshed_on_401(sim, client, events):
    sim.set_faults(access_token_ttl_s=60)
    await records(client.get_inventory_items())
    sim.advance(120)  # server-side expiry while the client still believes the token is valid
    items, _ = await records(client.get_inventory_items())
    assert len(items) == len(sim.truth("alice", "inventory_items"))
    assert any(e["type"] == "http" and e["status"] == 401 for e in events)


async def test_revoked_refresh_token_needs_reauth(sim, client):
    sim.revoke("alice")
    with pytest.raises(ReauthNeeded) as ei:
        await records(client.get_inventory_items())
    assert ei.value.account == "alice"
