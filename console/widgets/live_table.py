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

Repainting: DataTable keys every render cache on one update count, so any change re-renders every
visible cell. ``LiveTable`` keeps its own caches per row (lines) and per cell (segments), dropped only
for the cells ``update_cells`` writes: after a refresh only the changed rows are repainted, and in them
only the changed cells are drawn again. Row order, row positions and the update count stay DataTable's
(its own caches and every fallback path behave as before); anything structural (rows added, removed,
sorted, cleared, columns, resize, styles) empties the LiveTable caches.
"""

from __future__ import annotations

from typing import Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey

_JOIN = Text("\n")


class LiveTable(DataTable):
    fast_cells = 0  # cells drawn by the fast path (tests check that it is used)
    fast_lines = 0  # data lines assembled by the fast path

    def __init__(self, *args, **kw) -> None:
        # set first: DataTable.__init__ already reads row positions (cursor_type watcher)
        self._own_updates = 0  # how many of DataTable's update counts were update_cells (no structure change)
        self._structure = None  # the structure the caches below belong to
        self._line_slots: dict[RowKey, dict[tuple, Strip]] = {}  # row -> {cursor/hover/crop variant: line}
        self._cell_slots: dict[tuple[RowKey, ColumnKey], tuple[object, dict]] = {}  # cell -> (value, {variant: lines})
        self._offsets: tuple[object, list] | None = None
        self._ordered: tuple[object, list] | None = None
        self._columns_sig: tuple = ()
        self._columns: list[tuple[int, ColumnKey, int]] = []  # (index, key, width) for this repaint
        self._frame_style: Style | None = None
        self._position_styles: dict[tuple, object] = {}  # (row, column, flags) -> final style of a content style
        super().__init__(*args, **kw)

    def update_cells(self, changes: Iterable[tuple[str, str, object]]) -> int:
        data = getattr(self, "_data", None)
        n = 0
        if data is None or not hasattr(self, "_update_count"):  # private API moved: the slow, safe way
            for row, col, value in changes:
                self.update_cell(row, col, value)
                n += 1
            return n
        line_slots, cell_slots = self._line_slots, self._cell_slots
        rows: set[RowKey] = set()
        for row, col, value in changes:
            rk, ck = RowKey(row), ColumnKey(col)
            data[rk][ck] = value
            cell_slots.pop((rk, ck), None)
            rows.add(rk)
            n += 1
        if n:
            for rk in rows:
                line_slots.pop(rk, None)
            self._update_count += 1  # DataTable's own caches (header, fallback paths) stay consistent
            self._own_updates += 1
            self._drop_stale()
            self._refresh_rows(rows)
        return n

    def _structure_key(self) -> tuple:
        """Changes whenever DataTable's update count moved for anything but update_cells."""
        return (self._update_count - self._own_updates, len(self.rows))

    def _refresh_rows(self, rows: set[RowKey]) -> None:
        """Repaint only the changed rows that are in view (rows of height 1), else everything."""
        try:
            if len(self._y_offsets) != len(self.rows):
                raise _Fallback  # rows taller than one line: positions are not row indexes
            top = self.header_height if self.show_header else 0
            scroll_y = int(self.scroll_offset.y)
            width, height = self.size
            fixed = self.fixed_rows
            locations = self._row_locations
            regions = []
            for rk in rows:
                index = locations.get(rk)
                if index is None:
                    continue
                y = top + index - (0 if index < fixed else scroll_y)
                if (index < fixed or index >= fixed + scroll_y) and top <= y < height:
                    regions.append(Region(0, y, width, 1))
        except (_Fallback, AttributeError, TypeError, ValueError):
            self.refresh()
            return
        if len(regions) > height // 2:
            self.refresh()
        elif regions:
            self.refresh(*regions)

    # -- row positions: only a structure change moves them (DataTable recomputes them on every update)
    @property
    def _y_offsets(self) -> list:
        key = self._structure_key()
        if self._offsets is None or self._offsets[0] != key:
            self._offsets = (key, DataTable._y_offsets.fget(self))
        return self._offsets[1]

    @property
    def ordered_rows(self) -> list:
        key = self._structure_key()
        if self._ordered is None or self._ordered[0] != key:
            self._ordered = (key, DataTable.ordered_rows.fget(self))
        return self._ordered[1]

    # -- the LiveTable caches
    def _clear_live_caches(self) -> None:
        self._line_slots.clear()
        self._cell_slots.clear()
        self._position_styles.clear()
        self._offsets = self._ordered = None

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._clear_live_caches()

    def notify_style_update(self) -> None:
        self._clear_live_caches()
        super().notify_style_update()

    def render_lines(self, crop):
        structure = self._structure_key()
        columns = (tuple(c.get_render_width(self) for c in self.ordered_columns), self.cell_padding,
                   self.fixed_columns, self.fixed_rows, self._row_label_column_width, self.show_row_labels)
        self._columns = [(i, c.key, w) for i, (c, w) in enumerate(zip(self.ordered_columns, columns[0]))]
        if structure != self._structure or columns != self._columns_sig:
            self._structure, self._columns_sig = structure, columns
            self._line_slots.clear()
            self._cell_slots.clear()
            self._position_styles.clear()
        elif (len(self._line_slots) > 4 * max(50, self.size.height)
              or len(self._position_styles) > 40 * max(50, self.size.height)):
            self._prune()
        self._frame_style = self.rich_style  # one DOM style lookup per repaint, not one per line
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    def render_line(self, y: int) -> Strip:
        base_style = self._frame_style
        if base_style is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, base_style)

    def _prune(self) -> None:
        """Keep the caches to the rows in and near view (scrolled-away rows would keep thousands of
        cells of segments alive for the garbage collector to walk)."""
        h = max(50, self.size.height)
        first = max(0, int(self.scroll_offset.y) - h)
        keep = {r.key for r in self.ordered_rows[first:first + 3 * h]}
        self._line_slots = {k: v for k, v in self._line_slots.items() if k in keep}
        self._cell_slots = {k: v for k, v in self._cell_slots.items() if k[0] in keep}
        rows = range(first, first + 3 * h)
        self._position_styles = {k: v for k, v in self._position_styles.items() if k[0] in rows}

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        try:
            return self._fast_line(y, x1, x2, base_style)
        except (_Fallback, LookupError):
            return super()._render_line(y, x1, x2, base_style)
        except (AttributeError, TypeError):  # DataTable internals moved: the safe way
            return super()._render_line(y, x1, x2, base_style)

    def _fast_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """DataTable's ``_render_line`` + ``_render_line_in_row`` for a data row of height 1 without
        fixed columns or labels, cached per row until one of its cells changes."""
        row_key, line_no = self._get_offsets(y)
        if row_key is self._header_row_key or self.fixed_columns or self._should_render_row_labels:
            raise _Fallback
        if self.rows[row_key].height != 1:
            raise _Fallback
        row_index = self._row_locations.get(row_key)
        cursor, hover, cursor_type = self.cursor_coordinate, self.hover_coordinate, self.cursor_type
        if cursor_type == "row":  # a row line depends on the cursor and hover only through their rows
            flags: tuple = (cursor.row == row_index, hover.row == row_index)
        else:
            flags = (cursor, hover)
        width = self.size.width
        variant = (line_no, x1, x2, width, flags, base_style, cursor_type, self.show_cursor,
                   self._show_hover_cursor, self._pseudo_class_state, self.zebra_stripes)
        slot = self._line_slots.get(row_key)
        if slot is None:
            slot = self._line_slots[row_key] = {}
        else:
            strip = slot.get(variant)
            if strip is not None:
                return strip
        should_highlight = self._should_highlight
        row_style = self._get_row_style(row_index, base_style)
        segments: list[Segment] = []
        table_width = 0
        render_cell, cell_slots, data = self._render_cell, self._cell_slots, self._data[row_key]
        cell_variant = (row_style, flags[0], flags[1], self._show_hover_cursor, self._pseudo_class_state)
        for column_index, column_key, column_width in self._columns:
            table_width += column_width
            if cursor_type == "row":  # the cell's own slot, without the call (most cells of a changed row)
                cached = cell_slots.get((row_key, column_key))
                if cached is not None and cached[0] is data[column_key]:
                    lines = cached[1].get(cell_variant + (column_width,))
                    if lines is not None:
                        segments.extend(lines[line_no])
                        continue
            location = (row_index, column_index)
            segments.extend(render_cell(
                row_index, column_index, row_style, column_width,
                cursor=should_highlight(cursor, location, cursor_type),
                hover=should_highlight(hover, location, cursor_type))[line_no])
        remaining = max(0, width - table_width)
        if cursor_type == "row":
            extend_style, _ = self._get_styles_to_render_cell(
                row_index == -1, False, False, should_highlight(hover, (row_index or 0, 0), cursor_type),
                row_index == cursor.row, self.show_cursor, self._show_hover_cursor, False, False)
            extend_style = row_style + extend_style
        elif row_style.bgcolor is not None:
            raise _Fallback  # a faded background: DataTable's way
        else:
            extend_style = Style.from_color(row_style.color, row_style.bgcolor)
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * remaining, extend_style))
        strip = Strip(line_crop(segments, x1, x2, width)).adjust_cell_length(width, base_style).simplify()
        slot[variant] = strip
        LiveTable.fast_lines += 1
        return strip

    def _drop_stale(self) -> None:
        """DataTable's render caches are keyed by ``_update_count``: after an update nothing in them can be hit
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
        if need:
            self._clear_live_caches()  # heights or widths may have changed

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
        cell = self._data[row_key][column_key]
        variant = (base_style, cursor, hover, self._show_hover_cursor, self._pseudo_class_state, width)
        slot = self._cell_slots.get((row_key, column_key))
        if slot is not None and slot[0] is cell:
            lines = slot[1].get(variant)
            if lines is not None:
                return lines
        else:
            slot = self._cell_slots[row_key, column_key] = (cell, {})
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
        styles = self._cell_styles(row_index, column_index, base_style, cursor, hover)
        lines = [[Segment(text, styles(style)) for text, style, _ in line]]
        slot[1][variant] = lines
        LiveTable.fast_cells += 1
        return lines

    def _cell_styles(self, row_index: int, column_index: int, base_style: Style, cursor: bool, hover: bool):
        """The final style of each content style in a cell: ``Segment.apply_style`` with the cell's pre style
        (base + its row/column meta + component) and post style, done once per position and content style
        instead of for every segment of every redraw (the style sums dominated drawing a cell)."""
        key = (row_index, column_index, base_style, cursor, hover, self._show_hover_cursor, self.show_cursor,
               self._pseudo_class_state)
        styles = self._position_styles.get(key)
        if styles is None:
            component_style, post_style = self._get_styles_to_render_cell(
                False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
                self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
            pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            done: dict = {}

            def styles(style, pre_style=pre_style, post_style=post_style, done=done):
                final = done.get(style, done)
                if final is done:
                    final = done[style] = next(iter(Segment.apply_style([Segment("x", style)], pre_style,
                                                                         post_style))).style
                return final
            self._position_styles[key] = styles
        return styles


class _Fallback(Exception):
    pass
