"""Tables of the after-sale streams (issue 11): Post-Order returns, inquiries, cases and cancellations,
and Fulfillment shipping fulfillments with their line items. Tables only: the stream modules that read
eBay into them import these (docs/ebay-api.md, "Post-Order API and shipping fulfillments", for the
eBay fields each column comes from). Created by migration 0014_after_sale.

Every Post-Order table has the columns an operator filters on: the eBay id, the order / item /
transaction ids it belongs to, the buyer, state/status, reason, an amount as numeric + currency, and
the creation / last-update / deadline / closed dates; plus the raw payload (common_columns).
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .base import TS, common_columns, metadata


def _post_order_table(name: str, id_col: str, *extra: sa.Column) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column(id_col, sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text),
        sa.Column("item_id", sa.Text),
        sa.Column("transaction_id", sa.Text),
        sa.Column("buyer", sa.Text),
        sa.Column("state", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("reason", sa.Text),
        *extra,
        sa.Column("amount_value", sa.Numeric),
        sa.Column("amount_currency", sa.Text),
        sa.Column("creation_date", TS, nullable=False),
        sa.Column("last_modified_date", TS),
        sa.Column("respond_by_date", TS),
        sa.Column("closed_date", TS),
        *common_columns(),
        sa.Index(f"ix_{name}_created", "account_id", "creation_date"),
        sa.Index(f"ix_{name}_state", "account_id", "state"),
        sa.Index(f"ix_{name}_order", "account_id", "order_id"),
    )


# ReturnSummaryType: state / status, currentType, creationInfo.reason, sellerTotalRefund
returns = _post_order_table("returns", "return_id", sa.Column("return_type", sa.Text))
# InquirySummaryType: inquiryStatusEnum (state), claimAmount
inquiries = _post_order_table("inquiries", "inquiry_id")
# CaseSummaryType: caseStatusEnum (state), claimAmount; a case may come from a return
cases = _post_order_table("cases", "case_id", sa.Column("case_type", sa.Text), sa.Column("return_id", sa.Text))
# CancelSummary: cancelState / cancelStatus, cancelReason, requestRefundAmount, legacyOrderId (order_id)
cancellations = _post_order_table("cancellations", "cancel_id", sa.Column("requestor_type", sa.Text))

POST_ORDER_TABLES = (returns, inquiries, cases, cancellations)

# Fulfillment getShippingFulfillments: ShippingFulfillment (verified spec)
shipping_fulfillments = sa.Table(
    "shipping_fulfillments", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("fulfillment_id", sa.Text, primary_key=True),
    sa.Column("tracking_number", sa.Text),
    sa.Column("carrier", sa.Text),
    sa.Column("shipped_date", TS),
    *common_columns(),
    sa.Index("ix_shipping_fulfillments_tracking", "account_id", "tracking_number"),
    sa.Index("ix_shipping_fulfillments_shipped", "account_id", "shipped_date"),
)

shipping_fulfillment_line_items = sa.Table(
    "shipping_fulfillment_line_items", metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("fulfillment_id", sa.Text, primary_key=True),
    sa.Column("line_item_id", sa.Text, primary_key=True),
    sa.Column("quantity", sa.Integer),
    sa.Column("raw", JSONB, nullable=False),
    sa.Index("ix_shipping_fulfillment_line_items_line", "account_id", "order_id", "line_item_id"),
)

ALL_TABLES = (*POST_ORDER_TABLES, shipping_fulfillments, shipping_fulfillment_line_items)
