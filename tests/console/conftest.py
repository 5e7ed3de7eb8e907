"""Console test fixtures: a seeded database (fixed timestamps), a frozen clock, and helpers to wait
for the app's workers without sleeping blindly."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import psycopg
import pytest

from sync_core.db import psycopg_conninfo
from tests.support.env import test_settings

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone.utc)
OWNER = "ops-1:4242:worker:a1b2c3"


def frozen() -> datetime:
    return NOW


def sql(url: str, statement: str, params: dict | None = None) -> list[tuple]:
    with psycopg.connect(**psycopg_conninfo(url), autocommit=True) as c:
        cur = c.execute(statement, params or {})
        return cur.fetchall() if cur.description else []


SEED = """
insert into accounts (id, name, ebay_user, status, paused, created_at, updated_at) values
  (1, 'acme', 'acme_store', 'active', false, %(t0)s, %(t0)s),
  (2, 'bolt', 'bolt_gear', 'reauth_needed', false, %(t0)s, %(t0)s),
  (3, 'cask', null, 'active', false, %(t0)s, %(t0)s);
insert into credentials (account_id, refresh_token_ct, access_token_ct, access_expires_at, refresh_expires_at) values
  (1, '\\x01', '\\x02', %(now)s + interval '1 hour', %(now)s + interval '17 days'),
  (2, '\\x01', null, null, %(now)s - interval '2 days');
insert into sync_runs (id, account_id, stream, kind, status, owner, host, started_at, finished_at, window_from,
                       window_to, windows_total, windows_done, pages, records_inserted, records_updated,
                       records_unchanged, records_quarantined, api_calls, retries, error)
overriding system value values
  (1, 1, 'orders', 'backfill', 'running', %(owner)s, 'ops-1', %(now)s - interval '5 minutes', null,
   '2025-10-01', '2025-10-31', 8, 3, 42, 4100, 120, 30, 2, 45, 3, null),
  (2, 1, 'payouts', 'incremental', 'failed', %(owner)s, 'ops-1', %(now)s - interval '30 minutes',
   %(now)s - interval '29 minutes', null, null, 0, 0, 1, 0, 0, 0, 0, 2, 1, 'HTTP 500 from /sell/finances/v1/payout'),
  (3, 1, 'transactions', 'incremental', 'succeeded', %(owner)s, 'ops-1', %(now)s - interval '20 minutes',
   %(now)s - interval '19 minutes', null, null, 0, 0, 3, 10, 2, 100, 0, 3, 0, null);
select setval(pg_get_serial_sequence('sync_runs', 'id'), 10);
select setval(pg_get_serial_sequence('accounts', 'id'), 10);
insert into sync_state (account_id, stream, status, enabled, paused, cursor, backfill_since, lease_owner,
                        lease_expires_at, heartbeat_at, run_id, last_error, last_error_at, last_success_at,
                        records_total, windows_done, windows_total, next_run_at, updated_at) values
  (1, 'orders', 'running', true, false, %(now)s - interval '3 hours', '2025-10-01', %(owner)s,
   %(now)s + interval '10 years', %(now)s, 1, null, null, %(now)s - interval '2 hours', 125000, 3, 8, %(now)s, %(now)s),
  (1, 'transactions', 'idle', true, false, %(now)s - interval '25 minutes', null, null, null, null, null, null, null,
   %(now)s - interval '19 minutes', 48210, 0, 0, %(now)s + interval '10 years', %(now)s),
  (1, 'payouts', 'failed', true, false, %(now)s - interval '2 days', null, null, null, null, null,
   'HTTP 500 from /sell/finances/v1/payout after 6 attempts', %(now)s - interval '29 minutes',
   %(now)s - interval '2 days', 310, 0, 0, %(now)s + interval '10 years', %(now)s),
  (1, 'disputes', 'queued', true, false, null, null, null, null, null, null, null, null, null, 0, 0, 0,
   %(now)s + interval '10 years', %(now)s),
  (1, 'messages', 'paused', true, true, %(now)s - interval '1 day', null, null, null, null, null, null, null,
   %(now)s - interval '1 day', 77, 0, 0, %(now)s + interval '10 years', %(now)s),
  (2, 'orders', 'reauth_needed', true, false, %(now)s - interval '6 days', null, null, null, null, null,
   'refresh token rejected (invalid_grant)', %(now)s - interval '1 day', %(now)s - interval '6 days', 9000, 0, 0,
   %(now)s + interval '10 years', %(now)s),
  (3, 'offers', 'idle', true, false, %(now)s - interval '4 minutes', null, null, null, null, null, null, null,
   %(now)s - interval '4 minutes', 512, 0, 0, %(now)s + interval '10 years', %(now)s),
  (3, 'orders', 'idle', true, false, %(now)s - interval '9 minutes', null, null, null, null, null, null, null,
   %(now)s - interval '9 minutes', 2048, 0, 0, %(now)s + interval '10 years', %(now)s);
