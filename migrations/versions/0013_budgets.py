"""budgets: eBay call budgets shared by every worker process (application-wide and per account)

Revision ID: 0013_budgets
Revises: 0012_marketplace
Create Date: 2026-12-01 01:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0013_budgets'
down_revision = '0012_marketplace'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'rate_budgets',
        sa.Column('account', sa.Text, nullable=False),  # an account name, or '(application)'
        sa.Column('api', sa.Text, nullable=False),
        sa.Column('call_limit', sa.Integer, nullable=False),
        sa.Column('remaining', sa.Integer, nullable=False),
        sa.Column('window_s', sa.Integer, nullable=False),
        sa.Column('reset_at', TS, nullable=False),
        sa.Column('source', sa.Text, nullable=False, server_default='default'),
        sa.Column('blocked_until', TS),
        sa.Column('backoff_s', sa.Integer),
        sa.Column('updated_at', TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint('account', 'api'),
    )


def downgrade() -> None:
    op.drop_table('rate_budgets')
