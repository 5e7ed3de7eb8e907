"""Modal dialogs: confirmation, error (instead of a traceback), backfill date, text prompts, and the
account consent flow. Each returns its answer through ``dismiss``."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no; `y` confirms, `n`/escape cancels (the default button is No)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, detail: str = "", yes: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.detail, self.yes = title, detail, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ErrorScreen(ModalScreen[None]):
    """A failure explained in words (no traceback); any of enter/escape/q closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(f"✗ {self.title_text}", classes="dialog-title")
            yield Static(self.message, classes="dialog-body")
            yield Static("Press enter or escape to close.", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


def parse_backfill_date(text: str, today: date) -> tuple[datetime | None, str]:
    """(datetime at 00:00 UTC, "") or (None, a message saying what is expected)."""
    s = text.strip()
    if not s:
        return None, "Enter a start date as YYYY-MM-DD, for example 2024-01-31."
    try:
        d = date.fromisoformat(s)
    except ValueError:
        return None, f"“{s}” is not a date: use YYYY-MM-DD, for example 2024-01-31."
    if d > today:
        return None, f"{d.isoformat()} is in the future: a backfill reads history up to now."
    if d.year < 1995:
        return None, f"{d.isoformat()} is before eBay existed: pick a date after 1995-09-01."
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc), ""


class BackfillScreen(ModalScreen[datetime | None]):
    """Ask for the date a backfill starts from; validated before it can be submitted."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, target: str, today: date) -> None:
        super().__init__()
        self.target, self.today = target, today

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Backfill {self.target}", classes="dialog-title")
            yield Static("Re-read history from this date (UTC) up to now. Existing rows are updated, not "
                         "duplicated; the live cursor is not moved.", classes="dialog-body")
            yield Input(placeholder="YYYY-MM-DD", id="date")
            yield Static("", id="date-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Backfill (enter)", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#date", Input).focus()

    @on(Input.Changed, "#date")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#date-error", Static).update("")

    @on(Input.Submitted, "#date")
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        value, err = parse_backfill_date(self.query_one("#date", Input).value, self.today)
        if err:
            self.query_one("#date-error", Static).update(f"✗ {err}")
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[dict | None]):
    """A small form: fields are (id, label, placeholder, secret); returns {id: value} or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str, str, bool]], detail: str = "",
                 validate: Callable[[dict], str] | None = None, checkbox: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.title_text, self.fields, self.detail, self.validate = title, fields, detail, validate
        self.checkbox = checkbox

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-body", id="prompt-detail")
            for fid, label, placeholder, secret in self.fields:
                yield Label(label, classes="field-label")
                yield Input(placeholder=placeholder, id=fid, password=secret)
            if self.checkbox:
                yield Checkbox(self.checkbox[1], id=self.checkbox[0])
            yield Static("", id="prompt-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK (enter)", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def values(self) -> dict:
        out: dict = {fid: self.query_one(f"#{fid}", Input).value.strip() for fid, *_ in self.fields}
        if self.checkbox:
            out[self.checkbox[0]] = self.query_one(f"#{self.checkbox[0]}", Checkbox).value
        return out

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        vals = self.values()
        err = self.validate(vals) if self.validate else ""
        if err:
            self.query_one("#prompt-error", Static).update(f"✗ {err}")
            return
        self.dismiss(vals)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
