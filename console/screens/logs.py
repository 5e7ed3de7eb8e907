"""Logs: the live stream of run events and HTTP request/response events, for everything or for the
dashboard's selection; follow toggle, level filter, search, export. Lines come from the app-wide
LogStore (the newest 100k), rendered virtually by LogView."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from ..widgets.log_view import LEVEL_NAMES, LogFilter, LogView
from .base import BaseScreen, set_static


class LogsScreen(BaseScreen):
    BINDINGS = [
        Binding("f", "follow", "Follow"),
        Binding("v", "level", "Level"),
        Binding("slash", "search", "Search"),
        Binding("s", "scope", "All/selection"),
        Binding("e", "export", "Export"),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "End", show=False),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="logs")
        self.min_level = 0
        self.search = ""
        self.scope: tuple[int, str, str | None] | None = None
        self._info_text = ""

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("", id="logs-info")
        yield LogView(self.app.store, max_lines=self.app.store.max_lines, id="log-view")
        yield Input(placeholder="search (enter keeps it, esc closes)", id="logs-search")
        yield from self.compose_footer()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self.query_one("#logs-search").display = False
        self.app.events_signal.subscribe(self, self._new_entries)
        self.scope = self.app.log_scope
        self._refilter()
        self.view.focus()

    def on_screen_resume(self) -> None:
        if self.scope != self.app.log_scope:
            self.apply_scope()

    def apply_scope(self) -> None:
        self.scope = self.app.log_scope
        self._refilter()

    def _new_entries(self, entries: list) -> None:
        self.view.add(entries)
        self._info()

    def _refilter(self) -> None:
        acc, stream = (self.scope[0], self.scope[2]) if self.scope else (None, None)
        self.view.set_filter(LogFilter(self.min_level, self.search, acc, stream))
        self._info()

    def _info(self) -> None:
        v = self.view
        where = "everything" if not self.scope else "/".join(x for x in (self.scope[1], self.scope[2]) if x)
        parts = [f"{len(v.lines)} lines", f"showing {where}", f"level ≥ {LEVEL_NAMES[self.min_level]}",
                 "following ▼" if v.follow else "paused ‖ (f follows)"]
        if self.search:
            parts.append(f"search “{self.search}”")
        text = " · ".join(parts)
        if text != self._info_text:
            self._info_text = text
            set_static(self.query_one("#logs-info", Static), text)

    def action_follow(self) -> None:
        self.view.follow = not self.view.follow
        self._info()

    def action_level(self) -> None:
        self.min_level = (self.min_level + 1) % len(LEVEL_NAMES)
        self._refilter()

    def action_scope(self) -> None:
        if self.scope is None and self.app.selection is None:
            self.notify("Select a stream on the dashboard first (d).", severity="warning")
            return
        self.app.log_scope = None if self.scope else self.app.selection
        self.apply_scope()

    def action_search(self) -> None:
        inp = self.query_one("#logs-search", Input)
        inp.display = True
        inp.focus()

    @on(Input.Changed, "#logs-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self._refilter()

    @on(Input.Submitted, "#logs-search")
    def _search_done(self) -> None:
        self.action_close_search()

    def action_close_search(self) -> None:
        inp = self.query_one("#logs-search", Input)
        if not inp.has_focus and inp.value:
            inp.value = ""
        inp.display = bool(inp.value)
        self.view.focus()

    def action_top(self) -> None:
        self.view.follow = False
        self.view.scroll_home(animate=False)
        self._info()

    def action_bottom(self) -> None:
        self.view.follow = True
        self.view.scroll_end(animate=False)
        self._info()

    def action_export(self) -> None:
        lines = self.view.plain_lines()
        path = Path(self.app.export_dir) / f"baysync-log-{self.app.now():%Y%m%d-%H%M%S}.log"
        self._export(lines, path)

    @work(group="export", exit_on_error=False, name="log export")
    async def _export(self, lines: list[str], path: Path) -> None:
        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        await asyncio.to_thread(write)
        self.notify(f"Exported {len(lines)} lines to {path}", timeout=6)

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        yield ("Logs: toggle follow", self.action_follow, "Stick to the newest line")
        yield ("Logs: cycle level filter", self.action_level, "debug, info, warning, error")
        yield ("Logs: search", self.action_search, "Show only lines containing text")
        yield ("Logs: everything / selection", self.action_scope, "Toggle between all events and the selection")
        yield ("Logs: export to a file", self.action_export, "Write the shown lines to a file")
