"""Digital Signatures in the simulator and the client (FACTS.md §12; eBay's guide "Digital Signatures for
APIs" and eBay/digital-signature-verification-ebay-api): an EU/UK seller's Finances calls need a valid
signature made with a key issued by the Key Management API's createSigningKey (application token)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sync_core.config import load_settings
from sync_core.ebay import signing
from sync_core.ebay.client import EbayClient, make_http_client
from sync_core.ebay.errors import SignatureRequired
from sync_core.ebay.oauth import StaticTokenSource, application_token
from sync_core.sim import SellerSpec, SimConfig, Simulator
from tests.ebay.test_signing import ED25519_JWE, ED25519_PRIVATE

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
BASE = "http://sim"


@pytest.fixture
def sim():
    return Simulator(SimConfig(seed=3, now=NOW, sellers=[
        SellerSpec("eu", orders=10, transactions=60, payouts=4, days=60, signing_required=True),
        SellerSpec("us", orders=10, transactions=60, payouts=4, days=60)]))


@pytest.fixture
def settings(tmp_path, sim):
    return load_settings({
        "BAYSYNC_HOME": str(tmp_path),
        "BAYSYNC_EBAY_API_BASE_URL": BASE, "BAYSYNC_EBAY_APIZ_BASE_URL": BASE, "BAYSYNC_EBAY_AUTH_BASE_URL": BASE,
        "BAYSYNC_EBAY_CLIENT_ID": sim.config.client_id, "BAYSYNC_EBAY_CLIENT_SECRET": sim.config.client_secret,
        "BAYSYNC_EBAY_RUNAME": "r"}).with_values(api_retry_attempts=1)


@pytest.fixture
async def http(settings, sim):
    c = make_http_client(settings, transport=httpx.ASGITransport(app=sim.app))
    yield c
    await c.aclose()


def client(settings, http, sim, seller, **kw):
    return EbayClient(settings, http=http, tokens=StaticTokenSource(sim.mint_access_token(seller)), account=seller, **kw)


async def transactions(c):
    out = []
    async for page in c.get_transactions(NOW - timedelta(days=89), NOW):
        out += [t["transactionId"] for t in page.records]
    return out


async def test_eu_seller_unsigned_finances_call_is_403_215001_others_unaffected(settings, http, sim):
    with pytest.raises(SignatureRequired) as ei:
        await transactions(client(settings, http, sim, "eu"))
    assert ei.value.status == 403 and ei.value.error_id == 215001 and ei.value.domain == "ACCESS"
    assert "baysync keys signing create" in ei.value.advice()
    assert await transactions(client(settings, http, sim, "us"))  # a US seller needs no signature
    orders = client(settings, http, sim, "eu").get_orders(NOW - timedelta(days=30), NOW)
    assert [p async for p in orders]  # only Finances is in scope


async def test_signature_with_a_key_the_simulator_did_not_issue_is_215120(settings, http, sim):
    # eBay's published test key: valid RFC 9421, but eBay's APIs only accept keys from createSigningKey
    signer = signing.Signer(ED25519_JWE, ED25519_PRIVATE)
    with pytest.raises(SignatureRequired) as ei:
        await transactions(client(settings, http, sim, "eu", signer=signer))
    assert ei.value.error_id == 215120 and "wrong or expired" in ei.value.advice()
    assert sim.stats["faults"]["signature"] == 1


async def test_create_signing_key_needs_an_application_token_and_then_signed_calls_pass(settings, http, sim):
    user = sim.mint_access_token("eu")
    r = await http.post(BASE + signing.KEY_MANAGEMENT_PATH, json={"signingKeyCipher": "ED25519"},
                        headers={"Authorization": f"Bearer {user}"})
    assert r.status_code == 403
    app = await application_token(http, settings)
    r = await http.post(BASE + signing.KEY_MANAGEMENT_PATH, json={"signingKeyCipher": "DSA"},
                        headers={"Authorization": f"Bearer {app}"})
    assert r.status_code == 400
    key = await signing.create_signing_key(http, settings)
    assert key["key_id"] and key["expires_at"] > NOW
    signer = signing.Signer(key["jwe"], key["private_key"])
    got = await transactions(client(settings, http, sim, "eu", signer=signer))
    want = [t["transactionId"] for t in sim.truth("eu", "transactions")]
    assert sorted(got) == sorted(want) and got
    # the payouts API too, and the signature is bound to the request: a tampered one is refused
    assert [p async for p in client(settings, http, sim, "eu", signer=signer).get_payouts(NOW - timedelta(days=89), NOW)]
    h = signer.headers("GET", BASE + "/sell/finances/v1/payout")
    r = await http.get(BASE + "/sell/finances/v1/transaction",
                       headers={**h, "Authorization": f"Bearer {sim.mint_access_token('eu')}"})
    assert r.status_code == 403 and r.json()["errors"][0]["errorId"] == 215120


async def test_rsa_key_from_create_signing_key_works_too(settings, http, sim):
    key = await signing.create_signing_key(http, settings, "RSA")
    signer = signing.Signer(key["jwe"], key["private_key"])
    assert signer.cipher == "RSA"
    assert await transactions(client(settings, http, sim, "eu", signer=signer))


async def test_known_eu_account_without_a_key_fails_before_calling_ebay(settings, http, sim):
    before = sim.stats["requests"]
    with pytest.raises(SignatureRequired) as ei:
        await transactions(client(settings, http, sim, "eu", signing_required=True))
    assert ei.value.status is None and "no signing key" in ei.value.advice()
    assert sim.stats["requests"] == before
