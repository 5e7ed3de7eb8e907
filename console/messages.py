"""UI messages, all in one place. High-rate ones define ``can_replace`` so only the newest pending one
stays queued (toolong's pattern); the feed's batches are never replaced (each carries new lines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from textual.message import Message

T = TypeVar("T")


class EventsArrived(Message, Generic[T], bubble=False):
    """A batch of new run_events (oldest first), read by id after a notify or a poll. ``T``: what the data
    service's ``transform`` makes of the rows (the App's: log Entries; without a transform: the row dicts)."""

    def __init__(self, events: list[T]) -> None:
        super().__init__()
        self.events = events


class DataChanged(Message, bubble=False):
    """Pairs changed in the database (a control or state notify): screens showing other data refresh soon."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DataChanged)


class DbStatus(Message, bubble=False):
    """The data service lost the database (``error``, posted once per outage) or has it back (None)."""

    def __init__(self, error: str | None) -> None:
        super().__init__()
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DbStatus)


class SchemaChecked(Message, bubble=False):
    """A status check: the schema revision (``current``, ``head``, ``pending``, ``unknown``: a revision this
    code does not know) and the live workers."""

    def __init__(self, current: str | None, head: str | None, pending: list[str], workers: list[dict],
                 unknown: bool) -> None:
        super().__init__()
        self.current, self.head, self.pending, self.workers, self.unknown = current, head, pending, workers, unknown

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SchemaChecked)


class StateRefreshed(Message, bubble=False):
    """A fresh state overview (sync_core.status.overview rows) read at ``t`` (time.monotonic())."""

    def __init__(self, rows: list[dict[str, Any]], t: float) -> None:
        super().__init__()
        self.rows, self.t = rows, t

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateRefreshed)


@dataclass
class AppStatus:
    """What the header and banners show; published through ``app.status_signal``."""

    version: str = ""
    database: str = ""
    db_error: str | None = None
    current: str | None = None
    head: str | None = None
    pending: list[str] = field(default_factory=list)
    unknown: bool = False  # current is a revision this code does not know (a newer baysync's)
    checked: bool = False
    workers: list[dict] = field(default_factory=list)
    pool_owner: str | None = None
    pool_state: str = ""  # "" | starting | running | stopping
    read_only: bool = False
    demo: str | None = None

    @property
    def schema_ok(self) -> bool:
        return self.checked and self.db_error is None and self.current is not None and self.current == self.head

    @property
    def schema_behind(self) -> bool:
        return self.checked and self.head is not None and self.current != self.head

    @property
    def headless(self) -> list[dict]:
        return [w for w in self.workers if w.get("kind") == "headless"]
