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
        ...
      </ActiveInventoryReport>
    </BulkDataExchangeResponses>
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from dataclasses import dataclass
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

    def status(self, now: int) -> str:
        el = now - self.created_ms
        if el >= self.delay_ms:
            return "COMPLETED"
        if el >= self.delay_ms * 0.3:
            return "IN_PROCESS"
        return "QUEUED"

    def render(self, now: int, base: str) -> dict:
        st = self.status(now)
        out = {
            "taskId": self.task_id,
            "status": st,
            "feedType": FEED_TYPE,
            "creationDate": fmt_ms(self.created_ms),
            "schemaVersion": self.schema_version,
            "detailHref": f"{base}/sell/feed/v1/inventory_task/{self.task_id}",
        }
        if self.listing_format:
            out["filterCriteria"] = {"listingFormat": self.listing_format}
        if st == "COMPLETED":
            out["completionDate"] = fmt_ms(self.created_ms + self.delay_ms)
        return out


class FeedStore:
    def __init__(self, seller_numbers: dict[str, int]):
        self._lock = threading.Lock()
        self.tasks: dict[str, FeedTask] = {}
        self._counter = 0
        self._nums = seller_numbers

    def create(self, seller: str, now: int, delay_s: float, listing_format: str | None) -> FeedTask:
        with self._lock:
            self._counter += 1
            tid = f"task-{10 + self._nums.get(seller, 0)}-{now % 10**7:07d}{self._counter:05d}"
            t = FeedTask(tid, seller, now, int(delay_s * 1000), listing_format)
            self.tasks[tid] = t
            return t

    def pending_similar(self, seller: str, listing_format: str | None, now: int) -> FeedTask | None:
        for t in self.tasks.values():
            if t.seller == seller and t.listing_format == listing_format and t.status(now) != "COMPLETED" \
                    and t.created_ms <= now:
                return t
        return None

    def get(self, seller: str, task_id: str) -> FeedTask | None:
        t = self.tasks.get(task_id)
        return t if t is not None and t.seller == seller else None

    def list(self, seller: str, frm: int, to: int) -> list[FeedTask]:
        out = [t for t in self.tasks.values() if t.seller == seller and frm <= t.created_ms <= to]
        out.sort(key=lambda t: t.created_ms, reverse=True)
        return out


def report_xml(rows: list[dict[str, str]], now: int) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             '<BulkDataExchangeResponses xmlns="urn:ebay:apis:eBLBaseComponents">\n',
             "<ActiveInventoryReport>\n",
             f"<Timestamp>{fmt_ms(now)}</Timestamp>\n<Ack>Success</Ack>\n<Version>1193</Version>\n"]
    for r in rows:
        parts.append("<SKUDetails>")
        if "SKU" in r:
            parts.append(f"<SKU>{escape(r['SKU'])}</SKU>")
        parts.append(f"<Price currencyID={quoteattr(r['Price@currencyID'])}>{escape(r['Price'])}</Price>")
        parts.append(f"<Quantity>{escape(r['Quantity'])}</Quantity>")
        parts.append(f"<ItemID>{escape(r['ItemID'])}</ItemID>")
        parts.append("</SKUDetails>\n")
    parts.append("</ActiveInventoryReport>\n</BulkDataExchangeResponses>\n")
    return "".join(parts).encode("utf-8")


def report_zip(task_id: str, rows: list[dict[str, str]], now: int) -> tuple[bytes, str]:
    """(zip bytes, file name) of the result file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"ActiveInventoryReport-{task_id}.xml", date_time=time.gmtime(now // 1000)[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, report_xml(rows, now))
    return buf.getvalue(), f"ActiveInventoryReport-{task_id}.zip"
