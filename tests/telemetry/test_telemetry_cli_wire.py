"""``garrison run`` as a subprocess, exporting to the test's OTLP receiver; SIGTERM flushes.

The spans of its start and of a health probe answered over HTTP arrive, all
flushed by the SIGTERM shutdown.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import TYPE_CHECKING

import orjson
import pytest

from tests.telemetry._otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COMPONENT_MODULE = """
from garrison.runtime import Component

class Greeter(Component):
    name = "greeter"

    async def on_start(self) -> None:
        self.greeting = "hello"
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


class _Lines:
    """Reads a pipe in a thread; lets the test wait for a JSON log event by name."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._condition:
                self.lines.append(line)
                self._condition.notify_all()
        with self._condition:
            self.closed = True
            self._condition.notify_all()

    def join(self) -> None:
        """Wait for the end of the stream (the process has exited)."""
        self._thread.join(10)

    def events(self) -> list[str]:
        names = []
        for line in self.lines:
            try:
                names.append(str(orjson.loads(line).get("event")))
            except orjson.JSONDecodeError:
                continue
        return names

    def field(self, event: str, name: str) -> str:
        """The value of field ``name`` of the first ``event`` log line."""
        for line in self.lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if record.get("event") == event:
                return str(record[name])
        raise KeyError(f"no {event!r} log event")

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._condition:
            while event not in self.events():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"no {event!r} log event; got:\n{''.join(self.lines)}")
                self._condition.wait(remaining)


def test_garrison_run_exports_its_spans_and_sigterm_flushes_them(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    (tmp_path / "wire_components.py").write_text(COMPONENT_MODULE)
    config = tmp_path / "garrison.toml"
    config.write_text(
        f"""
[runtime]
data_dir = "{tmp_path / "data"}"
stop_timeout = 5.0

[health]
drain_delay = 0.0
trace = true

[components.telemetry]

[components.greeter]
factory = "wire_components:Greeter"
"""
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tmp_path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "garrison-run-test",
        "OTEL_METRICS_EXPORTER": "none",
        # Nothing is exported on a timer during the test: whatever arrives was
        # flushed by the SIGTERM shutdown.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli",
            "run",
            "--config",
            str(config),
            "--health-port",
            "0",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = _Lines(process.stderr)
    try:
        logs.wait_for("runtime.running", timeout=30)
        url = logs.field("health.server.listening", "url")
        with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
            assert response.status == 200
        assert receiver.spans == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(logs.lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        logs.join()
        assert process.stderr is not None
        process.stderr.close()

    spans = receiver.wait_for_spans(lambda got: len(got) >= 3, timeout=5)
    names = {s.name for s in spans}
    assert "component.start greeter" in names
    assert "component.stop greeter" in names
    (probe,) = [s for s in spans if s.name == "health.probe ready"]
    assert probe.attributes["garrison.health.status"] == "pass"
    assert {s.resource["service.name"] for s in spans} == {"garrison-run-test"}
    assert "runtime.stop_requested" in logs.events()


def _garrison(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_store_command_sends_one_trace_and_says_where(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_METRICS_EXPORTER": "none"}
    db = str(tmp_path / "garrison.db")
    done = _garrison(["put", "session/a", '{"user": 1}', "--db", db], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"spans sent to otlp ({receiver.endpoint}/v1/traces)" in done.stderr
    spans = receiver.wait_for_spans(lambda got: any(s.name == "garrison put" for s in got))
    (root,) = [s for s in spans if s.name == "garrison put"]
    assert root.parent_span_id is None
    assert root.attributes["process.exit.code"] == 0
    # The database actor's work is in the command's trace, under its span.
    same_trace = [s for s in spans if s.trace_id == root.trace_id and s is not root]
    assert any(s.attributes.get("db.system.name") == "sqlite" for s in same_trace)

    # --json: the line is a JSON document; --quiet: no line at all.
    done = _garrison(["get", "session/a", "--db", db, "--json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stderr.splitlines()[-1])["event"] == "telemetry.exported"
    done = _garrison(["get", "session/a", "--db", db, "--quiet"], env, tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""


def test_without_otel_variables_a_command_loads_no_sdk(tmp_path: Path) -> None:
    """The database actor records metrics through the API; no SDK is loaded for nothing."""
    code = (
        "import sys; from garrison.cli import main; "
        f"status = main(['put', 'a/1', '1', '--db', {str(tmp_path / 'g.db')!r}]); "
        "print(status, any(m.startswith('opentelemetry.sdk') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr
