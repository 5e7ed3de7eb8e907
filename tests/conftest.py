"""Shared fixtures: a throwaway embedded PostgreSQL for the whole session (or the server named by
BAYSYNC_TEST_DATABASE_URL), a fresh database per test cloned from a migrated template, and Settings
pointing at it."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from sync_core import embedded
from sync_core.db import normalize_url, psycopg_conninfo
from tests.support.env import test_settings

TEMPLATE = "baysync_test_template"


def _admin_conninfo(url: str) -> dict:
    kw = psycopg_conninfo(url)
    kw["dbname"] = "postgres"
    return kw


@pytest.fixture(scope="session")
def pg_admin_url():
    """URL of a server the tests may create databases on."""
    external = os.environ.get("BAYSYNC_TEST_DATABASE_URL")
    if external:
        yield normalize_url(external)
        return
    home = Path(tempfile.mkdtemp(prefix="bst-", dir="/tmp"))
    info = embedded.ensure_running(home)
    yield info.url("postgres")
    embedded.stop(home)
    shutil.rmtree(home, ignore_errors=True)


def _db_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def embedded_home():
    """A fresh baysync home for tests that start their own embedded server (stopped and removed after)."""
    h = Path(tempfile.mkdtemp(prefix="bse-", dir="/tmp"))
    yield h
    embedded.stop(h)
    shutil.rmtree(h, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_admin_url):
    """A database migrated to head once per session; test databases are cloned from it."""
    from sync_core import migrate

    name = f"{TEMPLATE}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**_admin_conninfo(pg_admin_url), autocommit=True) as c:
        c.execute(f'create database "{name}"')
    url = _db_url(pg_admin_url, name)
    migrate.migrate(test_settings(Path(tempfile.gettempdir()), url), say=lambda m: None)
    yield url
    with psycopg.connect(**_admin_conninfo(pg_admin_url), autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')


def _create_db(admin_url: str, template: str | None = None) -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**_admin_conninfo(admin_url), autocommit=True) as c:
        if template:
            c.execute(f'create database "{name}" template "{make_url(template).database}"')
        else:
            c.execute(f'create database "{name}"')
    return name, _db_url(admin_url, name)


def _drop_db(admin_url: str, name: str) -> None:
    with psycopg.connect(**_admin_conninfo(admin_url), autocommit=True) as c:
        c.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def empty_db_url(pg_admin_url):
    """A brand-new empty database (no schema)."""
    name, url = _create_db(pg_admin_url)
    yield url
    _drop_db(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url, template_url):
    """A fresh database already migrated to head."""
    name, url = _create_db(pg_admin_url, template_url)
    yield url
    _drop_db(pg_admin_url, name)




@pytest.fixture
def settings(tmp_path, db_url):
    return test_settings(tmp_path, db_url)


@pytest.fixture
def cli_env(tmp_path, db_url):
    """Environment for running the real `baysync` in a subprocess against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYSYNC_")}
    env.update({"BAYSYNC_HOME": str(tmp_path / "home"), "BAYSYNC_DATABASE_URL": db_url,
                "BAYSYNC_DB_RETRY_INITIAL_S": "0.05", "BAYSYNC_DB_RETRY_MAX_S": "0.2", "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture
def demo_db_url(pg_admin_url, db_url):
    """The database `baysync demo` makes for itself next to db_url (``<name>_demo``), not created yet;
    dropped afterwards."""
    name = f"{make_url(db_url).database}_demo"
    yield _db_url(pg_admin_url, name)
    _drop_db(pg_admin_url, name)


@pytest.fixture
def migrated_demo_db_url(pg_admin_url, template_url, demo_db_url):
    """demo_db_url, already there and migrated (as after an earlier demo; saves the demo a migration)."""
    with psycopg.connect(**_admin_conninfo(pg_admin_url), autocommit=True) as c:
        c.execute(f'create database "{make_url(demo_db_url).database}" template "{make_url(template_url).database}"')
    return demo_db_url
