"""raw payloads stored inline, uncompressed, up to a page (toast_tuple_target = 8160 on every table with a
``raw`` column). Issue 10.

PostgreSQL compresses (pglz) every value of a row longer than ~2 KB before storing it; an eBay order with
its line items is ~3 KB of jsonb, so every order written paid a pglz compression: measured on 30,000
orders, the writing backend's CPU went from 3.9-4.3 s to 2.5-3.0 s without it, and a first sync at 50 ms
per call from 9.2 s to 6.9 s (docs/performance.md, "PostgreSQL's share"). The cost is disk: those tables
grow by about 60% (119 -> 190 MB for those orders). Rows longer than a page are still compressed and
moved out of line as before. Rows already stored are not rewritten. To give the disk back on a server
built with lz4 (whose compression costs a fraction of pglz's): ``ALTER TABLE t RESET (toast_tuple_target)``
and ``ALTER TABLE t ALTER COLUMN raw SET COMPRESSION lz4``.

A new stream's tables set it in their own revision (tests/test_migrations.py checks every ``raw`` table).

Revision ID: 0015_raw_inline
Revises: 0014_after_sale
Create Date: 2026-12-01 06:00:00.000000
"""
from alembic import op

revision = '0015_raw_inline'
down_revision = '0014_after_sale'
branch_labels = None
depends_on = None

RAW_TABLES = (
    'orders', 'order_line_items', 'transactions', 'payouts', 'payment_disputes', 'conversations',
    'conversation_messages', 'inventory_items', 'offers', 'active_inventory', 'returns', 'inquiries', 'cases',
    'cancellations', 'shipping_fulfillments', 'shipping_fulfillment_line_items',
)


def upgrade() -> None:
    for t in RAW_TABLES:
        op.execute(f'alter table {t} set (toast_tuple_target = 8160)')


def downgrade() -> None:
    for t in RAW_TABLES:
        op.execute(f'alter table {t} reset (toast_tuple_target)')
