"""Small TCP proxies for fault tests, forwarding 127.0.0.1:<port> to a PostgreSQL unix socket or TCP
address. FaultProxy can drop every open connection on demand (like a managed pooler restarting);
TransactionPoolerProxy swaps server backends between transactions like pgbouncer pool_mode=transaction."""

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

    @classmethod
    def for_url(cls, url: str):
        """A proxy in front of the server of a SQLAlchemy URL (unix socket or TCP)."""
        from sqlalchemy.engine import make_url

        u = make_url(url)
        host = u.query.get("host") or u.host
        return cls(host if isinstance(host, str) else host[0], int(u.query.get("port") or u.port or 5432))

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


_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


async def _read_startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
    """The client's startup packet; SSL/GSS encryption requests are declined first ('N')."""
    while True:
        head = await reader.readexactly(4)
        body = await reader.readexactly(int.from_bytes(head, "big") - 4)
        code = int.from_bytes(body[:4], "big")
        if code in (_SSL_REQUEST, _GSSENC_REQUEST):
            writer.write(b"N")
            await writer.drain()
            continue
        return None if code == _CANCEL_REQUEST else head + body


async def _read_msg(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One protocol message: (type byte, the whole message as sent)."""
    head = await reader.readexactly(5)
    return head[:1], head + await reader.readexactly(int.from_bytes(head[1:], "big") - 4)


class TransactionPoolerProxy(FaultProxy):
    """What a transaction-mode pooler does to a client: every client connection is served by two
    server backends (both started with the client's startup packet; the server must trust the user),
    and whenever the serving backend reports idle (ReadyForQuery 'I': no transaction open) the client's
    next messages go to the other one. A transaction stays on one backend; a session does not."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        ups: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            startup = await _read_startup(reader, writer)
            if startup is None:
                return
            for _ in range(2):
                ups.append(await self._open_upstream())
            self._writers.update([writer] + [w for _, w in ups])
            ups[1][1].write(startup)  # the spare backend: its startup replies are dropped
            while True:
                kind, msg = await _read_msg(ups[1][0])
                if kind == b"E" or (kind == b"R" and msg[5:9] != b"\0\0\0\0"):
                    raise ConnectionError("spare backend refused the startup (the proxy needs trust auth)")
                if kind == b"Z":
                    break
            ups[0][1].write(startup)
            serving = [0]

            async def from_client() -> None:
                while True:
                    kind, msg = await _read_msg(reader)
                    for i in ((0, 1) if kind == b"X" else (serving[0],)):
                        ups[i][1].write(msg)
                        await ups[i][1].drain()
                    if kind == b"X":
                        return

            async def from_backend(i: int) -> None:
                while True:
                    kind, msg = await _read_msg(ups[i][0])
                    if kind == b"Z" and msg[5:6] == b"I" and serving[0] == i:
                        serving[0] = 1 - i  # before the client can send its next statement
                    writer.write(msg)
                    await writer.drain()

            tasks = [asyncio.create_task(c) for c in (from_client(), from_backend(0), from_backend(1))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            for w in [writer] + [w for _, w in ups]:
                self._writers.discard(w)
                try:
                    w.close()
                except Exception:
                    pass


class SharedPoolerProxy(FaultProxy):
    """pgbouncer pool_mode=transaction with one pool shared by every client: the proxy answers each
    client's startup itself (as the first client's user and database; the server must trust it) and
    lends a server backend to a client for one transaction at a time, the most recently released
    first, like pgbouncer. A lone client keeps meeting the same backend; two clients share it."""

    def __init__(self, target_host: str, target_port: int = 5432, servers: int = 2):
        super().__init__(target_host, target_port)
        self.servers = servers
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._opened = 0
        self._cond = asyncio.Condition()
        self._startup: bytes | None = None
        self._hello: list[bytes] = []  # a server's ParameterStatus messages, replayed to each client

    async def _lend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._cond:
            while not self._idle and self._opened >= self.servers:
                await self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:
            r, w = await self._open_upstream()
            self._writers.add(w)
            w.write(self._startup)
            params = []
            while True:
                kind, msg = await _read_msg(r)
                if kind == b"E" or (kind == b"R" and msg[5:9] != b"\0\0\0\0"):
                    raise ConnectionError("server refused the startup (the proxy needs trust auth)")
                if kind == b"S":
                    params.append(msg)
                if kind == b"Z":
                    self._hello = self._hello or params
                    return r, w
        except BaseException:
            async with self._cond:
                self._opened -= 1
                self._cond.notify()
            raise

    async def _release(self, server, broken: bool = False) -> None:
        async with self._cond:
            if broken:
                self._opened -= 1
                server[1].close()
            else:
                self._idle.append(server)
            self._cond.notify()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        server = None
        try:
            startup = await _read_startup(reader, writer)
            if startup is None:
                return
            self._startup = self._startup or startup
            if not self._hello:
                await self._release(await self._lend())
            writer.write(b"R\0\0\0\x08\0\0\0\0" + b"".join(self._hello)
                         + b"K\0\0\0\x0c" + self.connections.to_bytes(4, "big") + b"\0\0\0\0" + b"Z\0\0\0\x05I")
            await writer.drain()
            while True:
                kind, msg = await _read_msg(reader)
                if kind == b"X":
                    return
                if server is None:
                    server = await self._lend()
                server[1].write(msg)
                await server[1].drain()
                if kind in (b"Q", b"S"):  # a sync point: the answer runs up to ReadyForQuery
                    while True:
                        rkind, rmsg = await _read_msg(server[0])
                        writer.write(rmsg)
                        if rkind == b"Z":
                            break
                    await writer.drain()
                    if rmsg[5:6] == b"I":  # transaction over: the backend goes back to the pool
                        await self._release(server)
                        server = None
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if server is not None:  # mid-transaction: pgbouncer would close that server too
                await self._release(server, broken=True)
            self._writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass
