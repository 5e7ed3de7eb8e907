"""`baysync web`: the console in a browser, served by textual-serve (each browser session spawns its own
`baysync console` speaking Textual's web driver over a websocket).

Access control on top of textual-serve's aiohttp app: every request (page, static files, websocket,
downloads) needs the random token, either as `?token=` or as the cookie the first tokened page load sets
(that load redirects to the same page without the token, so it leaves the address bar and the history).
Anything else gets 403. The websocket also refuses a browser Origin other than the page's own. aiohttp's
access log is off, so the token reaches no log; the caller prints the tokened URL once.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import shlex
import signal
import sys
from typing import Any, Callable
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def console_command(allow_actions: bool) -> str:
    """The command each browser session runs: this Python's baysync console (-P: the working directory
    is not put on sys.path, so a local `console/` folder cannot stand in for baysync's)."""
    argv = [sys.executable, "-P", "-m", "console.cli", "console"]
    if not allow_actions:
        argv.append("--read-only")
    return shlex.join(argv)


class WebError(Exception):
    """The server could not start (one line for the operator)."""


class WebConsole(Server):
    def __init__(self, command: str, host: str, port: int, token: str) -> None:
        super().__init__(command, host=host, port=port, title="baysync")
        self._token = token.encode()
        self._sessions: set[asyncio.Task[Any]] = set()

    @property
    def cookie(self) -> str:  # cookies are per host, not per port: one name per server
        return f"baysync_web_{self.port}"

    def _good(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self._token)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()

        @web.middleware
        async def require_token(request: web.Request, handler: Callable) -> web.StreamResponse:
            given = request.query.get("token")
            if given is not None:
                if not self._good(given):
                    raise web.HTTPForbidden(text="forbidden\n")
                if request.path == "/":  # trade the URL's token for a cookie and drop it from the address bar
                    rest = {k: v for k, v in request.query.items() if k != "token"}
                    resp = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(rest))})
                    resp.set_cookie(self.cookie, self._token.decode(), httponly=True, samesite="Strict", path="/")
                    return resp
            elif not self._good(request.cookies.get(self.cookie)):
                raise web.HTTPForbidden(text="forbidden\n")
            origin = request.headers.get("Origin")
            if request.path == "/ws" and origin is not None and urlsplit(origin).netloc != request.host:
                raise web.HTTPForbidden(text="forbidden\n")
            return await handler(request)

        app.middlewares.append(require_token)
        return app

    async def on_startup(self, app: web.Application) -> None:  # textual-serve's banner: the caller prints
        pass

    async def on_shutdown(self, app: web.Application) -> None:  # end the sessions: each tells its console to quit
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        # textual-serve builds absolute URLs from the address it listens on; the browser may come through an
        # SSH tunnel on another port, so use the address it asked for
        base = f"{request.scheme}://{request.host}"
        ws = ("wss:" if request.scheme == "https" else "ws:") + base.split(":", 1)[1]
        return {"font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws + str(request.app.router["websocket"].url_for()),
                "config": {"static": {"url": base + "/static/"}},
                "application": {"name": self.title}}

    async def run(self, announce: Callable[[int], None]) -> None:
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError as e:
                raise WebError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}") from None
            self.port = runner.addresses[0][1]
            announce(self.port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()


def serve(command: str, host: str, port: int, token: str, announce: Callable[[int], None]) -> None:
    """Serve until SIGINT/SIGTERM; `announce(port)` once listening (port 0 picks a free one)."""
    asyncio.run(WebConsole(command, host, port, token).run(announce))
