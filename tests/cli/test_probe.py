"""`garrison probe`: exit codes against a real probe server and real status files."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import pytest

from garrison.cli import main
from garrison.cli._probe import probe_file, probe_url
from garrison.health._asgi import HealthApp
from garrison.health._http import ProbeServer
from garrison.health._report import ComponentHealth, HealthReport, ProbeKind
from garrison.runtime._check import CheckResult, HealthStatus


class Source:
    def __init__(self) -> None:
        self.status = HealthStatus.PASS
        self.asked: list[ProbeKind] = []

    async def evaluate(self, probe: ProbeKind) -> HealthReport:
        self.asked.append(probe)
        if self.status is not HealthStatus.FAIL:
            return HealthReport(probe, self.status)
        database = ComponentHealth.from_result(
            "database", CheckResult.failing("disk full at /var/lib/app/db.sqlite")
        )
        return HealthReport(probe, self.status, (database,), output="failing: database")


async def test_exit_codes_follow_the_probe_status(capsys: pytest.CaptureFixture[str]) -> None:
    source = Source()
    async with ProbeServer(HealthApp(source), port=0) as server:
        assert await asyncio.to_thread(probe_url, server.url, "ready") == 0
        assert capsys.readouterr().out.endswith("ready: pass\n")
        source.status = HealthStatus.WARN
        assert await asyncio.to_thread(probe_url, server.url + "/", "live") == 0
        source.status = HealthStatus.FAIL
        assert await asyncio.to_thread(probe_url, server.url, "startup") == 1
        # The terse answer names the check and its reason code, never its text.
        assert capsys.readouterr().out.splitlines()[-1] == "startup: fail (database: check_failed)"
        assert await asyncio.to_thread(probe_url, server.url, "ready", verbose=True) == 1
        assert "disk full at /var/lib/app/db.sqlite" in capsys.readouterr().out
        assert source.asked == ["ready", "live", "startup", "ready"]
        # A probe's own URL is used as given (here: mounted elsewhere, /healthz).
        assert await asyncio.to_thread(probe_url, server.url + "/healthz", "live") == 1


async def test_verbose_prints_the_whole_document(capsys: pytest.CaptureFixture[str]) -> None:
    async with ProbeServer(HealthApp(Source()), port=0) as server:
        assert await asyncio.to_thread(probe_url, server.url, "ready", verbose=True) == 0
    out = capsys.readouterr().out
    assert '"description": "garrison ready probe"' in out


def test_unreachable_server_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probe_url(f"http://127.0.0.1:{port}", "live", timeout=1) == 3
    assert "cannot reach" in capsys.readouterr().err


async def test_a_server_that_is_not_a_probe_endpoint_is_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with ProbeServer(HealthApp(Source()), port=0) as server:
        code = await asyncio.to_thread(probe_url, server.url + "/elsewhere/", "ready")
    assert code == 3
    assert "HTTP 404" in capsys.readouterr().err


def _status_file(path: Path, *, age: float, ready: str = "pass", interval: float = 5.0) -> None:
    import datetime as dt

    written = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    doc = {
        "status": ready,
        "time": written.isoformat().replace("+00:00", "Z"),
        "interval": interval,
        "probes": {
            "live": {"status": "pass"},
            "ready": {"status": ready, "reason": "stopping"},
            "startup": {"status": "pass"},
        },
    }
    path.write_bytes(orjson.dumps(doc))


def test_status_file_fresh_pass_and_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "health.json"
    _status_file(path, age=0)
    assert probe_file(str(path), "ready") == 0
    _status_file(path, age=0, ready="fail")
    assert probe_file(str(path), "ready") == 1
    assert probe_file(str(path), "live") == 0
    assert "ready: fail (stopping)" in capsys.readouterr().out


def test_stale_missing_or_garbled_status_file_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "health.json"
    # Default max age is three write intervals.
    _status_file(path, age=16, interval=5)
    assert probe_file(str(path)) == 3
    assert "stale" in capsys.readouterr().err
    assert probe_file(str(path), max_age=60) == 0
    assert probe_file(str(tmp_path / "missing.json")) == 3
    assert "cannot read status file" in capsys.readouterr().err
    path.write_text("{not json")
    assert probe_file(str(path)) == 3
    path.write_text('{"status": "pass"}')
    assert probe_file(str(path)) == 3
    assert "not a garrison status file" in capsys.readouterr().err


def test_a_status_file_in_the_config_is_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "etc" / "garrison.toml"
    (tmp_path / "etc" / "run").mkdir(parents=True)
    config.write_text('[health]\nserve = false\nstatus_file = "run/health.json"\n')
    _status_file(tmp_path / "etc" / "run" / "health.json", age=0)
    monkeypatch.chdir(tmp_path)  # where ./run/health.json does not exist
    assert main(["probe", "ready", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("ready: pass")
