"""The after-sale streams (issue 11) in the console: their rows appear on the dashboard like any stream,
the filter finds them by name, and a per-stream scope error is shown on its row only."""

from __future__ import annotations

from textual.geometry import Region

from console.app import make_app
from console.widgets.live_table import LiveTable
from tests.console.conftest import app_kwargs, sql, wait_until

SCOPE_ERROR = ("eBay 403 [errorId 1100 REQUEST]: Access denied: the returns stream needs the OAuth scope "
               "sell.fulfillment.readonly; reconnect the account to grant it (baysync accounts connect)")


async def test_after_sale_rows_filter_and_scope_error(console_settings, seeded_url):
    sql(seeded_url, "insert into sync_state (account_id, stream, status, last_error) values "
                    "(3, 'returns', 'failed', %(e)s), (3, 'shipping_fulfillments', 'idle', null), "
                    "(3, 'cancellations', 'idle', null)", dict(e=SCOPE_ERROR))
    app = make_app(console_settings, **app_kwargs())
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await wait_until(pilot, lambda: dash.loaded, what="dashboard")
        table = dash.query_one(LiveTable)
        assert table.row_count == 8 + 3
        assert "failed" in str(table.get_cell("3:returns", "state"))
        assert "idle" in str(table.get_cell("3:shipping_fulfillments", "state"))
        await pilot.press("slash", *"shipping")
        await pilot.pause()
        assert table.row_count == 1
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == "3:shipping_fulfillments"
        # the stream's name is wider than its column: drawn cut with an ellipsis, not silently
        w, h = table.size
        drawn = ["".join(seg.text for seg in strip) for strip in table.render_lines(Region(0, 0, w, h))]
        assert any("shipping_fulfi" in line and "…" in line for line in drawn), drawn
