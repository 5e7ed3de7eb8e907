"""Settings for tests: fast retries, a private home, the test database."""

from pathlib import Path

from sync_core.config import load_settings


def test_settings(home: Path, url: str | None = None, **env: str):
    e = {"BAYSYNC_HOME": str(home), "BAYSYNC_DB_RETRY_INITIAL_S": "0.05", "BAYSYNC_DB_RETRY_MAX_S": "0.2",
         "BAYSYNC_API_RETRY_INITIAL_S": "0.01", "BAYSYNC_API_RETRY_MAX_S": "0.1"}
    if url:
        e["BAYSYNC_DATABASE_URL"] = url
    e.update(env)
    return load_settings(e)


test_settings.__test__ = False  # not a test
