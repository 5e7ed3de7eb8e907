"""order_line_items.raw dropped; the view ``order_line_items_raw`` gives each line item's JSON. Issue 10.

Every line item, as eBay sent it, is already in its order's ``orders.raw -> 'lineItems'``: storing it again
in ``order_line_items.raw`` doubled the jsonb PostgreSQL parsed and indexed per order. Measured on a
30,000-order first sync at 50 ms per call (docs/performance.md, "Sixth pass"): 4.9-5.1 s -> 4.2-4.4 s wall,
PostgreSQL's CPU 1.9-2.0 -> 1.5-1.6 s, peak RSS of the sync 172-177 -> 144-150 MB. Queries that read
``order_line_items.raw`` read ``order_line_items_raw.raw`` instead (same key columns).

Revision ID: 0016_line_items_raw
Revises: 0015_raw_inline
Create Date: 2026-12-02 06:00:00.000000
"""
from alembic import op

revision = '0016_line_items_raw'
down_revision = '0015_raw_inline'
branch_labels = None
depends_on = None

VIEW = """
create or replace view order_line_items_raw as
select o.account_id, o.order_id, li.value ->> 'lineItemId' as line_item_id, li.value as raw
from orders o cross join lateral jsonb_array_elements(
    case when jsonb_typeof(o.raw -> 'lineItems') = 'array' then o.raw -> 'lineItems' else '[]'::jsonb end) as li
"""


def upgrade() -> None:
    op.execute('alter table order_line_items drop column if exists raw')
    op.execute('alter table order_line_items reset (toast_tuple_target)')  # no raw column: 0015's reason is gone
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("alter table order_line_items add column raw jsonb not null default '{}'")
    op.execute("""
        update order_line_items l set raw = v.raw from order_line_items_raw v
        where (l.account_id, l.order_id, l.line_item_id) = (v.account_id, v.order_id, v.line_item_id)""")
    op.execute('drop view order_line_items_raw')
    op.execute('alter table order_line_items alter column raw drop default')
    op.execute('alter table order_line_items set (toast_tuple_target = 8160)')
