"""messages stream tables

Revision ID: 0006_messages
Revises: 0005_disputes
Create Date: 2026-11-25 20:25:12.806607
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_messages'
down_revision = '0005_disputes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversation_messages',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Text(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('created_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sender', sa.Text(), nullable=True),
    sa.Column('recipient', sa.Text(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('read_status', sa.Boolean(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'conversation_id', 'message_id')
    )
    op.create_table('conversations',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Text(), nullable=False),
    sa.Column('conversation_type', sa.Text(), nullable=False),
    sa.Column('conversation_status', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('created_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reference_id', sa.Text(), nullable=True),
    sa.Column('reference_type', sa.Text(), nullable=True),
    sa.Column('unread_count', sa.Integer(), nullable=True),
    sa.Column('latest_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_hash', postgresql.BYTEA(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'conversation_id')
    )
    op.create_index('ix_conversations_latest', 'conversations', ['account_id', 'latest_message_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_conversations_latest', table_name='conversations')
    op.drop_table('conversations')
    op.drop_table('conversation_messages')
