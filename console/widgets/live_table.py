"""A DataTable that applies many changed cells with one repaint.

``update_cell`` repaints the whole widget per call; with 1,600 live rows a refresh can change
thousands of cells, so ``update_cells`` writes them all and refreshes once. Only the given cells
change; rows are never re-added (no flicker, cursor and scroll stay)."""

from __future__ import annotations

from typing import Iterable

from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey


class LiveTable(DataTable):
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
            self.refresh()
        return n
