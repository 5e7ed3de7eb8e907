"""Configuration: environment variables ``BAYSYNC_*`` over an optional TOML file over defaults.

Every key is declared once in ``KEYS`` (name, type, default, help); the README's table of keys is
checked against it by a test. Bad input raises :class:`ConfigError` whose message is one line naming
the key, where the value came from and what is expected. The CLI turns it into exit code 2.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

ENV_PREFIX = "BAYSYNC_"

# Streams known to the engine (their declarations, sync_core/streams/); each may be tuned under
# [streams.<name>] in the TOML file or with BAYSYNC_STREAMS_<NAME>_<KEY> in the environment.
from .streams import STREAMS as _STREAMS  # noqa: E402

STREAM_NAMES = tuple(_STREAMS)


class ConfigError(Exception):
    """A configuration problem, rendered as one line for the operator."""

    def __init__(self, key: str, source: str, expected: str, value: Any = None, *, show_value: bool = True):
        self.key, self.source, self.expected = key, source, expected
        shown = f" = {value!r}" if (value is not None and show_value) else ""
        super().__init__(f"config error: {key}{shown} (from {source}): {expected}")


# ---------------------------------------------------------------- value parsers


def _parse_int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError("expected an integer")
        if isinstance(v, str):
            v = v.strip()
            if not v.lstrip("-").isdigit():
                raise ValueError("expected an integer")
        if isinstance(v, float) and not v.is_integer():
            raise ValueError("expected an integer")
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError("expected an integer") from None
        if lo is not None and n < lo or hi is not None and n > hi:
            raise ValueError(f"expected an integer between {lo} and {hi}" if hi is not None else f"expected an integer >= {lo}")
        return n

    parse.expected = f"an integer >= {lo}" if hi is None else f"an integer between {lo} and {hi}"  # type: ignore[attr-defined]
    return parse


def _parse_float(lo: float = 0.0) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        if isinstance(v, bool):
            raise ValueError("expected a number")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number >= {lo}") from None
        if x != x or x < lo:
            raise ValueError(f"expected a number >= {lo}")
        return x

    return parse


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a string")
    return v


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = str(v).strip().lower() if isinstance(v, str) else None
        if s not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return s

    return parse


def _parse_url(*schemes: str, allow_empty: bool = False) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError("expected a string")
        s = v.strip()
        if not s and allow_empty:
            return ""
        if not any(s.startswith(p + "://") for p in schemes) or len(s) <= len(s.split("://")[0]) + 3:
            raise ValueError("expected a URL starting with " + " or ".join(f"{p}://" for p in schemes))
        return s.rstrip("/")

    return parse


def _parse_bind(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected HOST:PORT")
    s = v.strip()
    if not s:
        return ""
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
    return s


# eBay's MarketplaceIdEnum, the values X-EBAY-C-MARKETPLACE-ID takes (developer.ebay.com/api-docs/sell/fulfillment/
# types/ba:MarketplaceIdEnum; the OAS specs only link to it).  Some are "reserved for future use" on eBay's side.
MARKETPLACE_IDS = frozenset({
    "EBAY_AT", "EBAY_AU", "EBAY_BE", "EBAY_CA", "EBAY_CH", "EBAY_CN", "EBAY_CZ", "EBAY_DE", "EBAY_DK", "EBAY_ES",
    "EBAY_FI", "EBAY_FR", "EBAY_GB", "EBAY_GR", "EBAY_HALF_US", "EBAY_HK", "EBAY_HU", "EBAY_ID", "EBAY_IE",
    "EBAY_IL", "EBAY_IN", "EBAY_IT", "EBAY_JP", "EBAY_MOTORS_US", "EBAY_MY", "EBAY_NL", "EBAY_NO", "EBAY_NZ",
    "EBAY_PE", "EBAY_PH", "EBAY_PL", "EBAY_PR", "EBAY_PT", "EBAY_RU", "EBAY_SE", "EBAY_SG", "EBAY_TH", "EBAY_TW",
    "EBAY_US", "EBAY_VN", "EBAY_ZA",
})


def parse_marketplace(v: Any) -> str:
    """One of eBay's MarketplaceIdEnum values (``EBAY_GB``), else ValueError naming a few."""
    if not isinstance(v, str) or v not in MARKETPLACE_IDS:
        raise ValueError(f"unknown eBay marketplace id {str(v)[:40]!r}: expected one of eBay's MarketplaceIdEnum "
                         "values such as EBAY_US, EBAY_GB, EBAY_DE, EBAY_AU (see docs/ebay-api.md)")
    return v


