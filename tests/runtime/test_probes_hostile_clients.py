"""The probe server under hostile clients on loopback: real probes keep getting answers.

The attacks are scaled down in time (seconds, not minutes) with the server's
timeouts scaled down with them, so each one still outlasts every timeout that
would end it on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from garrison.health._asgi import HealthApp
from garrison.health._http import ProbeServer
from garrison.health._report import HealthReport, ProbeKind
from garrison.runtime._check import HealthStatus
from tests.runtime import _hostile_clients as hostile

# Short timeouts: the attacks below last several of each (at least 10 probes
# 0.1 s apart).
TIMEOUT = 0.5
PROBES = 10


class Source:
    async def evaluate(self, probe: ProbeKind) -> HealthReport:
        return HealthReport(probe, HealthStatus.PASS)


def _server() -> ProbeServer:
    return ProbeServer(
        HealthApp(Source()),
        port=0,
        header_timeout=TIMEOUT,
        idle_timeout=TIMEOUT,
        write_timeout=TIMEOUT,
    )


async def _attacked(server: ProbeServer, attackers: list[asyncio.Task[None]]) -> list[int | None]:
    # Let the attack fill every slot before the first real probe.
    await asyncio.sleep(0.3)  # the attack's head start, not synchronisation
    try:
        return await hostile.probes(server.port, PROBES)
    finally:
        for task in attackers:
            task.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)


async def test_probes_keep_answering_100_slow_reconnecting_clients() -> None:
    attack = hostile.Attack()
    async with _server() as server:
        attackers = [
            asyncio.create_task(hostile.slowloris(server.port, attack, pace=0.1))
            for _ in range(100)
        ]
        answers = await _attacked(server, attackers)
    assert answers == [200] * PROBES
    # More clients than slots, reconnecting as they are dropped.
    assert attack.connections > server.max_connections


async def test_probes_keep_answering_70_clients_that_pipeline_and_never_read() -> None:
    attack = hostile.Attack()
    async with _server() as server:
        attackers = [asyncio.create_task(hostile.pipeline(server.port, attack)) for _ in range(70)]
        answers = await _attacked(server, attackers)
    assert answers == [200] * PROBES
    assert attack.connections > 70  # dropped after their request limit, they came back


async def test_probes_keep_answering_beside_1000_idle_connections() -> None:
    hostile.allow_open_files(1500)
    attack = hostile.Attack()
    async with _server() as server:
        writers = await hostile.idle(server.port, attack, 1000)
        try:
            # Before any timeout could have freed a slot.
            started = time.monotonic()
            answers = [await asyncio.to_thread(hostile.probe, server.port) for _ in range(5)]
            assert time.monotonic() - started < TIMEOUT
        finally:
            await hostile.close_all(writers)
    assert answers == [200] * 5
    assert attack.connections == 1000


async def test_a_client_that_never_reads_gets_at_most_max_requests_answers() -> None:
    async with ProbeServer(
        HealthApp(Source()), port=0, max_requests=10, write_timeout=0.3
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(hostile.PIPELINED)  # 200 requests
        await writer.drain()
        async with asyncio.timeout(5):
            received = await reader.read()  # until the server closes the connection
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    assert received.count(b"HTTP/1.1 200 OK") == 10
    assert received.count(b"connection: close") == 1


async def test_aclose_does_not_wait_for_clients_that_stall_or_never_read() -> None:
    attack = hostile.Attack()
    # Timeouts far longer than the stop may take: the stop must not wait on clients.
    server = ProbeServer(
        HealthApp(Source()), port=0, header_timeout=60, idle_timeout=60, write_timeout=60, grace=10
    )
    await server.start()
    attackers = [
        *(asyncio.create_task(hostile.pipeline(server.port, attack)) for _ in range(20)),
        *(asyncio.create_task(hostile.slowloris(server.port, attack, pace=0.1)) for _ in range(20)),
    ]
    try:
        await asyncio.sleep(0.5)  # the attack's head start, not synchronisation
        started = time.monotonic()
        await server.aclose()
        stop_took = time.monotonic() - started
    finally:
        attack.stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
    assert stop_took < 1.0
    assert attack.connections >= 40
