"""LiveTable (a line-API ScrollView) draws exactly what a stock DataTable draws, while repainting only
what changed.

Both tables get the same columns, rows and changes (LiveTable through ``update_cells``, DataTable through
``update_cell``); after every step the lines each widget renders (what the compositor gets, including
the row cursor, hover, zebra stripes, horizontal and vertical scrolling) must be identical segment for
segment. No database: this is the widget alone."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.widgets import DataTable

from console.widgets.live_table import LiveTable

COLUMNS = [("name", 10), ("state", 12), ("n", 7), ("note", 24), ("owner", 14)]


def cells(i: int, gen: int) -> list:
    """A mix of what the dashboard uses and what takes DataTable's own path: styled, right-justified,
    spans, too long for the column (truncated), plain strings, empty cells."""
    note = Text(f"note {i} g{gen}")
    if i % 3 == 0:
        note.stylize("bold", 0, 4)  # spans
    long = "x" * 30 if (i + gen) % 5 == 0 else f"own-{i % 4}"  # 30 > 14: truncated by DataTable
    return [Text(f"acct-{i:03d}"), Text(["▶ running", "‖ paused", "✗ failed"][(i + gen) % 3],
                                        style=["green", "", "bold red"][(i + gen) % 3]),
            Text(str(1000 * i + gen), justify="right"), note, long if i % 2 else Text(long, style="cyan")]


class Pair(App):
    CSS = "DataTable, LiveTable { height: 14; width: 70; }"

    def __init__(self, zebra: bool, cursor_type: str) -> None:
        super().__init__()
        self.zebra, self.cursor_type = zebra, cursor_type
        # no scroll animations: "cursor right" scrolls both tables at once, so the step after it starts from
        # the same place in both (an animation still running when the next key came made this flaky)
        self.animation_level = "none"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(id="stock", zebra_stripes=self.zebra, cursor_type=self.cursor_type)
            yield LiveTable(id="live", zebra_stripes=self.zebra, cursor_type=self.cursor_type)


def lines(table: DataTable) -> list[list[tuple]]:
    w, h = table.size
    return [[(s.text, s.style) for s in strip] for strip in table.render_lines(Region(0, 0, w, h))]


@pytest.mark.parametrize("zebra,cursor_type", [(False, "row"), (True, "row")])
async def test_live_table_draws_what_datatable_draws(zebra, cursor_type):
    app = Pair(zebra, cursor_type)
    async with app.run_test(size=(80, 32)) as pilot:
        stock, live = app.query_one("#stock", DataTable), app.query_one("#live", LiveTable)
        for t in (stock, live):
            for key, width in COLUMNS:
                t.add_column(key.title(), key=key, width=width)
            for i in range(40):
                t.add_row(*cells(i, 0), key=str(i))
        await pilot.pause()
        fast_before = LiveTable.fast_lines

        app.set_focus(None)  # neither focused: a focus change restyles a table and empties its caches

        async def same(step: str) -> None:
            await pilot.pause()
            assert lines(live) == lines(stock), step

        await same("first paint")
        for gen in range(1, 4):
            changes = []
            for i in range(0, 40, gen):  # every row, then every 2nd, every 3rd
                new = cells(i, gen)
                for (key, _), value in zip(COLUMNS, new):
                    if i % 2 or key != "name":
                        changes.append((str(i), key, value))
            for row, col, value in changes:
                stock.update_cell(row, col, value)
            assert live.update_cells(changes) == len(changes)
            await same(f"update {gen}")
            for key in ("down", "down", "right", "up"):
                for t in (stock, live):
                    t.action_cursor_down() if key == "down" else (
                        t.action_cursor_up() if key == "up" else t.action_cursor_right())
                await same(f"cursor {key} after update {gen}")
        unhovered = lines(live)
        for row in (5, 6, 0):  # the mouse over a row, the header (one table at a time: the other one is left)
            drawn = []
            for t in (stock, live):
                await pilot.hover(t, offset=(3, row))
                await pilot.pause()
                drawn.append(lines(t))
            assert drawn[1] == drawn[0], f"hover on line {row}"
            assert drawn[1][row] != unhovered[row]  # the hover style is drawn
            await pilot.hover(None, offset=(79, 31))
        for t in (stock, live):
            t.scroll_to(x=7, y=20, animate=False, immediate=True)
        await same("scrolled")
        changes = [(str(i), "n", Text(str(-i), justify="right")) for i in range(15, 40)]
        for row, col, value in changes:
            stock.update_cell(row, col, value)
        live.update_cells(changes)
        await same("update while scrolled")
        for t in (stock, live):
            t.sort("name", key=lambda name: name.plain, reverse=True)
        await same("sorted")
        for t in (stock, live):
            t.remove_row("3")
            t.add_row(*cells(99, 9), key="99")
        await same("rows removed and added")
        drawn = []
        for t in (stock, live):  # and each one focused (the cursor and header look different)
            t.focus()
            await pilot.pause()
            drawn.append(lines(t))
        assert drawn[1] == drawn[0], "focused"
        assert LiveTable.fast_lines > fast_before


async def test_live_table_repaints_only_changed_rows():
    """After update_cells only the changed rows are drawn again, and in them only the changed cells."""
    app = Pair(False, "row")
    async with app.run_test(size=(80, 32)) as pilot:
        live = app.query_one("#live", LiveTable)
        for key, width in COLUMNS:
            live.add_column(key.title(), key=key, width=width)
        for i in range(40):
            live.add_row(*cells(i, 0), key=str(i))
        await pilot.pause()
        drawn: list[int] = []
        orig = live._line
        live._line = lambda index, *a: (drawn.append(index), orig(index, *a))[1]  # type: ignore[method-assign]
        cells_before = LiveTable.fast_cells
        live.update_cells([("2", "n", Text("7", justify="right")), ("5", "n", Text("8", justify="right")),
                           ("5", "note", Text("changed"))])
        await pilot.pause()
        assert sorted(drawn) == [2, 5]  # rows 2 and 5, nothing else (not the header either)
        assert LiveTable.fast_cells - cells_before == 3  # the three changed cells, nothing else
        assert "changed" in "".join(t for t, _ in lines(live)[6])


class Recording(Pair):
    def __init__(self) -> None:
        super().__init__(False, "row")
        self.seen: list[tuple] = []

    def on_data_table_row_highlighted(self, event) -> None:
        self.seen.append(("highlighted", event.control.id, event.cursor_row, event.row_key.value))

    def on_data_table_row_selected(self, event) -> None:
        self.seen.append(("selected", event.control.id, event.cursor_row, event.row_key.value))

    on_live_table_row_highlighted = on_data_table_row_highlighted
    on_live_table_row_selected = on_data_table_row_selected


async def test_live_table_keys_mouse_and_messages_behave_as_datatable():
    """The same keys and clicks move the cursor and scroll the same way, and post the same highlighted /
    selected messages (row index and key) as DataTable's; ``clear`` resets cursor and scroll alike."""
    app = Recording()
    async with app.run_test(size=(80, 32)) as pilot:
        tables = app.query_one("#stock", DataTable), app.query_one("#live", LiveTable)
        for t in tables:
            for key, width in COLUMNS:
                t.add_column(key.title(), key=key, width=width)
            for i in range(60):
                t.add_row(*cells(i, 0), key=str(i))
        await pilot.pause()
        keys = ["down", "down", "down", "pagedown", "pagedown", "up", "pageup", "ctrl+end", "up", "ctrl+home",
                "end", "right", "home", "left", "pagedown", "enter"]
        traces = []
        for t in tables:
            t.focus()
            await pilot.pause()
            app.seen.clear()
            trace = []
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
                trace.append((key, t.cursor_row, t.scroll_offset))
            await pilot.click(t, offset=(3, 5))  # a row: cursor there; again: selected
            await pilot.click(t, offset=(3, 5))
            await pilot.pause()
            trace.append(("click", t.cursor_row, t.scroll_offset))
            t.move_cursor(row=40, animate=False)
            await pilot.pause()
            trace.append(("move_cursor", t.cursor_row, t.scroll_offset))
            t.clear()
            await pilot.pause()
            trace.append(("clear", t.cursor_row, t.scroll_offset, t.row_count))
            traces.append((trace, [(kind, row, key) for kind, _, row, key in app.seen]))
        assert traces[1] == traces[0]
        trace, seen = traces[1]
        assert max(r[2].y for r in trace[:-1]) > 0 and max(r[2].x for r in trace[:-1]) > 0  # it did scroll
        enter, click = trace[15][1], trace[16][1]
        assert ("selected", enter, str(enter)) in seen and ("selected", click, str(click)) in seen
        assert ("highlighted", 40, "40") == seen[-1]
