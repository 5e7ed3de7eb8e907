"""Inquiries ("item not received"; Post-Order GET /inquiry/search by creation date; open ones re-read with
GET /inquiry/{inquiryId}): PO types InquirySummaryType, InquiryStatusEnum. Shared: streams/post_order.py."""

from .after_sale_tables import inquiries as table
from .base import po_money, po_ts, text
from .post_order import declare, refetch_open

CLOSED_STATES = ("CLOSED", "CLOSED_WITH_ESCALATION", "CS_CLOSED")  # InquiryStatusEnum (PO types)


def map_inquiry(rec):
    amount, cur = po_money(rec, "claimAmount")
    state = text(rec, "inquiryStatusEnum")
    modified = po_ts(rec, "lastModifiedDate")
    return {
        "inquiry_id": text(rec, "inquiryId", required=True),
        "order_id": text(rec, "orderId"),
        "item_id": text(rec, "itemId"),
        "transaction_id": text(rec, "transactionId"),
        "buyer": text(rec, "buyer"),
        "state": state,
        "status": None,
        "reason": None,
        "amount_value": amount,
        "amount_currency": cur,
        "creation_date": po_ts(rec, "creationDate", required=True),
        "last_modified_date": modified,
        "respond_by_date": po_ts(rec, "respondByDate"),
        # no close date in the summary: a closed inquiry's last modification is its closing
        "closed_date": modified if state in CLOSED_STATES else None,
    }


STREAM = declare("inquiries", table, "inquiry_id", map_inquiry,
                 refetch_open(table, "inquiry_id", "state", CLOSED_STATES))
