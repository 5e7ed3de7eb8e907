"""Small helpers: millisecond timestamps, eBay money objects, the eBay error envelope, deterministic hashing."""

from __future__ import annotations

import time
import zlib
from datetime import datetime, timezone
from typing import Any

MS_DAY = 86_400_000
MS_HOUR = 3_600_000
MS_MIN = 60_000


_DAY_PREFIX: dict[int, str] = {}


def fmt_ms(ms: int) -> str:
    """``2024-05-15T08:25:43.511Z`` for epoch milliseconds."""
    day, r = divmod(int(ms), 86_400_000)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
        if len(_DAY_PREFIX) > 20_000:
            _DAY_PREFIX.clear()
        _DAY_PREFIX[day] = prefix
    s, milli = divmod(r, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("naive datetime: pass a timezone-aware (UTC) datetime")
    return int(round(dt.timestamp() * 1000))


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def parse_ts(text: str) -> int:
    """Parse an ISO-8601 timestamp (``Z`` or an offset; naive = UTC) into epoch ms.  ValueError if bad."""
    t = text.strip()
    if not t or "T" not in t:
        raise ValueError(f"bad timestamp {text!r}")
    dt = datetime.fromisoformat(t.replace("z", "Z"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt_to_ms(dt)


def money(cents: int, currency: str) -> dict[str, str]:
    """eBay amount object; ``value`` is a decimal string with two places (exact for integer cents)."""
    if -(2**50) < cents < 2**50:
        return {"value": f"{cents / 100:.2f}", "currency": currency}
    sign = "-" if cents < 0 else ""
    c = abs(int(cents))
    return {"value": f"{sign}{c // 100}.{c % 100:02d}", "currency": currency}


def h32(*parts: Any) -> int:
    """Deterministic 32-bit hash of the parts (stable across processes, unlike ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode())


def unit(*parts: Any) -> float:
    """Deterministic float in [0, 1) from the parts."""
    return h32(*parts) / 4294967296.0


def error_body(error_id: int, domain: str, category: str, message: str, long_message: str | None = None,
               parameters: list[tuple[str, str]] | None = None, subdomain: str | None = None) -> dict:
    err: dict[str, Any] = {"errorId": int(error_id), "domain": domain, "category": category, "message": message}
    if subdomain:
        err["subdomain"] = subdomain
    err["longMessage"] = long_message or message
    if parameters:
        err["parameters"] = [{"name": n, "value": str(v)} for n, v in parameters]
    return {"errors": [err]}


_M64 = 0xFFFFFFFFFFFFFFFF
_INV53 = 1.0 / 9007199254740992.0


def mix64(a: int, b: int) -> int:
    """Fast deterministic 64-bit mix of two integers (splitmix64 finaliser)."""
    x = (a * 0x9E3779B97F4A7C15 + b + 0x632BE59BD9B4E019) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def draws(seed: int, n: int) -> list[float]:
    """``n`` deterministic floats in [0, 1) from ``seed`` (a 64-bit LCG; cheap, good enough for test data)."""
    s = seed & _M64
    out = []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & _M64
        out.append((s >> 11) * _INV53)
    return out
