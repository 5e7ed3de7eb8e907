"""LiveTable: a keyed table for many live rows with a row cursor, on Textual's public line API.

A ``ScrollView`` that draws only the lines in view (``render_line`` → ``Strip``, ``virtual_size`` for the
scrollbars), as Toolong's ``LogLines`` does; no DataTable internals, no private Textual module. It keeps
the small DataTable API the console uses (``add_column``, ``add_row``, ``clear``, ``update_cell``,
``get_cell``, ``get_row_index``, ``row_count``, ``cursor_row``, ``move_cursor``,
``coordinate_to_cell_key``, ``sort``, ``remove_row``), DataTable's keyboard bindings for a row cursor and
its ``RowHighlighted`` / ``RowSelected`` messages (as ``LiveTable.RowHighlighted`` / ``RowSelected``).
Only what the dashboard needs: a row cursor, rows one line high, no fixed rows or columns, no row labels.

It draws what a stock DataTable draws, segment for segment (same component styles under
``live-table--*`` names, same cell padding, same mouse metadata), so screenshots do not change; a test
renders both side by side.

Updates: ``update_cells`` writes any number of cells and repaints once, only the changed rows that are
in view; rows are never re-added (no flicker, cursor and scroll stay).

Drawing: a one-line ``Text`` that fits its column is turned into segments directly (about 10x cheaper
than Rich's ``Styled(Padding(cell))`` pipeline, which anything else still takes). Lines are cached per
row and cells per (row, column) until ``update_cells`` changes them; anything structural (rows cleared,
removed, sorted, columns, styles) empties the caches. Fixed-width columns are never measured.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable, NamedTuple

from rich.cells import set_cell_size
from rich.measure import Measurement
from rich.padding import Padding
from rich.protocol import is_renderable
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.renderables.styled import Styled
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets.data_table import (CellDoesNotExist, CellKey, ColumnKey, DuplicateKey, RowDoesNotExist, RowKey,
                                        StringKey)

_JOIN = Text("\n")


def _key(key: Any) -> Any:
    return key.value if isinstance(key, StringKey) else key


class _Column(NamedTuple):
    key: str
    label: Text
    width: int  # content width (without padding)
    auto: bool


class _Frame(NamedTuple):
    """Everything a line depends on besides its row and the cursor: styles, widths. A change empties the caches."""
    base: Style
    header: Style
    cursor: Style
    hover: Style
    header_hover: Style
    even: Style | None
    odd: Style | None
    widths: tuple
    padding: int
    show_header: bool


class LiveTable(ScrollView, can_focus=True):
    fast_cells = 0  # cells drawn by the fast path (tests check that it is used)
    fast_lines = 0  # lines assembled (tests count them)

    BINDINGS: ClassVar[list[BindingType]] = [  # DataTable's, for a row cursor
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "cursor_right", "Cursor right", show=False),  # a row cursor: scrolls
        Binding("left", "cursor_left", "Cursor left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "scroll_top", "Top", show=False),
        Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("home", "scroll_home", "Home", show=False),
        Binding("end", "scroll_end", "End", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--cursor", "live-table--hover", "live-table--header", "live-table--header-hover",
        "live-table--odd-row", "live-table--even-row",
    }

    # DataTable's DEFAULT_CSS (Textual 8.2) for the parts a row cursor uses, under LiveTable's names
    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;

        &:focus {
            background-tint: $foreground 5%;
            & > .live-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .live-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark {
            & > .live-table--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .live-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .live-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .live-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .live-table--header-hover {
            background: $accent 30%;
        }
        & > .live-table--hover {
            background: $block-hover-background;
        }
    }
    """

    class _RowMessage(Message):
        def __init__(self, table: "LiveTable", cursor_row: int, row_key: RowKey) -> None:
            self.data_table = table
            self.cursor_row = cursor_row
            self.row_key = row_key
            super().__init__()

        @property
        def control(self) -> "LiveTable":
            return self.data_table

    class RowHighlighted(_RowMessage):
        """The cursor moved to a row (also when the first row appears)."""

    class RowSelected(_RowMessage):
        """Enter (or a click on the cursor row) on a row."""

    def __init__(self, *, cursor_type: str = "row", zebra_stripes: bool = False, show_header: bool = True,
                 show_cursor: bool = True, cell_padding: int = 1, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        if cursor_type != "row":
            raise ValueError("LiveTable has a row cursor only")
        self.cursor_type = cursor_type
        self.zebra_stripes = zebra_stripes
        self.show_header = show_header
        self.show_cursor = show_cursor
        self.cell_padding = max(0, cell_padding)
        self._cols: list[_Column] = []
        self._col_index: dict[str, int] = {}
        self._keys: list[Any] = []  # row keys in display order
        self._index: dict[Any, int] = {}  # row key -> position
        self._cells: dict[Any, list] = {}  # row key -> cells in column order
        self._auto_keys = 0
        self._cursor = 0
        self._hover = -1  # row under the mouse (shown only after a mouse move, as DataTable does)
        self._show_hover = False
        self._size_due = False
        self._frame: _Frame | None = None  # during a repaint
        self._frame_sig: _Frame | None = None  # the frame the caches belong to
        self._line_slots: dict[Any, dict[tuple, Strip]] = {}  # row -> {(index, x, width, cursor, hover): line}
        self._cell_slots: dict[tuple, tuple[object, dict]] = {}  # (row, column) -> (cell, {variant: segments})
        self._position_styles: dict[tuple, Any] = {}  # (row, column, row style, cursor, hover) -> style map
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)  # after the caches: it may restyle

    # ------------------------------------------------------------------ the DataTable API the console uses
    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_coordinate(self) -> Coordinate:
        return Coordinate(self._cursor, 0)

    def add_column(self, label: str | Text, *, width: int | None = None, key: str | None = None,
                   default: Any = None) -> ColumnKey:
        key = _key(key) if key is not None else f"column-{len(self._cols)}"
        if key in self._col_index:
            raise DuplicateKey(f"The column key {key!r} already exists.")
        label = Text.from_markup(label) if isinstance(label, str) else label
        auto = width is None
        self._col_index[key] = len(self._cols)
        self._cols.append(_Column(key, label, label.cell_len if width is None else width, auto))
        for cells in self._cells.values():
            cells.append(default)
        if auto:
            for cells in self._cells.values():
                self._grow(len(self._cols) - 1, cells[-1])
        self._structure_changed()
        return ColumnKey(key)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        if height != 1 or label is not None:
            raise ValueError("LiveTable rows are one line high and have no labels")
        if key is None:
            self._auto_keys += 1
            key = f"\0row-{self._auto_keys}"
        key = _key(key)
        if key in self._index:
            raise DuplicateKey(f"The row key {key!r} already exists.")
        if len(cells) > len(self._cols):
            raise ValueError("More values provided than there are columns.")
        row = list(cells)
        row.extend([None] * (len(self._cols) - len(row)))
        self._index[key] = len(self._keys)
        self._keys.append(key)
        self._cells[key] = row
        for i, col in enumerate(self._cols):
            if col.auto:
                self._grow(i, row[i])
        self._size_changed()
        if len(self._keys) == 1 and self._cols and self.show_cursor:
            self._cursor = 0
            self._highlighted()
        self._refresh_indexes((len(self._keys) - 1,))
        return RowKey(key)

    def remove_row(self, row_key: Any) -> None:
        key = self._row(row_key)
        del self._cells[key]
        self._keys.remove(key)
        self._index = {k: i for i, k in enumerate(self._keys)}
        self._structure_changed()
        self._set_cursor(self._cursor)

    def clear(self, columns: bool = False) -> "LiveTable":
        self._keys, self._index, self._cells = [], {}, {}
        if columns:
            self._cols, self._col_index = [], {}
        self._cursor = 0
        self._hover = -1
        self._structure_changed()
        self.scroll_to(0, 0, animate=False, force=True)
        return self

    def sort(self, *columns: Any, key: Any = None, reverse: bool = False) -> "LiveTable":
        idx = [self._column(c) for c in columns]

        def sort_key(row_key):
            cells = self._cells[row_key]
            value = (cells[idx[0]] if len(idx) == 1 else tuple(cells[i] for i in idx)) if idx else tuple(cells)
            return key(value) if key is not None else value
        self._keys.sort(key=sort_key, reverse=reverse)
        self._index = {k: i for i, k in enumerate(self._keys)}
        self._structure_changed()
        return self

    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        self.update_cells([(row_key, column_key, value)])

    def update_cells(self, changes: Iterable[tuple[Any, Any, Any]]) -> int:
        """Write cells (row key, column key, value) and repaint once: only the changed rows in view."""
        n = 0
        rows: set = set()
        cells_of, col_index, cell_slots = self._cells, self._col_index, self._cell_slots
        auto = any(c.auto for c in self._cols)
        try:
            for row, col, value in changes:
                if type(row) is not str:
                    row = _key(row)
                try:
                    ci = col_index[col if type(col) is str else _key(col)]
                    cells_of[row][ci] = value
                except KeyError:
                    raise CellDoesNotExist(f"No cell exists for row_key={row!r}, column_key={col!r}.") from None
                cell_slots.pop((row, ci), None)
                rows.add(row)
                if auto and self._cols[ci].auto:
                    self._grow(ci, value)
                n += 1
        finally:  # what was written is shown, even if a later key was wrong
            for rk in rows:
                self._line_slots.pop(rk, None)
            self._refresh_rows(rows)
        return n

    def get_cell(self, row_key: Any, column_key: Any) -> Any:
        try:
            return self._cells[_key(row_key)][self._col_index[_key(column_key)]]
        except KeyError:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.") from None

    def get_row(self, row_key: Any) -> list:
        return list(self._cells[self._row(row_key)])

    def get_row_index(self, row_key: Any) -> int:
        return self._index[self._row(row_key)]

    def get_cell_at(self, coordinate: Coordinate) -> Any:
        row, column = coordinate
        if not (0 <= row < len(self._keys) and 0 <= column < len(self._cols)):
            raise CellDoesNotExist(f"No cell exists at {coordinate!r}.")
        return self._cells[self._keys[row]][column]

    def coordinate_to_cell_key(self, coordinate: Coordinate | tuple[int, int]) -> CellKey:
        row, column = coordinate
        if not (0 <= row < len(self._keys) and 0 <= column < len(self._cols)):
            raise CellDoesNotExist(f"No cell exists at {coordinate!r}.")
        return CellKey(RowKey(self._keys[row]), ColumnKey(self._cols[column].key))

    def move_cursor(self, *, row: int | None = None, column: int | None = None, animate: bool = False,
                    scroll: bool = True) -> None:
        if row is not None:
            self._set_cursor(row, scroll=scroll, animate=animate, always_scroll=True)

    # ------------------------------------------------------------------ keys, mouse
    def action_cursor_up(self) -> None:
        self._hide_hover()
        self._set_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._hide_hover()
        self._set_cursor(self._cursor + 1)

    def action_page_down(self) -> None:  # as DataTable: scroll a page, cursor a page further
        self._hide_hover()
        height = self._page_height()
        target = self._cursor + min(height + 1, len(self._keys) - self._cursor) - 1
        self.scroll_relative(y=height, animate=False, force=True)
        self._set_cursor(target, scroll=False)

    def action_page_up(self) -> None:
        self._hide_hover()
        height = self._page_height()
        target = self._cursor - min(height + 1, self._cursor + 1) + 1
        self.scroll_relative(y=-height, animate=False)
        self._set_cursor(target, scroll=False)

    def action_scroll_top(self) -> None:
        self._hide_hover()
        self._set_cursor(0)

    def action_scroll_bottom(self) -> None:
        self._hide_hover()
        self._set_cursor(len(self._keys) - 1)

    def action_scroll_home(self) -> None:
        self._hide_hover()
        self.scroll_x = 0

    def action_scroll_end(self) -> None:
        self._hide_hover()
        self.scroll_x = self.max_scroll_x

    def action_cursor_left(self) -> None:
        self._hide_hover()
        self.action_scroll_left()

    def action_cursor_right(self) -> None:
        self._hide_hover()
        self.action_scroll_right()

    def action_select_cursor(self) -> None:
        self._hide_hover()
        if self.show_cursor and self._keys:
            self.post_message(LiveTable.RowSelected(self, self._cursor, RowKey(self._keys[self._cursor])))

    def on_click(self, event: events.Click) -> None:
        self._show_hover = True
        row = event.style.meta.get("row") if event.style.meta else None
        if row is None or row < 0 or row >= len(self._keys) or not self.show_cursor:
            return
        again = row == self._cursor
        self._set_cursor(row, animate=True)
        if again:
            self.post_message(LiveTable.RowSelected(self, row, RowKey(self._keys[row])))
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = event.style.meta.get("row") if event.style.meta else None
        old, old_shown = self._hover, self._show_hover
        self._show_hover = row is not None
        if row is not None:
            self._hover = row
        if (old, old_shown) != (self._hover, self._show_hover):
            self._refresh_indexes((old, self._hover))

    def on_leave(self, event: events.Leave) -> None:
        self._hide_hover()

    def _hide_hover(self) -> None:
        if self._show_hover:
            self._show_hover = False
            self._refresh_indexes((self._hover,))

    # ------------------------------------------------------------------ cursor, size, repaint
    def _row(self, row_key: Any) -> Any:
        key = _key(row_key)
        if key not in self._index:
            raise RowDoesNotExist(f"Row key {row_key!r} is not valid.")
        return key

    def _column(self, column_key: Any) -> int:
        return self._col_index[_key(column_key)]

    def _set_cursor(self, row: int, *, scroll: bool = True, animate: bool = False,
                    always_scroll: bool = False) -> None:
        """Move the cursor (clamped to the rows); as DataTable, a move repaints the two rows, posts
        RowHighlighted and scrolls the cursor into view (``move_cursor`` scrolls even without a move)."""
        row = max(0, min(row, len(self._keys) - 1))
        old, self._cursor = self._cursor, row
        if old != row:
            self._refresh_indexes((old, row))
            self._highlighted()
        if scroll and (old != row or always_scroll):
            if self._size_due:
                self.call_after_refresh(self._scroll_to_cursor, animate)
            else:
                self._scroll_to_cursor(animate)

    def _highlighted(self) -> None:
        if self._cursor < len(self._keys):
            self.post_message(LiveTable.RowHighlighted(self, self._cursor, RowKey(self._keys[self._cursor])))

    def _header_height(self) -> int:
        return 1 if self.show_header else 0

    def _page_height(self) -> int:
        return self.scrollable_content_region.height - self._header_height()

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        top = int(self.scroll_y)
        height = self._page_height()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=animate, force=True)
        elif height > 0 and self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=animate, force=True)

    def _table_width(self) -> int:
        return sum(c.width for c in self._cols) + 2 * self.cell_padding * len(self._cols)

    def _size_changed(self) -> None:
        """The virtual size follows the rows on the next idle moment (one layout for many added rows)."""
        if not self._size_due:
            self._size_due = True
            self.call_later(self._update_size)

    def _update_size(self) -> None:
        self._size_due = False
        size = Size(self._table_width(), len(self._keys) + self._header_height())
        if size != self.virtual_size:
            self.virtual_size = size

    def on_mount(self) -> None:
        self._update_size()

    def _structure_changed(self) -> None:
        self._clear_live_caches()
        self._size_changed()
        self.refresh()

    def _grow(self, column: int, cell: Any) -> None:
        col = self._cols[column]
        width = _measure(self, cell)
        if width > col.width:
            self._cols[column] = col._replace(width=width)
            self._clear_live_caches()
            self._size_changed()

    def _refresh_indexes(self, indexes: Iterable[int]) -> None:
        """Repaint rows by position (-1: the header) if they are in view."""
        top, scroll_y, height = self._header_height(), int(self.scroll_y), self.size.height
        ys = {(0 if top else -1) if i < 0 else top + i - scroll_y for i in indexes}
        regions = [Region(0, y, self.size.width, 1) for y in ys if (y == 0 and top) or top <= y < height]
        if regions:
            self.refresh(*regions)

    def _refresh_rows(self, rows: set) -> None:
        """Repaint only the changed rows that are in view (everything if they are many)."""
        index = self._index
        top, scroll_y, height = self._header_height(), int(self.scroll_y), self.size.height
        ys = [y for y in (top + index[k] - scroll_y for k in rows if k in index) if top <= y < height]
        if len(ys) > height // 2:
            self.refresh()
        elif ys:
            width = self.size.width
            self.refresh(*[Region(0, y, width, 1) for y in ys])

    # ------------------------------------------------------------------ drawing
    def notify_style_update(self) -> None:
        self._clear_live_caches()
        super().notify_style_update()

    def _clear_live_caches(self) -> None:
        self._line_slots.clear()
        self._cell_slots.clear()
        self._position_styles.clear()

    def _make_frame(self) -> _Frame:
        style = self.get_component_rich_style
        zebra = self.zebra_stripes
        pad = self.cell_padding
        return _Frame(self.rich_style, style("live-table--header"), style("live-table--cursor"),
                      style("live-table--hover"), style("live-table--header-hover"),
                      style("live-table--even-row") if zebra else None,
                      style("live-table--odd-row") if zebra else None,
                      tuple(c.width + 2 * pad for c in self._cols), pad, self.show_header)

    def render_lines(self, crop: Region) -> list[Strip]:
        frame = self._make_frame()
        if frame != self._frame_sig:
            self._frame_sig = frame
            self._clear_live_caches()
        elif (len(self._line_slots) > 4 * max(50, self.size.height)
              or len(self._position_styles) > 40 * max(50, self.size.height)):
            self._prune()
        self._frame = frame  # one DOM style lookup per repaint, not one per line
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        frame = self._frame or self._make_frame()
        if frame != self._frame_sig:
            self._frame_sig = frame
            self._clear_live_caches()
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        header = 1 if frame.show_header else 0
        if y < header:
            return self._line(-1, scroll_x, width, frame)
        index = y - header + scroll_y
        if index >= len(self._keys):
            return Strip.blank(width, frame.base)
        return self._line(index, scroll_x, width, frame)

    def _prune(self) -> None:
        """Keep the caches to the rows in and near view (scrolled-away rows would keep thousands of
        cells of segments alive for the garbage collector to walk)."""
        h = max(50, self.size.height)
        first = max(0, int(self.scroll_y) - h)
        keep = set(self._keys[first:first + 3 * h])
        self._line_slots = {k: v for k, v in self._line_slots.items() if k in keep}
        self._cell_slots = {k: v for k, v in self._cell_slots.items() if k[0] in keep}
        rows = range(first, first + 3 * h)
        self._position_styles = {k: v for k, v in self._position_styles.items() if k[0] in rows}

    def _line(self, index: int, x1: int, width: int, frame: _Frame) -> Strip:
        """One line of the table (``index`` -1: the header), as DataTable's ``_render_line`` draws it for a
        row cursor, cached per row until one of its cells changes."""
        header = index < 0
        key = None if header else self._keys[index]
        show = self.show_cursor
        cursor = show and not header and index == self._cursor
        hover = show and self._show_hover and index == self._hover  # the header too, as DataTable
        variant = (index, x1, width, cursor, hover)
        slot = self._line_slots.get(key)
        if slot is None:
            slot = self._line_slots[key] = {}
        else:
            strip = slot.get(variant)
            if strip is not None:
                return strip
        if header:
            row_style = frame.header
            cells = [c.label for c in self._cols]
        else:
            stripe = frame.odd if index % 2 else frame.even  # None unless zebra_stripes (see _make_frame)
            row_style = frame.base if stripe is None else stripe
            cells = self._cells[key]
        segments: list[Segment] = []
        cell_slots = self._cell_slots
        cell_variant = (index, cursor, hover)
        for column, (cell, column_width) in enumerate(zip(cells, frame.widths)):
            cached = cell_slots.get((key, column))
            if cached is not None and cached[0] is cell:
                lines = cached[1].get(cell_variant)
                if lines is not None:
                    segments.extend(lines)
                    continue
            segments.extend(self._cell(key, index, column, cell, row_style, column_width, cursor, hover, frame))
        extend_style = row_style + self._component(cursor, hover, frame, header) + Style.from_meta(
            {"row": index, "column": 0, "out_of_bounds": True})
        table_width = sum(frame.widths)
        segments.append(Segment(" " * max(0, width - table_width), extend_style))
        # DataTable's crop, adjust_cell_length and simplify, on the list: one Strip made, not four
        segments = _crop_line(segments, x1, width, max(width, table_width), frame.base)
        strip = slot[variant] = Strip(Segment.simplify(segments), width)
        LiveTable.fast_lines += 1
        return strip

    @staticmethod
    def _component(cursor: bool, hover: bool, frame: _Frame, header: bool = False) -> Style:
        style = Style()
        if hover:
            style += frame.hover
            if header:
                style += frame.header_hover
        if cursor:
            style += frame.cursor
        return style

    def _cell(self, key: Any, index: int, column: int, cell: Any, row_style: Style, width: int, cursor: bool,
              hover: bool, frame: _Frame) -> list[Segment]:
        slot = self._cell_slots.get((key, column))
        if slot is None or slot[0] is not cell:
            slot = self._cell_slots[key, column] = (cell, {})
        segments = _fast_segments(self, cell, width, frame.padding)
        if segments is None:  # anything else: Rich's pipeline, exactly as DataTable renders a cell
            component = self._component(cursor, hover, frame, index < 0)
            post = Style.from_color(component.color) + Style.null()
            pre = row_style + Style.from_meta({"row": index, "column": column}) + component
            options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
            line = self.app.console.render_lines(
                Styled(Padding(_renderable(cell), (0, frame.padding)), pre_style=pre, post_style=post), options)[0]
        else:
            styles = self._cell_styles(index, column, row_style, cursor, hover, frame)
            line = [Segment(text, styles(style)) for text, style, _ in segments]
            LiveTable.fast_cells += 1
        slot[1][index, cursor, hover] = line
        return line

    def _cell_styles(self, index: int, column: int, row_style: Style, cursor: bool, hover: bool, frame: _Frame):
        """The final style of each content style in a cell: ``Segment.apply_style`` with the cell's pre style
        (row style + its row/column meta + cursor/hover) and post style, done once per position and content
        style instead of for every segment of every redraw (the style sums dominated drawing a cell)."""
        key = (index, column, row_style, cursor, hover)
        styles = self._position_styles.get(key)
        if styles is None:
            component = self._component(cursor, hover, frame, index < 0)
            post_style = Style.from_color(component.color) + Style.null()
            pre_style = row_style + Style.from_meta({"row": index, "column": column}) + component
            done: dict = {}

            def styles(style, pre_style=pre_style, post_style=post_style, done=done):
                final = done.get(style, done)
                if final is done:
                    final = done[style] = next(iter(Segment.apply_style([Segment("x", style)], pre_style,
                                                                         post_style))).style
                return final
            self._position_styles[key] = styles
        return styles


