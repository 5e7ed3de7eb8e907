"""The one-line header (version, database, schema, who runs the workers, read-only) and the banner
that blocks a screen when the database is unreachable or the schema is behind."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..messages import AppStatus


def header_text(st: AppStatus) -> Text:
    t = Text()
    t.append(f" baysync {st.version} ", style="bold reverse")
    if st.demo:
        t.append(f" DEMO {st.demo} ", style="bold")
    t.append(" │ ")
    if st.db_error:
        t.append("✗ db unreachable", style="bold red")
    elif not st.checked:
        t.append("… db connecting")
    else:
        t.append(f"✓ db {st.database}", style="green")
    t.append(" │ ")
    if st.checked and st.head:
        if st.schema_ok:
            t.append("✓ schema at head", style="green")
        elif st.unknown:
            t.append("✗ schema from a newer baysync", style="bold red")
        else:
            t.append(f"⚠ schema behind ({len(st.pending)} pending)", style="bold yellow")
    t.append(" │ ")
    if st.pool_owner:
        t.append(f"⚙ workers IN CONSOLE ({st.pool_state or 'running'})", style="bold cyan")
    elif st.headless:
        t.append(f"⚙ {len(st.headless)} headless worker{'s' if len(st.headless) > 1 else ''}")
    elif st.checked and not st.db_error:
        t.append("⚠ no worker", style="yellow")
    if st.read_only:
        t.append(" │ ")
        t.append("READ-ONLY", style="bold reverse")
    return t


class StatusHeader(Static):
    DEFAULT_CSS = "StatusHeader { height: 1; dock: top; background: $panel; }"

    def on_mount(self) -> None:
        self.app.status_signal.subscribe(self, self._update)  # type: ignore[attr-defined]
        self._update(self.app.status)  # type: ignore[attr-defined]

    def _update(self, st: AppStatus) -> None:
        self.update(header_text(st))


def banner_text(st: AppStatus) -> str:
    if st.db_error:
        return (f"✗ DATABASE UNREACHABLE — {st.db_error}\n"
                "Retrying automatically; what you see may be stale.")
    if st.unknown:
        return (f"✗ UNKNOWN SCHEMA — database schema at {st.current}, which this baysync (head {st.head}) does not "
                "know: upgrade baysync. Nothing syncs and nothing is migrated.")
    if st.schema_behind:
        return (f"⚠ SCHEMA BEHIND — database at {st.current or 'none (empty database)'}, this baysync expects "
                f"{st.head}. Nothing syncs until it is migrated: press m, then u to apply.")
    return ""


class Banner(Static):
    DEFAULT_CSS = "Banner { height: auto; display: none; }"

    def on_mount(self) -> None:
        self.app.status_signal.subscribe(self, self._update)  # type: ignore[attr-defined]
        self._update(self.app.status)  # type: ignore[attr-defined]

    def _update(self, st: AppStatus) -> None:
        text = banner_text(st)
        self.set_class(bool(st.db_error), "-error")
        self.update(text)
        self.display = bool(text)
