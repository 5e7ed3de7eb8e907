"""The console's interpreter tuning, in one place: the garbage collector, the GIL switch interval and
the untracking of log entries. All of it is process-wide (the collector and the switch interval
belong to the interpreter), so the App owns one :class:`Tuning` and restores everything when it exits.

``BAYSYNC_CONSOLE_TUNING=off`` (also ``0``, ``false``, ``no``) turns all of it off; it is read when the
App is created (:func:`configure`). Off, nothing is changed: the collector's thresholds, the switch
interval and ``gc.freeze`` stay as the interpreter had them and log entries stay tracked.

API: :func:`enabled_in_env`, :func:`configure`, :func:`untrack` (log entries), :class:`Tuning`
(``start`` on mount, ``freeze`` after the first load, ``collect_when_idle`` on a timer, ``stop`` on
unmount).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from functools import cache
from typing import Callable, Mapping, NamedTuple

from sync_core import gcpause

ENV = "BAYSYNC_CONSOLE_TUNING"
OFF_VALUES = {"off", "0", "false", "no"}

# Full collections still walk ~50k objects (rows, cells, rendered lines): 20-40 ms under load, every
# 1-2 s while the dashboard refreshes. They are moved to when nobody is typing (see collect_when_idle).
GC_IDLE_S = 1.0  # no key or mouse press for this long: a full collection may run
GC_DUE = 10  # as CPython: one full collection per 10 middle-generation collections...
GC_FORCE = 100  # ...and never more than 100 apart, typing or not (cyclic garbage stays bounded)
# Workers in this process (demo, the console's pool) freeze what they decode (sync_core/gcpause.py); the
# release that collects what was frozen runs here when idle, and at the latest this long after the last.
GC_RELEASE_FORCE_S = 3 * gcpause.RELEASE_S
SWITCH_INTERVAL_S = 0.001


def enabled_in_env(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(ENV, "")
    return value.strip().lower() not in OFF_VALUES


def _noop(obj: object) -> object:
    return None


class _Probe(NamedTuple):
    a: int
    b: str | None


@cache
def _gc_untracker() -> Callable[[object], object]:
    """CPython stops tracking an exact tuple of atoms (ints, strings, None) in the garbage collector;
    a log Entry is such a tuple but, as a subclass, stays tracked, so up to 100k entries were walked on
    every full collection (50-150 ms pauses under load). Entries hold only atoms and can never be part
    of a cycle, so untracking them is safe; anywhere this C call is unavailable it is a no-op."""
    try:
        import ctypes
        import platform

        if platform.python_implementation() != "CPython":
            raise OSError
        fn = ctypes.pythonapi.PyObject_GC_UnTrack
        fn.argtypes, fn.restype = [ctypes.py_object], None
        probe = _Probe(0, "")
        fn(probe)
        if gc.is_tracked(probe):
            raise OSError
        return fn
    except Exception:
        return _noop


_untrack: Callable[[object], object] = _noop


def configure(on: bool | None = None) -> bool:
    """Turn the tuning on or off for this process (``None``: as ``BAYSYNC_CONSOLE_TUNING`` says).
    Returns whether it is on."""
    global _untrack
    on = enabled_in_env() if on is None else on
    _untrack = _gc_untracker() if on else _noop
    return on


def untrack(obj: object) -> None:
    """Take an object made only of atoms (a log entry) out of the collector's sight; off: nothing."""
    _untrack(obj)


configure()


class Tuning:
    """The App's collector and switch-interval settings; every change is undone by :meth:`stop`."""

    def __init__(self, on: bool | None = None) -> None:
        self.on = configure(on)
        self.frozen = False
        self.full_collections = 0  # run by collect_when_idle
        self._thresholds: tuple[int, int, int] | None = None
        self._switch_interval: float | None = None

    def start(self) -> None:
        """Rows and log lines are formatted in threads. A thread holding the GIL makes the UI loop wait
        up to the switch interval (5 ms) at every turn (each select() gives the GIL up); 1 ms keeps a
        keypress from paying that several times over while a refresh is being built."""
        if self.on and self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))

    def freeze(self) -> bool:
        """Move everything alive after the first load (modules, classes, widgets, styles: ~150k objects)
        out of the garbage collector's sight: a full collection then walks only what came later, so
        its pauses stay short instead of 100-300 ms every few seconds under load. Automatic full
        collections are then left to :meth:`collect_when_idle`, which the caller runs every 0.25 s
        when this returns True (the first time, tuning on)."""
        if not self.on or self.frozen:
            return False
        self.frozen = True
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        t0, t1, _ = self._thresholds
        gc.set_threshold(t0, t1, 1_000_000)  # young generations as before; the oldest: below
        gcpause.defer_release()  # workers in this process: their releases run when idle, below
        return True

    def collect_when_idle(self, last_input: float) -> bool:
        """A full collection when one is due and nobody has pressed a key for GC_IDLE_S (``last_input``:
        time.monotonic() of the last key or mouse press; a keypress then never waits behind one), or
        when GC_FORCE middle collections went by without one. The same for the release of what workers
        in this process froze (sync_core/gcpause.py): idle and due, or GC_RELEASE_FORCE_S overdue."""
        pending, idle = gc.get_count()[2], time.monotonic() - last_input >= GC_IDLE_S
        if gcpause.release_due(GC_RELEASE_FORCE_S) or (idle and gcpause.release_due()):
            gcpause.release()  # a full collection that also sees what workers froze, then frozen again
            self.full_collections += 1
            return True
        if pending >= GC_FORCE or (pending >= GC_DUE and idle):
            gc.collect()
            self.full_collections += 1
            return True
        return False

    def stop(self) -> None:
        """Restore the switch interval and the collector's thresholds; bursts release again."""
        if self.frozen:
            gcpause.defer_release(False)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
