"""Settings for tests: fast retries, a private home, the test database."""

from pathlib import Path

import sqlalchemy as sa

from sync_core.config import load_settings


def test_settings(home: Path, url: str | None = None, **env: str):
    e = {"BAYSYNC_HOME": str(home), "BAYSYNC_DB_RETRY_INITIAL_S": "0.05", "BAYSYNC_DB_RETRY_MAX_S": "0.2",
         "BAYSYNC_API_RETRY_INITIAL_S": "0.01", "BAYSYNC_API_RETRY_MAX_S": "0.1",
         "BAYSYNC_REPORT_POLL_S": "0.2"}
    if url:
        e["BAYSYNC_DATABASE_URL"] = url
    e.update(env)
    return load_settings(e)


test_settings.__test__ = False  # not a test


def q(url: str, sql: str) -> list:
    """Rows of one query on a short-lived synchronous engine (tests that drive baysync from outside)."""
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(sa.text(sql)).all()
    finally:
        eng.dispose()
