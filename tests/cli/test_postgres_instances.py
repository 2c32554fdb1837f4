"""Real ``garrison run`` instances sharing one PostgreSQL database.

Each instance is a process of its own, started from a config as an operator
would; the suite's PostgreSQL server is the shared database (skipped without
one unless ``GARRISON_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TYPE_CHECKING

from garrison._status_format import read_status_file
from garrison.components.database import Store
from garrison.edn import Keyword
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def _config(directory: Path, dsn: str, mode: str, data_dir: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "garrison.toml"
    path.write_text(
        f"""
[runtime]
data_dir = "{data_dir.as_posix()}"
stop_timeout = 5.0

[health]
port = 0
status_file = "{(directory / "health.json").as_posix()}"

[components.database]
backend = "postgresql"
dsn = "{dsn}"
mode = "{mode}"
""",
        encoding="utf-8",
    )
    return path


async def _garrison(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "garrison.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _ready(process: asyncio.subprocess.Process, status: Path) -> None:
    # Observing another process: poll its status file with a deadline.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.returncode is None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if read_status_file(status)["probes"]["ready"]["status"] == "pass":
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the instance never reported ready (exit {process.returncode})")


@contextlib.asynccontextmanager
async def _instance(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await _garrison("--quiet", "run", "--config", str(config))
    try:
        await _ready(process, config.parent / "health.json")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def test_instances_share_the_database_and_one_killed_stops_no_other(
    tmp_path: Path, postgres_dsn: str
) -> None:
    a = _config(tmp_path / "a", postgres_dsn, "sqlite-only", tmp_path / "a" / "data")
    b = _config(tmp_path / "b", postgres_dsn, "sqlite-only", tmp_path / "b" / "data")
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        _instance(a) as first,
        _instance(b) as second,
        database_runtime(tmp_path / "c", **options) as third,
    ):
        store = third.get(Store)
        async with store.watch("x/") as changes:
            put = await _garrison("put", "x/1", "{:by :cli}", "--config", str(a))
            assert (await put.wait()) == 0
            change = await asyncio.wait_for(anext(aiter(changes)), 10)
        assert (change.op, change.key, change.value) == (
            "put",
            "x/1",
            {Keyword("by"): Keyword("cli")},
        )
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        # The others go on: a write, a read back, and a clean stop of b.
        await store.put("x/2", 2)
        get = await _garrison("get", "x/2", "--config", str(b))
        out, _ = await get.communicate()
        assert (get.returncode, out.strip()) == (0, b"2")
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0


async def test_a_second_instance_on_the_same_edn_file_refuses_to_start(
    tmp_path: Path, postgres_dsn: str
) -> None:
    shared = tmp_path / "data"
    a = _config(tmp_path / "a", postgres_dsn, "dual-write", shared)
    b = _config(tmp_path / "b", postgres_dsn, "dual-write", shared)
    async with _instance(a) as first:
        second = await _garrison("run", "--config", str(b))
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 3, err  # unavailable: the file is in use
        assert b"memory.edn" in err, err
        assert first.returncode is None  # the first instance is untouched
