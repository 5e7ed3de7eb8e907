"""The baysync operations console (Textual).

``make_app()`` builds the App (the CLI, the demo, the tests and the benchmark share it);
``run_console()`` runs it in the terminal. The App keeps only global concerns: navigation bindings,
the command palette, the data service (console/data.py: LISTEN, event feed, state overview and status
checks in one worker), the optional in-console worker pool, and one place where a failed worker
becomes an error dialog. Each screen owns its bindings and handlers.

The API screens and widgets use (nothing else of the App):

* data: ``status`` (AppStatus) and ``status_signal``; ``watch_state(screen, callback)`` (the state
  overview, while the screen is shown) with ``refresh_state()`` and ``state_applied(seconds)``;
  ``events_signal`` and ``store`` (log entries); ``data_signal`` (pairs or accounts changed: refresh);
  ``engine`` (None until the data service has opened the database) and ``require_engine()`` (the engine, or
  ``NoDatabase``) for the screen's own reads (console/queries.py); ``report_db_error(e)``, ``poke_status()``.
* actions: ``do_action(done, action, account_id, stream, **kw)`` (one sync_core.control request),
  ``read_only``, ``settings``, ``url`` (migrate), ``export_dir``.
* navigation and context: ``now()``, ``selection``, ``log_scope``, ``open_logs()``, ``open_run()``,
  ``handle_worker_state()``, the ``action_*`` of the bindings, and Textual's own (push_screen, notify, ...).
  ``SCREEN_API`` lists these names; a test keeps screens, widgets and the palette to it.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from sync_core import __version__, control, db

from . import tuning
from .commands import BaysyncCommands
from .data import DataService
from .messages import AppStatus, DataChanged, DbStatus, EventsArrived, SchemaChecked, StateRefreshed
from .screens.accounts import AccountsScreen
from .screens.dashboard import DashboardScreen
from .screens.help import HelpScreen
from .screens.logs import LogsScreen
from .screens.migrations import MigrationsScreen
from .screens.modals import ConfirmScreen, ErrorScreen
from .screens.run_detail import RunDetailScreen
from .widgets.log_view import Entry, LogStore, make_entry

if TYPE_CHECKING:
    from sync_core.config import Settings

NAV_ACTIONS = {"show", "help", "toggle_workers", "command_palette"}

# What screens and widgets may use of this App besides Textual's own App API (see the module docstring
# and docs/console.md; tests/console/test_console_data.py checks the screens keep to it).
SCREEN_API = frozenset({
    "status", "status_signal", "watch_state", "refresh_state", "state_applied", "events_signal", "store",
    "data_signal", "engine", "require_engine", "report_db_error", "not_done_if_unreachable", "poke_status",
    "do_action", "read_only",
    "settings", "url", "export_dir", "now", "selection", "log_scope", "open_logs", "open_run", "handle_worker_state",
})


def _entries(rows: list[dict]) -> list[Entry]:
    return [make_entry(r) for r in rows]


def _db_label(url: str, embedded: bool) -> str:
    try:
        u = make_url(url)
    except Exception:
        return "?"
    if embedded:
        return f"embedded/{u.database}"
    return f"{u.host or 'local'}{':' + str(u.port) if u.port else ''}/{u.database}"


class NoDatabase(ConnectionError):
    """The console has no database engine (yet): the URL could not be resolved, or the data service has
    not opened it. A ConnectionError, so ``db.is_retryable`` treats it as the database being unreachable:
    screens report it like an outage (``report_db_error``) instead of failing on None."""


class BaysyncApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "baysync"
    COMMANDS = {BaysyncCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    MODES = {
        "dashboard": DashboardScreen,
        "logs": LogsScreen,
        "migrations": MigrationsScreen,
        "accounts": AccountsScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        Binding("d", "show('dashboard')", "Dashboard", show=False),
        Binding("l", "show('logs')", "Logs"),
        Binding("m", "show('migrations')", "Migrations", show=False),
        Binding("a", "show('accounts')", "Accounts", show=False),
        Binding("w", "toggle_workers", "Workers here", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, settings: Settings, *, read_only: bool = False, engine: AsyncEngine | None = None,
                 worker_pool_factory: Callable[[], Any] | None = None, demo_info: Any = None,
                 url: str | None = None, clock: Callable[[], datetime] | None = None, db_label: str | None = None,
                 poll_interval: float = 1.0, min_refresh_s: float = 0.2, status_interval: float = 3.0,
                 log_backlog: int = 2000, max_log_lines: int = 100_000, feed: bool = True,
                 export_dir: Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.read_only = read_only
        self.engine: AsyncEngine | None = engine
        self._own_engine = engine is None
        self.url = url or (engine.url.render_as_string(hide_password=False) if engine is not None else None)
        self.worker_pool_factory = worker_pool_factory
        self.pool: Any = None
        self.clock = clock
        self.poll_interval, self.min_refresh_s, self.status_interval = poll_interval, min_refresh_s, status_interval
        self.log_backlog = log_backlog
        self.feed_enabled = feed
        self.export_dir = export_dir or Path(getattr(settings, "home", Path.cwd())) / "exports"
        self.store = LogStore(max_log_lines)
        self.selection: tuple[int, str, str | None] | None = None
        self.log_scope: tuple[int, str, str | None] | None = None
        demo = demo_info if isinstance(demo_info, str) or demo_info is None else (
            demo_info.get("label") if isinstance(demo_info, dict) else str(demo_info))
        self.status = AppStatus(version=__version__, read_only=read_only, demo=demo)
        self._db_label_override = db_label
        self.status_signal: Signal[AppStatus] = Signal(self, "status")
        self.events_signal: Signal[list] = Signal(self, "events")
        self.data_signal: Signal[None] = Signal(self, "data")
        self.state_signal: Signal[StateRefreshed] = Signal(self, "state")
        self.data: DataService | None = None
        self._state_watchers: list[Any] = []
        self.tuning = tuning.Tuning()  # GC and switch interval (console/tuning.py; BAYSYNC_CONSOLE_TUNING=off)
        self.last_input = 0.0  # time.monotonic() of the last key or mouse press

    # ------------------------------------------------------------ lifecycle
    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(timezone.utc)

    def on_mount(self) -> None:
        self.tuning.start()
        self.run_data()

    GC_IDLE_S, GC_DUE, GC_FORCE = tuning.GC_IDLE_S, tuning.GC_DUE, tuning.GC_FORCE

    @property
    def full_collections(self) -> int:
        return self.tuning.full_collections

    def freeze_gc(self) -> None:
        """After the first load: freeze what is alive and defer full collections to idle moments
        (``Tuning.freeze``; nothing when tuning is off)."""
        if self.tuning.freeze():
            self.set_interval(0.25, self.collect_when_idle, name="idle gc")

    def collect_when_idle(self) -> bool:
        return self.tuning.collect_when_idle(self.last_input)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.last_input = time.monotonic()
        await super().on_event(event)

    async def on_unmount(self) -> None:
        self.tuning.stop()
        await self._stop_pool_now()
        if self._own_engine and self.engine is not None:
            await self.engine.dispose()

    def require_engine(self) -> AsyncEngine:
        """The engine for a read or an action; ``NoDatabase`` (with the database error shown, if any) while
        there is none, e.g. the database URL could not be resolved at start."""
        if self.engine is None:
            raise NoDatabase(self.status.db_error or "the console has not opened the database yet")
        return self.engine

    def publish_status(self) -> None:
        self.status_signal.publish(self.status)

    def report_db_error(self, e: BaseException | str) -> None:
        """A screen's own read failed: show it, and let the data service check (and retry) now."""
        msg = e if isinstance(e, str) else db.describe(e)
        if self.status.db_error != msg:
            self.status.db_error = msg
            self.publish_status()
        self.poke_status()

    def not_done_if_unreachable(self, e: BaseException, what: str = "Not done") -> bool:
        """A user's action failed with ``e``: if the database is unreachable (or not open yet), say so where
        the user looks (a notification: the action was not done, try again) besides the banner, and return
        True; any other error is the caller's to raise (it becomes the error dialog)."""
        if not db.is_retryable(e):
            return False
        self.report_db_error(e)
        self.notify(f"{what}: the database is unreachable ({db.describe(e)}). Try again.", severity="error",
                    timeout=8)
        return True

    def poke_status(self) -> None:
        if self.data is not None:
            self.data.poke_status()

    # ------------------------------------------------------------ the data service
    def watch_state(self, screen: Any, callback: Callable[[StateRefreshed], None]) -> None:
        """``callback(StateRefreshed)`` with each new state overview while ``screen`` is shown."""
        self.state_signal.subscribe(screen, callback)
        self._state_watchers.append(screen)
        self.refresh_state()

    def _state_wanted(self) -> bool:
        stack = self.screen_stack
        return any(s in stack for s in self._state_watchers)

    def refresh_state(self) -> None:
        """Read the state overview now (e.g. the dashboard is shown again)."""
        if self.data is not None:
            self.data.refresh_state()

    def state_applied(self, seconds: float) -> None:
        """A watcher applied a snapshot in ``seconds`` of UI time: the next read waits 4x that (or
        min_refresh_s) so refreshing never hogs the UI, and the fallback poll counts from now. The first
        one also freezes the GC (tuning)."""
        if self.data is not None:
            self.data.applied(seconds)
        self.freeze_gc()

    @work(exclusive=True, group="data", exit_on_error=False, name="data service")
    async def run_data(self) -> None:
        if self.engine is None:
            try:
                self.url = self.url or await asyncio.to_thread(db.database_url, self.settings)
            except Exception as e:
                self.report_db_error(e)
                self.push_screen(ErrorScreen("Cannot open the database", db.describe(e)))
                return
            self.engine = db.make_async_engine(self.settings, "console", self.url)
        self.status.database = self._db_label_override or _db_label(
            self.url or "", getattr(self.settings, "embedded", False))
        conninfo = db.listen_conninfo(self.settings, "console-listen", self.url) if self.url else {}
        self.data = DataService(self.engine, conninfo, None,
                                post=self.post_message, state_wanted=self._state_wanted,
                                poll_s=self.poll_interval, status_s=self.status_interval,
                                min_refresh_s=self.min_refresh_s, backlog=self.log_backlog,
                                feed=self.feed_enabled, transform=_entries)
        await self.data.run()

    @on(SchemaChecked)
    def _schema_checked(self, m: SchemaChecked) -> None:
        st = self.status
        new = (m.current, m.head, m.pending, [w["id"] for w in m.workers], True, m.unknown, None)
        if new != (st.current, st.head, st.pending, [w["id"] for w in st.workers], st.checked, st.unknown,
                   st.db_error):
            st.current, st.head, st.pending, st.workers, st.checked, st.unknown, st.db_error = (
                m.current, m.head, m.pending, m.workers, True, m.unknown, None)
            self.publish_status()

    @on(StateRefreshed)
    def _state_refreshed(self, message: StateRefreshed) -> None:
        self.state_signal.publish(message)

    @on(EventsArrived)
    def _events_arrived(self, message: EventsArrived[Entry]) -> None:  # the data service's transform: _entries
        new = self.store.extend_entries(message.events)
        if new:
            self.events_signal.publish(new)

    @on(DataChanged)
    def _data_changed(self) -> None:
        self.data_signal.publish(None)

    @on(DbStatus)
    def _db_status(self, message: DbStatus) -> None:
        if self.status.db_error != message.error:
            self.status.db_error = message.error
            self.publish_status()

    # ------------------------------------------------------------ actions (one sync_core.control request each)
    def do_action(self, done: str, action: str, account_id: int, stream: Any = None, **kw: Any) -> None:
        """``action``: a key of sync_core.control.ACTIONS (stop, run-now, pause, resume, clear-error,
        backfill with ``since=``); the request and its audit event (origin console) commit together."""
        if self.read_only:
            self.notify("The console is read-only.", severity="warning")
            return
        self._run_action(done, action, account_id, stream, kw)

    @work(group="actions", exit_on_error=False, name="action")
    async def _run_action(self, done: str, action: str, account_id: int, stream: Any, kw: dict) -> None:
        try:
            n = await control.perform(self.require_engine(), action, account_id, stream, origin="console", **kw)
        except Exception as e:
            if self.not_done_if_unreachable(e):
                return
            raise
        self.notify(done if n or n is None else f"{done} (nothing matched)", timeout=3)
        self.data_signal.publish(None)

    @on(Worker.StateChanged)
    def handle_worker_state(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker (of the app or of any screen) becomes an error dialog."""
        if event.state != WorkerState.ERROR:
            return
        err = event.worker.error
        what = event.worker.name or event.worker.group or "background task"
        text = db.describe(err) if err is not None else "unknown error"
        if err is not None and db.is_retryable(err):
            self.report_db_error(err)
            return
        self.push_screen(ErrorScreen(f"{what} failed", f"{type(err).__name__}: {text}"))

    # ------------------------------------------------------------ navigation
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_workers" and (self.read_only or self.worker_pool_factory is None):
            return False
        if action in NAV_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        return True

    async def action_show(self, mode: str) -> None:
        if self.current_mode == mode and len(self.screen_stack) > 1:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return
        await self.switch_mode(mode)

    def open_logs(self, selection: bool = False) -> None:
        self.log_scope = self.selection if selection else None
        if self.current_mode == "logs":
            self.screen.apply_scope()  # type: ignore[attr-defined]
        else:
            self.switch_mode("logs")

    def open_run(self, run_id: int) -> None:
        self.push_screen(RunDetailScreen(run_id))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        await self._stop_pool_now()
        self.exit()

    # ------------------------------------------------------------ in-console worker pool
    def action_toggle_workers(self) -> None:
        if self.worker_pool_factory is None or self.read_only:
            return
        if self.pool is not None:
            self.push_screen(ConfirmScreen("Stop the workers running in this console?",
                                           "Their runs checkpoint and end; headless workers (if any) take over.",
                                           yes="Stop workers"),
                             self._stop_pool_if)
            return
        n = len(self.status.headless)
        if n:
            self.push_screen(ConfirmScreen(f"{n} headless worker(s) are alive. Run workers in this console too?",
                                           "Normally the console only sends requests through the database.",
                                           yes="Start"), self._start_pool_if)
        else:
            self._start_pool()

    def _start_pool_if(self, yes: bool | None) -> None:
        if yes:
            self._start_pool()

    def _stop_pool_if(self, yes: bool | None) -> None:
        if yes:
            self._stop_pool()

    @work(exclusive=True, group="pool", exit_on_error=False, name="worker pool")
    async def _start_pool(self) -> None:
        assert self.worker_pool_factory is not None
        pool = self.worker_pool_factory()
        self.status.pool_state = "starting"
        self.status.pool_owner = getattr(pool, "owner", "in-console")
        self.publish_status()
        try:
            await pool.start()
        except Exception:
            self.status.pool_state, self.status.pool_owner = "", None
            self.publish_status()
            raise
        self.pool = pool
        self.status.pool_state = "running"
        self.publish_status()
        self.notify(f"Workers running in this console ({self.status.pool_owner}).")
        self.poke_status()

    @work(exclusive=True, group="pool", exit_on_error=False, name="worker pool")
    async def _stop_pool(self) -> None:
        await self._stop_pool_now()
        self.notify("In-console workers stopped.")

    async def _stop_pool_now(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        self.status.pool_state = "stopping"
        self.publish_status()
        try:
            await pool.stop()
        finally:
            self.status.pool_state, self.status.pool_owner = "", None
            self.publish_status()


def make_app(settings: Settings, *, read_only: bool = False, engine: AsyncEngine | None = None,
             worker_pool_factory: Callable[[], Any] | None = None, demo_info: Any = None, **kw: Any) -> BaysyncApp:
    """Build the console. ``engine``: reuse an async engine (tests); else one is made from settings.
    ``worker_pool_factory()``: an object with ``async start()``, ``async stop()`` and ``owner``; when
    given, ``w`` runs workers inside the console (None hides the feature). Extra keywords (``clock``,
    ``db_label``, ``poll_interval``, ``url``, ...) exist for tests, the demo and the benchmark."""
    return BaysyncApp(settings, read_only=read_only, engine=engine, worker_pool_factory=worker_pool_factory,
                      demo_info=demo_info, **kw)


def run_console(settings: Settings, read_only: bool = False, **kw: Any) -> None:
    """Run the console in this terminal (resolves the database URL first, starting the embedded
    server if that is configured, so errors surface as CLI errors before the screen opens)."""
    if "url" not in kw and kw.get("engine") is None:
        kw["url"] = db.database_url(settings)
    app = make_app(settings, read_only=read_only, **kw)
    app.run()
    if os.environ.get("BAYSYNC_CONSOLE_DEBUG") and app.return_code:
        print(f"console exited with {app.return_code}")
