"""Help (`?`): every binding of the screen underneath and of the app, with what it does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "enter": "enter", "delete": "del"}


def key_label(keys: str) -> str:
    return ", ".join(NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def bindings_table(screen: Screen) -> Table:
    app = screen.app
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", min_width=10)
    t.add_column()
    sections = [(f"{type(screen).__name__.replace('Screen', '')} screen", screen, screen.BINDINGS),
                ("Everywhere", app, app.BINDINGS)]
    for title, node, bindings in sections:
        t.add_row(Text(title, style="underline"), "")
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            action = b.action.split("(")[0]
            if node.check_action(action, ()) is False:
                continue
            t.add_row(key_label(b.key), b.description or action)
        t.add_row("", "")
    t.add_row(Text("Palette", style="underline"), "")
    t.add_row("ctrl+p", "command palette: every action, searchable")
    t.add_row("tab", "move focus; arrows / pgup / pgdn move in tables and logs")
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under
        self.table = bindings_table(under)  # now, while the screen below is still the active one

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help-dialog"):
            yield Static("Keys (esc closes)", classes="dialog-title")
            yield Static(self.table, id="help-table")

    def action_close(self) -> None:
        self.dismiss(None)
