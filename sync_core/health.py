"""Health and metrics endpoints of `baysync run`: /healthz, /healthz/db, /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from .worker import WorkerPool


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def make_app(pool: "WorkerPool") -> Starlette:
    async def healthz(request):
        return JSONResponse({"ok": True, "owner": pool.owner, "active_runs": len(pool.active),
                             "uptime_s": round(time.monotonic() - pool.stats.started, 1)})

    async def healthz_db(request):
        try:
            async with pool.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(sa.text("select 1")), 5)
            return JSONResponse({"ok": True})
        except Exception as e:
            return JSONResponse({"ok": False, "error": type(e).__name__}, status_code=503)

    async def metrics(request):
        st = pool.stats
        lines = [
            "# HELP baysync_runs_total Runs finished by this process, by final status.",
            "# TYPE baysync_runs_total counter",
            *(f'baysync_runs_total{{status="{_label(k)}"}} {v}' for k, v in sorted(st.runs.items())),
            "# HELP baysync_active_runs Runs in progress in this process.",
            "# TYPE baysync_active_runs gauge",
            f"baysync_active_runs {len(pool.active)}",
            "# HELP baysync_claims_total Pairs claimed by this process.",
            "# TYPE baysync_claims_total counter",
            f"baysync_claims_total {st.claims}",
            "# HELP baysync_records_total Records inserted or updated, by account and stream.",
            "# TYPE baysync_records_total counter",
            *(f'baysync_records_total{{account="{_label(a)}",stream="{s}"}} {v}' for (a, s), v in sorted(st.records.items())),
            "# HELP baysync_errors_total Failed runs, by account and stream.",
            "# TYPE baysync_errors_total counter",
            *(f'baysync_errors_total{{account="{_label(a)}",stream="{s}"}} {v}' for (a, s), v in sorted(st.errors.items())),
        ]
        try:
            async with pool.engine.connect() as conn:
                rows = (await conn.execute(sa.text("""
                    select a.name, s.stream, extract(epoch from now() - s.cursor) as lag,
                           (select coalesce(sum(api_calls), 0) from sync_runs r where r.account_id = s.account_id
                            and r.stream = s.stream) as calls
                    from sync_state s join accounts a on a.id = s.account_id"""))).all()
            lines += ["# HELP baysync_lag_seconds Now minus the stream's cursor.", "# TYPE baysync_lag_seconds gauge"]
            lines += [f'baysync_lag_seconds{{account="{_label(r.name)}",stream="{r.stream}"}} {float(r.lag)}'
                      for r in rows if r.lag is not None]
            lines += ["# HELP baysync_api_calls_total eBay API calls recorded in runs.", "# TYPE baysync_api_calls_total counter"]
            lines += [f'baysync_api_calls_total{{account="{_label(r.name)}",stream="{r.stream}"}} {int(r.calls)}' for r in rows]
        except Exception:
            lines.append("# database unavailable: lag and API-call series omitted")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/healthz", healthz), Route("/healthz/db", healthz_db), Route("/metrics", metrics)])


async def serve(pool: "WorkerPool", bind: str) -> asyncio.Task:
    import uvicorn

    host, _, port = bind.rpartition(":")
    server = uvicorn.Server(uvicorn.Config(make_app(pool), host=host, port=int(port), log_level="warning",
                                           lifespan="off"))
    server.install_signal_handlers = lambda: None  # the pool owns SIGTERM/SIGINT
    task = asyncio.create_task(server.serve(), name="baysync-health")
    task.server = server  # type: ignore[attr-defined]
    return task
