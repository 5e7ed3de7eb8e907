"""orders stream tables

Revision ID: 0002_orders
Revises: 0001_core
Create Date: 2026-11-25 20:25:11.915576
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002_orders'
down_revision = '0001_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('order_line_items',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('line_item_id', sa.Text(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=True),
    sa.Column('listing_id', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('total_value', sa.Numeric(), nullable=True),
    sa.Column('total_currency', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'order_id', 'line_item_id')
    )
    op.create_index('ix_order_line_items_sku', 'order_line_items', ['account_id', 'sku'], unique=False)
    op.create_table('orders',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('creation_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_modified_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fulfillment_status', sa.Text(), nullable=True),
    sa.Column('payment_status', sa.Text(), nullable=True),
    sa.Column('buyer', sa.Text(), nullable=True),
    sa.Column('total_value', sa.Numeric(), nullable=True),
    sa.Column('total_currency', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'order_id')
    )
    op.create_index('ix_orders_buyer', 'orders', ['account_id', 'buyer'], unique=False)
    op.create_index('ix_orders_modified', 'orders', ['account_id', 'last_modified_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_modified', table_name='orders')
    op.drop_index('ix_orders_buyer', table_name='orders')
    op.drop_table('orders')
    op.drop_index('ix_order_line_items_sku', table_name='order_line_items')
    op.drop_table('order_line_items')
