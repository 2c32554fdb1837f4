"""serving_health(): the probe server and status file around a real runtime's lifecycle."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from garrison.config import build_config
from garrison.exceptions import ConfigError, StartupError
from garrison.health._runtime_health import probes_for
from garrison.health._serve import HealthSettings, serving_health
from garrison.health._status_file import read_status_file
from garrison.runtime import CheckResult, Component, Runtime


class Store(Component):
    name = "store"

    async def check_health(self) -> CheckResult:
        return CheckResult.passing(latency_ms=0.1)


def _runtime(tmp_path: Path, **health: Any) -> Runtime:
    config = build_config({"runtime": {"data_dir": str(tmp_path / "data")}, "health": health})
    return Runtime(config, [Store])


async def test_probes_answer_before_during_and_after_the_runtime_runs(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    async with serving_health(runtime, port=0) as health, httpx.AsyncClient() as client:
        assert health.url is not None
        # Before the components start: alive, not started, not ready.
        assert (await client.get(health.url + "/livez")).status_code == 200
        startup = await client.get(health.url + "/startupz")
        assert startup.status_code == 503
        assert startup.json()["checks"]["store"][0]["reason"] == "not_started"
        assert (await client.get(health.url + "/readyz")).status_code == 503
        async with runtime:
            assert (await client.get(health.url + "/startupz")).status_code == 200
            ready = await client.get(health.url + "/readyz?verbose")
            assert ready.status_code == 200
            assert ready.json()["checks"]["store:latency"][0]["observedValue"] == 0.1
            await health.drain()
            drained = await client.get(health.url + "/readyz")
            assert drained.status_code == 503
            assert drained.json()["reason"] == "stopping"
            assert runtime.state("store") == "running"
            assert (await client.get(health.url + "/livez")).status_code == 200
    await probes_for(runtime).aclose()


async def test_status_file_follows_the_config(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    runtime = _runtime(tmp_path, serve=False, status_file=str(path), status_interval=30)
    async with serving_health(runtime) as health:
        assert health.url is None
        async with runtime:
            assert health.status_writer is not None
            await health.status_writer.write_once()
            doc = await asyncio.to_thread(read_status_file, path)
            assert doc["status"] == "pass"
    doc = await asyncio.to_thread(read_status_file, path)
    assert doc["stopped"] is True
    assert doc["status"] == "fail"
    await probes_for(runtime).aclose()


async def test_a_port_in_use_is_a_startup_error_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runtime = _runtime(tmp_path)
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}") as info:
            async with serving_health(runtime, port=port):
                pass
    assert "--health-port" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_bad_health_settings_are_config_errors_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"health\.port"):
        HealthSettings.from_section({"port": "eighty"})
    with pytest.raises(ConfigError, match="health"):
        HealthSettings.from_section({"port": 70000})
    with pytest.raises(ConfigError, match=r"health\.colour"):
        HealthSettings.from_section({"colour": "red"})


class Leaky(Component):
    """A check whose error text holds what a public port must not show."""

    name = "leaky"

    async def check_health(self) -> CheckResult:
        raise KeyError("/srv/secret/app.db: key user/4242/token")


async def test_short_bodies_carry_reason_codes_and_only_verbose_carries_error_text(
    tmp_path: Path,
) -> None:
    status_file = tmp_path / "health.json"
    config = build_config(
        {
            "runtime": {"data_dir": str(tmp_path / "data")},
            "health": {"status_file": str(status_file)},
        }
    )
    runtime = Runtime(config, [Leaky])
    async with serving_health(runtime, port=0) as health, runtime, httpx.AsyncClient() as client:
        assert health.url is not None
        assert health.status_writer is not None
        short = {p: await client.get(f"{health.url}/{p}") for p in ("readyz", "livez", "startupz")}
        verbose = await client.get(health.url + "/readyz?verbose")
        await health.status_writer.write_once()
        written = status_file.read_text(encoding="utf-8")
    await probes_for(runtime).aclose()
    assert short["readyz"].status_code == 503
    leaky = short["readyz"].json()["checks"]["leaky"]
    assert leaky == [{"status": "fail", "reason": "check_error"}]
    for response in short.values():
        assert "secret" not in response.text
        assert "user/4242" not in response.text
    assert "secret" not in written
    assert "check_error" in written
    assert verbose.json()["checks"]["leaky"][0]["output"] == (
        "health check raised KeyError: '/srv/secret/app.db: key user/4242/token'"
    )
