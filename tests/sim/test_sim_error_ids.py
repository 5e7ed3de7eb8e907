"""errorIds the simulator answers with are the ones eBay's contract declares for the operation
(tests/ebay_specs/sell_fulfillment_v1_oas3.json, getOrders, 400 x-response-codes; docs/ebay-api.md,
"Disagreements")."""

from __future__ import annotations

import json
from pathlib import Path

from simfixtures import client, sim  # noqa: F401

SPECS = Path(__file__).resolve().parents[1] / "ebay_specs"
ORDERS = "/sell/fulfillment/v1/order"


def declared_400s(spec: str, path: str, op_id: str) -> dict[int, str]:
    op = json.loads((SPECS / spec).read_text())["paths"][path]["get"]
    assert op["operationId"] == op_id
    codes = op["responses"]["400"]["x-response-codes"]["errors"]
    return {int(k): v["description"] for k, v in codes.items()}


async def test_get_orders_limit_and_offset_error_ids_are_the_specs(client):
    declared = declared_400s("sell_fulfillment_v1_oas3.json", "/order", "getOrders")
    for params, want in [({"limit": 201}, "Invalid limit"), ({"limit": "x"}, "Invalid limit"),
                         ({"offset": -1}, "Invalid offset")]:
        r = await client.get(ORDERS, params=params)
        assert r.status_code == 400, r.text
        error_id = r.json()["errors"][0]["errorId"]
        assert declared.get(error_id, "").startswith(want), (params, error_id, declared.get(error_id))
