import os

import pytest

from sync_core.config import KEYS, STREAM_NAMES, ConfigError, default_home, load_settings


def env(tmp_path, **kw):
    e = {"BAYSYNC_HOME": str(tmp_path)}
    e.update(kw)
    return e


def test_defaults(tmp_path):
    s = load_settings(env(tmp_path))
    assert s.home == tmp_path
    assert s.embedded and s.pgdata == tmp_path / "pg"
    assert s.initial_backfill_days == 90
    assert s.ebay_marketplace_id == "EBAY_US"
    assert s.stream("orders").enabled and s.stream("orders").interval_s == 900
    assert s.log_format == "text"


def test_precedence_env_over_file_over_default(tmp_path):
    (tmp_path / "baysync.toml").write_text('initial_backfill_days = 30\nlookback_s = 60\n[streams.orders]\npage_size = 100\n')
    s = load_settings(env(tmp_path, BAYSYNC_INITIAL_BACKFILL_DAYS="45", BAYSYNC_STREAMS_ORDERS_INTERVAL_S="120"))
    assert s.initial_backfill_days == 45  # env wins
    assert s.lookback_s == 60  # file over default
    assert s.stream("orders").page_size == 100 and s.stream("orders").interval_s == 120
    assert s.sources["initial_backfill_days"] == "BAYSYNC_INITIAL_BACKFILL_DAYS"


def test_explicit_config_path(tmp_path):
    cfg = tmp_path / "other.toml"
    cfg.write_text('log_format = "json"\n')
    s = load_settings(env(tmp_path, BAYSYNC_CONFIG=str(cfg)))
    assert s.log_format == "json" and s.config_file == cfg


@pytest.mark.parametrize("var,value,needle", [
    ("BAYSYNC_WORKERS", "abc", "BAYSYNC_WORKERS"),
    ("BAYSYNC_WORKERS", "0", "between 1 and 1024"),
    ("BAYSYNC_LOG_FORMAT", "xml", "one of text, json"),
    ("BAYSYNC_EBAY_MARKETPLACE_ID", "US", "EBAY_US"),
    ("BAYSYNC_EBAY_API_BASE_URL", "ftp://x", "URL starting with"),
    ("BAYSYNC_DATABASE_URL", "mysql://x/y", "postgresql://"),
    ("BAYSYNC_HEALTH_BIND", "localhost", "HOST:PORT"),
    ("BAYSYNC_INITIAL_BACKFILL_DAYS", "-1", "BAYSYNC_INITIAL_BACKFILL_DAYS"),
    ("BAYSYNC_STREAMS_ORDERS_PAGE_SIZE", "500", "between 1 and 200"),
    ("BAYSYNC_STREAMS_NOPE_PAGE_SIZE", "5", "unknown stream"),
    ("BAYSYNC_STREAMS_ORDERS_COLOR", "5", "unknown stream key"),
    ("BAYSYNC_API_TIMEOUT_S", "nan", "number"),
])
def test_bad_env_values_are_one_line_errors(tmp_path, var, value, needle):
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, **{var: value}))
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg and msg.startswith("config error:")


def test_database_password_not_echoed(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, BAYSYNC_DATABASE_URL="mysql://u:hunter2@h/db"))
    assert "hunter2" not in str(ei.value)


@pytest.mark.parametrize("text,needle", [
    ("nope = 1\n", "nope"),
    ("workers = 'many'\n", "workers"),
    ("[streams.bogus]\nenabled = true\n", "streams.bogus"),
    ("[streams.orders]\nspeed = 3\n", "streams.orders.speed"),
    ("workers = \n", "not valid TOML"),
    ("streams = 3\n", "streams"),
])
def test_bad_file_values(tmp_path, text, needle):
    (tmp_path / "baysync.toml").write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path))
    assert needle in str(ei.value) and str(tmp_path / "baysync.toml") in str(ei.value)


def test_unreadable_explicit_file(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, BAYSYNC_CONFIG=str(tmp_path / "missing.toml")))
    assert "BAYSYNC_CONFIG" in str(ei.value) and "cannot read" in str(ei.value)


def test_secret_in_group_readable_file_refused(tmp_path):
    f = tmp_path / "baysync.toml"
    f.write_text('ebay_client_secret = "s3cr3t"\n')
    f.chmod(0o644)
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path))
    assert "0600" in str(ei.value) and "s3cr3t" not in str(ei.value)
    f.chmod(0o600)
    assert load_settings(env(tmp_path)).ebay_client_secret == "s3cr3t"


def test_secret_file(tmp_path):
    sf = tmp_path / "secret"
    sf.write_text("abc\n")
    sf.chmod(0o640)
    with pytest.raises(ConfigError):
        load_settings(env(tmp_path, BAYSYNC_EBAY_CLIENT_SECRET_FILE=str(sf)))
    sf.chmod(0o600)
    assert load_settings(env(tmp_path, BAYSYNC_EBAY_CLIENT_SECRET_FILE=str(sf))).ebay_client_secret == "abc"


def test_heartbeat_must_fit_lease(tmp_path):
    with pytest.raises(ConfigError, match="heartbeat_s"):
        load_settings(env(tmp_path, BAYSYNC_HEARTBEAT_S="40", BAYSYNC_LEASE_TTL_S="60"))


def test_default_home_for_root_is_outside_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert str(default_home({})) == "/var/lib/baysync"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert str(default_home({"XDG_DATA_HOME": "/x/data"})) == "/x/data/baysync"


def test_readme_documents_every_key():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    missing = [k.name for k in KEYS if f"`{k.name}`" not in readme]
    assert not missing, f"README lacks config keys: {missing}"
    for s in STREAM_NAMES:
        assert s in readme


def test_migrate_database_url_is_a_secret_and_needs_database_url(tmp_path):
    s = load_settings(env(tmp_path, BAYSYNC_DATABASE_URL="postgresql://u@pooler:6432/db",
                          BAYSYNC_MIGRATE_DATABASE_URL="postgres://u:pw@direct:5432/db"))
    assert s.migrate_database_url == "postgres://u:pw@direct:5432/db"
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, BAYSYNC_DATABASE_URL="postgresql://u@h/db",
                          BAYSYNC_MIGRATE_DATABASE_URL="mysql://u:hunter2@h/db"))
    assert "BAYSYNC_MIGRATE_DATABASE_URL" in str(ei.value) and "hunter2" not in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, BAYSYNC_MIGRATE_DATABASE_URL="postgresql://u:hunter2@h/db"))
    assert "needs database_url" in str(ei.value) and "hunter2" not in str(ei.value)
    f = tmp_path / "baysync.toml"
    f.write_text('migrate_database_url = "postgresql://u:hunter2@h/db"\n')
    f.chmod(0o644)
    with pytest.raises(ConfigError) as ei:
        load_settings(env(tmp_path, BAYSYNC_DATABASE_URL="postgresql://u@h/db"))
    assert "migrate_database_url" in str(ei.value) and "0600" in str(ei.value) and "hunter2" not in str(ei.value)
