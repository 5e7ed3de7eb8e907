"""inventory_items stream tables

Revision ID: 0007_inventory_items
Revises: 0006_messages
Create Date: 2026-11-25 20:25:13.066539
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007_inventory_items'
down_revision = '0006_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inventory_items',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('condition', sa.Text(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('locale', sa.Text(), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'sku')
    )


def downgrade() -> None:
    op.drop_table('inventory_items')
