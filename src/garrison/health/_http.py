"""A small asyncio HTTP/1.1 server for the probe app, so ``garrison run`` needs no uvicorn.

It serves one ASGI app (normally :class:`~garrison.health.HealthApp`) and is
built for probes, not for traffic. Whatever a client does, it holds a bounded
share of the server, for a bounded time:

- a request (line and headers up to ``max_header_bytes``, body up to
  ``max_body_bytes``) must arrive within ``header_timeout`` of the
  connection (``idle_timeout`` between keep-alive requests);
- a response must be taken by the client within ``write_timeout``, else the
  connection is aborted (a client that pipelines requests and never reads
  cannot park the server on a full socket);
- a connection serves at most ``max_requests`` requests, then closes;
- at most ``max_connections`` connections are open. When a new one arrives at
  the cap, one is dropped to make room: a client pipelining requests first,
  else the one that has waited longest for its client to send; one answering
  its first request (a probe) never is. Slow, idle and pipelining clients
  cannot lock a real probe out, however fast they come back.

Responses are buffered (a probe answer is a few hundred bytes) and sent with
a ``content-length``. Lifespan events are not sent: the runtime that owns the
server starts and stops it. ``aclose()`` stops accepting, aborts every
connection but those answering their first request, lets those finish for up
to ``grace`` seconds, then aborts them too: a stop never waits on clients.
"""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote

from garrison._log import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from types import TracebackType

    ASGIApp = Callable[
        [
            MutableMapping[str, Any],
            Callable[[], Awaitable[MutableMapping[str, Any]]],
            Callable[[MutableMapping[str, Any]], Awaitable[None]],
        ],
        Awaitable[None],
    ]

__all__ = ["ProbeServer"]

log = get_logger("garrison.health")


