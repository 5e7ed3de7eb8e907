"""Small pure formatting pieces shared by the screens: state badges (symbol + word + colour, so nothing
is conveyed by colour alone), relative times, progress bars, sparklines and log lines.

Everything here takes ``now`` explicitly so that tests and snapshots are deterministic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from rich.text import Text

# state -> (symbol, word, style)
STATES: dict[str, tuple[str, str, str]] = {
    "idle": ("·", "idle", "dim"),
    "queued": ("◷", "queued", "cyan"),
    "running": ("▶", "running", "bold green"),
    "stopping": ("■", "stopping", "yellow"),
    "failed": ("✗", "failed", "bold red"),
    "paused": ("‖", "paused", "magenta"),
    "reauth_needed": ("⚠", "reauth needed", "bold red"),
    "disabled": ("-", "disabled", "dim"),
}

LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
LEVEL_TAGS = {"debug": "DBG", "info": "INF", "warning": "WRN", "error": "ERR"}


def display_state(r: dict[str, Any]) -> str:
    """The one state word an operator sees for a dashboard row."""
    if r.get("account_status") == "reauth_needed" or r.get("status") == "reauth_needed":
        return "reauth_needed"
    if r.get("account_status") == "disabled" or r.get("enabled") is False:
        return "disabled"
    leased = r.get("lease_owner") is not None
    if r.get("paused") or r.get("account_paused"):
        return "stopping" if leased else "paused"
    st = r.get("status") or "idle"
    if st == "running" and r.get("cancel_requested"):
        return "stopping"
    return st if st in STATES else "idle"


def state_text(state: str) -> Text:
    sym, word, style = STATES.get(state, ("?", state, ""))
    return Text(f"{sym} {word}", style=style)


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{int(s)}s"
    if s < 3600:
        return f"{sign}{int(s // 60)}m"
    if s < 86400 * 2:
        return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}"
    return f"{sign}{int(s // 86400)}d"


def ago(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "never"
    return human_duration((now - ts).total_seconds()) + " ago"


def lag(cursor: datetime | None, now: datetime) -> str:
    if cursor is None:
        return "-"
    return human_duration((now - cursor).total_seconds())


def progress_bar(done: int, total: int, width: int = 6) -> str:
    if total <= 0:
        return ""
    done = max(0, min(done, total))
    filled = round(width * done / total)
    return "▰" * filled + "▱" * (width - filled) + f" {done}/{total}"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float], width: int = 8) -> str:
    vals = list(values)[-width:]
    if not vals:
        return ""
    top = max(vals)
    if top <= 0:
        return ""
    last = len(SPARK) - 1  # (a list, not a generator: built for 1,600 rows twice a second)
    out = "".join([SPARK[min(last, int(v / top * last + 0.5))] if v > 0 else " " for v in vals])
    return out.rjust(width)


def short_ts(ts: datetime | None) -> str:
    return f"{ts.month:02d}-{ts.day:02d} {ts.hour:02d}:{ts.minute:02d}" if ts else ""  # strftime("%m-%d %H:%M")


def window(frm: datetime | None, to: datetime | None) -> str:
    if not frm and not to:
        return ""
    return f"{short_ts(frm) or '…'}→{short_ts(to) or 'now'}"


def compact(n: int | float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("", "k", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" or n >= 100 else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}T"


def one_line(s: str | None, limit: int = 200) -> str:
    if not s:
        return ""
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def event_line(e: dict[str, Any]) -> str:
    """One plain log line for an event row (http events show method, path, status, duration, records)."""
    ts = e.get("ts")
    t = ts.strftime("%H:%M:%S") if isinstance(ts, datetime) else str(ts or "")
    lvl = LEVEL_TAGS.get(e.get("level") or "info", (e.get("level") or "?")[:3].upper())
    kind = e.get("kind") or ""
    msg = e.get("message") or ""
    data = e.get("data") or None
    account = e.get("account") or (data.get("account") if kind == "audit" and isinstance(data, dict) else None)
    where = "/".join(x for x in (account or (str(e["account_id"]) if e.get("account_id") else None),
                                 e.get("stream")) if x)
    if kind == "http" and isinstance(data, dict):
        parts = [str(data.get("method", "")), str(data.get("path", "")), str(data.get("status", ""))]
        if data.get("duration_ms") is not None:
            parts.append(f"{float(data['duration_ms']):.0f}ms")
        if data.get("records") is not None:
            parts.append(f"{data['records']} rec")
        msg = " ".join(p for p in parts if p) + (f"  {msg}" if msg else "")
    run = f" #{e['run_id']}" if e.get("run_id") else ""
    return one_line(f"{t} {lvl} {where or '-'}{run} {kind}: {msg}", 400)
