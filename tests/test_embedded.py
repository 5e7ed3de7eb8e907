"""The embedded server: first use starts it, later processes attach, concurrent first starts are safe."""

import os
import subprocess
import sys
from pathlib import Path


from sync_core import embedded


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYSYNC_")}
    env.update(BAYSYNC_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def test_concurrent_first_starts_share_one_server(embedded_home):
    home = embedded_home
    code = "from pathlib import Path; import sys; from sync_core import embedded; print(embedded.ensure_running(Path(sys.argv[1])).pid)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    pids = {o.strip() for o, _ in outs}
    assert len(pids) == 1
    assert embedded.status(home / "pg").pid == int(pids.pop())
    # unix socket only, inside the 0700 data dir
    conf = (home / "pg" / "postgresql.auto.conf").read_text()
    assert "listen_addresses = ''" in conf
    assert (home / "pg").stat().st_mode & 0o077 == 0


def test_cli_db_commands_and_demo_migrates(embedded_home):
    home = embedded_home
    env = _env(home)
    run = lambda *a: subprocess.run([sys.executable, "-m", "console.cli", *a], env=env, capture_output=True, text=True, timeout=120)
    r = run("db", "status")
    assert r.returncode == 0 and "stopped" in r.stdout
    r = run("db", "start")
    assert r.returncode == 0 and "running" in r.stdout, r.stderr
    pid = embedded.status(home / "pg").pid
    r = run("db", "url")
    assert r.returncode == 0 and str(home / "pg").replace("/", "%2F") in r.stdout
    r = run("migrate")  # a second process attaches to the same server
    assert r.returncode == 0 and "schema at head" in r.stdout, r.stderr
    assert embedded.status(home / "pg").pid == pid
    r = run("db", "stop")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert not embedded.status(home / "pg").running
