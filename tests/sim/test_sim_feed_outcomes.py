"""Sell Feed task outcomes the simulator serves as eBay documents them (tests/ebay_specs/sell_feed_v1_oas3.json,
FACTS §13; the report XML per eBay's "XML Reference for Sell Feed LMS Feed Types", ActiveInventoryReport)."""

from __future__ import annotations

import contextlib
import io
import zipfile
from xml.etree import ElementTree as ET

import pytest
from simfixtures import authed, make_sim

from sync_core.ebay.feed_report import parse_active_inventory_report
from sync_core.sim import Faults

TASKS = "/sell/feed/v1/inventory_task"
BODY = {"schemaVersion": "1.0", "feedType": "LMS_ACTIVE_INVENTORY_REPORT"}
NS = "{urn:ebay:apis:eBLBaseComponents}"


@contextlib.asynccontextmanager
async def seller_client(sim):
    c = await authed(sim)
    try:
        yield c
    finally:
        await c.aclose()


def error_id(r) -> int:
    return r.json()["errors"][0]["errorId"]


async def new_task(client) -> str:
    r = await client.post(TASKS, json=BODY)
    assert r.status_code == 202, r.text
    return r.headers["location"].rsplit("/", 1)[1]


async def test_missing_task_is_404_160003_on_get_and_download():
    """Spec getInventoryTask 404 and getResultFile 404: errorId 160003 "Task {taskID} does not exist."
    (160010 is a 400 of getInventoryTasks, not a missing task)."""
    sim = make_sim()
    async with seller_client(sim) as c:
        r = await c.get(f"{TASKS}/task-99-unknown")
        assert r.status_code == 404 and error_id(r) == 160003
        r = await c.get("/sell/feed/v1/task/task-99-unknown/download_result_file")
        assert r.status_code == 404 and error_id(r) == 160003


@pytest.mark.parametrize("outcome,status", [("FAILED", "FAILED"), ("NO_FILE", "COMPLETED")])
async def test_failed_or_fileless_task_has_no_result_file_404_160014(outcome, status):
    """FeedStatusEnum [DOC] has FAILED; spec getResultFile 404 errorId 160014 "No file found for task ID"."""
    sim = make_sim(faults=Faults(report_delay_s=1, report_outcome=outcome))
    async with seller_client(sim) as c:
        tid = await new_task(c)
        sim.advance(2)
        task = (await c.get(f"{TASKS}/{tid}")).json()
        assert task["status"] == status
        # spec InventoryTask.completionDate: only for the completed values
        assert ("completionDate" in task) == (status == "COMPLETED")
        r = await c.get(f"/sell/feed/v1/task/{tid}/download_result_file")
        assert r.status_code == 404 and error_id(r) == 160014


async def test_409_160024_while_too_many_tasks_are_in_flight():
    """Spec createInventoryTask 409 errorId 160024: "maximum number of feed tasks that can be queued or
    processed concurrently" (the simulator's limit, feed_max_in_flight, is an unverified number)."""
    sim = make_sim(feed_conflict=False, feed_max_in_flight=2)
    async with seller_client(sim) as c:
        await new_task(c)
        await new_task(c)
        r = await c.post(TASKS, json=BODY)
        assert r.status_code == 409 and error_id(r) == 160024
        assert r.json()["errors"][0]["category"] == "BUSINESS"
        sim.advance(10)  # both done: room again
        await new_task(c)


async def test_409_160025_when_the_hourly_or_daily_quota_is_spent():
    """Spec createInventoryTask 409 errorId 160025: "exceeded the maximum number of records or tasks ... in the
    period (hourly or daily)" (feed_hourly_tasks / feed_daily_tasks are unverified numbers)."""
    sim = make_sim(feed_hourly_tasks=2, feed_daily_tasks=3, faults=Faults(report_delay_s=1))

    async def create():  # a fresh token each time: the sim clock jumps hours here
        async with seller_client(sim) as c:
            return await c.post(TASKS, json=BODY)

    for _ in range(2):
        assert (await create()).status_code == 202
        sim.advance(2)
    r = await create()
    assert r.status_code == 409 and error_id(r) == 160025
    sim.advance(3600)  # the hour passed
    assert (await create()).status_code == 202
    sim.advance(3600)
    r = await create()  # 3 in the last day
    assert r.status_code == 409 and error_id(r) == 160025
    sim.advance(86400)
    assert (await create()).status_code == 202


async def test_ack_failure_and_empty_reports():
    """ActiveInventoryReport is an AbstractResponseType (XML Reference for Sell Feed LMS Feed Types): a
    report eBay could not build says Ack=Failure with Errors and carries no SKUDetails."""
    sim = make_sim(faults=Faults(report_delay_s=1, report_outcome="ACK_FAILURE"))
    async with seller_client(sim) as c:
        tid = await new_task(c)
        sim.advance(2)
        blob = (await c.get(f"/sell/feed/v1/task/{tid}/download_result_file")).content
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            root = ET.fromstring(zf.read(zf.namelist()[0]))
        report = root.find(f"{NS}ActiveInventoryReport")
        assert report.find(f"{NS}Ack").text == "Failure" and report.find(f"{NS}Errors") is not None
        parsed = parse_active_inventory_report(blob)
        assert parsed == [] and parsed.ack == "Failure" and parsed.errors == ["Report generation failed."]
        sim.set_faults(report_outcome="EMPTY")
        tid = await new_task(c)
        sim.advance(2)
        parsed = parse_active_inventory_report((await c.get(f"/sell/feed/v1/task/{tid}/download_result_file")).content)
        assert parsed == [] and parsed.ack == "Success"


async def test_variation_rows_in_the_report():
    """ActiveInventoryReport XML reference: SKUDetails/Variations/Variation{SKU, Price, Quantity}; for a
    multi-variation listing price and quantity are only at the variation level (SKUDetailsType)."""
    sim = make_sim(faults=Faults(report_delay_s=1, report_variations=True))
    async with seller_client(sim) as c:
        tid = await new_task(c)
        sim.advance(2)
        parsed = parse_active_inventory_report((await c.get(f"/sell/feed/v1/task/{tid}/download_result_file")).content)
    multi = [r for r in parsed if "Variations" in r]
    assert len(multi) == 1 and "Price" not in multi[0] and "Quantity" not in multi[0]
    vs = multi[0]["Variations"]["Variation"]
    assert [v["SKU"] for v in vs] == ["VAR-RED", "VAR-BLUE", "VAR-GREEN"]
    assert vs[0]["Price"] == "10.00" and vs[0]["Price@currencyID"] and vs[2]["Quantity"] == "7"
    assert len(parsed) == len(sim.truth("alice", "active_inventory")) + 1


async def test_minutes_of_report_latency_in_sim_time():
    """Report latency is sim-clock time (report_delay_s); eBay's real latency is unverified (FACTS §8)."""
    sim = make_sim(faults=Faults(report_delay_s=600))
    async with seller_client(sim) as c:
        tid = await new_task(c)
        sim.advance(300)
        assert (await c.get(f"{TASKS}/{tid}")).json()["status"] == "IN_PROCESS"
        sim.advance(301)
        assert (await c.get(f"{TASKS}/{tid}")).json()["status"] == "COMPLETED"


def test_report_outcome_knob_is_checked():
    with pytest.raises(ValueError, match="report_outcome"):
        Faults().updated({"report_outcome": "MAYBE"})
