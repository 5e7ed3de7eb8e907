"""offers stream tables

Revision ID: 0008_offers
Revises: 0007_inventory_items
Create Date: 2026-11-25 20:25:13.273931
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008_offers'
down_revision = '0007_inventory_items'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('offers',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Text(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=False),
    sa.Column('marketplace_id', sa.Text(), nullable=True),
    sa.Column('format', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('listing_id', sa.Text(), nullable=True),
    sa.Column('listing_status', sa.Text(), nullable=True),
    sa.Column('price_value', sa.Numeric(), nullable=True),
    sa.Column('price_currency', sa.Text(), nullable=True),
    sa.Column('available_quantity', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'offer_id')
    )
    op.create_index('ix_offers_listing', 'offers', ['account_id', 'listing_id'], unique=False)
    op.create_index('ix_offers_sku', 'offers', ['account_id', 'sku'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_offers_sku', table_name='offers')
    op.drop_index('ix_offers_listing', table_name='offers')
    op.drop_table('offers')
