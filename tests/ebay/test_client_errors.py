"""Error envelope parsing, Retry-After parsing, redaction of messages and data."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx

from sync_core.ebay.errors import (
    EbayAuthError,
    EbayRateLimited,
    EbayRequestError,
    EbayServerError,
    ReauthNeeded,
    error_from_response,
    error_from_status,
    parse_error_envelope,
    parse_retry_after,
)
from sync_core.ebay.redact import redact, redact_url, register_secret, strip_secret_params

ENVELOPE = {
    "errors": [
        {"errorId": 32100, "domain": "API_FULFILLMENT", "subdomain": "Selling", "category": "REQUEST",
         "message": "Invalid filter name: lastmodified", "longMessage": "The filter lastmodified is not supported.",
         "inputRefIds": ["filter"], "parameters": [{"name": "filter", "value": "lastmodified"}]},
        {"errorId": 32800, "domain": "API_FULFILLMENT", "category": "REQUEST", "message": "Invalid limit"},
    ],
    "warnings": [],
}


def test_envelope_parsed_into_typed_error():
    req = httpx.Request("GET", "https://api.ebay.com/sell/fulfillment/v1/order?filter=x")
    resp = httpx.Response(400, json=ENVELOPE, request=req)
    e = error_from_response(resp, api="fulfillment", account="s1")
    assert isinstance(e, EbayRequestError)
    assert (e.status, e.error_id, e.category, e.domain) == (400, 32100, "REQUEST", "API_FULFILLMENT")
    assert e.message.startswith("The filter lastmodified is not supported.") and "(+1 more)" in e.message
    assert len(e.errors) == 2 and e.errors[0]["parameters"][0]["value"] == "lastmodified"
    s = str(e)
    assert s == ("eBay 400 [errorId 32100 REQUEST]: The filter lastmodified is not supported. (+1 more) "
                 "(GET /sell/fulfillment/v1/order) account=s1")
    assert "\n" not in s


def test_status_classes():
    assert isinstance(error_from_status(401, ENVELOPE), EbayAuthError)
    assert not isinstance(error_from_status(401, ENVELOPE), ReauthNeeded)
    rl = error_from_status(429, b"", headers=httpx.Headers({"Retry-After": "7"}))
    assert isinstance(rl, EbayRateLimited) and rl.retry_after == 7.0 and rl.retryable
    for st in (500, 502, 503, 504):
        assert isinstance(error_from_status(st, None), EbayServerError) and error_from_status(st, None).retryable
    assert not error_from_status(501, None).retryable
    assert isinstance(error_from_status(404, "not json"), EbayRequestError)
    assert error_from_status(404, "not json", reason="Not Found").message == "Not Found"
    assert issubclass(ReauthNeeded, EbayAuthError)


def test_envelope_tolerates_garbage():
    assert parse_error_envelope(b"<html>502</html>") == []
    assert parse_error_envelope({"errors": "nope"}) == []
    assert parse_error_envelope(b'{"errors":[{"errorId":1},"x"]}') == [{"errorId": 1}]
    e = error_from_status(400, {"error": "invalid_request", "error_description": "bad"})
    assert "invalid_request: bad" in str(e)


def test_retry_after_forms():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0


def test_error_messages_never_show_tokens():
    token = "v^1.1#i^1#p^3#r^0#I^3#f^0#t^H4sIAAAAAAAAAOVYa2wUVRTeLX1YoUK0EW0aXUaJRXZm7"
    e = error_from_status(401, {"errors": [{"errorId": 1001, "message": f"Invalid access token Bearer {token}"}]})
    assert token not in str(e) and "t^H4sI" not in str(e)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is EbayAuthError and e2.error_id == 1001 and str(e2) == str(e)
    rl = pickle.loads(pickle.dumps(error_from_status(429, None, headers=httpx.Headers({"Retry-After": "3"}))))
    assert rl.retry_after == 3.0


def test_redact_registry_and_patterns():
    secret = "Zm9vYmFyLXNlY3JldC12YWx1ZS0xMjM0NQ=="
    register_secret(secret)
    register_secret("abc")  # too short: ignored, ordinary text stays
    assert redact(f"x {secret} y") == "x *** y"
    assert secret not in redact("url?q=Zm9vYmFyLXNlY3JldC12YWx1ZS0xMjM0NQ%3D%3D")
    assert redact("abc def") == "abc def"
    assert redact("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert redact("headers={'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}") == "headers={'authorization': 'Basic ***'}"
    assert redact('{"access_token": "tok123456", "expires_in": 7200}') == '{"access_token": "***", "expires_in": 7200}'
    assert redact("https://x/cb?code=v%5E1.1%23i%5E1%23abc&state=s1") == "https://x/cb?code=***&state=s1"
    assert redact("grant_type=refresh_token&refresh_token=r1234567&scope=x") == \
        "grant_type=refresh_token&refresh_token=***&scope=x"
    assert redact("token v^1.1#i^1#r^1#abc== end") == "token *** end"
    d = redact({"Authorization": "Bearer x", "headers": {"X-EBAY-C-MARKETPLACE-ID": "EBAY_US", "cookie": "a=b"},
                "access_token": "t", "token_type": "User Access Token", "refresh_token_expires_in": 47304000,
                "list": [f"a {secret}"], "n": 5, "none": None})
    assert d == {"Authorization": "***", "headers": {"X-EBAY-C-MARKETPLACE-ID": "EBAY_US", "cookie": "***"},
                 "access_token": "***", "token_type": "User Access Token", "refresh_token_expires_in": 47304000,
                 "list": ["a ***"], "n": 5, "none": None}
    assert "x" in redact(ValueError("x")) and secret not in redact(ValueError(secret))


def test_strip_secret_params_and_redact_url():
    assert strip_secret_params("limit=200&code=abc&access_token=t&filter=a:%5Bx..y%5D") == "limit=200&filter=a:[x..y]"
    assert strip_secret_params("") == ""
    assert redact_url("https://user:pw@api.ebay.com/p?client_secret=s&offset=2#frag") == "https://api.ebay.com/p?offset=2"


def test_registry_is_bounded():
    import sync_core.ebay.redact as r

    first = "first-secret-value-0000"
    register_secret(first)
    for i in range(r.MAX_REGISTERED + 5):
        register_secret(f"bulk-secret-{i:06d}")
    assert r.registered_secret_count() == r.MAX_REGISTERED
    assert redact(f"bulk-secret-{r.MAX_REGISTERED + 4:06d}") == "***"
