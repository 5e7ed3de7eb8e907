"""Dashboard: rows, live updates in place, filter/sort/group, and every action really changing
sync_state through sync_core.coordination (and hidden in read-only)."""

from __future__ import annotations

from console.app import make_app
from console.widgets.live_table import LiveTable
from tests.console.conftest import app_kwargs, sql, text_of, wait_until


async def open_dashboard(settings, size=(80, 24), **kw):
    app = make_app(settings, **app_kwargs(**kw))
    return app


def select(app, key: str) -> None:
    table = app.screen.query_one(LiveTable)
    table.move_cursor(row=table.get_row_index(key), animate=False)


def state(url, account_id, stream, cols="status, paused, cancel_requested, run_now_requested, last_error, backfill_since"):
    return sql(url, f"select {cols} from sync_state where account_id = %(a)s and stream = %(s)s",
               dict(a=account_id, s=stream))[0]


async def test_rows_and_live_update_in_place(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")
        table = dash.query_one(LiveTable)
        assert table.row_count == 8
        assert str(table.get_cell("1:orders", "state")) == "▶ running"
        assert str(table.get_cell("1:payouts", "state")) == "✗ failed"
        assert str(table.get_cell("2:orders", "state")) == "⚠ reauth needed"
        assert str(table.get_cell("1:messages", "state")) == "‖ paused"
        assert "3/8" in str(table.get_cell("1:orders", "progress"))
        assert str(table.get_cell("1:orders", "lag")) == "3h00"
        rebuilds = []
        orig = dash._rebuild
        dash._rebuild = lambda layout: (rebuilds.append(1), orig(layout))
        sql(seeded_url, "update sync_state set records_total = records_total + 5000, windows_done = 4 "
                        "where account_id = 1 and stream = 'orders'")
        dash.poke()
        await wait_until(pilot, lambda: "4/8" in str(table.get_cell("1:orders", "progress")), what="update")
        assert str(table.get_cell("1:orders", "records")) == "130k"
        assert rebuilds == []  # updated with update_cell, no full redraw
        # a new pair appears -> rebuilt, cursor kept
        select(app, "1:payouts")
        sql(seeded_url, "insert into sync_state (account_id, stream) values (3, 'payouts')")
        dash.poke()
        await wait_until(pilot, lambda: table.row_count == 9, what="new row")
        assert dash.selected_key() == "1:payouts"


async def test_filter_sort_group(console_settings):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")
        table = dash.query_one(LiveTable)
        await pilot.press("slash", *"failed")
        await pilot.pause()
        assert table.row_count == 1
        await pilot.press("enter")  # keep filter, back to the table
        await pilot.press("escape")  # clear it
        await pilot.pause()
        assert table.row_count == 8
        await pilot.press("s")  # sort by state: failed first
        await pilot.pause()
        assert dash.sort == "state"
        assert dash.selected_key() is not None
        first = table.coordinate_to_cell_key((0, 0)).row_key.value
        assert first == "1:payouts"
        await pilot.press("g")
        await pilot.pause()
        assert table.row_count == 8 + 3
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == "1:*"
        assert "streams" in str(table.get_cell("1:*", "stream"))


async def test_actions_write_sync_state(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")

        select(app, "3:offers")
        await pilot.press("r")
        await wait_until(pilot, lambda: state(seeded_url, 3, "offers")[3] is True, what="run now")
        assert state(seeded_url, 3, "offers")[0] == "queued"

        select(app, "1:orders")
        await pilot.press("x")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")  # cancelled: nothing changes
        await pilot.pause(0.2)
        assert state(seeded_url, 1, "orders")[2] is False
        await pilot.press("x", "y")
        await wait_until(pilot, lambda: state(seeded_url, 1, "orders")[2] is True, what="stop")
        assert state(seeded_url, 1, "orders")[0] == "stopping"

        select(app, "3:orders")
        await pilot.press("p")
        await wait_until(pilot, lambda: state(seeded_url, 3, "orders")[1] is True, what="pause")
        await wait_until(pilot, lambda: dash.rows["3:orders"].state == "paused", what="paused row")
        await pilot.press("p")
        await wait_until(pilot, lambda: state(seeded_url, 3, "orders")[1] is False, what="resume")

        await pilot.press("P", "y")  # whole account, confirmed
        await wait_until(pilot, lambda: sql(seeded_url, "select paused from accounts where id = 3")[0][0] is True,
                         what="account pause")

        select(app, "1:payouts")
        await pilot.press("c")
        await wait_until(pilot, lambda: state(seeded_url, 1, "payouts")[4] is None, what="clear error")
        assert state(seeded_url, 1, "payouts")[0] == "queued"

        select(app, "1:transactions")
        await pilot.press("b")
        await pilot.pause()
        await pilot.press(*"2024-13-01", "enter")
        await pilot.pause()
        err = text_of(app.screen.query_one("#date-error"))
        assert "not a date" in err and "YYYY-MM-DD" in err
        await pilot.press(*["backspace"] * 10, *"2099-01-01", "enter")
        await pilot.pause()
        assert "future" in text_of(app.screen.query_one("#date-error"))
        await pilot.press(*["backspace"] * 10, *"2025-06-01", "enter")
        await wait_until(pilot, lambda: state(seeded_url, 1, "transactions")[5] is not None, what="backfill")
        assert state(seeded_url, 1, "transactions")[5].isoformat().startswith("2025-06-01")


async def test_open_run_detail_from_dashboard(console_settings):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")
        select(app, "1:payouts")
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen", what="run detail")
        assert app.screen.run_id == 2
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dash
        select(app, "1:disputes")  # never ran
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.screen is dash


async def test_read_only_hides_and_refuses_actions(console_settings, seeded_url):
    app = make_app(console_settings, read_only=True, **app_kwargs())
    async with app.run_test(size=(160, 48)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")
        for action in ("run_now", "stop", "pause", "backfill", "clear_error", "stop_account", "pause_account"):
            assert dash.check_action(action, ()) is False
        footer_keys = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "run_now" not in footer_keys and "stop" not in footer_keys
        select(app, "1:orders")
        await pilot.press("x", "y", "r", "p", "b")
        await pilot.pause(0.3)
        assert app.screen is dash  # no dialog opened
        assert state(seeded_url, 1, "orders")[1:4] == (False, False, False)
        assert "READ-ONLY" in text_of(app.screen.query_one("StatusHeader"))
