"""A small TCP proxy for fault tests: forwards 127.0.0.1:<port> to a PostgreSQL unix socket or TCP
address, and can drop every open connection on demand (like a managed pooler restarting)."""

from __future__ import annotations

import asyncio
import threading


class FaultProxy:
    def __init__(self, target_host: str, target_port: int = 5432):
        self.target_host, self.target_port = target_host, target_port
        self.port = 0
        self.drops = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.refuse = False

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        await self._drop()
        if self._handlers:  # let the aborted connections' handlers finish before the loop stops
            await asyncio.wait(self._handlers, timeout=5)

    async def _open_upstream(self):
        if self.target_host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self.target_host}/.s.PGSQL.{self.target_port}")
        return await asyncio.open_connection(self.target_host, self.target_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        if self.refuse:
            writer.close()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                self._writers.discard(w)
                try:
                    w.close()
                except Exception:
                    pass

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _drop(self) -> None:
        for w in list(self._writers):
            try:
                w.transport.abort()
            except Exception:
                pass
        self._writers.clear()

    def drop_all(self) -> None:
        """Abort every proxied connection now."""
        self.drops += 1
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(10)

    def url_for(self, database: str, user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"
