"""SQLAlchemy Core tables of the operations schema (the migrations create them; a test checks the two agree).

Stream data tables live with their stream definitions in sync_core/streams/.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("ebay_user", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),  # active | reauth_needed | disabled
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    # EU/UK-domiciled seller: eBay refuses its Finances calls without a digital signature
    # (docs/ebay-api.md, Digital Signatures)
    sa.Column("signing_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("marketplace_id", sa.Text),  # X-EBAY-C-MARKETPLACE-ID; NULL = settings.ebay_marketplace_id
)

# eBay Digital Signature keys (Key Management API createSigningKey, or imported).  eBay issues them per
# *application* (the developer's keyset), not per seller: one key signs for every EU/UK account, so they
# live here and not in credentials.  The newest row is the one in use; the private key is encrypted with
# the token vault (sync_core.crypto) like the tokens.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("signing_key_id", sa.Text, nullable=False, server_default=""),
    sa.Column("cipher", sa.Text, nullable=False),  # ED25519 | RSA
    sa.Column("private_key_ct", BYTEA, nullable=False),
    sa.Column("jwe", sa.Text, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False, server_default=""),
    sa.Column("source", sa.Text, nullable=False),  # created | imported
    sa.Column("expires_at", TS),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
)

credentials = sa.Table(
    "credentials", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("refresh_token_ct", BYTEA),
    sa.Column("access_token_ct", BYTEA),
    sa.Column("access_expires_at", TS),
    sa.Column("refresh_expires_at", TS),
    sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
)

sync_state = sa.Table(
    "sync_state", metadata,
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
    sa.Index("ix_sync_state_due", "next_run_at"),
)

sync_runs = sa.Table(
    "sync_runs", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, server_default="incremental"),  # incremental | backfill | full
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
    sa.Index("ix_sync_runs_pair", "account_id", "stream", "started_at"),
    sa.Index("ix_sync_runs_finished", "finished_at"),  # retention finds old finished runs
)

run_events = sa.Table(
    "run_events", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("ts", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("account_id", sa.Integer),
    sa.Column("stream", sa.Text),
    sa.Column("level", sa.Text, nullable=False, server_default="info"),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("data", JSONB),
    sa.Index("ix_run_events_run", "run_id", "id"),
    sa.Index("ix_run_events_ts", "ts"),
)

quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("record_key", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", JSONB),
    sa.Index("ix_quarantine_run", "run_id"),
)

migration_log = sa.Table(
    "migration_log", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("revision", sa.Text, nullable=False),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("applied_by", sa.Text),
)

workers = sa.Table(
    "workers", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # headless | console | cli
    sa.Column("started_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("heartbeat_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("info", JSONB),
)

# eBay call budgets shared by every worker process (sync_core/budgets.py); account '(application)' = app-wide
rate_budgets = sa.Table(
    "rate_budgets", metadata,
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("api", sa.Text, nullable=False),
    sa.Column("call_limit", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("reset_at", TS, nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default="default"),
    sa.Column("blocked_until", TS),
    sa.Column("backoff_s", sa.Integer),
    sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    sa.PrimaryKeyConstraint("account", "api"),
)

EVENTS_CHANNEL = "baysync_events"
