"""disputes stream tables

Revision ID: 0005_disputes
Revises: 0004_payouts
Create Date: 2026-11-25 20:25:12.557719
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005_disputes'
down_revision = '0004_payouts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_disputes',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('payment_dispute_id', sa.Text(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=True),
    sa.Column('buyer', sa.Text(), nullable=True),
    sa.Column('open_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('respond_by_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('amount_value', sa.Numeric(), nullable=True),
    sa.Column('amount_currency', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'payment_dispute_id')
    )
    op.create_index('ix_payment_disputes_open', 'payment_disputes', ['account_id', 'open_date'], unique=False)
    op.create_index('ix_payment_disputes_status', 'payment_disputes', ['account_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payment_disputes_status', table_name='payment_disputes')
    op.drop_index('ix_payment_disputes_open', table_name='payment_disputes')
    op.drop_table('payment_disputes')
