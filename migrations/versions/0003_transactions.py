"""transactions stream tables

Revision ID: 0003_transactions
Revises: 0002_orders
Create Date: 2026-11-25 20:25:12.132269
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003_transactions'
down_revision = '0002_orders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transactions',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Text(), nullable=False),
    sa.Column('transaction_type', sa.Text(), nullable=False),
    sa.Column('transaction_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('transaction_status', sa.Text(), nullable=True),
    sa.Column('order_id', sa.Text(), nullable=True),
    sa.Column('payout_id', sa.Text(), nullable=True),
    sa.Column('amount_value', sa.Numeric(), nullable=True),
    sa.Column('amount_currency', sa.Text(), nullable=True),
    sa.Column('booking_entry', sa.Text(), nullable=True),
    sa.Column('buyer', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'transaction_id', 'transaction_type')
    )
    op.create_index('ix_transactions_date', 'transactions', ['account_id', 'transaction_date'], unique=False)
    op.create_index('ix_transactions_order', 'transactions', ['account_id', 'order_id'], unique=False)
    op.create_index('ix_transactions_payout', 'transactions', ['account_id', 'payout_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_transactions_payout', table_name='transactions')
    op.drop_index('ix_transactions_order', table_name='transactions')
    op.drop_index('ix_transactions_date', table_name='transactions')
    op.drop_table('transactions')
