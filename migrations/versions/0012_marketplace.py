"""marketplace: each account's X-EBAY-C-MARKETPLACE-ID (NULL = the configured ebay_marketplace_id)

Revision ID: 0012_marketplace
Revises: 0011_signing
Create Date: 2026-12-01 01:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_marketplace'
down_revision = '0011_signing'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('marketplace_id', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('accounts', 'marketplace_id')
