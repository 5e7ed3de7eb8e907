"""What every console screen shares: header, banner, footer, and hiding write actions in read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.worker import Worker

from ..widgets.header import Banner, StatusHeader

if TYPE_CHECKING:
    from ..app import BaysyncApp

# Actions that change something: hidden (and refused) in --read-only.
WRITE_ACTIONS = frozenset({
    "run_now", "stop", "stop_account", "pause", "pause_account", "backfill", "clear_error", "apply_migrations",
    "add_account", "connect_account", "remove_account", "toggle_workers", "stop_run",
})


def set_static(widget: Static, content) -> None:
    """``Static.update`` with a layout pass only when the widget's height would change."""
    height = widget.size.height
    widget.update(content, layout=False)
    if not widget.display or not widget.size.width:
        widget.refresh(layout=True)
        return
    try:
        styles = widget.styles
        if styles.height is not None and not styles.height.is_auto:
            return  # a fixed, fractional or relative height does not depend on the content
        parent = widget.parent  # typed DOMNode; a mounted Static's parent is a Widget (a container or the Screen)
        want = widget.get_content_height(parent.size if isinstance(parent, Widget) else widget.size,
                                         widget.app.size, widget.content_region.width) + styles.gutter.height
        if styles.max_height is not None and styles.max_height.is_cells:
            want = min(want, int(styles.max_height.value))
    except Exception:
        want = -1
    if want != height:
        widget.refresh(layout=True)


class BaseScreen(Screen):
    app: "BaysyncApp"

    def compose_header(self) -> ComposeResult:
        yield StatusHeader()
        yield Banner()

    def compose_footer(self) -> ComposeResult:
        yield Footer()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """Worker messages do not bubble: hand failures to the app's one error handler."""
        self.app.handle_worker_state(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.app.read_only:
            return False
        return True

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        """(title, callback, help) for the command palette; screens add their actions."""
        return ()
