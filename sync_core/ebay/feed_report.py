"""Parsing of the Sell Feed LMS_ACTIVE_INVENTORY_REPORT result file.

The file eBay serves from ``/task/{id}/download_result_file`` is, in practice, a ZIP holding one XML
document (``ActiveInventoryReport`` with one ``SKUDetails`` per listing/SKU).  The container is detected
from magic bytes (``PK\\x03\\x04`` zip, ``\\x1f\\x8b`` gzip, otherwise plain), so a gzip or bare XML
also works.  Namespaces are ignored (``{urn:ebay:apis:eBLBaseComponents}SKU`` -> ``SKU``).

Each ``SKUDetails`` becomes a dict: leaf elements map to their text (``"Price": "12.50"``), attributes of
a leaf become ``"<Tag>@<attr>"`` siblings (``"Price@currencyID": "USD"``), nested elements become dicts
and repeated elements lists (``"Variations": {"Variation": [{...}, {...}]}``).  Values stay strings: the
caller converts (money to Decimal, never float).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import zipfile
from typing import Any, Iterator
from xml.etree import ElementTree as ET

ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
RECORD_TAG = "SKUDetails"
MAX_UNCOMPRESSED = 2 * 1024**3  # refuse zip bombs beyond 2 GiB


class Report(list):
    """The ``SKUDetails`` records of a report (a list) plus the response's ``Ack`` (Success | Warning |
    Failure; "" when absent) and its ``Errors`` messages: eBay's ActiveInventoryReport is an
    AbstractResponseType (XML Reference for Sell Feed LMS Feed Types), so a failed report says so in ``Ack``."""

    ack: str = ""
    errors: list[str]

    def __init__(self, *a: Any):
        super().__init__(*a)
        self.errors = []


class ReportFormatError(ValueError):
    """The downloaded file is not an active-inventory XML report (or is corrupt)."""


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag.split(":")[-1]


def _element_to_value(el: ET.Element) -> Any:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        name = _local(child.tag)
        if not name:
            continue
        value = _element_to_value(child)
        _put(out, name, value)
        if not list(child):
            for attr, av in child.attrib.items():
                _put(out, f"{name}@{_local(attr)}", av)
    for attr, av in el.attrib.items():
        out.setdefault(f"@{_local(attr)}", av)
    return out


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    # element values are str or dict, never list: a list here always means "repeated element"
    if key not in d:
        d[key] = value
    elif isinstance(d[key], list):
        d[key].append(value)
    else:
        d[key] = [d[key], value]


def _xml_documents(data: bytes) -> Iterator[bytes]:
    if data[:4] == ZIP_MAGIC:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
                if sum(i.file_size for i in infos) > MAX_UNCOMPRESSED:
                    raise ReportFormatError("report zip expands beyond 2 GiB; refusing to unpack")
                xmls = [i for i in infos if i.filename.lower().endswith(".xml")] or infos
                for info in xmls:
                    yield from _xml_documents(zf.read(info))
        except zipfile.BadZipFile as e:
            raise ReportFormatError(f"corrupt zip report: {e}") from None
        return
    if data[:2] == GZIP_MAGIC:
        try:
            yield from _xml_documents(gzip.decompress(data))
        except (OSError, EOFError) as e:
            raise ReportFormatError(f"corrupt gzip report: {e}") from None
        return
    yield data


def parse_report_xml(doc: bytes) -> Report:
    stripped = doc.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        return Report()
    if not stripped.startswith(b"<"):
        raise ReportFormatError("active inventory report is not XML (expected <ActiveInventoryReport>)")
    records = Report()
    try:
        for _event, el in ET.iterparse(io.BytesIO(stripped), events=("end",)):
            tag = _local(el.tag)
            if tag == RECORD_TAG:
                value = _element_to_value(el)
                records.append(value if isinstance(value, dict) else {"value": value})
                el.clear()
            elif tag == "Ack" and not records.ack:
                records.ack = (el.text or "").strip()
            elif tag == "Errors":
                err = _element_to_value(el)
                if isinstance(err, dict):
                    records.errors.append(str(err.get("LongMessage") or err.get("ShortMessage") or "")[:300])
    except ET.ParseError as e:
        raise ReportFormatError(f"malformed XML in active inventory report: {e}") from None
    return records


def parse_active_inventory_report(data: bytes) -> Report:
    """All ``SKUDetails`` records of an active-inventory report (zip, gzip or plain XML), with its ``Ack``
    (the first document's that has one; "Failure" wins).  CPU-heavy for big accounts: from async code use
    :func:`parse_active_inventory_report_async`."""
    records = Report()
    if not data:
        return records
    for doc in _xml_documents(bytes(data)):
        part = parse_report_xml(doc)
        records.extend(part)
        records.errors.extend(part.errors)
        if part.ack and (not records.ack or part.ack == "Failure"):
            records.ack = part.ack
    return records


async def parse_active_inventory_report_async(data: bytes) -> Report:
    """:func:`parse_active_inventory_report` in a worker thread (keeps the event loop responsive)."""
    return await asyncio.to_thread(parse_active_inventory_report, data)
