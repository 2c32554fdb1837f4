"""The two embedding examples, run for real and probed over loopback HTTP.

Each runs as its own process (as a user would run it), serves the probes,
and on SIGTERM fails readiness while its components are still running, then
stops them and exits 0.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli._process import Process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


def _drain_then_exit(
    process: Process, probe_url: str, component: str, *, exit_codes: tuple[int, ...] = (0,)
) -> None:
    """SIGTERM: readiness 503 while ``component`` still runs, then a clean exit."""
    process.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(probe_url + "/readyz?verbose")
        if response.status_code == 503:
            break
        assert time.monotonic() < deadline, "readiness never failed after SIGTERM"
        time.sleep(0.02)  # observing another process
    body = response.json()
    assert body["output"] == "the runtime is stopping"
    assert body["checks"][component][0]["state"] == "running"
    assert process.proc.wait(timeout=30) in exit_codes, process.output()
    out = process.output()
    assert out.index("health.draining") < out.index("component.stopping")
    assert "runtime.stopped" in out


def test_plain_asyncio_example(spawn: list[Process], tmp_path: Path) -> None:
    process = Process(
        [
            sys.executable,
            str(EXAMPLES / "plain_asyncio.py"),
            "--data-dir",
            str(tmp_path),
            "--visits",
            "5",
            "--serve",
        ],
        cwd=tmp_path,
    )
    spawn.append(process)
    probe_url = process.wait_for(r"probes: (http://127\.0\.0\.1:\d+)").group(1)
    process.wait_for("serving; Ctrl-C to stop")
    out = process.output()
    # Store, change feed and the app's own component all worked.
    assert 'tally: {"ann": 3, "bob": 2}' in out
    assert 'first visit: {"user": "ann"}' in out
    assert "ready: pass" in out
    ready = httpx.get(probe_url + "/readyz?verbose").json()
    assert ready["status"] == "pass"
    assert ready["checks"]["visits:visits"][0]["observedValue"] == 5
    assert ready["checks"]["database"][0]["status"] == "pass"
    assert httpx.get(probe_url + "/startupz").status_code == 200
    _drain_then_exit(process, probe_url, "visits")
    assert process.output().rstrip().endswith("stopped")


def test_asgi_example_under_uvicorn(spawn: list[Process], tmp_path: Path) -> None:
    process = Process(
        [
            sys.executable,
            str(EXAMPLES / "asgi_app.py"),
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
    )
    spawn.append(process)
    probe_url = process.wait_for(r"probes: (http://127\.0\.0\.1:\d+)").group(1)
    app_url = process.wait_for(r"Uvicorn running on (http://127\.0\.0\.1:\d+)").group(1)
    with httpx.Client(base_url=app_url) as client:
        assert client.get("/items/apple").status_code == 404
        assert client.put("/items/apple", json={"colour": "red", "n": 3}).status_code == 204
        assert client.get("/items/apple").json() == {"colour": "red", "n": 3}
        mounted = client.get("/health/readyz")
        assert mounted.status_code == 200
        assert mounted.headers["content-type"] == "application/health+json"
        assert client.get("/health/startupz").status_code == 200
    # The value is really in the SQLite store on disk.
    assert any((tmp_path / "data").iterdir())
    # uvicorn re-raises the signal after its graceful shutdown, so the
    # process ends "killed by SIGTERM" once everything has stopped.
    _drain_then_exit(process, probe_url, "database", exit_codes=(0, -signal.SIGTERM))
    assert "Application shutdown complete." in process.output()
