import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from sync_core import __version__, migrate


def run(env, *args, timeout=120, input=None):
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=input)


def test_version(cli_env):
    r = run(cli_env, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"baysync {__version__}"


def test_status_json_contract(cli_env):
    r = run(cli_env, "status", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["version"] == __version__
    d = data["database"]
    assert d["reachable"] is True and d["revision"] == d["head"] == migrate.head()
    assert isinstance(data["accounts"], list)


def test_status_hides_password(cli_env):
    cli_env["BAYSYNC_DATABASE_URL"] = "postgresql://u:hunter2@127.0.0.1:1/db"
    cli_env["BAYSYNC_DB_CONNECT_TIMEOUT_S"] = "1"
    cli_env["BAYSYNC_DB_RETRY_ATTEMPTS"] = "1"
    r = run(cli_env, "status", "--json")
    assert "hunter2" not in r.stdout + r.stderr
    assert json.loads(r.stdout)["database"]["reachable"] is False


def test_doctor_names_missing_ebay_credentials(cli_env):
    r = run(cli_env, "doctor")
    assert "OK    config" in r.stdout and "OK    database" in r.stdout and "OK    schema" in r.stdout
    assert "OK    key" in r.stdout and "OK    tokens" in r.stdout
    assert r.returncode == 1 and "FAIL  ebay" in r.stdout and "BAYSYNC_EBAY_CLIENT_ID" in r.stdout


def test_doctor_reports_schema_behind(cli_env, empty_db_url):
    cli_env["BAYSYNC_DATABASE_URL"] = empty_db_url
    r = run(cli_env, "doctor")
    assert r.returncode == 1 and "FAIL  schema" in r.stdout and "baysync migrate" in r.stdout


BAD_ARGS = [
    ["bogus"],
    ["status", "--jsn"],
    ["db", "explode"],
    ["migrate", "extra"],
    ["sim", "--speed", "0"],
    ["sim", "--speed", "nan"],
]


def test_sim_speed_accelerates_arrivals_for_an_hour():
    """`baysync sim --speed N` serves what `baysync demo --speed N` does: records arriving N times sooner, with
    enough seeded future for an hour of real time (at least the simulator's default two weeks)."""
    from console.cli import _sim_config
    from sync_core.sim import SellerSpec

    fast = _sim_config(7, "a:100,b:50", 3600.0)
    assert fast.speed == 3600.0
    assert all(sp.future_days * 86400 >= 3600.0 * 3600 for sp in fast.sellers)  # 150 simulated days
    real = _sim_config(7, "a:100")
    assert real.speed == 1.0 and real.sellers[0].future_days == SellerSpec.future_days


@pytest.mark.parametrize("args", BAD_ARGS)
def test_bad_cli_input_is_one_line_exit_2(cli_env, args):
    r = run(cli_env, *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")


@pytest.mark.parametrize("var,value", [("BAYSYNC_WORKERS", "lots"), ("BAYSYNC_LOG_FORMAT", "xml"),
                                       ("BAYSYNC_DATABASE_URL", "mysql://x/y")])
def test_bad_config_exit_2_and_database_untouched(cli_env, db_url, var, value):
    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        before = c.execute(sa.text("select count(*) from migration_log")).scalar()
    cli_env[var] = value
    r = run(cli_env, "migrate")
    assert r.returncode == 2 and var in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from migration_log")).scalar() == before
    eng.dispose()
