"""Injectable simulator clock (epoch milliseconds)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from .util import dt_to_ms, ms_to_dt


class SimClock:
    """Real UTC time plus an offset, or a fixed instant.

    * ``SimClock(None)``: real time; ``advance(s)`` adds to an offset (real time keeps flowing).
    * ``SimClock(dt)`` or after ``set(dt)``: frozen at ``dt``; ``advance(s)`` moves it.
    """

    def __init__(self, fixed: datetime | None = None):
        self._lock = threading.Lock()
        self._fixed_ms: int | None = dt_to_ms(fixed) if fixed is not None else None
        self._offset_ms = 0

    @property
    def frozen(self) -> bool:
        return self._fixed_ms is not None

    def now_ms(self) -> int:
        f = self._fixed_ms
        if f is not None:
            return f
        return int(time.time() * 1000) + self._offset_ms

    def now(self) -> datetime:
        return ms_to_dt(self.now_ms())

    def set(self, dt: datetime | None) -> None:
        """Freeze at ``dt`` (timezone-aware); ``None`` returns to real time (offset cleared)."""
        with self._lock:
            if dt is None:
                self._fixed_ms, self._offset_ms = None, 0
            else:
                self._fixed_ms = dt_to_ms(dt)

    def advance(self, seconds: float) -> None:
        with self._lock:
            delta = int(round(seconds * 1000))
            if self._fixed_ms is not None:
                self._fixed_ms += delta
            else:
                self._offset_ms += delta
