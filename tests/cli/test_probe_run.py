"""End to end: a `garrison run` subprocess probed over HTTP and with `garrison probe`, then SIGTERM.

Readiness must turn 503 while the components are still running (the drain),
the components then stop, and the process exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli._process import Process

COMPONENT = """
from garrison.runtime import CheckResult, Component


class Slow(Component):
    name = "slow"

    async def check_health(self) -> CheckResult:
        return CheckResult.passing(latency_ms=0.1)
"""

GARRISON = [sys.executable, "-c", "import sys; from garrison.cli import main; sys.exit(main())"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "slowcomp.py").write_text(COMPONENT)
    (tmp_path / "garrison.toml").write_text(
        textwrap.dedent(
            f"""
            [runtime]
            data_dir = "{tmp_path / "data"}"

            [components.slow]
            factory = "slowcomp:Slow"

            [health]
            drain_delay = 1.5
            status_file = "{tmp_path / "health.json"}"
            status_interval = 1.0
            """
        )
    )
    return tmp_path


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(workdir), *filter(None, [environ.get("PYTHONPATH")])]
    )
    return environ


@pytest.fixture
def running(workdir: Path, env: dict[str, str]) -> Iterator[tuple[Process, str]]:
    process = Process(
        [*GARRISON, "run", "--config", str(workdir / "garrison.toml"), "--health-port", "0"],
        env,
    )
    try:
        # Port 0: the server picks a free port and logs it (console or JSON logs).
        line = process.wait_for(r"(?m)^.*health\.server\.listening.*$").group(0)
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url is not None, line
        yield process, url.group(0)
    finally:
        process.close()


def _probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GARRISON, "probe", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if httpx.get(url + "/readyz").status_code == 200:
            return
        time.sleep(0.05)  # observing another process
    raise AssertionError("never became ready")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_garrison_run_serves_probes_and_drains_on_a_stop_signal(
    running: tuple[Process, str], env: dict[str, str], workdir: Path, signum: signal.Signals
) -> None:
    process, url = running
    _wait_ready(url)
    assert httpx.get(url + "/livez").status_code == 200
    startup = httpx.get(url + "/startupz?verbose")
    assert startup.status_code == 200
    assert startup.headers["content-type"] == "application/health+json"
    assert startup.json()["checks"]["slow"][0]["state"] == "running"

    ok = _probe(env, "ready", "--url", url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "ready: pass"
    assert _probe(env, "live", "--file", str(workdir / "health.json")).returncode == 0

    process.proc.send_signal(signum)
    # Readiness flips first, while the component is still running: the drain.
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(url + "/readyz?verbose")
        if response.status_code == 503:
            break
        assert time.monotonic() < deadline, f"readiness never failed after {signum.name}"
        time.sleep(0.02)  # observing another process
    body = response.json()
    assert body["output"] == "the runtime is stopping"
    assert body["checks"]["slow"][0]["state"] == "running"
    assert httpx.get(url + "/livez").status_code == 200
    failing = _probe(env, "ready", "--url", url)
    assert failing.returncode == 1
    assert failing.stdout.startswith("ready: fail")

    assert process.proc.wait(timeout=30) == 0, process.output()
    out = process.output()
    assert out.index("health.draining") < out.index("component.stopping")
    # After exit: the probe server is gone (3) and the status file says stopped (1).
    assert _probe(env, "ready", "--url", url, "--timeout", "1").returncode == 3
    assert _probe(env, "ready", "--file", str(workdir / "health.json")).returncode == 1


def test_garrison_probe_against_nothing_is_exit_3(env: dict[str, str], tmp_path: Path) -> None:
    missing = _probe(env, "live", "--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 3
    assert "cannot read status file" in missing.stderr


def test_garrison_run_with_a_busy_health_port_fails_with_one_paragraph(
    workdir: Path, env: dict[str, str]
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                *GARRISON,
                "run",
                "--config",
                str(workdir / "garrison.toml"),
                "--health-port",
                str(port),
            ],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    paragraph = [line for line in done.stderr.splitlines() if line.startswith("garrison:")]
    assert len(paragraph) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in paragraph[0]
    assert "--health-port" in paragraph[0]
