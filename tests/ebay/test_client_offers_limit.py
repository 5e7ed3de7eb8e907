"""getOffers `limit` (sell_inventory_v1_oas3.json GET /offer): "If this query parameter is not set, up to 100
records will be returned on each page"; no maximum is documented, so the client asks for 100 and refuses more."""

from urllib.parse import parse_qs

import httpx
import pytest

from tests.ebay.conftest import API
from sync_core.ebay.client import OFFERS_LIMIT


async def test_offers_are_asked_for_with_the_documented_limit(client, mock):
    assert OFFERS_LIMIT == 100
    route = mock.get(f"{API}/sell/inventory/v1/offer").mock(return_value=httpx.Response(
        200, json={"offers": [{"offerId": "o1", "sku": "s"}], "total": 1, "limit": 100, "size": 1}))
    pages = [p async for p in client.get_offers("s")]
    assert pages[0].records == [{"offerId": "o1", "sku": "s"}]
    assert parse_qs(route.calls[0].request.url.query.decode())["limit"] == ["100"]
    with pytest.raises(ValueError, match="between 1 and 100"):
        client.get_offers("s", 101)
