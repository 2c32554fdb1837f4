"""The probe ASGI app: routes, status codes, verbose, mounted in Starlette, under uvicorn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from garrison.health._asgi import HealthApp
from garrison.health._report import ComponentHealth, HealthReport, ProbeKind
from garrison.runtime._check import CheckResult, HealthStatus


class Switchboard:
    """A probe source whose answer the test sets; it records what was asked."""

    def __init__(self) -> None:
        self.status = HealthStatus.PASS
        self.asked: list[ProbeKind] = []

    async def evaluate(self, probe: ProbeKind) -> HealthReport:
        self.asked.append(probe)
        entry = ComponentHealth.from_result(
            "database",
            CheckResult(self.status, {"latency_ms": 0.5}, "" if self.status == "pass" else "x"),
        )
        return HealthReport(probe, self.status, (entry,))


@pytest.fixture
def board() -> Switchboard:
    return Switchboard()


@pytest.fixture
async def client(board: Switchboard) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=HealthApp(board))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
        yield c


@pytest.mark.parametrize(
    ("path", "probe"),
    [("/livez", "live"), ("/readyz", "ready"), ("/healthz", "ready"), ("/startupz", "startup")],
)
async def test_each_route_answers_its_probe_as_health_json(
    client: httpx.AsyncClient, board: Switchboard, path: str, probe: ProbeKind
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["status"] == "pass"
    assert board.asked == [probe]


async def test_warn_is_200_and_fail_is_503(client: httpx.AsyncClient, board: Switchboard) -> None:
    board.status = HealthStatus.WARN
    assert (await client.get("/readyz")).status_code == 200
    board.status = HealthStatus.FAIL
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"


async def test_terse_by_default_and_details_with_verbose(client: httpx.AsyncClient) -> None:
    terse = (await client.get("/readyz")).json()
    assert terse["checks"] == {"database": [{"status": "pass"}]}
    for query in ("?verbose", "?verbose=1", "?verbose=true"):
        verbose = (await client.get("/readyz" + query)).json()
        assert verbose["checks"]["database:latency"][0]["observedUnit"] == "ms", query
    assert "database:latency" not in (await client.get("/readyz?verbose=0")).json()["checks"]


async def test_head_has_headers_and_no_body(client: httpx.AsyncClient, board: Switchboard) -> None:
    board.status = HealthStatus.FAIL
    response = await client.head("/livez")
    assert response.status_code == 503
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


async def test_unknown_paths_are_404_and_other_methods_405(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404
    response = await client.post("/readyz")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_a_source_without_evaluate_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="HealthApp needs"):
        HealthApp(42)


def _starlette_app(board: Switchboard) -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello), Mount("/health", app=HealthApp(board))])


async def test_mounted_in_starlette_under_a_prefix(board: Switchboard) -> None:
    transport = httpx.ASGITransport(app=_starlette_app(board))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        assert (await c.get("/")).text == "hello"
        response = await c.get("/health/readyz")
        assert response.status_code == 200
        assert response.json()["description"] == "garrison ready probe"
        board.status = HealthStatus.FAIL
        assert (await c.get("/health/livez")).status_code == 503
        assert (await c.get("/readyz")).status_code == 404


async def test_served_by_a_real_uvicorn_server_on_loopback(board: Switchboard) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _starlette_app(board), log_level="warning", lifespan="on", ws="none", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            response = await c.get("/health/startupz?verbose")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/health+json"
            assert response.json()["checks"]["database"][0]["componentType"] == "component"
            board.status = HealthStatus.FAIL
            assert (await c.get("/health/healthz")).status_code == 503
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_websocket_handshake_is_refused() -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await HealthApp(Switchboard())({"type": "websocket", "path": "/readyz"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]
