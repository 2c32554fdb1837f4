"""Hostile clients against a real ``garrison run``: do probes answer, does SIGTERM stop it?

Starts ``garrison run`` (one trivial component, probes on a free loopback
port), runs one attack for ``--seconds`` while a real probe asks ``/readyz``
every 0.5 s on a fresh connection with a 1 s timeout (a kubelet's default),
then sends SIGTERM and times the exit. Prints the probes answered and failed,
the server's CPU use during the attack (Linux), and the SIGTERM-to-exit time.

- ``slowloris``: 100 clients send a header line every 0.5 s, never finishing
  the request, and reconnect when dropped (or after 20 lines);
- ``pipeline``: 70 clients write requests without end and never read an answer
  (``--reconnect``: connect again when dropped);
- ``idle``: 1,000 connections that send nothing.

    .venv-test/bin/python benchmarks/attack_probes.py slowloris|pipeline|idle [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

COMPONENT = """
from garrison.runtime import CheckResult, Component


class Plain(Component):
    name = "plain"

    async def check_health(self) -> CheckResult:
        return CheckResult.passing(latency_ms=0.1)
"""

REQUESTS = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n" * 100


async def slowloris(port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\n")
            for _ in range(20):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await stop.wait()
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
            writer.transport.abort()
        except OSError:
            await asyncio.sleep(0.05)


async def pipeline(port: int, stop: asyncio.Event, *, reconnect: bool) -> None:
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            while not stop.is_set():
                writer.write(REQUESTS)
                await writer.drain()
        except OSError:
            if not reconnect:
                return
            await asyncio.sleep(0.05)


async def probe(port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            line = await reader.readline()
            writer.transport.abort()
    except (OSError, TimeoutError):
        return False
    return line.startswith(b"HTTP/1.1 200")


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_exit(process: subprocess.Popen[str]) -> float | None:
    """Seconds until ``process`` exits; ``None`` (and SIGKILL) when it is still alive at 30 s."""
    started = time.monotonic()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    return time.monotonic() - started


async def attack(
    args: argparse.Namespace, port: int, process: subprocess.Popen[str]
) -> tuple[int, int, float | None, float | None]:
    pid = process.pid
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    held: list[asyncio.StreamWriter] = []
    if args.attack == "slowloris":
        tasks = [asyncio.create_task(slowloris(port, stop)) for _ in range(100)]
    elif args.attack == "pipeline":
        tasks = [
            asyncio.create_task(pipeline(port, stop, reconnect=args.reconnect)) for _ in range(70)
        ]
    else:
        held = [(await asyncio.open_connection("127.0.0.1", port))[1] for _ in range(1000)]
    await asyncio.sleep(0.5)  # the attack's head start
    cpu_start, started = cpu_seconds(pid), time.monotonic()
    answered = failed = 0
    while time.monotonic() - started < args.seconds:
        if await probe(port):
            answered += 1
        else:
            failed += 1
        await asyncio.sleep(0.5)  # the probe period
    cpu_end = cpu_seconds(pid)
    cpu = None
    if cpu_start is not None and cpu_end is not None:
        cpu = 100 * (cpu_end - cpu_start) / (time.monotonic() - started)
    process.send_signal(signal.SIGTERM)
    # The attack goes on while the process stops: SIGTERM must not wait for it.
    took = await asyncio.to_thread(wait_exit, process)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in held:
        writer.transport.abort()
    return answered, failed, cpu, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("attack", choices=("slowloris", "pipeline", "idle"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--reconnect", action="store_true", help="pipeline: reconnect")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048 <= hard or (soft < 2048 and hard == resource.RLIM_INFINITY):
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "attack_component.py").write_text(COMPONENT)
        config = Path(tmp, "garrison.toml")
        config.write_text(
            textwrap.dedent(
                f"""
                [runtime]
                data_dir = "{Path(tmp, "data").as_posix()}"
                [components.plain]
                factory = "attack_component:Plain"
                """
            )
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, *sys.path]))
        argv = [sys.executable, "-m", "garrison.cli", "run", "--config", str(config)]
        process = subprocess.Popen(
            [*argv, "--health-port", "0", "--log-format", "json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            if (found := re.search(r"http://127\.0\.0\.1:(\d+)", line)) is not None:
                port = int(found.group(1))
            if "runtime.running" in line:
                break
        if port is None:
            sys.exit("garrison run did not start")
        # Keep reading its log so the process never blocks on a full pipe.
        reader = threading.Thread(target=process.stderr.read, daemon=True)
        reader.start()
        answered, failed, cpu, took = asyncio.run(attack(args, port, process))
    print(machine())
    print(f"attack: {args.attack}{' (reconnecting)' if args.reconnect else ''}, {args.seconds:g} s")
    print(f"real probes: {answered} answered, {failed} failed")
    if cpu is not None:
        print(f"server CPU during the attack: {cpu:.0f}%")
    print(
        "SIGTERM to exit: "
        + (f"{took:.2f} s" if took is not None else "still running after 30 s (killed)")
    )


if __name__ == "__main__":
    main()
