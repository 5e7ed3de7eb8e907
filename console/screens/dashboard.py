"""Dashboard: one row per (account, stream), live.

The rows are the state overview the data service (console/data.py) reads on every state notify (and
as a fallback poll) and hands over through ``app.watch_state``; a screen worker formats the newest
snapshot in a thread and the UI only applies the difference: ``update_cell`` for changed cells of rows
already shown, a rebuild only when the set of visible rows changes (new pairs, filter, sort or grouping).
Sorting is applied when asked for (``s``), not on every update, so rows never jump under the cursor.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Input, Static

from .. import queries
from ..widgets import badges
from ..widgets.live_table import LiveTable
from .base import BaseScreen, set_static
from .modals import BackfillScreen, ConfirmScreen

COLUMNS: list[tuple[str, str, int]] = [
    ("account", "Account", 12), ("stream", "Stream", 16), ("state", "State", 15), ("lag", "Lag", 6),
    ("records", "Records", 8), ("rate", "Rec/s", 8), ("progress", "Backfill", 12), ("last_ok", "Last ok", 10),
    ("window", "Window", 23), ("owner", "Owner", 24), ("error", "Last error", 60),
]
COL_KEYS = [c[0] for c in COLUMNS]

SORTS = ("account", "state", "lag", "records", "error")
_SEVERITY = {"failed": 0, "reauth_needed": 1, "stopping": 2, "running": 3, "queued": 4, "paused": 5, "idle": 6,
             "disabled": 7}


@dataclass(slots=True)
class Row:
    key: str
    account_id: int
    account: str
    stream: str | None
    state: str
    data: dict[str, Any]
    cells: tuple
    plain: tuple
    search: str
    lag_s: float = -1.0
    records: int = 0
    is_group: bool = False
    members: tuple = ()


def row_key(account_id: int, stream: str | None) -> str:
    return f"{account_id}:{stream or '*'}"


class RateTracker:
    """records/s per row from successive records_total readings (monotonic clock)."""

    def __init__(self, width: int = 8) -> None:
        self.width = width
        self.last: dict[str, tuple[int, float]] = {}
        self.hist: dict[str, deque] = {}

    def feed(self, key: str, total: int, t: float) -> list[float]:
        h = self.hist.get(key)
        if h is None:
            h = self.hist[key] = deque(maxlen=self.width)
        prev = self.last.get(key)
        self.last[key] = (total, t)
        if prev is not None and t > prev[1]:
            h.append(max(0.0, (total - prev[0]) / (t - prev[1])))
        return list(h)


_TEXTS: dict[tuple, Text] = {}


def _text(plain: str, style: str = "", justify=None, overflow=None) -> Text:
    """Cell Text objects, shared by value: most cells repeat (names, streams, states), and building a
    Text is most of the cost of a row. Cells are never mutated (LiveTable only reads them).
    ``overflow="ellipsis"``: a value longer than its column ends in "…" instead of being cut silently."""
    key = (plain, style, justify, overflow)
    t = _TEXTS.get(key)
    if t is None:
        if len(_TEXTS) > 10_000:
            _TEXTS.clear()
        t = _TEXTS[key] = Text(plain, style=style, justify=justify, overflow=overflow)
    return t


def build_row(r: dict[str, Any], now: datetime, rates: list[float]) -> Row:
    state = badges.display_state(r)
    running = r.get("run_id") is not None
    total, done = int(r.get("windows_total") or 0), int(r.get("windows_done") or 0)
    progress = badges.progress_bar(done, total) if total and (running or r.get("backfill_since")) else ""
    lag_s = (now - r["cursor"]).total_seconds() if r.get("cursor") else -1.0
    rate = badges.sparkline(rates)
    last_rate = rates[-1] if rates else 0.0
    cells_plain = (
        r["account"], r["stream"], state, badges.lag(r.get("cursor"), now), badges.compact(r.get("records_total")),
        rate + (f"{last_rate:.0f}" if False else ""), progress,
        badges.ago(r.get("last_success_at"), now).replace(" ago", "") if r.get("last_success_at") else "never",
        badges.window(r.get("window_from"), r.get("window_to")) if running else "",
        r.get("lease_owner") or "", badges.one_line(r.get("last_error"), 120),
    )
    # Text, never markup (an error may contain "[...]"); shared by value (lag, rate and records repeat too)
    cells = [_text(c) for c in cells_plain]
    sym, word, style = badges.STATES.get(state, ("?", state, ""))
    cells[2] = _text(f"{sym} {word}", style)
    if r.get("last_error"):  # on an idle stream it is a note (a deferred report run says until when)
        cells[10] = _text(cells_plain[10], "yellow" if r.get("status") == "idle" else "red")
    if progress:
        cells[6] = _text(progress, "cyan")
    cells[4] = _text(cells_plain[4], "", "right")
    cells[1] = _text(cells_plain[1], overflow="ellipsis")  # shipping_fulfillments is wider than the column
    search = " ".join(str(x) for x in (r["account"], r["stream"], badges.STATES.get(state, ("", state))[1],
                                        r.get("last_error") or "", r.get("lease_owner") or "")).lower()
    return Row(row_key(r["account_id"], r["stream"]), r["account_id"], r["account"], r["stream"], state, r,
               tuple(cells), cells_plain, search, lag_s, int(r.get("records_total") or 0))


def group_row(members: list[Row]) -> Row:
    first = members[0]
    counts: dict[str, int] = {}
    for m in members:
        counts[m.state] = counts.get(m.state, 0) + 1
    worst = min(counts, key=lambda s: _SEVERITY.get(s, 9))
    sym, word, style = badges.STATES.get(worst, ("?", worst, ""))
    summary = f"{sym} {counts[worst]} {word}" if worst not in ("idle",) else f"{sym} all idle"
    records = sum(m.records for m in members)
    acc = first.data
    paused = " (paused)" if acc.get("account_paused") else ""
    plain = (first.account, f"▾ {len(members)} streams{paused}", summary, "", badges.compact(records), "", "", "",
             "", "", "")
    cells = [Text(c) for c in plain]
    cells[0] = Text(first.account, style="bold")
    cells[1] = Text(plain[1], style="bold")
    cells[2] = Text(summary, style=style)
    cells[4] = Text(plain[4], justify="right")
    return Row(row_key(first.account_id, None), first.account_id, first.account, None, worst, acc, tuple(cells),
               plain, " ".join(m.search for m in members), records=records, is_group=True, members=tuple(members))


def sort_key(name: str):
    if name == "state":
        return lambda r: (_SEVERITY.get(r.state, 9), r.account, r.stream or "")
    if name == "lag":
        return lambda r: (-r.lag_s, r.account, r.stream or "")
    if name == "records":
        return lambda r: (-r.records, r.account, r.stream or "")
    if name == "error":
        return lambda r: (r.data.get("last_error_at") is None,
                          -(r.data["last_error_at"].timestamp() if r.data.get("last_error_at") else 0),
                          r.account, r.stream or "")
    return lambda r: (r.account, r.stream or "")


def compute_layout(rows: dict[str, Row], filter_text: str, sort: str, grouped: bool) -> list[Row]:
    words = filter_text.lower().split()
    out = [r for r in rows.values() if all(w in r.search for w in words)] if words else list(rows.values())
    out.sort(key=sort_key(sort))
    if not grouped:
        return out
    groups: dict[int, list[Row]] = {}
    for r in out:
        groups.setdefault(r.account_id, []).append(r)
    layout: list[Row] = []
    for members in sorted(groups.values(), key=lambda m: m[0].account):
        layout.append(group_row(members))
        layout.extend(members)
    return layout


@dataclass
class Prepared:
    version: int
    rows: dict[str, Row]
    layout: list[Row]
    changes: list[tuple[str, str, Text]] | None  # None: the set of rows changed, rebuild
    plain: dict[str, tuple]


def detail_text(row: Row | None, now: datetime) -> Text:
    if row is None:
        return Text("No stream selected.", style="dim")
    d = row.data
    t = Text()
    if row.is_group:
        t.append(f"{row.account}", style="bold")
        t.append(f" — account{' PAUSED' if d.get('account_paused') else ''}, status {d.get('account_status')}; "
                 f"{len(row.members)} streams, {badges.compact(row.records)} records. "
                 "Actions on this row apply to every stream of the account.")
        return t
    t.append(f"{row.account}/{row.stream} ", style="bold")
    t.append_text(badges.state_text(row.state))
    if d.get("run_id"):
        t.append(f" · run #{d['run_id']} {d.get('run_kind') or ''}")
        w = badges.window(d.get("window_from"), d.get("window_to"))
        if w:
            t.append(f" · window {w}")
    if d.get("windows_total"):
        t.append(f" · windows {d.get('windows_done')}/{d.get('windows_total')}")
    if d.get("backfill_since"):
        t.append(f" · backfill from {d['backfill_since']:%Y-%m-%d}")
    t.append(f" · cursor {d['cursor']:%Y-%m-%d %H:%M}" if d.get("cursor") else " · no cursor yet")
    t.append(f" · last ok {badges.ago(d.get('last_success_at'), now)}")
    if d.get("lease_owner"):
        t.append(f" · owner {d['lease_owner']}")
    if d.get("last_error"):
        style = "yellow" if d.get("status") == "idle" else "red"
        t.append("\n✗ " if style == "red" else "\n! ", style=f"bold {style}")
        t.append(badges.one_line(d["last_error"], 300), style=style)
    return t


class DashboardScreen(BaseScreen):
    BINDINGS = [
        Binding("enter", "open_run", "Run detail", show=False),
        Binding("r", "run_now", "Run now"),
        Binding("x", "stop", "STOP"),
        Binding("X", "stop_account", "STOP account", show=False),
        Binding("p", "pause", "Pause/resume"),
        Binding("P", "pause_account", "Pause/resume account", show=False),
        Binding("b", "backfill", "Backfill"),
        Binding("c", "clear_error", "Clear error", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort", show=False),
        Binding("g", "group", "Group", show=False),
        Binding("L", "logs_selection", "Logs of selection", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    filter_text: var[str] = var("")
    sort: var[str] = var("account")
    grouped: var[bool] = var(False)

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.rows: dict[str, Row] = {}
        self.row_order: list[Row] = []
        self.shown: dict[str, tuple] = {}
        self.rates = RateTracker()
        self.loaded = False
        self.polls = 0
        self.cells_updated = 0
        self.last_apply_s = 0.0
        self._arrived = asyncio.Event()
        self._snapshot = None  # the newest StateRefreshed not applied yet
        self._need_rebuild = True
        self._view_version = 0  # bumped when filter, sort or grouping change (a prepared diff is then stale)
        self._was_ok = False
        self._static_cache: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Vertical(id="dash-body"):
            yield Static("", id="dash-info")
            table = LiveTable(id="dash-table", cursor_type="row", zebra_stripes=False)
            yield table
            yield Static("", id="dash-empty")
            yield Static("", id="dash-detail")
            yield Input(placeholder="filter: words match account, stream, state, error, owner (esc closes)",
                        id="dash-filter")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one(LiveTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.query_one("#dash-filter").display = False
        self.app.status_signal.subscribe(self, self._status_changed)
        self.app.data_signal.subscribe(self, lambda _: self.poke())
        self._update_info()
        self._status_changed(self.app.status)
        self.apply_snapshots()
        self.app.watch_state(self, self._state_arrived)

    # ------------------------------------------------------------ data
    def poke(self) -> None:
        """Ask the data service for fresh rows now."""
        self.app.refresh_state()

    def _state_arrived(self, snapshot) -> None:
        self._snapshot = snapshot
        self._arrived.set()

    def _status_changed(self, st) -> None:
        msg = ""
        if not st.checked:
            msg = "Connecting to the database…"
        elif st.schema_behind:
            msg = "The dashboard is blocked until the schema is migrated (see the banner above)."
        elif self.loaded and not self.rows:
            msg = "No accounts yet. Press a for Accounts, then n to add one."
        elif not self.loaded and st.db_error is None:
            msg = "Loading…"
        elif not self.loaded:
            msg = "Waiting for the database…"
        self._set_static("#dash-empty", msg)
        self.query_one("#dash-empty").display = bool(msg)
        self.query_one("#dash-table").display = not msg
        self.query_one("#dash-detail").display = not msg
        if st.schema_ok and not self._was_ok:
            self.poke()
        self._was_ok = st.schema_ok

    @work(exclusive=True, group="dashboard-apply", exit_on_error=False)
    async def apply_snapshots(self) -> None:
        """Apply the newest snapshot: built, laid out and diffed in a thread, then the changed cells."""
        app = self.app
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            snap, self._snapshot = self._snapshot, None
            if snap is None:
                continue
            view = (self._view_version, self.filter_text, self.sort, self.grouped,
                    None if self._need_rebuild else dict(self.shown))
            prepared = await asyncio.to_thread(self._prepare, snap.rows, app.now(), snap.t, view)
            t_apply = time.perf_counter()
            self._apply_prepared(prepared)
            self.last_apply_s = time.perf_counter() - t_apply
            self.polls += 1
            if not self.loaded:
                self.loaded = True
                self._status_changed(app.status)
            app.state_applied(self.last_apply_s)

    def on_screen_resume(self) -> None:
        self.poke()

    def _build(self, raw: list[dict], now: datetime, t: float) -> dict[str, Row]:
        out: dict[str, Row] = {}
        for r in raw:
            if r.get("stream") is None:
                continue
            k = row_key(r["account_id"], r["stream"])
            out[k] = build_row(r, now, self.rates.feed(k, int(r.get("records_total") or 0), t))
        return out

    def _prepare(self, raw: list[dict], now: datetime, t: float, view: tuple) -> "Prepared":
        """In a thread: rows built, laid out and diffed against what the table shows (``view`` is a
        snapshot taken on the UI thread); the UI thread then only writes the changed cells."""
        version, filter_text, sort, grouped, shown = view
        rows = self._build(raw, now, t)
        layout = compute_layout(rows, filter_text, sort, grouped)
        if shown is None or len(shown) != len(layout) or any(r.key not in shown for r in layout):
            return Prepared(version, rows, layout, None, {})
        changes: list[tuple[str, str, Text]] = []
        plain: dict[str, tuple] = {}
        for r in layout:
            prev = shown[r.key]
            if r.plain != prev:
                changes.extend((r.key, COL_KEYS[i], r.cells[i]) for i, (a, b) in enumerate(zip(prev, r.plain))
                               if a != b)
                plain[r.key] = r.plain
        return Prepared(version, rows, layout, changes, plain)

    def _apply_prepared(self, p: "Prepared") -> None:
        if p.version != self._view_version or p.changes is None or self._need_rebuild:
            self._apply(p.rows)  # the view changed meanwhile (filter, sort, group): lay out again here
            return
        self.rows = p.rows
        self.cells_updated += self.query_one(LiveTable).update_cells(p.changes)
        self.shown.update(p.plain)
        self.row_order = p.layout
        self._after_apply()

    def _compute_layout(self) -> list[Row]:
        return compute_layout(self.rows, self.filter_text, self.sort, self.grouped)

    def _apply(self, rows: dict[str, Row]) -> None:
        self.rows = rows
        layout = self._compute_layout()
        table = self.query_one(LiveTable)
        if self._need_rebuild or {r.key for r in layout} != self.shown.keys():
            self._rebuild(layout)
        else:
            by_key = {r.key: r for r in layout}
            changes: list[tuple[str, str, Text]] = []
            for k, prev in self.shown.items():
                r = by_key[k]
                if r.plain != prev:
                    changes.extend((k, COL_KEYS[i], r.cells[i]) for i, (a, b) in enumerate(zip(prev, r.plain))
                                   if a != b)
                    self.shown[k] = r.plain
            self.cells_updated += table.update_cells(changes)
            self.row_order = [by_key[k] for k in self.shown]
        self._after_apply()

    def _after_apply(self) -> None:
        self._status_changed(self.app.status)
        self._update_detail()
        self._update_info()

    def _rebuild(self, layout: list[Row]) -> None:
        table = self.query_one(LiveTable)
        selected = self.selected_key()
        with self.app.batch_update():
            table.clear()
            for r in layout:
                table.add_row(*r.cells, key=r.key)
            self.shown = {r.key: r.plain for r in layout}
            self.row_order = layout
            self._need_rebuild = False
            if selected and selected in self.shown:
                table.move_cursor(row=table.get_row_index(selected), animate=False)

    def rebuild(self) -> None:
        self._need_rebuild = True
        self._view_version += 1
        self._apply(self.rows)

    # ------------------------------------------------------------ selection and info
    def selected_key(self) -> str | None:
        table = self.query_one(LiveTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def selected(self) -> Row | None:
        k = self.selected_key()
        if k is None:
            return None
        r = self.rows.get(k)
        if r is None:
            r = next((x for x in self.row_order if x.key == k), None)
        return r

    @on(LiveTable.RowHighlighted)
    def _highlighted(self, event: LiveTable.RowHighlighted) -> None:
        self._update_detail()

    @on(LiveTable.RowSelected)
    def _selected(self, event: LiveTable.RowSelected) -> None:
        self.action_open_run()

    def _update_detail(self) -> None:
        row = self.selected()
        self.app.selection = (row.account_id, row.account, row.stream) if row else None
        self._set_static("#dash-detail", detail_text(row, self.app.now()))

    def _update_info(self) -> None:
        n = len(self.rows)
        shown = len([r for r in self.row_order if not r.is_group])
        parts = [f"{shown} of {n} streams" if self.filter_text else f"{n} streams",
                 f"sort: {self.sort}"]
        if self.grouped:
            parts.append("grouped by account")
        if self.filter_text:
            parts.append(f"filter: “{self.filter_text}”")
        counts: dict[str, int] = {}
        for r in self.rows.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        for st in ("running", "failed", "reauth_needed", "stopping", "paused", "queued"):
            if counts.get(st):
                sym, word, _ = badges.STATES[st]
                parts.append(f"{sym} {counts[st]} {word}")
        self._set_static("#dash-info", " · ".join(parts))

    def _set_static(self, selector: str, content) -> None:
        """Update a Static only when its content changed (no needless repaint on every poll), and
        without a layout pass unless its height changes (a layout re-renders the whole screen)."""
        key = content.markup if isinstance(content, Text) else content
        if self._static_cache.get(selector) != key:
            self._static_cache[selector] = key
            set_static(self.query_one(selector, Static), content)

    # ------------------------------------------------------------ view actions
    def action_filter(self) -> None:
        inp = self.query_one("#dash-filter", Input)
        inp.display = True
        inp.focus()

    @on(Input.Changed, "#dash-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.rebuild()

    @on(Input.Submitted, "#dash-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        inp = self.query_one("#dash-filter", Input)
        inp.display = bool(inp.value)
        self.query_one(LiveTable).focus()

    def action_clear_filter(self) -> None:
        inp = self.query_one("#dash-filter", Input)
        if inp.has_focus:
            self._close_filter()
            return
        if inp.value:
            inp.value = ""
            inp.display = False
            self.filter_text = ""
            self.rebuild()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.rebuild()
        self.notify(f"Sorted by {self.sort}", timeout=2)

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self.rebuild()

    def action_logs_selection(self) -> None:
        self.app.open_logs(selection=True)

    # ------------------------------------------------------------ operator actions
    def _target(self, whole_account: bool = False) -> tuple[Row, str | None, str] | None:
        row = self.selected()
        if row is None:
            self.notify("Select a stream first.", severity="warning")
            return None
        stream = None if (whole_account or row.is_group) else row.stream
        label = row.account if stream is None else f"{row.account}/{stream}"
        return row, stream, label

    def action_open_run(self) -> None:
        t = self._target()
        if t is None:
            return
        row, stream, label = t
        if stream is None:
            self.notify("Select a stream (not the account row) to open its run.", severity="warning")
            return
        self._open_run(row.account_id, stream, label)

    @work(group="actions", exit_on_error=False)
    async def _open_run(self, account_id: int, stream: str, label: str) -> None:
        run_id = await queries.last_run_id(self.app.require_engine(), account_id, stream)
        if run_id is None:
            self.notify(f"{label} has not run yet.", severity="warning")
            return
        self.app.open_run(run_id)

    def action_run_now(self) -> None:
        t = self._target()
        if t:
            row, stream, label = t
            self.app.do_action(f"Run now requested for {label}", "run-now", row.account_id, stream)

    def action_stop(self, whole_account: bool = False) -> None:
        t = self._target(whole_account)
        if t is None:
            return
        row, stream, label = t

        def go(yes: bool | None) -> None:
            if yes:
                self.app.do_action(f"STOP requested for {label}", "stop", row.account_id, stream)
        self.app.push_screen(ConfirmScreen(f"STOP {label}?", "Running work finishes its current page, saves its "
                                           "checkpoint and ends cancelled; it resumes from there on the next run.",
                                           yes="STOP"), go)

    def action_stop_account(self) -> None:
        self.action_stop(whole_account=True)

    def action_pause(self, whole_account: bool = False) -> None:
        t = self._target(whole_account)
        if t is None:
            return
        row, stream, label = t
        paused = bool(row.data.get("account_paused")) if stream is None else bool(row.data.get("paused"))
        verb = "Resume" if paused else "Pause"
        if stream is None and not paused:
            def go(yes: bool | None) -> None:
                if yes:
                    self.app.do_action(f"Paused {label}", "pause", row.account_id, None)
            self.app.push_screen(ConfirmScreen(f"Pause every stream of {label}?",
                                               "Running streams stop after their current page.", yes="Pause"), go)
            return
        self.app.do_action(f"{verb}d {label}", "resume" if paused else "pause", row.account_id, stream)

    def action_pause_account(self) -> None:
        self.action_pause(whole_account=True)

    def action_backfill(self) -> None:
        t = self._target()
        if t is None:
            return
        row, stream, label = t
        streams = [stream] if stream else [m.stream for m in self.rows.values() if m.account_id == row.account_id]

        def go(since: datetime | None) -> None:
            if since is None:
                return
            self.app.do_action(f"Backfill of {label} from {since:%Y-%m-%d} requested", "backfill",
                               row.account_id, streams, since=since)
        self.app.push_screen(BackfillScreen(label, self.app.now().date()), go)

    def action_clear_error(self) -> None:
        t = self._target()
        if t:
            row, stream, label = t
            self.app.do_action(f"Error cleared for {label}", "clear-error", row.account_id, stream)

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        row = self.selected()
        label = "" if row is None else (row.account if row.is_group else f"{row.account}/{row.stream}")
        yield (f"Run now: {label}", self.action_run_now, "Ask a worker to run the selection now")
        yield (f"STOP: {label}", self.action_stop, "Cooperative stop of the selection (confirm)")
        yield (f"STOP whole account: {row.account if row else ''}", self.action_stop_account, "Stop every stream")
        yield (f"Pause/resume: {label}", self.action_pause, "Toggle pause of the selection")
        yield (f"Pause/resume whole account: {row.account if row else ''}", self.action_pause_account,
               "Toggle pause of the account")
        yield (f"Backfill from a date: {label}", self.action_backfill, "Re-read history from a date")
        yield (f"Clear error: {label}", self.action_clear_error, "Clear the last error and requeue")
        yield (f"Open run detail: {label}", self.action_open_run, "Windows, pages, counters, events")
        yield ("Filter the dashboard", self.action_filter, "Show only matching rows")
        yield ("Cycle the dashboard sort", self.action_sort, "account, state, lag, records, error")
        yield ("Group the dashboard by account", self.action_group, "Account rows with their streams")
        yield ("Logs of the selection", self.action_logs_selection, "Live events of the selected stream")
        for acc in sorted({r.account for r in self.rows.values()})[:500]:
            yield (f"Jump to account {acc}", lambda a=acc: self.jump_to(a), "Filter the dashboard to this account")

    def jump_to(self, account: str) -> None:
        inp = self.query_one("#dash-filter", Input)
        inp.value = account
        inp.display = True
        self.filter_text = account
        self.rebuild()
        self.query_one(LiveTable).focus()
