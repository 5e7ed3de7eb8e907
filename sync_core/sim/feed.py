"""Sell Feed inventory tasks and the LMS_ACTIVE_INVENTORY_REPORT result file.

Result file shape (eBay's real format is not contractually documented; this mirrors the Large
Merchant Services ActiveInventoryReport as commonly seen): a ZIP holding one XML document::

    <?xml version="1.0" encoding="UTF-8"?>
    <BulkDataExchangeResponses xmlns="urn:ebay:apis:eBLBaseComponents">
      <ActiveInventoryReport>
        <Timestamp>2025-06-01T00:00:00.000Z</Timestamp>
        <Ack>Success</Ack>
        <Version>1193</Version>
        <SKUDetails>
          <SKU>ALI-SHO-00001</SKU>            (absent for listings without a SKU)
          <Price currencyID="USD">101.49</Price>
          <Quantity>25</Quantity>
          <ItemID>111000007936</ItemID>
        </SKUDetails>
        <SKUDetails>                          (a multi-variation listing, knob ``report_variations``)
          <ItemID>190000000001</ItemID>
          <Variations><Variation><SKU>..</SKU><Price currencyID="USD">..</Price><Quantity>..</Quantity>
          </Variation>...</Variations>
        </SKUDetails>
        ...
      </ActiveInventoryReport>
    </BulkDataExchangeResponses>

eBay's "XML Reference for Sell Feed LMS Feed Types", ActiveInventoryReport
(developer.ebay.com/devzone/merchant-data/CallRef/ActiveInventoryReport.html) documents SKUDetails{ItemID,
SKU, Price, Quantity, BidCount, ReserveMet, Variations/Variation{SKU, Price, Quantity}} and the standard
response fields (Ack, Errors, Timestamp, Version); for a multi-variation listing price and quantity are only
returned at the variation level (SKUDetailsType).
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .util import fmt_ms

FEED_TYPE = "LMS_ACTIVE_INVENTORY_REPORT"


@dataclass
class FeedTask:
    task_id: str
    seller: str
    created_ms: int
    delay_ms: int
    listing_format: str | None
    schema_version: str = "1.0"
    outcome: str = "COMPLETED"  # Faults.report_outcome when the task was created

    def done(self, now: int) -> bool:
        return now - self.created_ms >= self.delay_ms

    def status(self, now: int) -> str:
        """QUEUED -> IN_PROCESS -> a final value of FeedStatusEnum (spec InventoryTask.status)."""
        el = now - self.created_ms
        if el >= self.delay_ms:
            return {"FAILED": "FAILED", "COMPLETED_WITH_ERROR": "COMPLETED_WITH_ERROR"}.get(self.outcome, "COMPLETED")
        if el >= self.delay_ms * 0.3:
            return "IN_PROCESS"
        return "QUEUED"

    def render(self, now: int, base: str) -> dict:
        st = self.status(now)
        out: dict[str, Any] = {
            "taskId": self.task_id,
            "status": st,
            "feedType": FEED_TYPE,
            "creationDate": fmt_ms(self.created_ms),
            "schemaVersion": self.schema_version,
            "detailHref": f"{base}/sell/feed/v1/inventory_task/{self.task_id}",
        }
        if self.listing_format:
            out["filterCriteria"] = {"listingFormat": self.listing_format}
        if st in ("COMPLETED", "COMPLETED_WITH_ERROR"):  # spec: only returned for the completed values
            out["completionDate"] = fmt_ms(self.created_ms + self.delay_ms)
        return out


class FeedStore:
    def __init__(self, seller_numbers: dict[str, int]):
        self._lock = threading.Lock()
        self.tasks: dict[str, FeedTask] = {}
        self._counter = 0
        self._nums = seller_numbers

    def create(self, seller: str, now: int, delay_s: float, listing_format: str | None,
               outcome: str = "COMPLETED") -> FeedTask:
        with self._lock:
            self._counter += 1
            tid = f"task-{10 + self._nums.get(seller, 0)}-{now % 10**7:07d}{self._counter:05d}"
            t = FeedTask(tid, seller, now, int(delay_s * 1000), listing_format, outcome=outcome)
            self.tasks[tid] = t
            return t

    def pending_similar(self, seller: str, listing_format: str | None, now: int) -> FeedTask | None:
        for t in self.tasks.values():
            if t.seller == seller and t.listing_format == listing_format and not t.done(now) and t.created_ms <= now:
                return t
        return None

    def in_flight(self, seller: str, now: int) -> int:
        return sum(1 for t in self.tasks.values() if t.seller == seller and not t.done(now) and t.created_ms <= now)

    def created_since(self, seller: str, since: int, now: int) -> int:
        return sum(1 for t in self.tasks.values() if t.seller == seller and since < t.created_ms <= now)

    def get(self, seller: str, task_id: str) -> FeedTask | None:
        t = self.tasks.get(task_id)
        return t if t is not None and t.seller == seller else None

    def list(self, seller: str, frm: int, to: int) -> list[FeedTask]:
        out = [t for t in self.tasks.values() if t.seller == seller and frm <= t.created_ms <= to]
        out.sort(key=lambda t: t.created_ms, reverse=True)
        return out


VARIATION_ITEM = "190000000001"


def variation_listing(currency: str) -> dict:
    """One multi-variation listing: price and quantity only at the variation level (SKUDetailsType doc)."""
    return {"ItemID": VARIATION_ITEM, "Variations": [
        {"SKU": f"VAR-{c}", "Price": p, "Price@currencyID": currency, "Quantity": q}
        for c, p, q in (("RED", "10.00", "3"), ("BLUE", "11.50", "0"), ("GREEN", "12.25", "7"))]}


def report_xml(rows: list[dict], now: int, ack: str = "Success") -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             '<BulkDataExchangeResponses xmlns="urn:ebay:apis:eBLBaseComponents">\n',
             "<ActiveInventoryReport>\n",
             f"<Timestamp>{fmt_ms(now)}</Timestamp>\n<Ack>{ack}</Ack>\n<Version>1193</Version>\n"]
    if ack == "Failure":  # AbstractResponseType: Errors{ShortMessage, ErrorCode, SeverityCode}
        parts.append("<Errors><ShortMessage>Report generation failed.</ShortMessage><ErrorCode>10007</ErrorCode>"
                     "<SeverityCode>Error</SeverityCode></Errors>\n")
    for r in rows:
        parts.append("<SKUDetails>")
        if "Variations" in r:
            parts.append(f"<ItemID>{escape(r['ItemID'])}</ItemID><Variations>")
            for v in r["Variations"]:
                parts.append(f"<Variation><SKU>{escape(v['SKU'])}</SKU>"
                             f"<Price currencyID={quoteattr(v['Price@currencyID'])}>{escape(v['Price'])}</Price>"
                             f"<Quantity>{escape(v['Quantity'])}</Quantity></Variation>")
            parts.append("</Variations></SKUDetails>\n")
            continue
        if "SKU" in r:
            parts.append(f"<SKU>{escape(r['SKU'])}</SKU>")
        parts.append(f"<Price currencyID={quoteattr(r['Price@currencyID'])}>{escape(r['Price'])}</Price>")
        parts.append(f"<Quantity>{escape(r['Quantity'])}</Quantity>")
        parts.append(f"<ItemID>{escape(r['ItemID'])}</ItemID>")
        parts.append("</SKUDetails>\n")
    parts.append("</ActiveInventoryReport>\n</BulkDataExchangeResponses>\n")
    return "".join(parts).encode("utf-8")


def report_zip(task_id: str, rows: list[dict], now: int, ack: str = "Success") -> tuple[bytes, str]:
    """(zip bytes, file name) of the result file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"ActiveInventoryReport-{task_id}.xml", date_time=time.gmtime(now // 1000)[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, report_xml(rows, now, ack))
    return buf.getvalue(), f"ActiveInventoryReport-{task_id}.zip"
