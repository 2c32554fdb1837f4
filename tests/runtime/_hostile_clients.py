"""Hostile HTTP clients on loopback, and a real probe that must keep getting answers.

Each attack runs until its ``stop`` event is set and reconnects whenever the
server drops it, so the pressure lasts the whole attack:

- ``slowloris``: sends a request line, then a header line every ``pace``
  seconds, never finishing the request;
- ``pipeline``: writes a burst of complete requests and never reads an answer;
- ``idle``: connects and sends nothing (held once, not reconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
from dataclasses import dataclass, field

PIPELINED = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n" * 200


@dataclass
class Attack:
    """What an attack did: connections opened (accepted by the kernel)."""

    connections: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def allow_open_files(needed: int) -> None:
    """Raise the soft limit on open files to ``needed`` (the hard limit caps it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def slowloris(port: int, attack: Attack, *, pace: float) -> None:
    """One slow client, reconnecting whenever it is dropped."""
    while not attack.stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(pace)  # refused: retry at the attack's pace
            continue
        attack.connections += 1
        try:
            writer.write(b"GET /readyz HTTP/1.1\r\n")
            while not attack.stop.is_set() and not reader.at_eof():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pace):
                        await attack.stop.wait()
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
        except OSError:
            pass
        finally:
            await _close(writer)


async def pipeline(port: int, attack: Attack) -> None:
    """One client that pipelines requests and never reads, reconnecting when dropped."""
    while not attack.stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # refused: retry shortly
            continue
        attack.connections += 1
        try:
            # Never read: keep writing requests until the server drops us (a
            # write to a dropped connection fails), then reconnect.
            while not attack.stop.is_set():
                writer.write(PIPELINED)
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await attack.stop.wait()
        except OSError:
            pass
        finally:
            await _close(writer)


async def idle(port: int, attack: Attack, count: int) -> list[asyncio.StreamWriter]:
    """Open ``count`` connections that never send anything; returns their writers."""
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        attack.connections += 1
        writers.append(writer)
    return writers


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    """Drop every connection in ``writers``."""
    for writer in writers:
        writer.transport.abort()
    for writer in writers:
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def probe(port: int) -> int | None:
    """One real probe on a fresh connection: its status code, ``None`` without one within 1 s.

    Blocking, for a thread of its own: the probe stands for a kubelet, which
    does not share the attackers' event loop.
    """
    deadline = time.monotonic() + 1.0  # a kubelet's default probe timeout
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while b"\r\n" not in reply:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:  # refused, reset or timed out
        return None
    parts = reply.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


async def probes(port: int, count: int) -> list[int | None]:
    """``count`` probes, one every 0.1 s, each in a thread; every answer's status (None: none)."""
    answers = []
    for _ in range(count):
        answers.append(await asyncio.to_thread(probe, port))
        await asyncio.sleep(0.1)  # the probe period, as a kubelet's periodSeconds
    return answers
