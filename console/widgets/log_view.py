"""A virtualised log: :class:`LogStore` keeps the newest ``max_lines`` event lines (app-wide, filled
by the feed even while no log is on screen) and :class:`LogView` is a line-API ScrollView (like
toolong's LogLines) that renders only the rows in view, over a filtered index of the store.

Appending is O(new lines); filtering (level, search, selection) rebuilds the index once.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import tuning
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
    low: str = ""  # line.lower(), made with the entry (off the UI loop) so searches do not re-lower 100k lines


def make_entry(e: dict) -> Entry:
    line = event_line(e)
    entry = Entry(int(e.get("id") or 0), LEVEL_INDEX.get(e.get("level") or "info", 1), _int(e.get("account_id")),
                  _str(e.get("stream")), _int(e.get("run_id")), line, line.lower())
    tuning.untrack(entry)  # entries hold only atoms: out of the collector's sight (console/tuning.py)
    return entry


def _int(v) -> int | None:
    return None if v is None else int(v)


def _str(v) -> str | None:
    return None if v is None else str(v)



class LogStore:
    """The newest ``max_lines`` lines, trimmed in chunks so appends stay O(1) amortised.

    ``levels[n]`` holds the entries of level >= n (``levels[0]`` is ``entries``), kept as lines arrive,
    so a level filter is a lookup instead of a scan of 100k lines."""

    def __init__(self, max_lines: int = 100_000):
        self.max_lines = max_lines
        self.entries: list[Entry] = []
        self.levels: list[list[Entry]] = [self.entries] + [[] for _ in LEVEL_NAMES[1:]]
        self.last_id = 0
        self.trimmed = 0
        self.appended = 0  # entries ever added (a view knows whether it has seen them all)

    def extend(self, events: Iterable[dict]) -> list[Entry]:
        return self.extend_entries([make_entry(e) for e in events if int(e.get("id") or 0) > self.last_id])

    def extend_entries(self, entries: Iterable[Entry]) -> list[Entry]:
        new = [e for e in entries if e.id > self.last_id]
        if not new:
            return []
        self.add_entries(new)
        self.last_id = new[-1].id
        return new

    def add_entries(self, new: list[Entry]) -> None:
        """Append (no check against ``last_id``) and keep the level indexes and the size limit."""
        self.entries.extend(new)
        self.appended += len(new)
        for n in range(1, len(self.levels)):
            self.levels[n].extend(e for e in new if e.level >= n)
        over = _trim(self.entries, self.max_lines)
        if over:
            self.trimmed += over
            first = self.entries[0].id
            for lst in self.levels[1:]:
                del lst[:bisect_left(lst, first, key=_id)]

    def base(self, min_level: int) -> list[Entry]:
        return self.levels[max(0, min(min_level, len(self.levels) - 1))]


def _id(e: Entry) -> int:
    return e.id


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

    @property
    def level_only(self) -> bool:
        return not self.search and self.account_id is None and self.stream is None and self.run_id is None

    def narrows(self, other: "LogFilter") -> bool:
        """True if every line this filter keeps is also kept by ``other`` (typing more of a search)."""
        return (self.min_level >= other.min_level and other.search.lower() in self.search.lower()
                and (other.account_id is None or other.account_id == self.account_id)
                and (other.stream is None or other.stream == self.stream)
                and (other.run_id is None or other.run_id == self.run_id))

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
            return not needle or needle in (e.low or e.line.lower())
        return ok

    def select(self, entries: list[Entry]) -> list[Entry]:
        """The entries this filter keeps, with the cheapest test first."""
        lvl, needle = self.min_level, self.search.lower()
        acc, stream, run = self.account_id, self.stream, self.run_id
        out = entries
        if lvl:
            out = [e for e in out if e.level >= lvl]
        if run is not None:
            out = [e for e in out if e.run_id == run]
        if acc is not None:
            out = [e for e in out if e.account_id == acc]
        if stream is not None:
            out = [e for e in out if e.stream == stream]
        if needle:
            out = [e for e in out if needle in (e.low or e.line.lower())]
        return out if out is not entries else list(entries)


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
        self.lines: list[Entry] = self.store.entries
        self.shared = True  # lines is one of the store's own lists (a level-only filter): nothing to copy
        self._width = 0
        self._seen = 0  # store.appended when lines were last brought up to date
        self._strips: dict[tuple, Strip] = {}  # rendered lines in and near view (scrolling back re-uses them)
        self.layout_passes = 0  # layout passes asked for (only when a scrollbar appears or goes)

    # -- data
    def set_filter(self, flt: LogFilter) -> None:
        """Show what ``flt`` keeps: a level is an index lookup; a narrower search filters what is shown."""
        old, self.filter = self.filter, flt
        if flt.level_only and flt.min_level < len(self.store.levels):
            self.lines, self.shared = self.store.base(flt.min_level), True
        else:
            narrower = (flt.narrows(old) and (not self.shared or old.level_only)
                        and self._seen == self.store.appended)
            source = self.lines if narrower else self.store.base(flt.min_level)
            self.lines, self.shared = flt.select(source)[-self.max_lines:], False
        self._seen = self.store.appended
        self._width = max((len(e.line) for e in self.lines[-2000:]), default=0)
        self._resize()

    def add(self, entries: list[Entry]) -> None:
        if not entries:
            return
        if self.shared:
            store = self.store
            if not store.entries or store.entries[-1].id < entries[-1].id:
                store.add_entries(entries)  # a private store: the app's store is extended before views hear
            new = [e for e in entries if e.level >= self.filter.min_level]
        else:
            new = self.filter.select(entries)
            self._seen = self.store.appended
            if not new:
                return
            self.lines.extend(new)
            _trim(self.lines, self.max_lines)
        self._seen = self.store.appended
        if new:
            self._width = max(self._width, max(len(e.line) for e in new))
        self._resize()

    def clear(self) -> None:
        self.lines, self.shared = [], False
        self._resize()

    def plain_lines(self) -> list[str]:
        return [e.line for e in self.lines]

    def _resize(self) -> None:
        if not self.is_attached:
            return
        size = Size(self._width + 1, len(self.lines))
        old = self.virtual_size
        if size != old:
            # virtual_size is a layout reactive: a layout re-renders the whole screen. Only the
            # scrollbars depend on it, so lay out only when one would appear or go.
            w, h = self.container_size
            bar = max(1, self.styles.scrollbar_size_vertical, self.styles.scrollbar_size_horizontal)
            same = all((old.width > x) == (size.width > x) for x in (w - bar, w)) and all(
                (old.height > y) == (size.height > y) for y in (h - bar, h))
            if same and old.height and h:
                self.set_reactive(LogView.virtual_size, size)
                self._sync_scrollbars(size)
            else:
                self.layout_passes += 1
                self.virtual_size = size
        if self.follow:
            self.scroll_to(y=max(0, len(self.lines) - self.scrollable_content_region.height), animate=False,
                           immediate=True)
        self.refresh()

    def _sync_scrollbars(self, size: Size) -> None:
        """What Textual does after a virtual size change in which no scrollbar appears or goes, with
        public API only: the bars' extent follows, and the scroll position stays in range."""
        w, h = self.container_size
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            bar = self.vertical_scrollbar
            bar.window_virtual_size = size.height
            bar.window_size = h - self.scrollbar_size_horizontal
            bar.refresh()
        if self.show_horizontal_scrollbar and self.styles.scrollbar_size_horizontal:
            bar = self.horizontal_scrollbar
            bar.window_virtual_size = size.width
            bar.window_size = w - self.scrollbar_size_vertical
            bar.refresh()
        self.scroll_x = self.scroll_x  # the reactives' validators clamp to the new size
        self.scroll_y = self.scroll_y

    def on_mount(self) -> None:
        self._resize()

    def on_resize(self) -> None:
        if self.follow:  # the first real size (or a new one): stick to the newest line
            self.call_after_refresh(self._resize)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._resize()

    # -- rendering
    def render_lines(self, crop):
        self._base = self.rich_style  # one DOM style lookup per repaint, not one per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        idx = scroll_y + y
        base = getattr(self, "_base", None) or self.rich_style
        if idx >= len(self.lines):
            return Strip.blank(width, base)
        e = self.lines[idx]
        key = (e.id, scroll_x, width, base, self.filter.search)
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) > 4 * max(50, self.size.height):
                self._strips.clear()
            segs = self._segments(e.line, base + _LEVEL_STYLE[e.level])
            strip = self._strips[key] = Strip(segs).crop_extend(scroll_x, scroll_x + width, base)
        return strip

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
