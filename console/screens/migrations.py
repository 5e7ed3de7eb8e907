"""Migrations: current revision, head, applied history with durations, pending revisions; apply them
(with confirmation) in a thread worker while `migrate`'s own progress lines stream into the screen."""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Log, Static

from sync_core import db, migrate

from .. import queries
from .base import BaseScreen
from .modals import ConfirmScreen


class MigrationsScreen(BaseScreen):
    BINDINGS = [
        Binding("u", "apply_migrations", "Apply migrations"),
        Binding("R", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__(id="migrations")
        self.state: dict[str, Any] | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("Loading…", id="mig-state")
        yield DataTable(id="mig-history", cursor_type="row")
        yield Log(id="mig-output", max_lines=2000)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        t = self.query_one("#mig-history", DataTable)
        t.add_column("Revision", key="rev", width=28)
        t.add_column("Direction", key="dir", width=9)
        t.add_column("Finished (UTC)", key="at", width=19)
        t.add_column("Duration", key="ms", width=9)
        t.add_column("Applied by", key="by", width=40)
        self.query_one("#mig-output", Log).display = False
        self.app.status_signal.subscribe(self, lambda st: self.load() if st.current != (self.state or {}).get(
            "current") else None)
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply_migrations" and (self.running or self.state is None or not self.state["pending"]):
            return False
        return super().check_action(action, parameters)

    @work(exclusive=True, group="migrations-load", exit_on_error=False, name="migration state")
    async def load(self) -> None:
        while self.app.engine is None or self.app.status.head is None:
            await asyncio.sleep(0.1)
        try:
            self.state = await queries.schema_state(self.app.engine, self.app.status.head)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.app.report_db_error(e)
            self.query_one("#mig-state", Static).update(f"✗ Cannot read the schema state: {db.describe(e)}")
            return
        self._show()

    def _show(self) -> None:
        s = self.state
        assert s is not None
        t = Text()
        t.append("Current revision  ", style="bold")
        t.append(f"{s['current'] or 'none (empty database)'}\n")
        t.append("Head              ", style="bold")
        t.append(f"{s['head']}\n")
        if s["pending"]:
            t.append(f"⚠ {len(s['pending'])} pending: {', '.join(s['pending'])}", style="bold yellow")
            if not self.app.read_only:
                t.append("  — press u to apply")
        else:
            t.append("✓ schema at head, nothing pending", style="green")
        self.query_one("#mig-state", Static).update(t)
        table = self.query_one("#mig-history", DataTable)
        table.clear()
        for i, h in enumerate(s["history"]):
            table.add_row(h["revision"], h["direction"], f"{h['finished_at']:%Y-%m-%d %H:%M:%S}",
                          f"{h['duration_ms']} ms", h.get("applied_by") or "", key=str(i))
        self.refresh_bindings()

    def action_reload(self) -> None:
        self.load()

    def action_apply_migrations(self) -> None:
        if not self.state or not self.state["pending"]:
            self.notify("Nothing to apply: the schema is at head.")
            return
        pending = ", ".join(self.state["pending"])
        self.app.push_screen(ConfirmScreen(
            f"Apply {len(self.state['pending'])} migration(s)?",
            f"{pending}\nEach revision runs in its own transaction under the migration lock; other baysync "
            "processes wait for it.", yes="Apply"), self._apply_if)

    def _apply_if(self, yes: bool | None) -> None:
        if yes:
            self._apply()

    @work(thread=True, exclusive=True, group="migrate", exit_on_error=False, name="migrate")
    def _apply(self) -> None:
        log = self.query_one("#mig-output", Log)
        self.app.call_from_thread(self._begin)

        def say(line: str) -> None:
            self.app.call_from_thread(log.write_line, line)

        try:
            migrate.migrate(self.app.settings, say, url=self.app.url, origin="console")
        except Exception as e:
            say(f"✗ migration failed: {db.describe(e)}")
            raise
        finally:
            self.app.call_from_thread(self._end)

    def _begin(self) -> None:
        self.running = True
        out = self.query_one("#mig-output", Log)
        out.display = True
        out.clear()
        self.refresh_bindings()

    def _end(self) -> None:
        self.running = False
        self.app.poke_status()
        self.load()

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        yield ("Apply pending migrations", self.action_apply_migrations, "Upgrade the schema to head (confirm)")
        yield ("Reload the migration state", self.action_reload, "")