class _BadRequestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ProbeServer:
    """Serve an ASGI app over HTTP/1.1 on ``host:port`` (``port=0`` picks a free port).

    >>> async with ProbeServer(HealthApp(probes), port=0) as server:  # doctest: +SKIP
    ...     print(server.url)  # http://127.0.0.1:41234
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_header_bytes: int = 16 * 1024,
        max_body_bytes: int = 64 * 1024,
        header_timeout: float = 5.0,
        idle_timeout: float = 5.0,
        write_timeout: float = 5.0,
        max_requests: int = 100,
        max_connections: int = 64,
        grace: float = 2.0,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.max_requests = max_requests
        self.max_connections = max_connections
        self.grace = grace
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._closing = False

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``); raises before :meth:`start`."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the probe server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start accepting connections (idempotent)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.requested_port, limit=self.max_header_bytes
        )
        log.info("health.server.listening", url=self.url)

    async def aclose(self) -> None:
        """Stop accepting, abort waiting clients, finish answers (up to ``grace`` s); idempotent."""
        if self._server is None or self._closing:
            return
        self._closing = True
        self._server.close()
        for connection in list(self._connections):
            if not connection.answering_a_probe:
                connection.abort()
        tasks = {c.task for c in self._connections if c.task is not None}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.grace)
            for connection in list(self._connections):
                connection.abort()
            if pending:
                # Aborted and cancelled, each ends at its next step.
                await asyncio.wait(pending)
        await self._server.wait_closed()
        log.info("health.server.closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        if len(self._connections) >= self.max_connections and not self._make_room():
            writer.transport.abort()
            return
        connection = _Connection(writer)
        task = asyncio.get_running_loop().create_task(self._serve_connection(connection, reader))
        connection.task = task
        self._connections.add(connection)
        task.add_done_callback(lambda _: self._connections.discard(connection))

    def _make_room(self) -> bool:
        """Drop one connection for a new one; False when every one is answering a first request.

        First to go: a connection past its first request whose answer is in
        progress (a client pipelining requests), the longest in that answer;
        then the one that has waited longest for its client to send (slow,
        idle, idle keep-alive). A connection answering its first request (a
        probe) is never dropped: it ends on its own within the app's and the
        write's bounds. A probe that has just connected has waited least, so
        attackers lose their slots to it however fast they come back.
        """
        candidates = [c for c in self._connections if not c.answering_a_probe]
        if not candidates:
            return False
        victim = min(candidates, key=lambda c: (not c.answering, c.since))
        victim.abort()
        self._connections.discard(victim)
        return True

    async def _serve_connection(
        self, connection: _Connection, reader: asyncio.StreamReader
    ) -> None:
        writer = connection.writer
        try:
            while not self._closing and connection.requests < self.max_requests:
                timeout = self.header_timeout if connection.requests == 0 else self.idle_timeout
                connection.wait_for_request()
                try:
                    async with asyncio.timeout(timeout):
                        request = await self._read_request(reader)
                except TimeoutError:
                    return
                except _BadRequestError as exc:
                    connection.answer()
                    await self._send(writer, *_error(exc.status, str(exc)), keep_alive=False)
                    return
                if request is None:
                    return
                connection.answer()
                last = connection.requests >= self.max_requests
                if not await self._handle(connection, request, last=last):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            # The client went away, or did not take its answer in time.
            connection.abort()
        finally:
            await self._close(connection)

    async def _close(self, connection: _Connection) -> None:
        """Close after the answer is flushed; abort when the client does not take it in time."""
        writer = connection.writer
        writer.close()
        try:
            async with asyncio.timeout(self.write_timeout):
                await writer.wait_closed()
        except (ConnectionError, TimeoutError):
            connection.abort()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        start: dict[str, Any],
        body: bytes,
        *,
        head: bool = False,
        keep_alive: bool,
    ) -> None:
        """Write one response; ``TimeoutError`` when the client does not take it in time."""
        writer.write(_response_bytes(start, body, head=head, keep_alive=keep_alive))
        async with asyncio.timeout(self.write_timeout):
            await writer.drain()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _BadRequestError(400, "incomplete request") from exc
            return None  # a clean close between requests
        except asyncio.LimitOverrunError as exc:
            raise _BadRequestError(431, "request headers too large") from exc
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequestError(400, "malformed request line")
        method, target, version = parts
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequestError(400, "malformed header line")
            headers.append((name.lower().encode("latin-1"), value.strip().encode("latin-1")))
        fields = dict(headers)
        if b"transfer-encoding" in fields:
            raise _BadRequestError(501, "chunked request bodies are not supported")
        try:
            length = int(fields.get(b"content-length", b"0"))
        except ValueError as exc:
            raise _BadRequestError(400, "bad content-length") from exc
        if length < 0:
            raise _BadRequestError(400, "bad content-length")
        if length > self.max_body_bytes:
            raise _BadRequestError(413, "request body too large")
        body = await reader.readexactly(length) if length else b""
        raw_path, _, query = target.partition("?")
        connection = fields.get(b"connection", b"").lower()
        keep_alive = (
            connection != b"close" if version == "HTTP/1.1" else connection == b"keep-alive"
        )
        return {
            "method": method.upper(),
            "raw_path": raw_path,
            "query": query,
            "version": version[5:],
            "headers": headers,
            "body": body,
            "keep_alive": keep_alive,
        }

    async def _handle(
        self, connection: _Connection, request: dict[str, Any], *, last: bool
    ) -> bool:
        """Answer one request; True when the connection stays open for another."""
        writer = connection.writer
        sockname = writer.get_extra_info("sockname")
        peername = writer.get_extra_info("peername")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request["version"],
            "method": request["method"],
            "scheme": "http",
            "path": unquote(request["raw_path"]),
            "raw_path": request["raw_path"].encode("latin-1"),
            "query_string": request["query"].encode("latin-1"),
            "root_path": "",
            "headers": request["headers"],
            "client": tuple(peername[:2]) if peername else None,
            "server": tuple(sockname[:2]) if sockname else None,
        }
        done = asyncio.Event()
        body_sent = False
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request["body"], "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = dict(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("health.server.app_error", path=scope["path"])
            if start is None:
                await self._send(writer, *_error(500, "internal error"), keep_alive=False)
            return False
        finally:
            done.set()
        if start is None:
            await self._send(writer, *_error(500, "the app sent no response"), keep_alive=False)
            return False
        keep_alive = bool(request["keep_alive"]) and not self._closing and not last
        await self._send(
            writer,
            start,
            b"".join(chunks),
            head=request["method"] == "HEAD",
            keep_alive=keep_alive,
        )
        return keep_alive


class _Connection:
    """One client connection: its writer, its task, and what it is doing."""

    __slots__ = ("answering", "requests", "since", "task", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.task: asyncio.Task[None] | None = None
        #: Requests read so far.
        self.requests = 0
        #: True from a request's arrival until the connection waits for the next:
        #: the server, not the client, has the next move.
        self.answering = False
        #: When it began its current wait or answer.
        self.since = time.monotonic()

    @property
    def answering_a_probe(self) -> bool:
        """Answering its first request: never dropped to make room, finished at a stop."""
        return self.answering and self.requests == 1

    def wait_for_request(self) -> None:
        self.answering = False
        self.since = time.monotonic()

    def answer(self) -> None:
        self.requests += 1
        self.answering = True
        self.since = time.monotonic()

    def abort(self) -> None:
        """Drop the connection now, unsent data and all, and end its task."""
        self.writer.transport.abort()
        if self.task is not None:
            self.task.cancel()


def _response_bytes(start: dict[str, Any], body: bytes, *, head: bool, keep_alive: bool) -> bytes:
    status = int(start["status"])
    reason = _reason(status)
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    for name, value in start.get("headers", []):
        lowered = bytes(name).lower()
        if lowered == b"connection" or (lowered == b"content-length" and not head):
            continue
        lines.append(bytes(name) + b": " + bytes(value))
    if not head:
        lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: " + (b"keep-alive" if keep_alive else b"close"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head else body)


def _error(status: int, message: str) -> tuple[dict[str, Any], bytes]:
    body = ('{"error":"' + message.replace('"', "'") + '"}').encode()
    return {"status": status, "headers": [(b"content-type", b"application/json")]}, body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