def _crop_line(segments: list[Segment], x1: int, width: int, total: int, base: Style) -> list[Segment]:
    """What DataTable does to a line of ``total`` cells scrolled by ``x1`` (``line_crop(segments, x1, x1 +
    width, width)``, then ``Strip.adjust_cell_length(width, base)``), on a list of segments."""
    if x1:
        pos = 0
        for i, segment in enumerate(segments):
            end = pos + segment.cell_length
            if end > x1:
                first = segment.split_cells(x1 - pos)[1]
                segments = ([first] if first else []) + segments[i + 1:]
                break
            pos = end
        else:
            segments = []
        total = max(0, total - x1)
    if total < width:
        return segments + [Segment(" " * (width - total), base)]
    if total > width:
        out, length = [], 0
        for segment in segments:
            n = segment.cell_length
            if length + n < width:
                out.append(segment)
                length += n
            else:
                out.append(Segment(set_cell_size(segment.text, width - length), segment.style))
                break
        return out
    return segments


def _renderable(cell: Any):
    """DataTable's cell formatting for a row one line high (``default_cell_formatter``)."""
    if cell is None:
        return Text()
    if isinstance(cell, str):
        text = Text.from_markup(cell.split("\n", 1)[0], end="")
        text.no_wrap = True
        return text or Text()
    if isinstance(cell, float):
        return Text(f"{cell:.2f}", no_wrap=True, end="")
    if not is_renderable(cell):
        return Text(str(cell).split("\n", 1)[0], no_wrap=True, end="") or Text()
    return cell or Text()


def _measure(table: LiveTable, cell: Any) -> int:
    r = _renderable(cell)
    if isinstance(r, Text):
        return r.cell_len
    return Measurement.get(table.app.console, table.app.console.options, r).maximum


def _fast_segments(table: LiveTable, cell: Any, width: int, pad: int) -> list[Segment] | None:
    """The unstyled segments Rich's ``Padding(Text)`` gives a one-line ``Text`` that fits its column (the
    dashboard's cells), or None for anything else."""
    if type(cell) is not Text:
        return None
    plain = cell.plain
    inner = width - 2 * pad
    justify = cell.justify
    spans = cell.spans
    if (inner < 0 or "\n" in plain or "\t" in plain or cell.cell_len > inner
            or justify not in (None, "default", "left", "right")
            or (justify in ("left", "right") and cell.style)
            or (justify == "right" and (plain.endswith(" ") or spans))):
        return None
    console = table.app.console
    if spans:
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
    return line