# ---------------------------------------------------------------- the keys


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False


KEYS: tuple[Key, ...] = (
    Key("database_url", _parse_url("postgresql", "postgresql+psycopg", "postgres", allow_empty=True), "",
        "PostgreSQL URL; empty = baysync's own embedded server under $BAYSYNC_HOME/pg", secret=True),
    Key("migrate_database_url", _parse_url("postgresql", "postgresql+psycopg", "postgres", allow_empty=True), "",
        "direct PostgreSQL URL for migrations when database_url goes through a pooler; empty = database_url",
        secret=True),
    Key("db_connect_timeout_s", _parse_int(1, 300), 10, "seconds to wait for a connection"),
    Key("db_keepalives_idle_s", _parse_int(1, 7200), 30, "TCP keepalive idle seconds"),
    Key("db_keepalives_interval_s", _parse_int(1, 600), 10, "TCP keepalive probe interval"),
    Key("db_keepalives_count", _parse_int(1, 100), 3, "TCP keepalive probes before the connection is dropped"),
    Key("db_pool_size", _parse_int(1, 200), 5, "connections kept per engine (per worker process: see Connection budget)"),
    Key("db_max_overflow", _parse_int(0, 200), 5, "extra connections an engine may open under load (never raised by `--workers`)"),
    Key("db_pool_recycle_s", _parse_int(30, 86400), 1800, "recycle pooled connections older than this"),
    Key("db_pool_timeout_s", _parse_int(1, 600), 30, "seconds one attempt waits for a pooled connection (run writes wait again)"),
    Key("db_statement_timeout_s", _parse_int(0, 86400), 120, "statement timeout for workers and the console (0 = none)"),
    Key("db_lock_timeout_s", _parse_int(0, 3600), 10, "lock timeout for every role"),
    Key("db_retry_attempts", _parse_int(1, 20), 3, "attempts for connecting and idempotent database work"),
    Key("db_retry_initial_s", _parse_float(0.0), 2.0, "first database retry wait (doubles each attempt, with jitter)"),
    Key("db_retry_max_s", _parse_float(0.0), 8.0, "cap on one database retry wait"),
    Key("ebay_api_base_url", _parse_url("https", "http"), "https://api.ebay.com", "eBay api host (sandbox: https://api.sandbox.ebay.com)"),
    Key("ebay_apiz_base_url", _parse_url("https", "http"), "https://apiz.ebay.com", "eBay apiz host (finances, payment disputes)"),
    Key("ebay_auth_base_url", _parse_url("https", "http"), "https://auth.ebay.com", "eBay consent host (sandbox: https://auth.sandbox.ebay.com)"),
    Key("ebay_client_id", _parse_str, "", "eBay application client id (App ID)"),
    Key("ebay_client_secret", _parse_str, "", "eBay client secret (env, or a 0600 file via ebay_client_secret_file)", secret=True),
    Key("ebay_client_secret_file", _parse_str, "", "path of a 0600 file holding the client secret"),
    Key("ebay_runame", _parse_str, "", "eBay RuName used as redirect_uri in the consent flow"),
    Key("ebay_marketplace_id", parse_marketplace, "EBAY_US", "X-EBAY-C-MARKETPLACE-ID for accounts added without --marketplace"),
    Key("api_timeout_s", _parse_float(0.1), 30.0, "eBay request timeout"),
    Key("api_retry_attempts", _parse_int(1, 50), 6, "attempts per eBay call on 429/5xx/timeouts"),
    Key("api_retry_initial_s", _parse_float(0.0), 1.0, "first eBay retry wait (exponential, jittered)"),
    Key("api_retry_max_s", _parse_float(0.0), 60.0, "cap on one eBay retry wait (Retry-After is honoured up to this)"),
    Key("report_poll_s", _parse_float(0.05), 30.0,
        "first wait before polling an eBay report task again (then x1.5 per poll, up to 10x this)"),
    Key("rate_budget", _parse_choice("shared", "process"), "shared",
        "eBay call budgets: `shared` = rows in PostgreSQL spent by every host together, `process` = per process"),
    Key("initial_backfill_days", _parse_int(1, 3650), 90, "history read when a stream has no cursor"),
    Key("lookback_s", _parse_int(0, 30 * 86400), 1800, "incremental windows start this far before the cursor"),
    Key("safety_lag_s", _parse_int(0, 86400), 60, "windows end this far before now"),
    Key("write_batch_rows", _parse_int(1, 20000), 1000,
        "consecutive API pages are written (with their checkpoint) in one transaction up to this many records"),
    Key("lease_ttl_s", _parse_int(5, 3600), 60, "a run's lease; heartbeats extend it"),
    Key("heartbeat_s", _parse_int(1, 600), 15, "heartbeat period of a running worker"),
    Key("workers", _parse_int(1, 1024), 16, "concurrent runs per `baysync run` process"),
    Key("run_concurrency", _parse_int(1, 32), 4, "time windows of one run fetched at once (within the account's rate budget)"),
    Key("log_format", _parse_choice("text", "json"), "text", "headless log format"),
    Key("log_level", _parse_choice("debug", "info", "warning", "error"), "info", "minimum log level"),
    Key("health_bind", _parse_bind, "", "HOST:PORT of the health/metrics server of `baysync run` (empty = off)"),
    Key("secret_key_file", _parse_str, "", "file with the token-encryption key (default $BAYSYNC_HOME/secret.key, 0600)"),
    Key("events_retention_days", _parse_int(0, 36500), 30, "run events older than this are pruned (0 = keep forever)"),
    Key("runs_retention_days", _parse_int(0, 36500), 90,
        "finished runs (and their quarantined records) older than this are pruned (0 = keep forever)"),
)

