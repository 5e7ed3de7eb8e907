"""Active inventory report: zip/gzip/plain detection, namespaces, nested elements, download + parse."""

from __future__ import annotations

import gzip
import io
import zipfile

import httpx
import pytest

from tests.ebay.conftest import API
from sync_core.ebay.client import parse_active_inventory_report, parse_active_inventory_report_async
from sync_core.ebay.feed_report import ReportFormatError

XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ActiveInventoryReport xmlns="urn:ebay:apis:eBLBaseComponents">
  <Version>1.0</Version>
  <SKUDetails>
    <SKU>ABC-1</SKU>
    <Price currencyID="USD">12.50</Price>
    <Quantity>3</Quantity>
    <ItemID>110000000001</ItemID>
  </SKUDetails>
  <SKUDetails>
    <SKU>VAR-1</SKU>
    <ItemID>110000000002</ItemID>
    <Variations>
      <Variation><SKU>VAR-1-R</SKU><Quantity>1</Quantity><Price>5.00</Price></Variation>
      <Variation><SKU>VAR-1-B</SKU><Quantity>2</Quantity><Price>6.00</Price></Variation>
    </Variations>
  </SKUDetails>
</ActiveInventoryReport>
"""

PREFIXED = b"""<ns2:ActiveInventoryReport xmlns:ns2="urn:ebay:apis:eBLBaseComponents">
<ns2:SKUDetails><ns2:SKU>P-1</ns2:SKU><ns2:ItemID>1</ns2:ItemID><ns2:Quantity>0</ns2:Quantity></ns2:SKUDetails>
</ns2:ActiveInventoryReport>"""

EXPECTED = [
    {"SKU": "ABC-1", "Price": "12.50", "Price@currencyID": "USD", "Quantity": "3", "ItemID": "110000000001"},
    {"SKU": "VAR-1", "ItemID": "110000000002", "Variations": {"Variation": [
        {"SKU": "VAR-1-R", "Quantity": "1", "Price": "5.00"}, {"SKU": "VAR-1-B", "Quantity": "2", "Price": "6.00"}]}},
]


def zipped(data: bytes, name: str = "report.xml") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def test_zip_xml():
    data = zipped(XML, "000123_ActiveInventoryReport.xml")
    assert data[:4] == b"PK\x03\x04"
    assert parse_active_inventory_report(data) == EXPECTED


def test_gzip_and_plain():
    assert parse_active_inventory_report(gzip.compress(XML)) == EXPECTED
    assert parse_active_inventory_report(XML) == EXPECTED
    assert parse_active_inventory_report(b"") == []


def test_prefixed_namespace_and_no_namespace():
    assert parse_active_inventory_report(zipped(PREFIXED)) == [{"SKU": "P-1", "ItemID": "1", "Quantity": "0"}]
    plain = XML.replace(b' xmlns="urn:ebay:apis:eBLBaseComponents"', b"")
    assert parse_active_inventory_report(plain) == EXPECTED


def test_bad_inputs():
    with pytest.raises(ReportFormatError, match="not XML"):
        parse_active_inventory_report(b"SKU,ItemID\nA,1\n")
    with pytest.raises(ReportFormatError, match="malformed"):
        parse_active_inventory_report(b"<ActiveInventoryReport><SKUDetails>")
    with pytest.raises(ReportFormatError, match="corrupt zip"):
        parse_active_inventory_report(b"PK\x03\x04garbage")
    with pytest.raises(ReportFormatError, match="corrupt gzip"):
        parse_active_inventory_report(b"\x1f\x8bgarbage")


async def test_async_parse_large():
    body = b"".join(b"<SKUDetails><SKU>S%d</SKU><ItemID>%d</ItemID><Quantity>1</Quantity></SKUDetails>" % (i, i)
                    for i in range(20000))
    data = zipped(b"<ActiveInventoryReport xmlns='urn:ebay:apis:eBLBaseComponents'>" + body + b"</ActiveInventoryReport>")
    recs = await parse_active_inventory_report_async(data)
    assert len(recs) == 20000 and recs[-1] == {"SKU": "S19999", "ItemID": "19999", "Quantity": "1"}


async def test_feed_task_flow(client, mock, events):
    create = mock.post(f"{API}/sell/feed/v1/inventory_task").mock(return_value=httpx.Response(
        202, headers={"Location": "https://api.ebay.com/sell/feed/v1/inventory_task/task-1-42"}))
    mock.get(f"{API}/sell/feed/v1/inventory_task/task-1-42").mock(return_value=httpx.Response(200, json={
        "taskId": "task-1-42", "status": "COMPLETED", "feedType": "LMS_ACTIVE_INVENTORY_REPORT", "schemaVersion": "1.0"}))
    dl = mock.get(f"{API}/sell/feed/v1/task/task-1-42/download_result_file").mock(return_value=httpx.Response(
        200, content=zipped(XML), headers={"content-type": "application/octet-stream",
                                           "content-disposition": "attachment; filename=task-1-42.zip"}))
    task_id = await client.create_inventory_task()
    assert task_id == "task-1-42"
    import json

    body = json.loads(create.calls[0].request.content)
    assert body == {"schemaVersion": "1.0", "feedType": "LMS_ACTIVE_INVENTORY_REPORT"}
    assert create.calls[0].request.headers["Content-Type"] == "application/json"
    assert create.calls[0].request.headers["X-EBAY-C-MARKETPLACE-ID"] == "EBAY_US"
    assert (await client.get_inventory_task(task_id))["status"] == "COMPLETED"
    assert await client.download_active_inventory_report(task_id) == EXPECTED
    assert dl.calls[0].request.headers["Accept"] == "*/*"
    assert [e["op"] for e in events if e["api"] == "feed"] == ["createInventoryTask", "getInventoryTask",
                                                               "downloadResultFile"]
    await client.create_inventory_task("AUCTION")
    assert json.loads(create.calls[1].request.content)["filterCriteria"] == {"listingFormat": "AUCTION"}


async def test_feed_task_conflict_and_listing(client, mock):
    from sync_core.ebay.errors import EbayRequestError

    mock.post(f"{API}/sell/feed/v1/inventory_task").mock(return_value=httpx.Response(409, json={
        "errors": [{"errorId": 160024, "category": "REQUEST", "message": "A similar task is in progress"}]}))
    with pytest.raises(EbayRequestError) as ei:
        await client.create_inventory_task()
    assert ei.value.status == 409
    route = mock.get(f"{API}/sell/feed/v1/inventory_task").mock(return_value=httpx.Response(200, json={
        "tasks": [{"taskId": "task-1-9", "status": "IN_PROCESS"}], "total": 1, "limit": 500, "offset": 0}))
    pages = [p async for p in client.get_inventory_tasks(look_back_days=2)]
    assert pages[0].records[0]["taskId"] == "task-1-9"
    assert "feed_type=LMS_ACTIVE_INVENTORY_REPORT" in route.calls[0].request.url.query.decode()
