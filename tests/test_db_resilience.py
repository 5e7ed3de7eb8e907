"""The engine factory survives dropped connections (a real TCP proxy between baysync and PostgreSQL)."""

import gc
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sync_core import db, migrate
from tests.support.env import test_settings
from tests.support.proxy import FaultProxy


def test_engine_options(tmp_path, db_url):
    s = test_settings(tmp_path, db_url)
    eng = db.make_engine(s, "worker")
    with eng.connect() as c:
        assert c.execute(sa.text("show application_name")).scalar() == "baysync/worker"
        assert c.execute(sa.text("show statement_timeout")).scalar() == "2min"
        assert c.execute(sa.text("show lock_timeout")).scalar() == "10s"
    assert eng.pool.size() == 5 and eng.pool._max_overflow == 5 and eng.pool._pre_ping
    eng.dispose()
    m = db.make_engine(s, "migrate")
    with m.connect() as c:
        assert c.execute(sa.text("show statement_timeout")).scalar() == "0"
    m.dispose()


OPTS = dict(BAYSYNC_DB_CONNECT_TIMEOUT_S="7", BAYSYNC_DB_KEEPALIVES_IDLE_S="41", BAYSYNC_DB_KEEPALIVES_INTERVAL_S="6",
            BAYSYNC_DB_KEEPALIVES_COUNT="4", BAYSYNC_DB_POOL_RECYCLE_S="300", BAYSYNC_DB_POOL_TIMEOUT_S="1",
            BAYSYNC_DB_POOL_SIZE="1", BAYSYNC_DB_MAX_OVERFLOW="0")


def test_connect_timeout_keepalives_and_pool_settings_are_applied(tmp_path, db_url):
    """The settings reach libpq (the live connection's parameters) and the pool; over TCP the client
    socket really has the keepalive options; a full pool makes a caller wait pool_timeout, then fail."""
    import os
    import socket

    s = test_settings(tmp_path, db_url, **OPTS)
    want = {"connect_timeout": "7", "keepalives": "1", "keepalives_idle": "41", "keepalives_interval": "6",
            "keepalives_count": "4"}
    eng = db.make_engine(s, "worker")
    try:
        assert eng.pool._recycle == 300 and eng.pool._timeout == 1
        with eng.connect() as c:
            params = c.connection.dbapi_connection.info.get_parameters()  # what libpq was given
            assert {k: params.get(k) for k in want} == want
            with pytest.raises(sa.exc.TimeoutError):  # the pool (1, no overflow) is empty: wait 1 s, fail
                eng.connect()
    finally:
        eng.dispose()
    # the embedded server listens on a unix socket: go through a TCP proxy to see the client socket
    with FaultProxy.for_url(db_url) as proxy:
        eng = db.make_engine(s, "worker", proxy.url_for(make_url(db_url).database))
        try:
            with eng.connect() as c:
                fd = c.connection.dbapi_connection.pgconn.socket
                sock = socket.socket(fileno=os.dup(fd))
                try:
                    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 41
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 6
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
                finally:
                    sock.close()
        finally:
            eng.dispose()


def test_connect_timeout_ends_a_connection_attempt_that_gets_no_answer(tmp_path):
    """A server that accepts the TCP connection and never answers: the attempt fails after
    db_connect_timeout_s instead of hanging."""
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        s = test_settings(tmp_path, f"postgresql://postgres@127.0.0.1:{srv.getsockname()[1]}/x",
                          BAYSYNC_DB_CONNECT_TIMEOUT_S="2")
        eng = db.make_engine(s, "cli")
        t0 = time.monotonic()
        try:
            with pytest.raises(sa.exc.OperationalError, match="timeout"):
                eng.connect()
        finally:
            eng.dispose()
        assert 1.5 <= time.monotonic() - t0 < 60


@pytest.mark.parametrize("attempts", [1, 3])
async def test_db_retry_attempts_is_the_number_of_tries(tmp_path, db_url, attempts, caplog):
    """db_retry_attempts = total tries (README), against a real failure: a proxy that hangs up on every
    connection. With the proxy answering again on the last try, the unit succeeds. Every failed try that is
    retried says so in the log, numbered from 1 (the first try runs outside the retry loop: db.run_retrying)."""
    s = test_settings(tmp_path, db_url, BAYSYNC_DB_RETRY_ATTEMPTS=str(attempts), BAYSYNC_DB_RETRY_INITIAL_S="0.01",
                      BAYSYNC_DB_RETRY_MAX_S="0.05")
    with FaultProxy.for_url(db_url) as proxy:
        eng = db.make_async_engine(s, "worker", proxy.url_for(make_url(db_url).database))
        tries = 0

        async def unit(heal_on: int | None = None):
            nonlocal tries
            tries += 1
            proxy.refuse = tries != heal_on
            async with eng.connect() as c:
                return (await c.execute(sa.text("select 1"))).scalar()

        try:
            with pytest.raises(sa.exc.OperationalError):
                await db.run_retrying(s, "probe", unit)
            assert tries == attempts
            tries = 0
            caplog.clear()
            assert await db.run_retrying(s, "probe", lambda: unit(heal_on=attempts)) == 1
            assert tries == attempts
            retried = [r.getMessage() for r in caplog.records if "database: probe failed" in r.getMessage()]
            assert [m.split("(attempt ")[1].split(")")[0] for m in retried] == [str(n) for n in range(1, attempts)]
        finally:
            await eng.dispose()


