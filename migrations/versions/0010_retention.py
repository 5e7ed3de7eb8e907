"""retention: an index so pruning finds old finished runs without scanning sync_runs

Revision ID: 0010_retention
Revises: 0009_active_inventory
Create Date: 2026-12-01 00:20:00.000000
"""
from alembic import op

revision = '0010_retention'
down_revision = '0009_active_inventory'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_sync_runs_finished', 'sync_runs', ['finished_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sync_runs_finished', table_name='sync_runs')