STREAM_KEYS: tuple[Key, ...] = (
    Key("enabled", _parse_bool, True, "sync this stream"),
    Key("page_size", _parse_int(1, 200), 0, "records per API page (0 = the endpoint's maximum)"),
    Key("interval_s", _parse_int(1, 7 * 86400), 900, "seconds between incremental runs"),
    Key("initial_backfill_days", _parse_int(0, 3650), 0, "override of initial_backfill_days (0 = global)"),
)

# Per-stream defaults that differ from STREAM_KEYS' (a [streams.<name>] value or env var still wins), read
# from the declarations: e.g. the active-inventory report is a whole snapshot built by a Sell Feed task that
# eBay limits per hour/day (createInventoryTask 409 errorId 160025), so it runs every 6 hours.
STREAM_DEFAULTS: dict[str, dict[str, Any]] = {
    n: {"interval_s": s.interval_s} for n, s in _STREAMS.items() if s.interval_s != 900}

KEY_BY_NAME = {k.name: k for k in KEYS}
SECRET_ENV = ("BAYSYNC_SECRET_KEY",)  # read directly by sync_core.crypto, never stored in Settings
ENV_ONLY = ("BAYSYNC_HOME", "BAYSYNC_CONFIG", "BAYSYNC_SECRET_KEY", "BAYSYNC_TEST_DATABASE_URL")


@dataclass(frozen=True)
class StreamSettings:
    enabled: bool = True
    page_size: int = 0
    interval_s: int = 900
    initial_backfill_days: int = 0


class SettingsValues:
    """The type of each KEYS value read as an attribute of :class:`Settings` (``settings.workers`` is an int).

    KEYS stays the one place a key is declared (name, parser, default, help); these annotations only tell
    type checkers what the key's parser returns. A new Key needs its line here too:
    tests/test_architecture.py::test_settings_attributes_match_keys fails otherwise (or when a type differs
    from what the parser returns for the default, or a line here has no Key).
    """

    database_url: str
    migrate_database_url: str
    db_connect_timeout_s: int
    db_keepalives_idle_s: int
    db_keepalives_interval_s: int
    db_keepalives_count: int
    db_pool_size: int
    db_max_overflow: int
    db_pool_recycle_s: int
    db_pool_timeout_s: int
    db_statement_timeout_s: int
    db_lock_timeout_s: int
    db_retry_attempts: int
    db_retry_initial_s: float
    db_retry_max_s: float
    ebay_api_base_url: str
    ebay_apiz_base_url: str
    ebay_auth_base_url: str
    ebay_client_id: str
    ebay_client_secret: str
    ebay_client_secret_file: str
    ebay_runame: str
    ebay_marketplace_id: str
    api_timeout_s: float
    api_retry_attempts: int
    api_retry_initial_s: float
    api_retry_max_s: float
    report_poll_s: float
    rate_budget: str
    initial_backfill_days: int
    lookback_s: int
    safety_lag_s: int
    write_batch_rows: int
    run_concurrency: int
    lease_ttl_s: int
    heartbeat_s: int
    workers: int
    log_format: str
    log_level: str
    health_bind: str
    secret_key_file: str
    events_retention_days: int
    runs_retention_days: int


