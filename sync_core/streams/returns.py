"""Returns (Post-Order GET /return/search by creation date; open ones re-read with GET /return/{returnId}
?fieldgroups=SUMMARY, which answers the search's ReturnSummaryType under ``summary``): PO types
ReturnSummaryType, ReturnStateEnum. Shared behaviour: streams/post_order.py."""

from .after_sale_tables import returns as table
from .base import po_money, po_ts, text
from .post_order import declare, refetch_open

CLOSED_STATES = ("CLOSED",)  # ReturnStateEnum (PO types)


def map_return(rec):
    amount, cur = po_money(rec, "sellerTotalRefund.estimatedRefundAmount")
    return {
        "return_id": text(rec, "returnId", required=True),
        "order_id": text(rec, "orderId"),
        "item_id": text(rec, "creationInfo.item.itemId"),
        "transaction_id": text(rec, "creationInfo.item.transactionId"),
        "buyer": text(rec, "buyerLoginName"),
        "state": text(rec, "state"),
        "status": text(rec, "status"),
        "reason": text(rec, "creationInfo.reason"),
        "return_type": text(rec, "currentType"),
        "amount_value": amount,
        "amount_currency": cur,
        "creation_date": po_ts(rec, "creationInfo.creationDate", required=True),
        "last_modified_date": None,  # not in the summary (only in the FULL detail)
        "respond_by_date": po_ts(rec, "sellerResponseDue.respondByDate"),
        "closed_date": po_ts(rec, "closeInfo.returnCloseDate"),  # FULL detail only; null from the summary
    }


STREAM = declare("returns", table, "return_id", map_return,
                 refetch_open(table, "return_id", "state", CLOSED_STATES, fieldgroups="SUMMARY", unwrap="summary"))
