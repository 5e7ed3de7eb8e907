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


class Arrivals:
    """Accelerated arrivals (``SimConfig.speed``): the clock stays real, the data's future comes sooner.

    A record created after ``pivot_ms`` (the simulator's start) has every instant of its life moved to
    ``pivot + (t - pivot) / speed`` (SellerData._accelerate): orders are created, ship and get refunded,
    transactions and payouts arrive, disputes open and close and messages come ``speed`` times faster than
    the seeded rate, but every timestamp served is still on the real clock, so a client that reads "now"
    from its own clock never sees a record from the future.  Monotonic: the order of events is kept.
    Records that exist at the pivot keep their seeded life.
    """

    def __init__(self, pivot_ms: int, speed: float):
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.pivot_ms = int(pivot_ms)
        self.speed = float(speed)

    def __call__(self, t: int) -> int:
        p = self.pivot_ms
        return t if t <= p else p + int((t - p) / self.speed)