@dataclass(frozen=True)
class Settings(SettingsValues):
    home: Path
    config_file: Path | None
    values: Mapping[str, Any]
    streams: Mapping[str, StreamSettings]
    sources: Mapping[str, str] = field(default_factory=dict)

    if not TYPE_CHECKING:  # hidden from type checkers: they read the annotations of SettingsValues instead

        def __getattr__(self, name: str) -> Any:
            values = object.__getattribute__(self, "values")
            if name in values:
                return values[name]
            raise AttributeError(name)

    def stream(self, name: str) -> StreamSettings:
        return self.streams.get(name) or StreamSettings(**STREAM_DEFAULTS.get(name, {}))

    @property
    def embedded(self) -> bool:
        return not self.values["database_url"]

    @property
    def pgdata(self) -> Path:
        return self.home / "pg"

    def with_values(self, **overrides: Any) -> "Settings":
        vals = dict(self.values)
        vals.update(overrides)
        return Settings(self.home, self.config_file, vals, self.streams, self.sources)


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """Where baysync keeps its data when BAYSYNC_HOME is not set.

    Ordinary users: the XDG data dir (``$XDG_DATA_HOME/baysync`` or ``~/.local/share/baysync``).
    root: ``/var/lib/baysync``. The embedded server runs as a separate OS user when started by root and
    needs read/traverse permission on every parent of its data dir; under /root that would open root's
    home to every user, under /var/lib it opens nothing that is not already open.
    """
    env = os.environ if env is None else env
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/baysync")
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "baysync"


def _check_secret_file(path: Path, key: str, source: str) -> str:
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(key, source, f"cannot read {path}: {e.strerror}", show_value=False) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(key, source, f"{path} must not be readable by others: chmod 600 {path}", show_value=False)
    try:
        return path.read_text().strip()
    except OSError as e:
        raise ConfigError(key, source, f"cannot read {path}: {e.strerror}", show_value=False) from None