async def test_units_that_succeed_leave_no_cyclic_garbage(tmp_path, db_url):
    """A successful unit runs without tenacity's retry state (a ~35-object reference cycle per call: a
    sync's hundreds of units left thousands of objects only a full collection frees, sync_core/retry.py)."""
    s = test_settings(tmp_path, db_url)
    eng = db.make_async_engine(s, "worker")

    async def unit():
        async with eng.connect() as c:
            return (await c.execute(sa.text("select 1"))).scalar()

    try:
        assert await db.run_retrying(s, "probe", unit) == 1  # warm: the pool's connection, compiled statement
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                await db.run_retrying(s, "probe", unit)
            found = gc.collect()
        finally:
            gc.enable()
        assert found < 50, f"{found} objects of cyclic garbage after 50 units"
    finally:
        await eng.dispose()


async def test_writes_survive_dropped_connections(tmp_path, db_url):
    s = test_settings(tmp_path, db_url)
    with FaultProxy.for_url(db_url) as proxy:
        url = proxy.url_for(make_url(db_url).database)
        eng = db.make_async_engine(s, "worker", url)
        async with eng.begin() as c:
            await c.execute(sa.text("create table t_writes (id int primary key)"))
        committed = []

        async def write(i: int) -> None:
            async def unit():
                async with eng.begin() as c:
                    await c.execute(sa.text("insert into t_writes values (:i) on conflict do nothing"), {"i": i})
            await db.run_retrying(s, "write", unit, attempts=10)
            committed.append(i)

        stop = threading.Event()

        def chaos():
            # drop every connection every 50 ms, but only after a write committed since the last drop:
            # on a slow machine a write still meets drops (and retries), yet always gets through
            seen = 0
            while not stop.is_set():
                time.sleep(0.05)
                if len(committed) > seen:
                    seen = len(committed)
                    proxy.drop_all()

        t = threading.Thread(target=chaos)
        t.start()
        try:
            for i in range(200):
                await write(i)
        finally:
            stop.set()
            t.join()
        assert proxy.drops > 3
        async with eng.connect() as c:
            got = set((await c.execute(sa.text("select id from t_writes"))).scalars())
        await eng.dispose()
    assert set(committed) <= got and len(committed) == 200


def test_fatal_errors_fail_fast(tmp_path, db_url):
    bad = make_url(db_url).set(database="no_such_db_xyz").render_as_string(hide_password=False)
    s = test_settings(tmp_path, bad, BAYSYNC_DB_RETRY_INITIAL_S="2", BAYSYNC_DB_RETRY_MAX_S="8")
    t0 = time.monotonic()
    with pytest.raises(db.DatabaseFatal) as ei:
        db.check_connect(s)
    assert time.monotonic() - t0 < 3
    assert "no_such_db_xyz" in str(ei.value) and "\n" not in str(ei.value)


def test_unreachable_is_retried_then_reported(tmp_path):
    s = test_settings(tmp_path, "postgresql://postgres@127.0.0.1:1/x", BAYSYNC_DB_CONNECT_TIMEOUT_S="1")
    with pytest.raises(db.DatabaseUnavailable, match="unreachable"):
        db.check_connect(s)


def test_migrate_through_dropping_proxy(tmp_path, empty_db_url):
    """Connections dropped during migrate: retries, then success; never half-applied."""
    s = test_settings(tmp_path, empty_db_url, BAYSYNC_DB_RETRY_ATTEMPTS="10")
    with FaultProxy.for_url(empty_db_url) as proxy:
        url = proxy.url_for(make_url(empty_db_url).database)
        dropped = []

        def say(msg: str) -> None:
            if msg.startswith("applying") and not dropped:
                dropped.append(msg)
                proxy.drop_all()

        r = migrate.migrate(s, say, url=url)
    assert dropped and r.revision == migrate.head()
    eng = sa.create_engine(empty_db_url)
    with eng.connect() as c:
        assert migrate.current_revision(c) == migrate.head()
        assert c.execute(sa.text("select count(*) from migration_log")).scalar() == len(migrate.pending_revisions(None))
    eng.dispose()
