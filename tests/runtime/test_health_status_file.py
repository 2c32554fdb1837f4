"""The status file writer: atomic, refreshed, final 'fail' on stop, read back by the CLI check."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from garrison.cli._probe import probe_file
from garrison.health._probes import ComponentView, HealthProbes
from garrison.health._status_file import StatusFileWriter, read_status_file
from garrison.runtime._check import CheckResult


@dataclass
class Target:
    stopping: bool = False

    def component_views(self) -> list[ComponentView]:
        return [ComponentView("database", "running", True, True, self._check)]

    async def _check(self) -> CheckResult:
        return CheckResult.passing(latency_ms=0.1)

    async def ping_supervisor(self) -> None:
        return None


async def test_writes_all_three_probes_atomically_and_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "run" / "health.json"
    probes = HealthProbes(Target())
    writer = StatusFileWriter(probes, path, interval=0.05)
    async with writer:
        doc = await asyncio.to_thread(read_status_file, path)
        assert doc["status"] == "pass"
        assert doc["pid"] == os.getpid()
        assert set(doc["probes"]) == {"live", "ready", "startup"}
        assert doc["probes"]["ready"]["checks"] == {"database": [{"status": "pass"}]}
        assert writer.writes == 1
        # The refresh loop rewrites the file on its own.
        await writer.wait_write()
        await writer.wait_write()
        assert writer.writes == 3
        assert (await asyncio.to_thread(read_status_file, path))["time"] >= doc["time"]
        assert await asyncio.to_thread(probe_file, str(path), "ready") == 0
    # No temporary files are left beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["health.json"]
    await probes.aclose()


async def test_the_final_write_on_stop_says_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    probes = HealthProbes(Target())
    async with StatusFileWriter(probes, path, interval=30):
        pass
    doc = await asyncio.to_thread(read_status_file, path)
    assert doc["status"] == "fail"
    assert doc["stopped"] is True
    # A stopped runtime is a definite "fail" for every probe, not "unknown".
    assert await asyncio.to_thread(probe_file, str(path), "ready") == 1
    assert await asyncio.to_thread(probe_file, str(path), "live") == 1
    assert await asyncio.to_thread(probe_file, str(path), "live", max_age=0.0) == 1
    await probes.aclose()