insert into quarantine (run_id, account_id, stream, record_key, reason, created_at) values
  (1, 1, 'orders', '12-34567-89012', 'missing pricingSummary.total', %(now)s - interval '4 minutes'),
  (1, 1, 'orders', '12-34567-89013', 'lineItems[0].quantity is not an integer', %(now)s - interval '3 minutes');
insert into run_events (ts, run_id, account_id, stream, level, kind, message, data) values
  (%(now)s - interval '5 minutes', 1, 1, 'orders', 'info', 'run_started', 'backfill from 2025-10-01', null),
  (%(now)s - interval '290 seconds', 1, 1, 'orders', 'info', 'http', '',
   '{"method": "GET", "path": "/sell/fulfillment/v1/order", "status": 200, "duration_ms": 183, "records": 200}'),
  (%(now)s - interval '280 seconds', 1, 1, 'orders', 'warning', 'http', 'throttled',
   '{"method": "GET", "path": "/sell/fulfillment/v1/order", "status": 429, "duration_ms": 41, "records": 0}'),
  (%(now)s - interval '270 seconds', 1, 1, 'orders', 'info', 'http', '',
   '{"method": "GET", "path": "/sell/fulfillment/v1/order", "status": 200, "duration_ms": 201, "records": 200}'),
  (%(now)s - interval '260 seconds', 1, 1, 'orders', 'info', 'window_done', 'window 3/8 done', null),
  (%(now)s - interval '30 minutes', 2, 1, 'payouts', 'error', 'run_failed', 'HTTP 500 from /sell/finances/v1/payout', null),
  (%(now)s - interval '20 minutes', 3, 1, 'transactions', 'info', 'run_succeeded', '112 records', null),
  (%(now)s - interval '1 day', null, 2, 'orders', 'error', 'reauth', 'refresh token rejected (invalid_grant)', null);
"""


def seed(url: str) -> None:
    with psycopg.connect(**psycopg_conninfo(url), autocommit=False) as c:
        params = dict(now=NOW, t0=NOW - timedelta(days=30), owner=OWNER)
        for stmt in SEED.split(";\n"):
            if stmt.strip():
                c.execute(stmt, {k: v for k, v in params.items() if f"%({k})s" in stmt})
        c.commit()


@pytest.fixture
def seeded_url(db_url):
    seed(db_url)
    return db_url


@pytest.fixture
def console_settings(tmp_path, seeded_url):
    return test_settings(tmp_path, seeded_url)


def app_kwargs(**over):
    kw = dict(clock=frozen, db_label="testdb", poll_interval=0.3, min_refresh_s=0.05, status_interval=0.5)
    kw.update(over)
    return kw


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def wait_until_sync(predicate: Callable[[], bool], timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def settle(pilot, n: int = 3) -> None:
    for _ in range(n):
        await pilot.pause()
    await asyncio.sleep(0)


def text_of(widget, width: int = 160) -> str:
    """Plain text of a Static's content (Rich tables included)."""
    import io

    from rich.console import Console

    c = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    c.print(widget.content)
    return c.export_text()
