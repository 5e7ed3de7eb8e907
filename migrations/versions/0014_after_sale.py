"""after-sale stream tables: returns, inquiries, cases, cancellations (Post-Order API) and shipping
fulfillments with their line items (Fulfillment getShippingFulfillments). Issue 11; the tables are
declared in sync_core/streams/after_sale_tables.py (tests/test_migrations.py keeps both in agreement).

Revision ID: 0014_after_sale
Revises: 0013_budgets
Create Date: 2026-12-01 03:00:00.000000
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014_after_sale'
down_revision = '0013_budgets'
branch_labels = None
depends_on = None

# the streams whose tables this revision creates (tests/test_migrations.py: one revision per stream)
streams = ('returns', 'inquiries', 'cases', 'cancellations', 'shipping_fulfillments')

TS = sa.DateTime(timezone=True)


def _common():
    return [
        sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=True),
        sa.Column('first_seen_at', TS, server_default=sa.text('now()'), nullable=False),
        sa.Column('synced_at', TS, server_default=sa.text('now()'), nullable=False),
    ]


def _post_order(name, id_col, *extra):
    op.create_table(
        name,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column(id_col, sa.Text(), nullable=False),
        sa.Column('order_id', sa.Text(), nullable=True),
        sa.Column('item_id', sa.Text(), nullable=True),
        sa.Column('transaction_id', sa.Text(), nullable=True),
        sa.Column('buyer', sa.Text(), nullable=True),
        sa.Column('state', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        *[sa.Column(c, sa.Text(), nullable=True) for c in extra],
        sa.Column('amount_value', sa.Numeric(), nullable=True),
        sa.Column('amount_currency', sa.Text(), nullable=True),
        sa.Column('creation_date', TS, nullable=False),
        sa.Column('last_modified_date', TS, nullable=True),
        sa.Column('respond_by_date', TS, nullable=True),
        sa.Column('closed_date', TS, nullable=True),
        *_common(),
        sa.PrimaryKeyConstraint('account_id', id_col),
    )
    op.create_index(f'ix_{name}_created', name, ['account_id', 'creation_date'], unique=False)
    op.create_index(f'ix_{name}_state', name, ['account_id', 'state'], unique=False)
    op.create_index(f'ix_{name}_order', name, ['account_id', 'order_id'], unique=False)


def upgrade() -> None:
    _post_order('returns', 'return_id', 'return_type')
    _post_order('inquiries', 'inquiry_id')
    _post_order('cases', 'case_id', 'case_type', 'return_id')
    _post_order('cancellations', 'cancel_id', 'requestor_type')
    op.create_table(
        'shipping_fulfillments',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Text(), nullable=False),
        sa.Column('fulfillment_id', sa.Text(), nullable=False),
        sa.Column('tracking_number', sa.Text(), nullable=True),
        sa.Column('carrier', sa.Text(), nullable=True),
        sa.Column('shipped_date', TS, nullable=True),
        *_common(),
        sa.PrimaryKeyConstraint('account_id', 'order_id', 'fulfillment_id'),
    )
    op.create_index('ix_shipping_fulfillments_tracking', 'shipping_fulfillments', ['account_id', 'tracking_number'],
                    unique=False)
    op.create_index('ix_shipping_fulfillments_shipped', 'shipping_fulfillments', ['account_id', 'shipped_date'],
                    unique=False)
    op.create_table(
        'shipping_fulfillment_line_items',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Text(), nullable=False),
        sa.Column('fulfillment_id', sa.Text(), nullable=False),
        sa.Column('line_item_id', sa.Text(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=True),
        sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint('account_id', 'order_id', 'fulfillment_id', 'line_item_id'),
    )
    op.create_index('ix_shipping_fulfillment_line_items_line', 'shipping_fulfillment_line_items',
                    ['account_id', 'order_id', 'line_item_id'], unique=False)


def downgrade() -> None:
    op.drop_table('shipping_fulfillment_line_items')
    op.drop_table('shipping_fulfillments')
    for name in ('cancellations', 'cases', 'inquiries', 'returns'):
        op.drop_table(name)  # drops its indexes
