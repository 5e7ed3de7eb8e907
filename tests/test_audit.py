"""Audit trail: every operator action of the real `baysync` writes one `audit` event (OS user, host,
origin cli) and `baysync logs` shows it; `baysync prune` prints its counts."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.support.env import q
from sync_core.config import STREAM_NAMES


def start(env, *args):
    return subprocess.Popen([sys.executable, "-m", "console.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli(cli_env, monkeypatch, capsys):
    """The real CLI in this process (a subprocess per command costs a second of CPU each): same
    arguments, same environment, stdout returned."""
    from console import cli as c

    for k in [k for k in os.environ if k.startswith("BAYSYNC_")]:
        monkeypatch.delenv(k)
    for k, v in cli_env.items():
        if k.startswith("BAYSYNC_"):
            monkeypatch.setenv(k, v)
    c.settings.cache_clear()

    def run(*args: str) -> str:
        capsys.readouterr()
        rc = c._run_typer(list(args))
        out, err = capsys.readouterr()
        assert rc == 0, (args, err)
        return out
    yield run
    c.settings.cache_clear()


def audit_rows(url):
    return [(json.loads(d) if isinstance(d, str) else d, a, s, m) for d, a, s, m in q(
        url, "select data, account_id, stream, message from run_events where kind = 'audit' and level = 'info' "
             "order by id")]


def test_each_cli_action_writes_one_audit_event(cli, cli_env, db_url):
    migrating = start(cli_env, "migrate")  # a subprocess: migrate sets up process logging
    cli("accounts", "add", "acme")
    aid = q(db_url, "select id from accounts where name = 'acme'")[0][0]
    with sa.create_engine(db_url).begin() as c:
        c.execute(sa.text("insert into run_events (ts, kind, message) values (now() - interval '45 days', 'note', 'old')"))
    assert "run_events  would delete         1" in cli("prune", "--dry-run")
    for args in (["stop", "-a", "acme"], ["pause", "-a", "acme", "-s", "orders"], ["resume", "-a", "acme", "-s", "orders"],
                 ["run-now", "-a", "acme", "-s", "payouts"], ["backfill", "-a", "acme", "-s", "offers", "--since", "2026-01-01"],
                 ["clear-error", "-a", "acme"], ["keys", "rotate"]):
        cli(*args)
    out = cli("prune")
    assert "run_events  deleted         1" in out and "sync_runs   deleted         0" in out
    assert q(db_url, "select count(*) from run_events where message = 'old'")[0][0] == 0
    cli("accounts", "remove", "acme", "--yes")
    assert migrating.wait(timeout=120) == 0, migrating.stderr.read()

    rows = audit_rows(db_url)
    actions = sorted(d["action"] for d, *_ in rows)
    assert actions == sorted(["account_add", "stop", "pause", "run_now", "backfill", "clear_error", "keys_rotate",
                              "migrate", "prune", "resume", "account_remove"])  # one each; the dry run none
    for d, account_id, stream, message in rows:
        assert d["user"] == getpass.getuser() and d["host"] == socket.gethostname() and d["origin"] == "cli"
        assert message.endswith(f"by {d['user']}@{d['host']} via cli")
        if d["action"] not in ("keys_rotate", "migrate", "prune"):
            assert account_id == aid, d
    by = {d["action"]: (d, stream, message) for d, _, stream, message in rows}
    assert by["pause"][1] == "orders" and by["stop"][1] is None and by["stop"][0]["streams"] == len(STREAM_NAMES)
    assert by["backfill"][0]["since"].startswith("2026-01-01") and by["backfill"][1] == "offers"
    assert by["migrate"][0]["revisions"] == [] and by["prune"][0]["run_events"] == 1
    assert by["account_remove"][0]["account"] == "acme" and by["account_remove"][0]["purge"] is False
    # no secret in any audit row (the new key file's content, for one)
    key = open(os.path.join(cli_env["BAYSYNC_HOME"], "secret.key")).read().strip()
    assert key and key not in json.dumps([r[0] for r in rows]) + " ".join(r[3] for r in rows)

    log = cli("logs")
    lines = [line for line in log.splitlines() if " audit: " in line]
    assert len(lines) == len(rows)
    assert any("acme/orders run - audit: paused 1 stream by" in line and line.endswith("via cli") for line in lines)
    assert any(f"audit: STOP requested for {len(STREAM_NAMES)} streams by" in line for line in lines)
    assert any("audit: account acme removed by" in line for line in lines)
    assert [line.split(" audit: ")[1] for line in cli("logs", "--kind", "audit", "--limit", "2").splitlines()] == \
        [m.split(" audit: ")[-1] for *_, m in rows[-2:]]
