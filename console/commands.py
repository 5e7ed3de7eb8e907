"""The command palette (ctrl+p): one Provider built from the current screen and state: navigation,
the selection's actions (hidden in read-only), migrations, workers, jump to account."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class BaysyncCommands(Provider):
    def _commands(self) -> list[tuple[str, Any, str]]:
        app: Any = self.app
        from .screens.base import BaseScreen, WRITE_ACTIONS

        out: list[tuple[str, Any, str]] = [
            ("Go to dashboard", partial(app.run_action, "show('dashboard')"), "Every account and stream"),
            ("Go to logs", partial(app.run_action, "show('logs')"), "Live events and HTTP calls"),
            ("Go to migrations", partial(app.run_action, "show('migrations')"), "Schema state, apply migrations"),
            ("Go to accounts", partial(app.run_action, "show('accounts')"), "Tokens, add, connect, remove"),
            ("Help: all key bindings", app.action_help, "Every binding"),
            ("Quit", partial(app.run_action, "quit"), "Leave the console"),
        ]
        if app.check_action("toggle_workers", ()):
            out.append(("Start/stop workers in this console", app.action_toggle_workers,
                        "Run a worker pool inside this process"))
        screen = self.screen
        if isinstance(screen, BaseScreen):
            for title, cb, help_text in screen.palette_commands():
                action = getattr(cb, "__name__", "").removeprefix("action_")
                if app.read_only and (action in WRITE_ACTIONS or _is_write(title)):
                    continue
                out.append((title, cb, help_text))
        return out

    async def discover(self) -> Hits:
        for title, cb, help_text in self._commands():
            if not title.startswith("Jump to account"):
                yield DiscoveryHit(title, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, cb, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), cb, help=help_text)


def _is_write(title: str) -> bool:
    t = title.lower()
    return any(w in t for w in ("run now", "stop", "pause", "backfill", "clear error", "apply", "add an account",
                                "connect", "remove"))


