"""Sell Feed inventory report; serving over real HTTP (uvicorn) with start_background; admin endpoints."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

import httpx
import pytest
from simfixtures import BASIC, authed, small_config

from sync_core.sim import Faults
from sync_core.sim.server import is_loopback, serve, start_background

TASKS = "/sell/feed/v1/inventory_task"
BODY = {"schemaVersion": "1.0", "feedType": "LMS_ACTIVE_INVENTORY_REPORT"}
NS = "{urn:ebay:apis:eBLBaseComponents}"


def parse_report(blob: bytes) -> list[dict]:
    assert blob[:4] == b"PK\x03\x04"
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = zf.namelist()
        assert len(names) == 1 and names[0].endswith(".xml")
        root = ET.fromstring(zf.read(names[0]))
    assert root.tag == f"{NS}BulkDataExchangeResponses"
    report = root.find(f"{NS}ActiveInventoryReport")
    assert report.find(f"{NS}Ack").text == "Success"
    rows = []
    for el in report.findall(f"{NS}SKUDetails"):
        row = {}
        for child in el:
            tag = child.tag.replace(NS, "")
            row[tag] = child.text
            for k, v in child.attrib.items():
                row[f"{tag}@{k}"] = v
        rows.append(row)
    return rows


async def test_report_task_lifecycle_and_zip(client, sim):
    r = await client.post(TASKS, json=BODY)
    assert r.status_code == 202
    loc = r.headers["location"]
    assert loc.startswith("http://sim/sell/feed/v1/inventory_task/task-")
    tid = loc.rsplit("/", 1)[1]
    assert (await client.get(loc)).json()["status"] == "QUEUED"
    # a similar task in flight -> 409
    assert (await client.post(TASKS, json=BODY)).status_code == 409
    r = await client.get(f"/sell/feed/v1/task/{tid}/download_result_file")
    # not finished: the spec's getResultFile 404 160014 "No file found for task ID" (docs/ebay-api.md "Disagreements")
    assert r.status_code == 404 and r.json()["errors"][0]["errorId"] == 160014
    sim.advance(1.5)
    assert (await client.get(loc)).json()["status"] == "IN_PROCESS"
    sim.advance(2)
    task = (await client.get(loc)).json()
    assert task["status"] == "COMPLETED" and task["completionDate"] > task["creationDate"]
    r = await client.get(f"/sell/feed/v1/task/{tid}/download_result_file")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert ".zip" in r.headers["content-disposition"]
    rows = parse_report(r.content)
    assert rows == sim.truth("alice", "active_inventory")
    assert all(x["Price@currencyID"] == "USD" and x["ItemID"].isdigit() and x["Quantity"].isdigit() for x in rows)
    # derived from offers: every published offer's listing is in the report
    listings = {o["listing"]["listingId"] for o in sim.truth("alice", "offers") if o.get("listing")}
    assert listings <= {x["ItemID"] for x in rows}
    # another seller cannot see the task
    other = await authed(sim, "bob")
    assert (await other.get(loc)).status_code == 404
    await other.aclose()


async def test_report_listing_format_filter_and_delay_knob(client, sim):
    sim.set_faults(report_delay_s=0)
    r = await client.post(TASKS, json={**BODY, "filterCriteria": {"listingFormat": "AUCTION"}})
    tid = r.headers["location"].rsplit("/", 1)[1]
    r = await client.get(f"/sell/feed/v1/task/{tid}/download_result_file")
    rows = parse_report(r.content)
    assert rows == sim.truth("alice", "active_inventory", listing_format="AUCTION") and rows
    sim.set_faults(report_delay_s=600)
    loc = (await client.post(TASKS, json=BODY)).headers["location"]
    sim.advance(300)
    assert (await client.get(loc)).json()["status"] == "IN_PROCESS"
    sim.advance(301)
    assert (await client.get(loc)).json()["status"] == "COMPLETED"
    for bad in [{**BODY, "schemaVersion": "2.0"}, {**BODY, "feedType": "LMS_ORDER_REPORT"},
                {**BODY, "filterCriteria": {"listingFormat": "CLASSIFIED"}}]:
        assert (await client.post(TASKS, json=bad)).status_code == 400
    assert (await client.post(TASKS, content=b"not json", headers={"content-type": "application/json"})).status_code == 400


async def test_feed_needs_sell_inventory_scope(sim):
    c = await authed(sim)
    from simfixtures import access_token

    tok = await access_token(c, sim.mint_refresh_token("alice"),
                             scope="https://api.ebay.com/oauth/api_scope/sell.inventory.readonly")
    r = await c.post(TASKS, json=BODY, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403
    r = await c.get("/sell/inventory/v1/inventory_item", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200
    await c.aclose()


async def test_admin_endpoints(sim):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as c:
        r = await c.post("/sim/sellers/alice/refresh_token")
        rt = r.json()["refresh_token"]
        r = await c.post("/identity/v1/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                         auth=BASIC)
        assert r.status_code == 200
        assert (await c.post("/sim/sellers/nobody/refresh_token")).status_code == 404
        r = await c.get("/sim/stats")
        assert r.json()["tokens"]["refresh_token"] == 1
        assert (await c.post("/sim/sellers/alice/touch", params={"kind": "nonsense"})).status_code == 400
        r = await c.post("/sim/clock", json={"advance_s": 60})
        assert r.json()["now"] == "2025-06-01T12:01:00.000Z" and r.json()["frozen"] is True
        r = await c.post("/sim/clock", json={"now": "2025-07-01T00:00:00.000Z"})
        assert r.json()["now"] == "2025-07-01T00:00:00.000Z"
        r = await c.get("/sim/sellers")
        assert [s["name"] for s in r.json()["sellers"]] == ["alice", "bob"]
        r = await c.post("/sim/stats")  # reset
        assert r.json()["requests"] == 0


def test_loopback_only():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.com")
    with pytest.raises(ValueError):
        serve(host="0.0.0.0", port=0, config=small_config())


async def test_start_background_real_http():
    with pytest.raises(ValueError):
        await start_background(small_config(), host="0.0.0.0")
    sim, stop = await start_background(small_config(faults=Faults(rate_reset=0.0)), port=0)
    try:
        assert sim.base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.post("/sim/sellers/alice/refresh_token")
            rt = r.json()["refresh_token"]
            r = await c.post("/identity/v1/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                             auth=BASIC)
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            r = await c.get("/sell/fulfillment/v1/order?filter=lastmodifieddate:%5B2025-01-01T00:00:00.000Z..%5D&limit=5")
            body = r.json()
            assert r.status_code == 200 and body["next"].startswith(sim.base_url + "/sell/fulfillment/v1/order?")
            r = await c.get(body["next"])
            assert r.status_code == 200 and r.json()["offset"] == 5
            # connection reset under uvicorn: a transport error, and the server keeps serving
            sim.set_faults(rate_reset=1.0)
            with pytest.raises(httpx.TransportError):
                await c.get("/sell/fulfillment/v1/order")
            sim.set_faults(rate_reset=0.0)
            assert (await c.get("/sell/fulfillment/v1/order")).status_code == 200
            r = await c.get("/sell/finances/v1/transaction",
                            params={"filter": "transactionDate:[2030-01-01T00:00:00.000Z..2030-01-02T00:00:00.000Z]"})
            assert r.status_code == 204 and r.content == b""
    finally:
        await stop()
        await stop()  # idempotent
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            await c.get("/sim/health")
