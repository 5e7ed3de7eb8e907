"""core operations tables: accounts, credentials, sync_state, sync_runs, run_events, quarantine,
migration_log, workers

Revision ID: 0001_core
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("ebay_user", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "credentials",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("refresh_token_ct", BYTEA),
        sa.Column("access_token_ct", BYTEA),
        sa.Column("access_expires_at", TS),
        sa.Column("refresh_expires_at", TS),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "sync_state",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False, server_default="idle"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("cursor", TS),
        sa.Column("checkpoint", JSONB),
        sa.Column("backfill_since", TS),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_expires_at", TS),
        sa.Column("heartbeat_at", TS),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_now_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_run_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("records_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("windows_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("windows_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_sync_state_due", "sync_state", ["next_run_at"])
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="incremental"),
        sa.Column("status", sa.Text, nullable=False, server_default="running"),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("host", sa.Text),
        sa.Column("started_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS),
        sa.Column("window_from", TS),
        sa.Column("window_to", TS),
        sa.Column("windows_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("windows_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("records_inserted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("records_updated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("records_unchanged", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("records_quarantined", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("api_calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_sync_runs_pair", "sync_runs", ["account_id", "stream", "started_at"])
    op.create_table(
        "run_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("ts", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("account_id", sa.Integer),
        sa.Column("stream", sa.Text),
        sa.Column("level", sa.Text, nullable=False, server_default="info"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("data", JSONB),
    )
    op.create_index("ix_run_events_run", "run_events", ["run_id", "id"])
    op.create_index("ix_run_events_ts", "run_events", ["ts"])
    # Live log: one NOTIFY per inserting statement carrying the newest id; listeners read rows by id.
    op.execute("""
        create function baysync_notify_events() returns trigger language plpgsql as $$
        begin
          perform pg_notify('baysync_events', (select max(id)::text from new_rows));
          return null;
        end $$""")
    op.execute("""
        create trigger run_events_notify after insert on run_events
        referencing new table as new_rows for each statement execute function baysync_notify_events()""")
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("record_key", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", JSONB),
    )
    op.create_index("ix_quarantine_run", "quarantine", ["run_id"])
    op.create_table(
        "migration_log",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("applied_by", sa.Text),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("heartbeat_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("info", JSONB),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("migration_log")
    op.drop_table("quarantine")
    op.execute("drop trigger if exists run_events_notify on run_events")
    op.execute("drop function if exists baysync_notify_events()")
    op.drop_table("run_events")
    op.drop_table("sync_runs")
    op.drop_table("sync_state")
    op.drop_table("credentials")
    op.drop_table("accounts")
