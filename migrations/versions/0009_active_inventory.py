"""active_inventory stream tables

Revision ID: 0009_active_inventory
Revises: 0008_offers
Create Date: 2026-11-25 20:25:13.539487
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009_active_inventory'
down_revision = '0008_offers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('active_inventory',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('listing_key', sa.Text(), nullable=False),
    sa.Column('item_id', sa.Text(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=True),
    sa.Column('price_value', sa.Numeric(), nullable=True),
    sa.Column('price_currency', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('inactive_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'listing_key')
    )
    op.create_index('ix_active_inventory_sku', 'active_inventory', ['account_id', 'sku'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_active_inventory_sku', table_name='active_inventory')
    op.drop_table('active_inventory')
