"""The console's actions go through sync_core.control: each writes an audit event (origin console)
that the logs screen shows as one readable line."""

from __future__ import annotations

import getpass
import socket

from console.app import make_app
from console.widgets.log_view import LogView
from tests.console.conftest import app_kwargs, sql, wait_until
from tests.console.test_console_dashboard import select


def audit(url):
    return sql(url, "select data, account_id, stream, message from run_events where kind = 'audit' order by id")


async def test_stop_and_pause_from_the_console_are_audited_and_shown_in_logs(console_settings, seeded_url):
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.loaded, what="dashboard")
        select(app, "1:orders")
        await pilot.press("x", "y")
        await wait_until(pilot, lambda: len(audit(seeded_url)) == 1, what="STOP audit event")
        select(app, "3:offers")
        await pilot.press("p")
        await wait_until(pilot, lambda: len(audit(seeded_url)) == 2, what="pause audit event")
        (stop, a1, s1, m1), (pause, a2, s2, m2) = audit(seeded_url)
        user, host = getpass.getuser(), socket.gethostname()
        assert stop == {"action": "stop", "user": user, "host": host, "origin": "console", "streams": 1,
                        "account": "acme"} and (a1, s1) == (1, "orders")
        assert pause["action"] == "pause" and pause["origin"] == "console" and (a2, s2) == (3, "offers")
        assert m1 == f"STOP requested for 1 stream by {user}@{host} via console"
        assert sql(seeded_url, "select cancel_requested from sync_state where account_id = 1 and stream = 'orders'") \
            == [(True,)]  # the request and its audit event committed together

        await pilot.press("l")
        view = app.screen.query_one(LogView)
        await wait_until(pilot, lambda: sum(" audit: " in e.line for e in view.lines) == 2, what="audit lines")
        lines = [e.line for e in view.lines if " audit: " in e.line]
        assert lines[0].endswith(f"INF acme/orders audit: STOP requested for 1 stream by {user}@{host} via console")
        assert "cask/offers audit: paused 1 stream by" in lines[1]
