"""Accounts: status and token state (expiry times only; tokens and codes are never shown), add,
connect / reconnect (consent URL; paste the redirected URL back), remove (confirm)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from sync_core import control, db

from .. import queries
from ..widgets import badges
from .base import BaseScreen
from .modals import PromptScreen

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def token_cell(a: dict[str, Any], now: datetime) -> Text:
    if a.get("status") == "reauth_needed":
        return Text("⚠ reauth needed", style="bold red")
    if not a.get("has_refresh"):
        return Text("○ not connected", style="yellow")
    rx = a.get("refresh_expires_at")
    if rx is not None and rx <= now:
        return Text("✗ refresh expired", style="bold red")
    ax = a.get("access_expires_at")
    if ax is None or ax <= now:
        return Text("✓ connected (access refreshes on use)", style="green")
    return Text(f"✓ access valid {badges.human_duration((ax - now).total_seconds())}", style="green")


def warn_days() -> int:
    """How long before a refresh token expires the operator is told to reconnect (sync_core's setting)."""
    return control.refresh_expiry_warn_days()


def expiring_soon(a: dict[str, Any], now: datetime, days: int) -> bool:
    rx = a.get("refresh_expires_at")
    return (a.get("status") != "reauth_needed" and bool(a.get("has_refresh")) and rx is not None
            and now < rx <= now + timedelta(days=days))


def refresh_cell(a: dict[str, Any], now: datetime, days: int = 30) -> Text | str:
    rx = a.get("refresh_expires_at")
    if rx is None:
        return "-"
    secs = (rx - now).total_seconds()
    if expiring_soon(a, now, days):
        return Text(f"⚠ in {badges.human_duration(secs)}", style="bold yellow")
    return f"in {badges.human_duration(secs)}" if secs > 0 else f"{badges.human_duration(-secs)} ago"


def validate_name(v: dict) -> str:
    name = v.get("name", "")
    if not NAME_RE.match(name):
        return "A name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
    return ""


class AccountsScreen(BaseScreen):
    BINDINGS = [
        Binding("n", "add_account", "Add"),
        Binding("c", "connect_account", "Connect/reconnect"),
        Binding("delete,D", "remove_account", "Remove"),
        Binding("R", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="accounts")
        self.accounts: list[dict[str, Any]] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static("", id="acc-info")
        yield DataTable(id="acc-table", cursor_type="row")
        yield Static("", id="acc-detail")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        t = self.query_one("#acc-table", DataTable)
        for key, label, width in (("name", "Account", 16), ("status", "Status", 15), ("token", "Token", 24),
                                  ("refresh", "Refresh exp.", 12), ("streams", "Streams", 7),
                                  ("user", "eBay user", 16), ("failed", "Failed", 6)):
            t.add_column(label, key=key, width=width)
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    @work(exclusive=True, group="accounts-load", exit_on_error=False, name="accounts")
    async def load(self) -> None:
        while not self.app.status.schema_ok:
            if self.app.status.checked and self.app.status.schema_behind:
                self.query_one("#acc-info", Static).update("Blocked until the schema is migrated (see the banner).")
            await asyncio.sleep(0.2)
        try:
            rows = await queries.accounts(self.app.require_engine())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.app.report_db_error(e)
            return
        self.accounts = rows
        self.loaded = True
        self._show()

    def _show(self) -> None:
        now = self.app.now()
        days = warn_days()
        t = self.query_one("#acc-table", DataTable)
        sel = self.selected()
        t.clear()
        for a in self.accounts:
            st = "reauth_needed" if a["status"] == "reauth_needed" else "paused" if a["paused"] else (
                "disabled" if a["status"] == "disabled" else "running")
            status = badges.state_text(st) if st != "running" else Text("✓ active", style="green")
            t.add_row(a["name"], status, token_cell(a, now), refresh_cell(a, now, days), str(a["streams"]),
                      a.get("ebay_user") or "-", str(a["failed"]) if a["failed"] else "", key=a["name"])
        if sel and any(a["name"] == sel["name"] for a in self.accounts):
            t.move_cursor(row=t.get_row_index(sel["name"]), animate=False)
        info = f"{len(self.accounts)} accounts"
        if not self.accounts:
            info += " · press n to add one"
        self.query_one("#acc-info", Static).update(info)
        need = [a["name"] for a in self.accounts if a["status"] == "reauth_needed"]
        soon = [f"{a['name']} (in {badges.human_duration((a['refresh_expires_at'] - now).total_seconds())})"
                for a in self.accounts if expiring_soon(a, now, days)]
        detail = Text()
        if need:
            detail.append(f"⚠ reauth needed: {', '.join(need)} — select and press c to reconnect", style="yellow")
        if soon:
            detail.append("\n" if need else "")
            detail.append(f"⚠ refresh token expires within {days} days: {', '.join(soon)} — press c to reconnect "
                          "before it does", style="yellow")
        self.query_one("#acc-detail", Static).update(detail)

    def selected(self) -> dict[str, Any] | None:
        t = self.query_one("#acc-table", DataTable)
        if not t.row_count:
            return None
        try:
            name = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        except Exception:
            return None
        return next((a for a in self.accounts if a["name"] == name), None)

    def action_reload(self) -> None:
        self.load()

    # -- add
    def action_add_account(self) -> None:
        self.app.push_screen(PromptScreen(
            "Add an account", [("name", "Name (how baysync calls this seller account)", "e.g. acme-us", False),
                               ("refresh_token", "Refresh token (optional; hidden; else connect with c)", "", True)],
            validate=validate_name), self._add_if)

    def _add_if(self, v: dict | None) -> None:
        if v:
            self._add(v)

    @work(group="account-actions", exit_on_error=False, name="add account")
    async def _add(self, v: dict) -> None:
        try:
            async with self.app.require_engine().begin() as conn:
                await control.add_account(conn, self.app.settings, v["name"], v.get("refresh_token") or None,
                                          origin=queries.ORIGIN)
        except ValueError as e:  # AccountError: a bad or duplicate name, said in words
            self.notify(f"Not added: {e}", severity="error", timeout=8)
            return
        except Exception as e:
            if self.app.not_done_if_unreachable(e, "Not added"):
                return
            raise
        self.notify(f"Account {v['name']} added" + ("" if v.get("refresh_token") else "; press c to connect it"))
        self.app.data_signal.publish(None)
        self.load()

    # -- connect
    def action_connect_account(self) -> None:
        a = self.selected()
        if a is None:
            self.notify("Select an account first (or n to add one).", severity="warning")
            return
        try:
            url, state = control.consent_start(self.app.settings, a["name"])
        except Exception as e:
            self.notify(f"Cannot start the consent flow: {db.describe(e)}", severity="error", timeout=8)
            return
        verb = "Reconnect" if a["status"] == "reauth_needed" or a.get("has_refresh") else "Connect"
        self.app.push_screen(PromptScreen(
            f"{verb} {a['name']}",
            [("pasted", "Paste the URL eBay redirected you to (hidden: it carries a one-time code)", "https://…",
              True)],
            detail=f"1. Open this URL in a browser and sign in as the seller:\n{url}\n"
                   "2. After accepting, copy the address of the page you land on and paste it below.",
            validate=lambda v: "" if v.get("pasted") else "Paste the redirected URL (or press esc)."),
            lambda v: self._finish_if(a["name"], v, state))

    def _finish_if(self, name: str, v: dict | None, state: str) -> None:
        if v:
            self._finish(name, v["pasted"], state)

    @work(group="account-actions", exit_on_error=False, name="connect account")
    async def _finish(self, name: str, pasted: str, state: str) -> None:
        try:
            await control.connect_account(self.app.require_engine(), self.app.settings, name, pasted, state,
                                          origin=queries.ORIGIN)
        except (ValueError, control.TokenExchangeFailed) as e:
            why = f"token exchange failed: {e}" if isinstance(e, control.TokenExchangeFailed) else str(e)
            self.notify(f"Not connected: {why}", severity="error", timeout=8)
            return
        except Exception as e:
            if self.app.not_done_if_unreachable(e, "Not connected"):
                return
            raise
        self.notify(f"{name} connected.")
        self.app.data_signal.publish(None)
        self.load()

    # -- remove
    def action_remove_account(self) -> None:
        a = self.selected()
        if a is None:
            return
        self.app.push_screen(PromptScreen(
            f"Remove account {a['name']}?",
            [("confirm", f"Type the account name ({a['name']}) to confirm", a["name"], False)],
            detail="Its credentials and sync state are deleted. Synced data is kept unless you tick purge.",
            validate=lambda v: "" if v.get("confirm") == a["name"] else "The name does not match.",
            checkbox=("purge", "Also delete this account's synced data (purge)")),
            lambda v: self._remove_if(a["name"], v))

    def _remove_if(self, name: str, v: dict | None) -> None:
        if v:
            self._remove(name, bool(v.get("purge")))

    @work(group="account-actions", exit_on_error=False, name="remove account")
    async def _remove(self, name: str, purge: bool) -> None:
        try:
            async with self.app.require_engine().begin() as conn:
                await control.remove_account(conn, name, purge, origin=queries.ORIGIN)
        except ValueError as e:
            self.notify(f"Not removed: {e}", severity="error", timeout=8)
            return
        except Exception as e:
            if self.app.not_done_if_unreachable(e, "Not removed"):
                return
            raise
        self.notify(f"Account {name} removed" + (" and its data purged" if purge else ""))
        self.app.data_signal.publish(None)
        self.load()

    def palette_commands(self) -> Iterable[tuple[str, Any, str]]:
        yield ("Accounts: add an account", self.action_add_account, "Name and optional refresh token")
        yield ("Accounts: connect / reconnect the selection", self.action_connect_account, "eBay consent flow")
        yield ("Accounts: remove the selection", self.action_remove_account, "Confirm by typing its name")
