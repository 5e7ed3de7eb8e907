"""signing: eBay Digital Signatures -- the application's signing keys and the EU/UK flag of accounts

Revision ID: 0011_signing
Revises: 0010_retention
Create Date: 2026-12-01 01:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_signing'
down_revision = '0010_retention'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('signing_required', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'signing_keys',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('signing_key_id', sa.Text(), nullable=False, server_default=''),
        sa.Column('cipher', sa.Text(), nullable=False),
        sa.Column('private_key_ct', sa.LargeBinary(), nullable=False),
        sa.Column('jwe', sa.Text(), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False, server_default=''),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True)),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('signing_keys')
    op.drop_column('accounts', 'signing_required')
