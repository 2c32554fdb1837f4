"""Embedding in Starlette: the runtime in the lifespan, probes mounted, a real uvicorn server.

During uvicorn's shutdown the lifespan drains: readiness answers 503 (over
HTTP, from the probe server that outlives uvicorn's listener) before and
while the components stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from garrison.config import build_config
from garrison.health import HealthApp, RuntimeProbes, evaluate, probes_for, serving_health
from garrison.runtime import CheckResult, Component, HealthStatus, Runtime


class Worker(Component):
    name = "worker"
    probe_url: ClassVar[str] = ""
    seen_while_stopping: ClassVar[list[int]] = []

    async def check_health(self) -> CheckResult:
        return CheckResult.passing(queue_depth=0)

    async def on_stop(self) -> None:
        # Ask the probe server over HTTP at the moment this component stops.
        async with httpx.AsyncClient() as client:
            response = await client.get(type(self).probe_url + "/readyz")
        type(self).seen_while_stopping.append(response.status_code)


def make_app(data_dir: Path, drained: asyncio.Event) -> Starlette:
    probes = RuntimeProbes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        config = build_config(
            {"runtime": {"data_dir": str(data_dir)}, "health": {"port": 0, "drain_delay": 0.2}}
        )
        runtime = Runtime(config, [Worker])
        async with serving_health(runtime) as health, runtime:
            assert health.url is not None
            Worker.probe_url = health.url
            probes.runtime = runtime
            app.state.runtime = runtime
            yield
            await health.drain()
            drained.set()
        await probes_for(runtime).aclose()

    async def status(request: Request) -> JSONResponse:
        report = await evaluate(request.app.state.runtime, "ready")
        return JSONResponse({"ready": report.ok})

    return Starlette(
        routes=[Route("/status", status), Mount("/health", app=HealthApp(probes))],
        lifespan=lifespan,
    )


async def test_starlette_lifespan_runtime_with_probes_and_a_drain_on_shutdown(
    tmp_path: Path,
) -> None:
    Worker.seen_while_stopping = []
    drained = asyncio.Event()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(tmp_path, drained),
            lifespan="on",
            log_level="warning",
            ws="none",
            access_log=False,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/status")).json() == {"ready": True}
            ready = await client.get("/health/readyz?verbose")
            assert ready.status_code == 200
            assert ready.headers["content-type"] == "application/health+json"
            assert ready.json()["checks"]["worker:queue_depth"][0]["observedValue"] == 0
            assert (await client.get("/health/livez")).status_code == 200
            assert (await client.get("/health/startupz")).status_code == 200
            # The separate probe server answers the same.
            assert (await client.get(Worker.probe_url + "/readyz")).status_code == 200
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert drained.is_set()
    # While the worker was stopping, readiness over HTTP was already 503.
    assert Worker.seen_while_stopping == [503]


class Idle(Component):
    name = "idle"

    async def check_health(self) -> CheckResult:
        return CheckResult.passing(queue_depth=0)


async def test_runtime_probes_fail_until_a_runtime_is_set(tmp_path: Path) -> None:
    probes = RuntimeProbes()
    before = await probes.evaluate("ready")
    assert (before.status, before.output) == (HealthStatus.FAIL, "the runtime is not started")
    config = build_config({"runtime": {"data_dir": str(tmp_path)}})
    async with Runtime(config, [Idle]) as runtime:
        probes.runtime = runtime
        ready = await probes.evaluate("ready")
        assert ready.status is HealthStatus.PASS
        assert ready.check("idle").observed["queue_depth"] == 0
        await probes_for(runtime).aclose()
