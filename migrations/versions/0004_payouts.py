"""payouts stream tables

Revision ID: 0004_payouts
Revises: 0003_transactions
Create Date: 2026-11-25 20:25:12.388737
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004_payouts'
down_revision = '0003_transactions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payouts',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.Text(), nullable=False),
    sa.Column('payout_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payout_status', sa.Text(), nullable=True),
    sa.Column('amount_value', sa.Numeric(), nullable=True),
    sa.Column('amount_currency', sa.Text(), nullable=True),
    sa.Column('transaction_count', sa.Integer(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'payout_id')
    )
    op.create_index('ix_payouts_date', 'payouts', ['account_id', 'payout_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payouts_date', table_name='payouts')
    op.drop_table('payouts')
