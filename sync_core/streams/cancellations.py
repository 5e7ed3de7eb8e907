"""Cancellations (Post-Order GET /cancellation/search by creation date, list key ``cancellations``; open
ones re-read with GET /cancellation/{cancelId}, answered under ``cancelDetail``: shape unverified): PO
types CancelSummary (dts SDK), CancelStatusEnum. Shared: streams/post_order.py."""

from .after_sale_tables import cancellations as table
from .base import po_money, po_ts, text
from .post_order import declare, refetch_open

# CancelStatusEnum (PO types): the request is over (INVALID too: it will not change)
CLOSED_STATUSES = ("CANCEL_REJECTED", "CANCEL_CLOSED_WITH_REFUND", "CANCEL_CLOSED_NO_REFUND",
                   "CANCEL_CLOSED_UNKNOWN_REFUND", "CANCEL_CLOSED_FOR_COMMITMENT", "INVALID")


def map_cancellation(rec):
    amount, cur = po_money(rec, "requestRefundAmount")
    return {
        "cancel_id": text(rec, "cancelId", required=True),
        "order_id": text(rec, "legacyOrderId"),
        "item_id": None,
        "transaction_id": None,
        "buyer": text(rec, "buyerLoginName"),
        "state": text(rec, "cancelState"),
        "status": text(rec, "cancelStatus"),
        "reason": text(rec, "cancelReason"),
        "requestor_type": text(rec, "requestorType"),
        "amount_value": amount,
        "amount_currency": cur,
        "creation_date": po_ts(rec, "cancelRequestDate", required=True),
        "last_modified_date": None,
        "respond_by_date": po_ts(rec, "sellerResponseDueDate"),
        "closed_date": po_ts(rec, "cancelCloseDate"),
    }


STREAM = declare("cancellations", table, "cancel_id", map_cancellation,
                 refetch_open(table, "cancel_id", "status", CLOSED_STATUSES, unwrap="cancelDetail"))