def load_settings(env: Mapping[str, str] | None = None, *, require_file: bool = False) -> Settings:
    """Build Settings from defaults, the TOML file and the environment (in increasing precedence)."""
    env = dict(os.environ if env is None else env)
    home = Path(env["BAYSYNC_HOME"]).expanduser() if env.get("BAYSYNC_HOME") else default_home(env)
    if env.get("BAYSYNC_CONFIG"):
        config_file: Path | None = Path(env["BAYSYNC_CONFIG"]).expanduser()
        explicit = True
    else:
        config_file = home / "baysync.toml"
        explicit = False

    values: dict[str, Any] = {k.name: k.default for k in KEYS}
    sources: dict[str, str] = {k.name: "default" for k in KEYS}
    streams_raw: dict[str, dict[str, Any]] = {s: {} for s in STREAM_NAMES}
    stream_sources: dict[tuple[str, str], str] = {}

    file_data: dict[str, Any] = {}
    if config_file is not None and (explicit or config_file.exists()):
        src = str(config_file)
        try:
            raw = config_file.read_bytes()
        except OSError as e:
            raise ConfigError("BAYSYNC_CONFIG" if explicit else "config file", src,
                              f"cannot read the config file: {e.strerror}", show_value=False) from None
        try:
            file_data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError("config file", src, f"not valid TOML: {e}", show_value=False) from None
        file_mode = config_file.stat().st_mode
        for name, value in file_data.items():
            if name == "streams":
                if not isinstance(value, dict):
                    raise ConfigError("streams", src, "expected a table [streams.<name>]")
                for sname, table in value.items():
                    if sname not in STREAM_NAMES:
                        raise ConfigError(f"streams.{sname}", src, "unknown stream; known: " + ", ".join(STREAM_NAMES))
                    if not isinstance(table, dict):
                        raise ConfigError(f"streams.{sname}", src, "expected a table")
                    for skey, sval in table.items():
                        if skey not in {k.name for k in STREAM_KEYS}:
                            raise ConfigError(f"streams.{sname}.{skey}", src,
                                              "unknown key; known: " + ", ".join(k.name for k in STREAM_KEYS))
                        streams_raw[sname][skey] = sval
                        stream_sources[(sname, skey)] = src
                continue
            key = KEY_BY_NAME.get(name)
            if key is None:
                raise ConfigError(name, src, "unknown key (see README: Configuration)", show_value=False)
            if key.secret and value and file_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(name, src, f"secrets may only be kept in a file with 0600 permissions: chmod 600 {src}",
                                  show_value=False)
            values[name] = value
            sources[name] = src

    for var, raw_value in env.items():
        if not var.startswith(ENV_PREFIX) or var in ENV_ONLY:
            continue
        suffix = var[len(ENV_PREFIX):].lower()
        if suffix.startswith("streams_"):
            rest = suffix[len("streams_"):]
            for sname in STREAM_NAMES:
                if rest.startswith(sname + "_"):
                    skey = rest[len(sname) + 1:]
                    if skey not in {k.name for k in STREAM_KEYS}:
                        raise ConfigError(var, "environment", "unknown stream key; known: " + ", ".join(k.name for k in STREAM_KEYS))
                    streams_raw[sname][skey] = raw_value
                    stream_sources[(sname, skey)] = var
                    break
            else:
                raise ConfigError(var, "environment", "unknown stream; known: " + ", ".join(STREAM_NAMES))
            continue
        if suffix in KEY_BY_NAME:
            values[suffix] = raw_value
            sources[suffix] = var
        # Other BAYSYNC_* variables (e.g. a test's own) are ignored: the environment is shared.

    parsed: dict[str, Any] = {}
    for key in KEYS:
        raw = values[key.name]
        try:
            parsed[key.name] = key.parse(raw)
        except ValueError as e:
            src = sources[key.name]
            name = src if src.startswith(ENV_PREFIX) else key.name
            raise ConfigError(name, "environment" if src.startswith(ENV_PREFIX) else src, str(e), raw,
                              show_value=not key.secret) from None

    if parsed["ebay_client_secret_file"] and not parsed["ebay_client_secret"]:
        parsed["ebay_client_secret"] = _check_secret_file(
            Path(parsed["ebay_client_secret_file"]).expanduser(), "ebay_client_secret_file", sources["ebay_client_secret_file"])

    streams: dict[str, StreamSettings] = {}
    for sname in STREAM_NAMES:
        kw: dict[str, Any] = dict(STREAM_DEFAULTS.get(sname, {}))
        for skey in STREAM_KEYS:
            if skey.name in streams_raw[sname]:
                raw = streams_raw[sname][skey.name]
                try:
                    kw[skey.name] = skey.parse(raw)
                except ValueError as e:
                    src = stream_sources[(sname, skey.name)]
                    label = src if src.startswith(ENV_PREFIX) else f"streams.{sname}.{skey.name}"
                    raise ConfigError(label, "environment" if src.startswith(ENV_PREFIX) else src, str(e), raw) from None
        streams[sname] = StreamSettings(**kw)

    if parsed["migrate_database_url"] and not parsed["database_url"]:
        raise ConfigError("migrate_database_url", sources["migrate_database_url"],
                          "needs database_url (it is a direct route to that same database)", show_value=False)
    if parsed["heartbeat_s"] * 2 > parsed["lease_ttl_s"]:
        raise ConfigError("heartbeat_s", sources["heartbeat_s"],
                          f"must be at most half of lease_ttl_s ({parsed['lease_ttl_s']})", parsed["heartbeat_s"])

    return Settings(home=home, config_file=config_file if config_file and config_file.exists() else None,
                    values=parsed, streams=streams, sources=sources)


def redact_url(url: str) -> str:
    """A database URL with its password removed (safe to print)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        return "<invalid url>"
    if u.password:
        u = u.set(password="***")
    return u.render_as_string(hide_password=False)
