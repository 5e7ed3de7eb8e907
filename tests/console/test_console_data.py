"""The console's data service (console/data.py): a sync_state change written through coordination
reaches the dashboard by NOTIFY (no poll tick), events are read by id (coalesced, caught up after the
listener's connection is killed), and a lost database is shown once and retried with one back-off."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url
from console.widgets.live_table import LiveTable

from console.app import make_app
from console.data import DataService
from console.messages import DbStatus, EventsArrived
from sync_core import coordination as co, db
from sync_core.events import emit
from tests.console.conftest import app_kwargs, sql, wait_until
from tests.support.env import test_settings
from tests.support.proxy import FaultProxy

LONG = 3600.0  # a fallback poll that never ticks during a test


async def test_state_change_reaches_the_dashboard_by_notify_without_a_poll(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs(poll_interval=LONG, status_interval=LONG))
    engine = db.make_async_engine(console_settings, "worker", seeded_url)
    try:
        async with app.run_test(size=(120, 24)) as pilot:
            dash = app.screen
            await wait_until(pilot, lambda: dash.loaded and app.data.notifies == 0 and app.data._listener,
                             what="dashboard and listener")
            table = dash.query_one(LiveTable)
            assert str(table.get_cell("1:orders", "records")) == "125k"
            refreshes = app.data.refreshes
            async with engine.begin() as conn:  # what a worker does after a page: run 1 holds 1/orders
                await co.save_checkpoint(conn, 1, {"page": 2}, records=5000, windows_done=4)
            await wait_until(pilot, lambda: str(table.get_cell("1:orders", "records")) == "130k", what="notify")
            assert "4/8" in str(table.get_cell("1:orders", "progress"))
            assert app.data.state_notifies >= 1 and app.data.refreshes > refreshes
            async with engine.begin() as conn:  # the run ends: the row goes idle
                assert await co.finish(conn, "ops-1:4242:worker:a1b2c3", 1, "succeeded", interval_s=900)
            await wait_until(pilot, lambda: str(table.get_cell("1:orders", "state")) == "· idle", what="finish")
    finally:
        await engine.dispose()


async def test_events_are_coalesced_and_caught_up_after_the_listener_is_killed(settings, db_url):
    engine = db.make_async_engine(settings, "console", db_url)
    got: list = []
    svc = DataService(engine, db.psycopg_conninfo(db_url), None, post=got.append, state_wanted=lambda: False,
                      poll_s=LONG, events_poll_s=LONG, status_s=LONG, backlog=10)
    task = asyncio.create_task(svc.run())

    def messages() -> list[str]:
        return [e["message"] for m in got if isinstance(m, EventsArrived) for e in m.events]

    async def until(pred, what: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not pred():
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)
    try:
        await until(lambda: svc._listener is not None and svc.last_id is not None, "listener")
        reads = svc.reads
        for i in range(50):  # 50 transactions, 50 notifies
            async with engine.begin() as conn:
                await emit(conn, "note", f"m{i}")
        await until(lambda: messages()[-1:] == ["m49"], "50 events")
        assert [m for m in messages() if m.startswith("m")] == [f"m{i}" for i in range(50)]
        assert svc.reads - reads < 50  # many notifies, fewer reads
        # the listener's connection is killed; an event committed meanwhile arrives after the reconnect
        listener = svc._listener
        sql(db_url, "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where pid <> pg_backend_pid() and query like 'listen %%'")
        await until(lambda: svc._listener is not listener and svc._listener is not None, "reconnect")
        async with engine.begin() as conn:
            await emit(conn, "note", "after the reconnect")
        await until(lambda: messages()[-1:] == ["after the reconnect"], "caught up")
        assert len({e["id"] for m in got if isinstance(m, EventsArrived) for e in m.events}) == len(messages())
        assert not [m for m in got if isinstance(m, DbStatus)]  # a listener blip is not an outage
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()


async def test_lost_database_shows_once_and_recovers_with_one_backoff(tmp_path, seeded_url):
    u = make_url(seeded_url)
    with FaultProxy.for_url(seeded_url) as proxy:
        url = proxy.url_for(u.database, u.username or "postgres")
        s = test_settings(tmp_path, url)
        app = make_app(s, url=url, **app_kwargs(poll_interval=LONG, status_interval=LONG))
        async with app.run_test(size=(120, 24)) as pilot:
            dash = app.screen
            await wait_until(pilot, lambda: dash.loaded and app.data._listener, what="dashboard")
            shown: list = []
            app.status_signal.subscribe(dash, lambda st: shown.append(st.db_error))
            proxy.refuse = True  # the server is gone: open connections cut, new ones refused
            proxy.drop_all()
            await wait_until(pilot, lambda: app.data.failures >= 3, timeout=20, what="retries")
            assert app.data.waits[:3] == [0.5, 1.0, 2.0]  # one back-off, doubling
            outages = [e for i, e in enumerate(shown) if e is not None and (i == 0 or shown[i - 1] is None)]
            assert len(outages) == 1 and shown[-1] == outages[0]  # shown once, not once per retry
            assert "DATABASE UNREACHABLE" in str(dash.query_one("Banner").render())
            proxy.refuse = False
            await wait_until(pilot, lambda: app.status.db_error is None, timeout=20, what="recovered")
            sql(seeded_url, "select 1")
            async with (engine := db.make_async_engine(s, "worker", seeded_url)).begin() as conn:
                await co.save_checkpoint(conn, 1, None, records=1000)
            await engine.dispose()
            table = dash.query_one(LiveTable)
            await wait_until(pilot, lambda: str(table.get_cell("1:orders", "records")) == "126k",
                             what="notify after the outage")


def test_screens_use_only_the_documented_app_api():
    """Screens, widgets and the palette reach the App only through console.app.SCREEN_API (plus
    Textual's own App attributes): an AST walk over every ``self.app.X`` / ``app.X``."""
    import ast
    from pathlib import Path

    from textual.app import App

    import console
    from console.app import SCREEN_API

    root = Path(console.__file__).resolve().parent
    files = [*(root / "screens").rglob("*.py"), *(root / "widgets").rglob("*.py"), root / "commands.py"]
    used: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute):
                continue
            v = node.value
            if (isinstance(v, ast.Attribute) and v.attr == "app") or (isinstance(v, ast.Name) and v.id == "app"):
                used.setdefault(node.attr, path.name)
    assert {"status", "watch_state", "do_action", "engine"} <= used.keys()  # the walk sees the calls
    textual = set(dir(App)) | set(vars(App()))  # Textual's App API, class and instance attributes
    assert {a: f for a, f in used.items()  # action_*: the App's key-binding actions (the palette runs them)
            if a not in SCREEN_API and a not in textual and not a.startswith("action_")} == {}
    assert "poll_interval" not in used and "min_refresh_s" not in used  # the data service paces reads


def test_one_state_overview_for_every_reader(seeded_url, settings):
    """sync_core.status.overview: a row per pair (accounts without pairs: one row, stream None), the
    current run's window; runs=True adds the last run, failures since the last success and API calls."""
    from sync_core import status

    sql(seeded_url, "insert into accounts (name) values ('dove')")
    engine = db.make_engine(settings, "cli", seeded_url)
    try:
        with engine.connect() as conn:
            rows = {(r["account"], r["stream"]): r for r in status.overview(conn)}
            full = {(r["account"], r["stream"]): r for r in status.overview(conn, runs=True)}
    finally:
        engine.dispose()
    assert len(rows) == 9 and rows[("dove", None)]["account_status"] == "active"
    assert rows[("acme", "orders")]["run_kind"] == "backfill" and rows[("acme", "orders")]["window_to"]
    assert "last_run_id" not in rows[("acme", "orders")]
    payouts = full[("acme", "payouts")]
    assert (payouts["last_run_id"], payouts["last_run_status"], payouts["failures"], payouts["api_calls"]) == (
        2, "failed", 1, 2)
    assert full[("acme", "transactions")]["failures"] == 0 and full[("dove", None)]["last_run_id"] is None
