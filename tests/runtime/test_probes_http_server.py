"""The probe HTTP server: real sockets on loopback, well-formed and hostile clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from garrison.health._asgi import HealthApp
from garrison.health._http import ProbeServer
from garrison.health._report import HealthReport, ProbeKind
from garrison.runtime._check import HealthStatus


class Source:
    def __init__(self) -> None:
        self.status = HealthStatus.PASS

    async def evaluate(self, probe: ProbeKind) -> HealthReport:
        return HealthReport(probe, self.status)


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply


async def test_serves_the_probe_app_with_status_codes_and_content_type() -> None:
    source = Source()
    async with ProbeServer(HealthApp(source), port=0) as server, httpx.AsyncClient() as client:
        assert server.url.startswith("http://127.0.0.1:")
        response = await client.get(server.url + "/readyz")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/health+json"
        assert response.json() == {
            "status": "pass",
            "description": "garrison ready probe",
            "checks": {},
        }
        source.status = HealthStatus.FAIL
        assert (await client.get(server.url + "/livez")).status_code == 503
        head = await client.head(server.url + "/startupz")
        assert head.status_code == 503
        assert head.content == b""
        assert (await client.get(server.url + "/nope")).status_code == 404


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with ProbeServer(HealthApp(Source()), port=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for _ in range(3):
            writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            status = await reader.readline()
            assert status == b"HTTP/1.1 200 OK\r\n"
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"connection: keep-alive" in head
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.write(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        rest = await reader.read()
        assert rest.startswith(b"HTTP/1.1 200 OK")
        assert b"connection: close" in rest
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /readyz HTTP/1.1\r\nno-colon-here\r\n\r\n", b"400"),
        (b"GET /readyz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
        (b"POST /readyz HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", b"413"),
        (b"POST /readyz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
        (b"GET /readyz HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
    ],
)
async def test_bad_requests_get_an_error_status_and_a_closed_connection(
    request_bytes: bytes, status: bytes
) -> None:
    async with ProbeServer(HealthApp(Source()), port=0) as server:
        reply = await _raw(server.port, request_bytes)
        assert reply.split(b" ")[1] == status
        assert b"connection: close" in reply


async def test_a_silent_client_is_disconnected_after_the_header_timeout() -> None:
    app = HealthApp(Source())
    async with ProbeServer(app, port=0, header_timeout=0.2) as server:
        start = time.monotonic()
        reply = await _raw(server.port, b"GET /readyz HTTP/1.1\r\n")
        assert reply == b""
        assert time.monotonic() - start < 5


async def test_an_app_that_raises_gets_a_500_and_the_server_keeps_serving() -> None:
    async def broken(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with ProbeServer(broken, port=0) as server, httpx.AsyncClient() as client:
        assert (await client.get(server.url + "/boom")).status_code == 500
        assert (await client.get(server.url + "/fine")).status_code == 204


async def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    async with ProbeServer(HealthApp(Source()), port=0, max_connections=2) as server:
        first_reader, first = await asyncio.open_connection("127.0.0.1", server.port)
        first.write(b"GET /livez HTTP/1.1\r\n\r\n")
        assert (await first_reader.readline()).startswith(b"HTTP/1.1 200")
        await first_reader.readuntil(b"\r\n\r\n")
        await first_reader.readuntil(b"}}")
        # Silent since it connected: a slowloris client.
        second_reader, second = await asyncio.open_connection("127.0.0.1", server.port)
        # Both slots are taken by clients the server waits on; a probe still gets in,
        # and the one that waited longest (the idle keep-alive one) is dropped.
        reply = await _raw(server.port, b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200")
        assert await first_reader.read() == b""
        second.write(b"GET /livez HTTP/1.1\r\n\r\n")
        assert (await second_reader.readline()).startswith(b"HTTP/1.1 200")
        for writer in (first, second):
            writer.close()
            await writer.wait_closed()


async def test_aclose_closes_idle_connections_and_stops_listening() -> None:
    server = ProbeServer(HealthApp(Source()), port=0, grace=0.2, idle_timeout=30)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /livez HTTP/1.1\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    await server.aclose()
    await server.aclose()  # idempotent
    assert time.monotonic() - start < 5
    await reader.readuntil(b"\r\n\r\n")
    # read() returns only at EOF: the server closed the idle keep-alive connection.
    assert (await reader.read()).endswith(b"}")
    writer.close()
    await writer.wait_closed()
    with pytest.raises(OSError, match="onnect"):
        await asyncio.open_connection("127.0.0.1", port)
