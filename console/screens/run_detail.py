"""One run: windows and pages over time, counters, API calls and retries, quarantined records with
their reason, and the run's events (live while it runs)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Iterable

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from .. import queries
from ..widgets import badges
from ..widgets.log_view import LogFilter, LogStore, LogView
from .base import BaseScreen
from .modals import ConfirmScreen


def timeline(events: list[dict], buckets: int = 40) -> tuple[str, str]:
    """Sparkline of pages (http calls, or 'page' events) over the run's time span, and its caption."""
    pts = [e["ts"] for e in events if e.get("kind") in ("http", "page") and isinstance(e.get("ts"), datetime)]
    if len(pts) < 2:
        return "", ""
    t0, t1 = pts[0], pts[-1]
    span = max((t1 - t0).total_seconds(), 1e-6)
    counts = [0] * buckets
    for t in pts:
        counts[min(buckets - 1, int((t - t0).total_seconds() / span * buckets))] += 1
    return badges.sparkline(counts, buckets), f"{len(pts)} pages/calls from {t0:%H:%M:%S} to {t1:%H:%M:%S}"


def summary(d: dict[str, Any], now: datetime) -> Table:
    r, http = d["run"], d.get("http") or {}
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_column(style="bold")
    t.add_column()
    dur_end = r.get("finished_at") or now
    dur = badges.human_duration((dur_end - r["started_at"]).total_seconds()) if r.get("started_at") else "-"
    status = r.get("status") or "?"
    st = {"running": "running", "succeeded": "idle", "failed": "failed", "cancelled": "paused",
          "abandoned": "failed"}.get(status, "idle")
    sym = badges.STATES[st][0]
    t.add_row("Run", f"#{r['id']} {r.get('kind')}", "Status", Text(f"{sym} {status}", style=badges.STATES[st][2]))
    t.add_row("Stream", f"{r.get('account')}/{r.get('stream')}", "Owner", r.get("owner") or "-")
    t.add_row("Started", f"{r['started_at']:%Y-%m-%d %H:%M:%S}" if r.get("started_at") else "-",
              "Duration", dur + ("" if r.get("finished_at") else " (running)"))
    t.add_row("Window", badges.window(r.get("window_from"), r.get("window_to")) or "-",
              "Windows", badges.progress_bar(r.get("windows_done") or 0, r.get("windows_total") or 0) or "-")
    t.add_row("Pages", str(r.get("pages", 0)), "API calls", f"{r.get('api_calls', 0)} ({r.get('retries', 0)} retries)")
    t.add_row("Inserted", str(r.get("records_inserted", 0)), "Updated", str(r.get("records_updated", 0)))
    t.add_row("Unchanged", str(r.get("records_unchanged", 0)), "Quarantined", str(r.get("records_quarantined", 0)))
    if http.get("calls"):
        t.add_row("HTTP", f"{http['calls']} logged, {http.get('errors') or 0} errors, {http.get('throttled') or 0} × 429",
                  "Latency", f"avg {http.get('avg_ms') or 0:.0f} ms, max {http.get('max_ms') or 0:.0f} ms")
    if r.get("error"):
        t.add_row("Error", Text(badges.one_line(r["error"], 300), style="red"), "", "")
    return t


REFRESH_S = 2.0  # reload a running run's detail at least this often
MIN_RELOAD_S = 0.5  # and at most this often (state notifies come with every checkpoint)


class RunDetailScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('summary')", "Summary"),
        Binding("2", "tab('events')", "Events"),
        Binding("3", "tab('quarantine')", "Quarantine"),
        Binding("x", "stop_run", "STOP run"),
        Binding("R", "reload", "Reload", show=False),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.data: dict[str, Any] | None = None
        self.loaded = False
        self.store = LogStore(20_000)
        self._changed = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(f"Run #{self.run_id}", id="run-title")
        with TabbedContent(id="run-tabs", initial="summary"):
            with TabPane("Summary", id="summary"):
                with VerticalScroll():
                    yield Static("Loading…", id="run-summary")
                    yield Static("", id="run-timeline")
            with TabPane("Events", id="events"):
                yield LogView(self.store, max_lines=20_000, id="run-events")
            with TabPane("Quarantine", id="quarantine"):
                yield DataTable(id="run-quarantine", cursor_type="row")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        q = self.query_one("#run-quarantine", DataTable)
        q.add_column("Record", key="key", width=24)
        q.add_column("Reason", key="reason", width=60)
        q.add_column("At", key="at", width=19)
        self.query_one(LogView).set_filter(LogFilter(run_id=self.run_id))
        self.app.events_signal.subscribe(self, self._new_entries)
        self.app.data_signal.subscribe(self, lambda _: self._changed.set())
        self.load()

    def _new_entries(self, entries: list) -> None:
        mine = self.store.extend_entries([e for e in entries if e.run_id == self.run_id])  # by id: no twice
        if mine:
            self.query_one(LogView).add(mine)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_run" and (self.data is None or self.data["run"].get("status") != "running"):
            return False
        return super().check_action(action, parameters)

    @work(exclusive=True, group="run-detail", exit_on_error=False, name="run detail")
    async def load(self) -> None:
        while True:
            try:
                d = await queries.run_detail(self.app.require_engine(), self.run_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.app.report_db_error(e)
                await asyncio.sleep(2)
                continue
            self._show(d)
            if d is None or d["run"].get("status") != "running":
                return
            await asyncio.sleep(MIN_RELOAD_S)
            self._changed.clear()  # a state notify (a checkpoint, the finish) reloads sooner than the fallback
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=REFRESH_S)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    def _show(self, d: dict[str, Any] | None) -> None:
        first = not self.loaded
        self.loaded = True
        if d is None:
            self.query_one("#run-summary", Static).update(f"Run #{self.run_id} does not exist.")
            return
        self.data = d
        r = d["run"]
        self.query_one("#run-title", Static).update(
            f"Run #{r['id']} · {r.get('account')}/{r.get('stream')} · {r.get('kind')} · {r.get('status')}")
        self.query_one("#run-summary", Static).update(summary(d, self.app.now()))
        spark, caption = timeline(d["events"])
        self.query_one("#run-timeline", Static).update(
            f"\nPages over time\n{spark}\n{caption}" if spark else "\nPages over time: not enough events yet.")
        if first:
            self.store.extend(d["events"])
            self.query_one(LogView).set_filter(LogFilter(run_id=self.run_id))
        q = self.query_one("#run-quarantine", DataTable)
        if q.row_count != len(d["quarantine"]):
            q.clear()
            for row in d["quarantine"]:
                q.add_row(row.get("record_key") or "-", badges.one_line(row["reason"], 200),
                          f"{row['created_at']:%Y-%m-%d %H:%M:%S}", key=str(row["id"]))
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("quarantine").label = f"Quarantine ({len(d['quarantine'])})"
        self.refresh_bindings()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_reload(self) -> None:
        self.load()

    def action_stop_run(self) -> None:
        if not self.data:
            return
        r = self.data["run"]
        label = f"{r.get('account')}/{r.get('stream')}"

        def go(yes: bool | None) -> None:
            if yes:
                self.app.do_action(f"STOP requested for {label}", "stop", r["account_id"], r["stream"])
                self.set_timer(1.0, self.load)
        self.app.push_screen(ConfirmScreen(f"STOP run #{r['id']} ({label})?",
                                           "It finishes its current page, saves its checkpoint and ends cancelled.",
                                           yes="STOP"), go)

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        yield ("Run detail: summary", lambda: self.action_tab("summary"), "Counters and timeline")
        yield ("Run detail: events", lambda: self.action_tab("events"), "This run's events")
        yield ("Run detail: quarantine", lambda: self.action_tab("quarantine"), "Records set aside, with reason")
        yield ("Run detail: STOP this run", self.action_stop_run, "Cooperative stop (confirm)")
        yield ("Back to the previous screen", self.action_back, "")
