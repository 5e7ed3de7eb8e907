"""Cases (Post-Order GET /casemanagement/search by creation date; open ones re-read with
GET /casemanagement/{caseId}, whose detail adds caseType / returnId: shape unverified): PO types
CaseSummaryType, CaseStatusEnum. Shared: streams/post_order.py."""

from .after_sale_tables import cases as table
from .base import po_money, po_ts, text
from .post_order import declare, refetch_open

CLOSED_STATES = ("CLOSED", "CS_CLOSED")  # CaseStatusEnum (PO types; which are "closed" is our reading)


def map_case(rec):
    amount, cur = po_money(rec, "claimAmount")
    state = text(rec, "caseStatusEnum")
    modified = po_ts(rec, "lastModifiedDate")
    return {
        "case_id": text(rec, "caseId", required=True),
        "order_id": text(rec, "orderId"),
        "item_id": text(rec, "itemId"),
        "transaction_id": text(rec, "transactionId"),
        "buyer": text(rec, "buyer"),
        "state": state,
        "status": None,
        "reason": None,
        "case_type": text(rec, "caseType"),  # detail only: null until the case is re-read
        "return_id": text(rec, "returnId"),  # detail only
        "amount_value": amount,
        "amount_currency": cur,
        "creation_date": po_ts(rec, "creationDate", required=True),
        "last_modified_date": modified,
        "respond_by_date": po_ts(rec, "respondByDate"),
        "closed_date": modified if state in CLOSED_STATES else None,  # as for inquiries
    }


STREAM = declare("cases", table, "case_id", map_case, refetch_open(table, "case_id", "state", CLOSED_STATES))
