"""A virtualised log: :class:`LogStore` keeps the newest ``max_lines`` event lines (app-wide, filled
by the feed even while no log is on screen) and :class:`LogView` is a line-API ScrollView (like
toolong's LogLines) that renders only the rows in view, over a filtered index of the store.

Appending is O(new lines); filtering (level, search, selection) rebuilds the index once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .badges import event_line

LEVEL_INDEX = {"debug": 0, "info": 1, "warning": 2, "error": 3}
LEVEL_NAMES = ("debug", "info", "warning", "error")


class Entry(NamedTuple):
    id: int
    level: int
    account_id: int | None
    stream: str | None
    run_id: int | None
    line: str


def make_entry(e: dict) -> Entry:
    return Entry(int(e.get("id") or 0), LEVEL_INDEX.get(e.get("level") or "info", 1), e.get("account_id"),
                 e.get("stream"), e.get("run_id"), event_line(e))


class LogStore:
    """The newest ``max_lines`` lines, trimmed in chunks so appends stay O(1) amortised."""

    def __init__(self, max_lines: int = 100_000):
        self.max_lines = max_lines
        self.entries: list[Entry] = []
        self.last_id = 0
        self.trimmed = 0

    def extend(self, events: Iterable[dict]) -> list[Entry]:
        return self.extend_entries([make_entry(e) for e in events if int(e.get("id") or 0) > self.last_id])

    def extend_entries(self, entries: Iterable[Entry]) -> list[Entry]:
        new = [e for e in entries if e.id > self.last_id]
        if not new:
            return []
        self.entries.extend(new)
        self.last_id = new[-1].id
        _trim(self.entries, self.max_lines)
        return new


def _trim(lst: list, max_lines: int) -> int:
    over = len(lst) - max_lines
    if over > max(1, max_lines // 10):
        del lst[:over]
        return over
    return 0


@dataclass
class LogFilter:
    min_level: int = 0
    search: str = ""
    account_id: int | None = None
    stream: str | None = None
    run_id: int | None = None

    def predicate(self) -> Callable[[Entry], bool]:
        lvl, needle = self.min_level, self.search.lower()
        acc, stream, run = self.account_id, self.stream, self.run_id

        def ok(e: Entry) -> bool:
            if e.level < lvl:
                return False
            if run is not None and e.run_id != run:
                return False
            if acc is not None and e.account_id != acc:
                return False
            if stream is not None and e.stream != stream:
                return False
            return not needle or needle in e.line.lower()
        return ok


_LEVEL_STYLE = [Style(dim=True), Style(), Style(color="yellow"), Style(color="red", bold=True)]
_MATCH = Style(reverse=True)


class LogView(ScrollView, can_focus=True):
    """Renders the filtered lines of a LogStore; only visible rows are drawn."""

    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    """

    follow: reactive[bool] = reactive(True)

    def __init__(self, store: LogStore | None = None, max_lines: int = 100_000, **kw):
        super().__init__(**kw)
        self.store = store if store is not None else LogStore(max_lines)
        self.max_lines = max_lines
        self.filter = LogFilter()
        self.lines: list[Entry] = []
        self._width = 0

    # -- data
    def set_filter(self, flt: LogFilter) -> None:
        self.filter = flt
        ok = flt.predicate()
        self.lines = [e for e in self.store.entries if ok(e)][-self.max_lines:]
        self._width = max((len(e.line) for e in self.lines[-2000:]), default=0)
        self._resize()

    def add(self, entries: list[Entry]) -> None:
        ok = self.filter.predicate()
        new = [e for e in entries if ok(e)]
        if not new:
            return
        self.lines.extend(new)
        _trim(self.lines, self.max_lines)
        self._width = max(self._width, max(len(e.line) for e in new))
        self._resize()

    def clear(self) -> None:
        self.lines = []
        self._resize()

    def plain_lines(self) -> list[str]:
        return [e.line for e in self.lines]

    def _resize(self) -> None:
        if not self.is_attached:
            return
        self.virtual_size = Size(self._width + 1, len(self.lines))
        if self.follow:
            self.scroll_to(y=max(0, len(self.lines) - self.scrollable_content_region.height), animate=False,
                           immediate=True)
        self.refresh()

    def on_mount(self) -> None:
        self._resize()

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._resize()

    # -- rendering
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        idx = scroll_y + y
        base = self.rich_style
        if idx >= len(self.lines):
            return Strip.blank(width, base)
        e = self.lines[idx]
        style = base + _LEVEL_STYLE[e.level]
        segs = self._segments(e.line, style)
        return Strip(segs).crop_extend(scroll_x, scroll_x + width, base)

    def _segments(self, line: str, style: Style) -> list[Segment]:
        needle = self.filter.search.lower()
        if not needle:
            return [Segment(line, style)]
        out, low, pos = [], line.lower(), 0
        while True:
            i = low.find(needle, pos)
            if i < 0:
                out.append(Segment(line[pos:], style))
                return out
            if i > pos:
                out.append(Segment(line[pos:i], style))
            out.append(Segment(line[i:i + len(needle)], style + _MATCH))
            pos = i + len(needle)
