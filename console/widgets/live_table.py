"""A DataTable for many live rows: bulk cell updates with one repaint, and a fast path for drawing cells.

``update_cell`` repaints the whole widget per call; with 1,600 live rows a refresh can change
thousands of cells, so ``update_cells`` writes them all and refreshes once. Only the given cells
change; rows are never re-added (no flicker, cursor and scroll stay).

Drawing: DataTable renders every cell through Rich (``Styled(Padding(cell))`` → ``render_lines``),
about 0.3 ms a cell, so repainting a 160x48 view (500 cells) took 150-400 ms of UI time after each
refresh. ``_render_cell`` builds the same segments directly for the common case (a one-line
``Text`` that fits its column, on a row of height 1) and falls back to DataTable for anything else
(headers, labels, wrapping, truncation, other renderables). With fixed-width columns, new rows are not
measured cell by cell (first paint of 1,600 rows).
"""

from __future__ import annotations

from typing import Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey

_JOIN = Text("\n")


class LiveTable(DataTable):
    fast_cells = 0  # cells drawn by the fast path (tests check that it is used)

    def update_cells(self, changes: Iterable[tuple[str, str, object]]) -> int:
        data = getattr(self, "_data", None)
        n = 0
        if data is None or not hasattr(self, "_update_count"):  # private API moved: the slow, safe way
            for row, col, value in changes:
                self.update_cell(row, col, value)
                n += 1
            return n
        for row, col, value in changes:
            data[RowKey(row)][ColumnKey(col)] = value
            n += 1
        if n:
            self._update_count += 1
            self._drop_stale()
            self.refresh()
        return n

    def _drop_stale(self) -> None:
        """Render caches are keyed by ``_update_count``: after an update nothing in them can be hit
        again. Drop them now (freed by reference counting) instead of keeping ~10k cells of segments
        alive, which the garbage collector would walk on every full collection."""
        for name in ("_cell_render_cache", "_row_render_cache", "_line_cache", "_row_renderable_cache"):
            cache = getattr(self, name, None)
            if cache is not None:
                cache.clear()

    def _update_dimensions(self, new_rows) -> None:
        """DataTable measures every cell of every new row (Rich ``measure``: ~0.4 s for 1,600 rows x 11
        columns) to size auto-width columns. With fixed-width columns only rows with a label or an
        auto height need it; the totals (virtual size) are computed by DataTable as before."""
        try:
            if any(c.auto_width for c in self.columns.values()):
                return super()._update_dimensions(new_rows)
            rows = self.rows
            need = [k for k in new_rows if k in rows and (rows[k].label is not None or rows[k].auto_height)]
        except AttributeError:  # DataTable internals moved: the safe way
            return super()._update_dimensions(new_rows)
        super()._update_dimensions(need)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        try:
            return self._fast_cell(row_index, column_index, base_style, width, cursor, hover)
        except _Fallback:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        except (AttributeError, KeyError, TypeError):  # DataTable internals moved: the safe way
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)

    def _fast_cell(self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool,
                   hover: bool):
        if row_index < 0 or column_index < 0 or row_index < self.fixed_rows or column_index < self.fixed_columns:
            raise _Fallback
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, self._update_count,
                     self._pseudo_class_state)
        cache = self._cell_render_cache
        lines = cache.get(cache_key)
        if lines is not None:
            return lines
        cell = self._data[row_key][column_key]
        if type(cell) is not Text or self.rows[row_key].height != 1:
            raise _Fallback
        plain = cell.plain
        pad = self.cell_padding
        inner = width - 2 * pad
        justify = cell.justify
        if (inner < 0 or "\n" in plain or "\t" in plain or cell.cell_len > inner
                or justify not in (None, "default", "left", "right")
                or (justify in ("left", "right") and cell.style)
                or (justify == "right" and (plain.endswith(" ") or cell._spans))):
            raise _Fallback
        console = self.app.console
        if cell._spans:
            text_segments = list(_JOIN.join([cell]).render(console))
        elif cell.style and plain:  # Rich drops the style of an empty Text
            text_segments = [Segment(plain, console.get_style(cell.style))]
        else:
            text_segments = [Segment(plain)]
        fill = inner - cell.cell_len
        null = Style.null()
        line: list[Segment] = []
        if pad:
            line.append(Segment(" " * pad, null))
        if justify == "right" and fill:
            line.append(Segment(" " * fill + plain))  # Rich pads inside the Text: one segment
        else:
            line.extend(text_segments)
            if fill:
                line.append(Segment(" " * fill, null))
        if pad:
            line.append(Segment(" " * pad, null))
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        lines = [list(Segment.apply_style(line, pre_style, post_style))]
        cache[cache_key] = lines
        LiveTable.fast_cells += 1
        return lines


class _Fallback(Exception):
    pass
