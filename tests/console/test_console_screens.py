"""Logs, run detail, migrations, accounts, help, palette, in-console workers, error handling."""

from __future__ import annotations

from textual.widgets import DataTable, Log

from console.app import make_app
from console.widgets.log_view import LogView
from tests.console.conftest import NOW, app_kwargs, sql, text_of, wait_until
from tests.support.env import test_settings


def insert_event(url: str, message: str, level: str = "info", kind: str = "note", account_id=1, stream="orders",
                 run_id=1, data: str | None = None) -> None:
    sql(url, "insert into run_events (run_id, account_id, stream, level, kind, message, data) "
             "values (%(r)s, %(a)s, %(s)s, %(l)s, %(k)s, %(m)s, cast(%(d)s as jsonb))",
        dict(r=run_id, a=account_id, s=stream, l=level, k=kind, m=message, d=data))


async def test_logs_live_follow_level_search_scope_export(console_settings, seeded_url, tmp_path):
    app = make_app(console_settings, **app_kwargs(export_dir=tmp_path / "exp"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        await pilot.press("l")
        await pilot.pause()
        logs = app.screen
        view = logs.query_one(LogView)
        await wait_until(pilot, lambda: len(view.lines) == 8, what="backlog")
        # live: a NOTIFY wakes the feed, rows are read by id
        insert_event(seeded_url, "hello from a worker")
        insert_event(seeded_url, "", kind="http", data='{"method": "GET", "path": "/sell/finances/v1/payout", '
                                                      '"status": 503, "duration_ms": 12, "records": 0}',
                     level="warning")
        await wait_until(pilot, lambda: len(view.lines) == 10, what="live events")
        assert "hello from a worker" in view.lines[-2].line
        assert "GET /sell/finances/v1/payout 503 12ms 0 rec" in view.lines[-1].line
        assert view.follow
        await pilot.press("f")
        assert not view.follow
        await pilot.press("f")
        await pilot.press("v", "v")  # warning and above
        await pilot.pause()
        assert {e.level for e in view.lines} <= {2, 3} and len(view.lines) == 4
        await pilot.press("v", "v")  # back to debug
        await pilot.press("slash", *"invalid_grant", "enter")
        await pilot.pause()
        assert len(view.lines) == 1 and "invalid_grant" in view.lines[0].line
        await pilot.press("escape")  # clears the search
        await pilot.pause()
        assert len(view.lines) == 10
        # scope: selection from the dashboard
        app.selection = (1, "acme", "payouts")
        await pilot.press("s")
        await pilot.pause()
        assert len(view.lines) == 1 and "payouts" in view.lines[0].line
        await pilot.press("e")
        await wait_until(pilot, lambda: list((tmp_path / "exp").glob("*.log")), what="export")
        text = next((tmp_path / "exp").glob("*.log")).read_text()
        assert "run_failed" in text and text.count("\n") == 1


async def test_log_view_keeps_100k_lines_and_renders_only_visible_rows():
    """Behaviour that keeps the log cheap at 100k lines (timings belong to bench.console_bench): the
    store keeps the newest 100k-110k and drops the oldest, level filters come from per-level indexes,
    searches narrow what is shown, entries are invisible to the garbage collector, and a repaint
    renders only the rows in view."""
    import gc

    from textual.app import App

    from console.widgets.log_view import LogFilter, LogStore

    store = LogStore(100_000)
    view = LogView(store, max_lines=100_000)
    rows = [{"id": i, "ts": NOW, "level": "warning" if i % 10 == 0 else "info", "kind": "http", "account": "acme",
             "account_id": 1 + i % 3, "stream": "orders", "message": f"line {i}", "data": None}
            for i in range(1, 120_001)]
    for i in range(0, len(rows), 2000):
        view.add(store.extend(rows[i:i + 2000]))
    assert 100_000 <= len(store.entries) <= 110_000
    assert store.entries[-1].id == 120_000 and store.entries[0].id > 10_000  # the oldest were dropped
    assert view.lines is store.entries and view.shared  # no filter: the view shows the store's own list
    assert not gc.is_tracked(store.entries[-1])
    # level: the warning index, trimmed with the store
    view.set_filter(LogFilter(min_level=2))
    assert view.lines is store.levels[2]
    assert [e.id for e in view.lines] == [e.id for e in store.entries if e.id % 10 == 0]
    assert view.lines[0].id >= store.entries[0].id
    view.set_filter(LogFilter(min_level=3))
    assert view.lines == []
    # search, then a narrower search filters what is shown
    view.set_filter(LogFilter(search="line 11999"))
    assert len(view.lines) == 10  # 119990..119999; line 11999 itself was trimmed
    view.set_filter(LogFilter(search="LINE 119995"))
    assert [e.id for e in view.lines] == [119_995]
    view.set_filter(LogFilter(search="line 1199", account_id=2))
    assert view.lines and all(e.account_id == 2 and "line 1199" in e.line for e in view.lines)
    # new lines reach a filtered view
    view.set_filter(LogFilter(min_level=2))
    before = len(view.lines)
    view.add(store.extend([dict(rows[0], id=120_001, level="error", message="late")]))
    assert len(view.lines) == before + 1 and view.lines[-1].id == 120_001
    view.set_filter(LogFilter())

    class LogApp(App):
        def compose(self):
            yield view

    calls = []
    orig = view.render_line
    view.render_line = lambda y: (calls.append(y), orig(y))[1]  # type: ignore[method-assign]
    async with LogApp().run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert view.follow and view.scroll_offset.y == len(view.lines) - view.scrollable_content_region.height
        calls.clear()
        view.refresh()
        await pilot.pause()
        assert 0 < len(calls) <= view.size.height  # 100k lines, one screenful rendered
        assert view.layout_passes <= 2  # growing the log does not lay out the screen again
        passes = view.layout_passes
        view.add(store.extend([dict(rows[0], id=200_000 + i, message=f"more {i}") for i in range(50)]))
        await pilot.pause()
        assert view.lines[-1].id == 200_049 and view.layout_passes == passes  # grown without a layout pass
        assert view.vertical_scrollbar.window_virtual_size == len(view.lines)  # yet the scrollbar follows
        assert view.scroll_offset.y == len(view.lines) - view.scrollable_content_region.height  # and the view


async def test_run_detail(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        app.open_run(1)
        await pilot.pause()
        rd = app.screen
        await wait_until(pilot, lambda: rd.loaded, what="run detail")
        summary = text_of(rd.query_one("#run-summary"))
        for text in ("#1 backfill", "running", "45 (3 retries)", "4100", "Quarantined", "avg 142 ms"):
            assert text in summary, text
        await pilot.press("3")
        await pilot.pause()
        q = rd.query_one("#run-quarantine", DataTable)
        assert q.row_count == 2
        assert "missing pricingSummary.total" in str(q.get_row_at(0))
        await pilot.press("2")
        view = rd.query_one("#run-events", LogView)
        assert len(view.lines) == 5
        insert_event(seeded_url, "page 43 stored")
        insert_event(seeded_url, "other run", run_id=2, stream="payouts")
        await wait_until(pilot, lambda: len(view.lines) == 6, what="live run event")
        assert rd.check_action("stop_run", ()) is True
        await pilot.press("x", "y")
        await wait_until(pilot, lambda: sql(seeded_url, "select cancel_requested from sync_state where run_id = 1")
                         == [(True,)], what="stop run")
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "DashboardScreen"


def migrate_revs() -> list[str]:
    from sync_core import migrate

    return migrate.pending_revisions(None)


async def test_migrations_banner_and_apply(tmp_path, empty_db_url):
    settings = test_settings(tmp_path, empty_db_url)
    app = make_app(settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.status.checked, what="schema check")
        assert app.status.schema_behind and app.status.current is None
        banner = app.screen.query_one("Banner")
        await wait_until(pilot, lambda: banner.display, what="banner")
        assert "SCHEMA BEHIND" in text_of(banner)
        assert "blocked" in text_of(app.screen.query_one("#dash-empty"))
        await pilot.press("m")
        await pilot.pause()
        mig = app.screen
        await wait_until(pilot, lambda: mig.state is not None, what="migration state")
        assert "pending" in text_of(mig.query_one("#mig-state"))
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: app.status.schema_ok, timeout=30, what="migrated")
        out = mig.query_one("#mig-output", Log)
        assert any("applying 0001_core" in line for line in out.lines)
        await wait_until(pilot, lambda: mig.state and not mig.state["pending"], what="reload")
        assert mig.query_one("#mig-history", DataTable).row_count >= 1
        assert mig.check_action("apply_migrations", ()) is False
        audit = sql(empty_db_url, "select data from run_events where kind = 'audit'")
        assert len(audit) == 1 and audit[0][0]["action"] == "migrate" and audit[0][0]["origin"] == "console"
        assert audit[0][0]["revisions"][0] == "0001_core" and len(audit[0][0]["revisions"]) == len(migrate_revs())
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard after migrate")
        assert not app.screen.query_one("Banner").display


async def test_accounts_screen(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("a")
        acc = app.screen
        await wait_until(pilot, lambda: acc.loaded, what="accounts")
        t = acc.query_one("#acc-table", DataTable)
        assert t.row_count == 3
        assert "access valid 1h" in str(t.get_cell("acme", "token"))
        assert "reauth" in str(t.get_cell("bolt", "token"))
        assert "not connected" in str(t.get_cell("cask", "token"))
        # acme's refresh token expires in 17 days (< 30): flagged in its row and under the table
        assert "⚠ in 17d" in str(t.get_cell("acme", "refresh"))
        assert "⚠" not in str(t.get_cell("bolt", "refresh"))  # expired and reauth needed: said elsewhere
        detail = text_of(acc.query_one("#acc-detail"))
        assert "refresh token expires within 30 days: acme (in 17d)" in detail
        assert "reauth needed: bolt" in detail
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"bad name!", "enter")
        await pilot.pause()
        assert "name" in text_of(app.screen.query_one("#prompt-error"))
        await pilot.press(*["backspace"] * 9, *"dune", "enter")
        await wait_until(pilot, lambda: sql(seeded_url, "select count(*) from accounts where name = 'dune'") == [(1,)],
                         what="account added")
        await wait_until(pilot, lambda: t.row_count == 4, what="list reloaded")
        t.move_cursor(row=t.get_row_index("dune"))
        await pilot.press("D")
        await pilot.pause()
        await pilot.press(*"dune", "enter")
        await wait_until(pilot, lambda: sql(seeded_url, "select count(*) from accounts where name = 'dune'") == [(0,)],
                         what="account removed")
        assert sql(seeded_url, "select data->>'action', data->>'origin', data->>'account' from run_events "
                               "where kind = 'audit' order by id") == [("account_add", "console", "dune"),
                                                                       ("account_remove", "console", "dune")]


async def test_accounts_connect_shows_consent_url(console_settings, monkeypatch):
    import sync_core.accounts as accounts

    monkeypatch.setattr(accounts, "consent_start", lambda settings, name: (f"https://auth.example/consent?x={name}",
                                                                          "st4te"))
    got = {}

    async def finish(engine, settings, name, pasted, state, **kw):
        got.update(name=name, pasted=pasted, state=state)
    monkeypatch.setattr(accounts, "consent_finish", finish)
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("a")
        acc = app.screen
        await wait_until(pilot, lambda: acc.loaded, what="accounts")
        t = acc.query_one("#acc-table", DataTable)
        t.move_cursor(row=t.get_row_index("bolt"))
        await pilot.press("c")
        await pilot.pause()
        assert "https://auth.example/consent?x=bolt" in text_of(app.screen.query_one("#prompt-detail"))
        assert app.screen.query_one("#pasted").password  # the pasted URL carries a code: never shown
        app.screen.query_one("#pasted").value = "https://redirect/?code=abc&state=st4te"
        await pilot.press("enter")
        await wait_until(pilot, lambda: got, what="consent finish")
        assert got == {"name": "bolt", "pasted": "https://redirect/?code=abc&state=st4te", "state": "st4te"}


async def test_help_palette_and_navigation(console_settings):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        await pilot.press("question_mark")
        await pilot.pause()
        text = text_of(app.screen.query_one("#help-table"))
        for words in ("Run now", "STOP", "Backfill", "Filter", "Logs", "Migrations", "Accounts", "ctrl+p"):
            assert words in text, words
        await pilot.press("d")  # navigation is disabled under a modal
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "DashboardScreen"
        from console.commands import BaysyncCommands

        titles = [c[0] for c in BaysyncCommands(app.screen)._commands()]
        for t in ("Go to logs", "Apply pending migrations" if False else "Go to migrations", "Jump to account acme"):
            assert any(t in x for x in titles), t
        assert any(x.startswith("STOP:") for x in titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
        await pilot.press(*"go to logs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LogsScreen", what="palette navigation")


async def test_read_only_palette_has_no_actions(console_settings):
    app = make_app(console_settings, read_only=True, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        from console.commands import BaysyncCommands

        titles = [c[0] for c in BaysyncCommands(app.screen)._commands()]
        assert not [t for t in titles if t.startswith(("STOP", "Run now", "Pause", "Backfill", "Clear error"))]
        await pilot.press("a")
        await pilot.pause()
        assert app.screen.check_action("add_account", ()) is False


class FakePool:
    def __init__(self):
        self.owner = "testhost:1:console:abc"
        self.started = self.stopped = False

    async def start(self):
        self.started = True

    async def stop(self):
        self.stopped = True


async def test_in_console_worker_pool(console_settings):
    pools = []
    app = make_app(console_settings, worker_pool_factory=lambda: pools.append(FakePool()) or pools[-1],
                   **app_kwargs())
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_until(pilot, lambda: app.status.checked, what="status")
        assert "no worker" in text_of(app.screen.query_one("StatusHeader"))
        await pilot.press("w")
        await wait_until(pilot, lambda: app.pool is not None, what="pool started")
        assert pools[0].started
        assert "workers IN CONSOLE" in text_of(app.screen.query_one("StatusHeader"))
        await pilot.press("w", "y")
        await wait_until(pilot, lambda: pools[0].stopped, what="pool stopped")
    app2 = make_app(console_settings, **app_kwargs())
    async with app2.run_test(size=(80, 24)) as pilot:
        assert app2.check_action("toggle_workers", ()) is False


async def test_worker_failure_shows_error_modal_and_db_outage_banner(console_settings, tmp_path):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")

        async def boom(*a):
            raise RuntimeError("constraint violated: something specific")
        app.do_action("never", "no-such-action", 1, "orders")  # sync_core.control refuses it (KeyError)
        # the modal is the screen before its children are mounted: wait for what is read
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ErrorScreen"
                         and bool(app.screen.query(".dialog-body")), what="error modal")
        assert "KeyError" in text_of(app.screen.query_one(".dialog-body"))
        assert "no-such-action" in text_of(app.screen.query_one(".dialog-body"))
        await pilot.press("escape")
        await pilot.pause()
        # a screen's worker failing is handled the same way (worker messages do not bubble)
        app.screen.run_worker(boom(None), name="screen job", exit_on_error=False)
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ErrorScreen"
                         and bool(app.screen.query(".dialog-title")), what="screen error modal")
        assert "screen job failed" in text_of(app.screen.query_one(".dialog-title"))
        await pilot.press("escape")
    # a database that is not there: banner, retries, no traceback
    dead = test_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = make_app(dead, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.status.db_error is not None, what="db error")
        banner = app.screen.query_one("Banner")
        await wait_until(pilot, lambda: banner.display, what="banner")
        assert "DATABASE UNREACHABLE" in text_of(banner)
        assert "unreachable" in text_of(app.screen.query_one("StatusHeader"))


async def test_unknown_schema_banner_offers_no_migration(tmp_path, db_url):
    """A newer baysync migrated the database (e.g. while this console was open): a red banner with the
    one line, no pending revisions, nothing to apply."""
    sql(db_url, "update alembic_version set version_num = '0042_from_a_newer_baysync'")
    app = make_app(test_settings(tmp_path, db_url), **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.status.checked, what="schema check")
        assert app.status.unknown and not app.status.schema_ok and app.status.pending == []
        banner = app.screen.query_one("Banner")
        await wait_until(pilot, lambda: banner.display, what="banner")
        assert "database schema at 0042_from_a_newer_baysync, which this baysync" in " ".join(text_of(banner).split())
        await pilot.press("m")
        await pilot.pause()
        mig = app.screen
        await wait_until(pilot, lambda: mig.state is not None, what="migration state")
        assert mig.state["pending"] == [] and mig.check_action("apply_migrations", ()) is False


async def test_account_actions_say_they_were_not_done_while_the_database_is_unreachable(tmp_path):
    """Adding an account with the database away: the banner alone would leave the user wondering whether it
    was added; the action says it was not, and why (and nothing is stored: there is no database)."""
    dead = test_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = make_app(dead, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.status.db_error is not None, what="db error")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"dune", "enter")

        def said() -> list[str]:
            return [str(n.message) for n in app._notifications]
        await wait_until(pilot, lambda: any(m.startswith("Not added") for m in said()), what="not-added notice")
        msg = next(m for m in said() if m.startswith("Not added"))
        assert "database" in msg and "unreachable" in msg, msg
        assert type(app.screen).__name__ != "ErrorScreen"  # an outage is not a crash: no traceback dialog
