"""Health and metrics endpoints of `baysync run`: /healthz, /healthz/db, /metrics (Prometheus text 0.0.4).

/metrics has two kinds of series:

* this process (counters since it started): runs by status, claims, records, errors, active runs and the
  run-duration histogram ``baysync_run_duration_seconds{stream}`` (every run this process finished, any
  status; kept in memory, so ``rate()``/``histogram_quantile()`` work as for any Prometheus histogram).
* the database (the same for every worker, read at each scrape): per (account, stream) of the enabled
  pairs the lag, the last success, the failures since it (``status.FAILED_STATUSES``) and the API calls
  (all from ``sync_core.status.overview(runs=True)``); per account
  ``baysync_reauth_needed``; per enabled stream the configured ``baysync_interval_seconds``. If the
  database is down these are omitted (a comment line says so) and /healthz/db answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Iterable, Iterator

import sqlalchemy as sa

from .status import overview  # the state overview (status --json, the console and the demo read it too)

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from .worker import WorkerPool

# Run-duration histogram buckets (seconds): a small incremental run takes seconds, a backfill hours.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0)


def _label(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kv.items()) + "}" if kv else ""


def _num(v: float | int) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def family(name: str, kind: str, help_: str, samples: Iterable[tuple[dict, float | int]]) -> list[str]:
    """HELP and TYPE lines, then one line per (labels, value)."""
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}",
            *(f"{name}{_labels(**lb)} {_num(v)}" for lb, v in samples)]


class Histogram:
    """A Prometheus histogram by one label, accumulated in this process."""

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS):
        self.buckets = buckets
        self.data: dict[str, list] = {}  # label -> [counts per bucket..., sum, count]

    def observe(self, label: str, value: float) -> None:
        d = self.data.setdefault(label, [0] * len(self.buckets) + [0.0, 0])
        for i, b in enumerate(self.buckets):
            if value <= b:
                d[i] += 1
        d[-2] += value
        d[-1] += 1

    def lines(self, name: str, help_: str, label: str) -> list[str]:
        out = [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
        for lv, d in sorted(self.data.items()):
            out += [f"{name}_bucket{_labels(**{label: lv, 'le': repr(b)})} {d[i]}" for i, b in enumerate(self.buckets)]
            out += [f"{name}_bucket{_labels(**{label: lv, 'le': '+Inf'})} {d[-1]}",
                    f"{name}_sum{_labels(**{label: lv})} {_num(float(d[-2]))}",
                    f"{name}_count{_labels(**{label: lv})} {d[-1]}"]
        return out


def make_app(pool: "WorkerPool") -> "Starlette":
    from starlette.applications import Starlette  # not imported with the worker pool (the console's)
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def healthz(request):
        return JSONResponse({"ok": True, "owner": pool.owner, "active_runs": len(pool.active),
                             "uptime_s": round(time.monotonic() - pool.stats.started, 1)})

    async def healthz_db(request):
        try:
            async def ping() -> None:
                async with pool.engine.connect() as conn:
                    await conn.execute(sa.text("select 1"))
            await asyncio.wait_for(ping(), 5)
            return JSONResponse({"ok": True})
        except Exception as e:
            return JSONResponse({"ok": False, "error": type(e).__name__}, status_code=503)

    async def metrics(request):
        st = pool.stats
        lines = [
            *family("baysync_runs_total", "counter", "Runs finished by this process, by final status.",
                    ((dict(status=k), v) for k, v in sorted(st.runs.items()))),
            *family("baysync_active_runs", "gauge", "Runs in progress in this process.", [({}, len(pool.active))]),
            *family("baysync_claims_total", "counter", "Pairs claimed by this process.", [({}, st.claims)]),
            *family("baysync_records_total", "counter",
                    "Records inserted or updated by this process, by account and stream.",
                    ((dict(account=a, stream=s), v) for (a, s), v in sorted(st.records.items()))),
            *family("baysync_errors_total", "counter", "Failed runs of this process, by account and stream.",
                    ((dict(account=a, stream=s), v) for (a, s), v in sorted(st.errors.items()))),
            *st.durations.lines("baysync_run_duration_seconds",
                                "Wall time of the runs this process finished (any status), by stream.", "stream"),
        ]
        try:
            async def read():
                async with pool.engine.connect() as conn:
                    return await conn.run_sync(overview, True)
            rows = await asyncio.wait_for(read(), 10)
        except Exception:
            lines.append("# database unavailable: per-pair and per-account series omitted")
        else:
            pl = [(dict(account=r["account"], stream=r["stream"]), r) for r in rows if r["enabled"]]

            def lag(r: dict) -> float | None:
                since = r["cursor"] or r["last_success_at"]
                return (r["read_at"] - since).total_seconds() if since else None
            lines += family("baysync_lag_seconds", "gauge",
                            "Now minus the pair's cursor (the time its data is complete up to), or minus its last "
                            "success when it has no cursor; absent before the first success.",
                            ((lb, v) for lb, r in pl if (v := lag(r)) is not None))
            lines += family("baysync_last_success_timestamp_seconds", "gauge",
                            "Unix time the pair's last successful run finished; absent before the first.",
                            ((lb, r["last_success_at"].timestamp()) for lb, r in pl if r["last_success_at"]))
            lines += family("baysync_consecutive_failures", "gauge",
                            "Failed or abandoned runs of the pair since its last success.",
                            ((lb, int(r["failures"])) for lb, r in pl))
            lines += family("baysync_api_calls_total", "counter", "eBay API calls recorded in runs.",
                            ((lb, int(r["api_calls"])) for lb, r in pl))
            accs = {r["account"]: r["account_status"] == "reauth_needed" for r in rows}
            lines += family("baysync_reauth_needed", "gauge",
                            "1 when eBay refused the account's refresh token (reconnect it), else 0.",
                            ((dict(account=name), int(reauth)) for name, reauth in accs.items()))
            streams = sorted({r["stream"] for _, r in pl})
            lines += family("baysync_interval_seconds", "gauge",
                            "Configured seconds between incremental runs, by stream.",
                            ((dict(stream=s), pool.settings.stream(s).interval_s) for s in streams))
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/healthz", healthz), Route("/healthz/db", healthz_db), Route("/metrics", metrics)])


class HealthServer:
    """The running health server: ``task`` serves until :meth:`stop` (a graceful shutdown)."""

    def __init__(self, task: "asyncio.Task[None]", server: "uvicorn.Server"):
        self.task, self.server = task, server

    async def stop(self, timeout: float | None = None) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), timeout)


async def serve(pool: "WorkerPool", bind: str) -> HealthServer:
    import uvicorn

    class QuietServer(uvicorn.Server):
        # The pool owns SIGTERM/SIGINT: uvicorn >= 0.29 takes them over in serve() through capture_signals
        # (install_signal_handlers, which this used to override, no longer exists).
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    host, _, port = bind.rpartition(":")
    server = QuietServer(uvicorn.Config(make_app(pool), host=host, port=int(port), log_level="warning",
                                        lifespan="off"))
    return HealthServer(asyncio.create_task(server.serve(), name="baysync-health"), server)
