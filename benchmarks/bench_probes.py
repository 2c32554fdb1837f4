"""Probe latency: garrison's ProbeServer vs uvicorn serving the same HealthApp.

Both serve ``HealthApp`` over a real loopback socket in this process; a client
(a raw asyncio socket client: one keep-alive connection, then a new
connection per request as Kubernetes does) asks ``/readyz`` against a runtime with three components.
Prints the median time per request for each, and the ratio.

    .venv-test/bin/python benchmarks/bench_probes.py [--requests 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, report
from garrison.health import HealthApp, ProbeServer, probes_for
from garrison.runtime import CheckResult, Component, open_runtime


class _Part(Component):
    async def check_health(self) -> CheckResult:
        return CheckResult.passing(latency_ms=0.1)


class A(_Part):
    name = "a"


class B(_Part):
    name = "b"
    depends_on = ("a",)


class C(_Part):
    name = "c"
    depends_on = ("a",)


@contextlib.asynccontextmanager
async def _uvicorn(app: HealthApp) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="error", lifespan="off", ws="none", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def _garrison(app: HealthApp) -> AsyncIterator[str]:
    async with ProbeServer(app, port=0) as server:
        yield server.url


async def _per_request(url: str, n: int, *, keep_alive: bool) -> float:
    # A raw asyncio client: httpx's own per-client setup (SSL context, pools)
    # would dwarf the server time being compared.
    host, port = url.removeprefix("http://").rsplit(":", 1)
    if keep_alive:
        reader, writer = await asyncio.open_connection(host, int(port))
        start = time.perf_counter()
        for _ in range(n):
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: probe\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if b"connection: close" in head.lower():
                # The server ends a connection after its max_requests; a client
                # (a kubelet, a balancer) opens the next one, and so does this.
                writer.close()
                await writer.wait_closed()
                reader, writer = await asyncio.open_connection(host, int(port))
        elapsed = time.perf_counter() - start
        writer.close()
        await writer.wait_closed()
        return elapsed / n
    start = time.perf_counter()
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        reply = await reader.read()
        assert reply.startswith(b"HTTP/1.1 200"), reply
        writer.close()
        await writer.wait_closed()
    return (time.perf_counter() - start) / n


async def main(requests: int, repeat: int) -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as data:
        async with open_runtime({}, components=[A, B, C], data_dir=data) as rt:
            app = HealthApp(probes_for(rt))
            for keep_alive in (True, False):
                ours: list[float] = []
                theirs: list[float] = []
                for _ in range(repeat):
                    # Alternate so background load hits both alike.
                    async with _garrison(app) as url:
                        ours.append(await _per_request(url, requests, keep_alive=keep_alive))
                    async with _uvicorn(app) as url:
                        theirs.append(await _per_request(url, requests, keep_alive=keep_alive))
                mode = "keep-alive" if keep_alive else "new connection"
                report(
                    f"GET /readyz ({mode}), us/request",
                    statistics.median(ours) * 1e6,
                    statistics.median(theirs) * 1e6,
                    unit="us",
                    higher_is_better=False,
                )
                spread = max(ours) / min(ours) if min(ours) else float("nan")
                print(
                    f"  garrison runs (us): {[round(x * 1e6) for x in ours]} (max/min {spread:.2f})"
                )
                print(f"  uvicorn runs  (us): {[round(x * 1e6) for x in theirs]}")
            await probes_for(rt).aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    ns = parser.parse_args()
    asyncio.run(main(ns.requests, ns.repeat))
