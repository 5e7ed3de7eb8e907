"""Poolers: `baysync doctor` recognises a transaction-mode pooler (a real proxy that swaps server
backends between transactions, like pgbouncer pool_mode=transaction), and migrations take the direct
route (migrate_database_url) when database_url goes through a pooler."""

import pytest
from sqlalchemy.engine import make_url

from sync_core import doctor, migrate
from tests.support.env import q, test_settings
from tests.support.proxy import FaultProxy, SharedPoolerProxy, TransactionPoolerProxy
from tests.test_cli import run


def _via(proxy, url: str) -> str:
    return proxy.url_for(make_url(url).database)


def test_doctor_flags_a_transaction_pooler_in_one_line_and_passes_a_direct_url(cli_env, db_url):
    direct = run(cli_env, "doctor")
    assert "OK    pooler" in direct.stdout, direct.stdout
    with TransactionPoolerProxy.for_url(db_url) as proxy:
        cli_env["BAYSYNC_DATABASE_URL"] = _via(proxy, db_url)
        r = run(cli_env, "doctor")
        assert proxy.connections > 0
    assert r.returncode == 1
    lines = [ln for ln in r.stdout.splitlines() if "pooler" in ln]
    assert len(lines) == 1 and lines[0].startswith("FAIL  pooler"), r.stdout
    assert "transaction-mode pooler" in lines[0] and "session-mode pooler or a direct URL" in lines[0]
    assert "OK    database" in r.stdout  # plain queries work through it: only the session is lost
    assert "Traceback" not in r.stdout + r.stderr


def test_a_session_keeping_proxy_is_not_taken_for_a_transaction_pooler(tmp_path, db_url):
    s = test_settings(tmp_path, db_url)
    with FaultProxy.for_url(db_url) as proxy:  # one backend per client connection: session mode
        assert doctor.session_problem(s, _via(proxy, db_url)) is None
        assert proxy.connections == 2
    with TransactionPoolerProxy.for_url(db_url) as proxy:
        assert doctor.session_problem(s, _via(proxy, db_url)) == "successive statements ran on different server backends"


def test_a_pooler_shared_by_connections_is_found_even_when_one_client_keeps_its_backend(tmp_path, db_url):
    """A real transaction-mode pgbouncer with little load hands a lone client the same backend every
    time; what gives it away is a second connection landing on the first one's backend."""
    s = test_settings(tmp_path, db_url)
    with SharedPoolerProxy.for_url(db_url) as proxy:
        url = _via(proxy, db_url)
        assert q(url, "select 1")[0][0] == 1  # an ordinary client works through it
        assert doctor.session_problem(s, url) == "two open connections shared one server backend"
        assert proxy._opened <= proxy.servers


def test_doctor_checks_migrate_database_url_too(tmp_path, db_url):
    with TransactionPoolerProxy.for_url(db_url) as proxy:
        s = test_settings(tmp_path, db_url, BAYSYNC_MIGRATE_DATABASE_URL=_via(proxy, db_url))
        ok, name, detail = doctor.check_pooler(s, db_url)
    assert not ok and name == "pooler" and detail.startswith("migrate_database_url goes through")


def test_migrate_takes_migrate_database_url_not_the_pooled_one(cli_env, empty_db_url):
    with TransactionPoolerProxy.for_url(empty_db_url) as proxy:
        cli_env["BAYSYNC_DATABASE_URL"] = _via(proxy, empty_db_url)
        cli_env["BAYSYNC_MIGRATE_DATABASE_URL"] = empty_db_url
        r = run(cli_env, "migrate")
        assert r.returncode == 0, r.stderr
        assert proxy.connections == 0  # not one connection went through the pooler
    assert q(empty_db_url, "select version_num from alembic_version")[0][0] == migrate.head()
    assert "schema at head" in r.stdout


@pytest.mark.parametrize("bad", ["no_such_db", "closed_port"])
def test_a_wrong_migrate_database_url_is_one_line_and_changes_nothing(cli_env, empty_db_url, bad):
    u = make_url(empty_db_url)
    wrong = (u.set(database="baysync_no_such_db_xyz") if bad == "no_such_db"
             else u.set(host="127.0.0.1", port=1, query={})).render_as_string(hide_password=False)
    cli_env["BAYSYNC_DATABASE_URL"] = empty_db_url
    cli_env["BAYSYNC_MIGRATE_DATABASE_URL"] = wrong
    cli_env["BAYSYNC_DB_CONNECT_TIMEOUT_S"] = "2"
    r = run(cli_env, "migrate")
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.splitlines() if not ln[9:].startswith("WARNING baysync.db: database: migrate failed")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "BAYSYNC_MIGRATE_DATABASE_URL" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    assert q(empty_db_url, "select to_regclass('alembic_version') is null")[0][0] is True
