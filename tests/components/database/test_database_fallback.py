"""A database that cannot be opened at start: edn-only and dual-write run on the EDN file.

Real files: a corrupt database, one locked by another process, one whose
directory cannot be made; the component retries and attaches it once it opens.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from garrison import StartupError, StoreError
from garrison.components.database import Store
from garrison.health import evaluate
from garrison.stores._edn_file_format import load_file
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


async def _prepared(tmp_path: Path, mode: str) -> Path:
    """An installation in ``mode`` holding ``doc/1``; returns a good copy of its database."""
    async with database_runtime(tmp_path, mode=mode) as rt:
        await rt.get(Store).put("doc/1", {"v": 1})
    good = tmp_path / "good.db"
    shutil.copyfile(tmp_path / "garrison.db", good)
    return good


async def _health(rt: Runtime) -> tuple[str, str]:
    report = (await evaluate(rt, "ready")).to_dict(verbose=True)
    check = report["checks"]["database"][0]
    return str(check["status"]), str(check.get("output", ""))


async def _until_attached(rt: Runtime) -> None:
    """Poll health until the database is attached again (the retry is a timer)."""
    deadline = time.monotonic() + 10
    while "running on the EDN file" in (await _health(rt))[1]:
        assert time.monotonic() < deadline, "the database was not attached again"
        await asyncio.sleep(0.05)


async def test_a_corrupt_database_in_edn_only_runs_on_the_edn_file_until_it_is_fixed(
    tmp_path: Path,
) -> None:
    good = await _prepared(tmp_path, "edn-only")
    (tmp_path / "garrison.db").write_bytes(b"this is not a database" * 200)
    async with database_runtime(tmp_path, mode="edn-only") as rt:
        status, output = await _health(rt)
        assert status == "warn"
        assert "running on the EDN file" in output
        assert "not a database" in output
        assert await rt.get(Store).get("doc/1") == {"v": 1}
        await rt.get(Store).put("doc/2", 2)  # edn-only writes need no database
        await rt.get(Store).flush()
        assert load_file(tmp_path / "memory.edn") == {"doc/1": {"v": 1}, "doc/2": 2}
        with pytest.raises(StoreError, match=r"needs the database .* cannot be opened"):
            await rt.get(Store).set_mode("dual-write")
        shutil.copyfile(good, tmp_path / "garrison.db")
        await _until_attached(rt)
        assert (await _health(rt))[0] == "pass"
        await rt.get(Store).set_mode("dual-write")
        await rt.get(Store).put("doc/3", 3)
    with sqlite3.connect(tmp_path / "garrison.db") as conn:
        assert conn.execute("SELECT count(*) FROM entries WHERE key = 'doc/3'").fetchone() == (1,)
    conn.close()


async def test_dual_write_records_writes_for_repair_and_repairs_them_once_the_database_opens(
    tmp_path: Path,
) -> None:
    good = await _prepared(tmp_path, "dual-write")
    (tmp_path / "garrison.db").write_bytes(b"\0garbage" * 1000)
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        assert "running on the EDN file" in (await _health(rt))[1]
        await rt.get(Store).put("doc/2", 2)
        await rt.get(Store).delete("doc/1")
        assert await rt.get(Store).scan() == [("doc/2", 2)]
        with pytest.raises(StoreError, match="needs the database"):
            await rt.get(Store).history("doc/2")
        shutil.copyfile(good, tmp_path / "garrison.db")
        await _until_attached(rt)
        # SQLite was behind on everything written meanwhile: a full repair levels it.
        await rt.get(Store).set_mode("sqlite-first")
        deadline = time.monotonic() + 10
        while (
            stats := await rt.get(Store).statistics()
        ).repair_backlog or stats.full_repair_pending:
            assert time.monotonic() < deadline, "the repair did not finish"
            await asyncio.sleep(0.05)
        await rt.get(Store).set_mode("sqlite-only")  # validates: both sides agree
        assert await rt.get(Store).scan() == [("doc/2", 2)]


async def test_a_database_locked_by_another_process(tmp_path: Path) -> None:
    await _prepared(tmp_path, "edn-only")
    script = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(tmp_path / 'garrison.db')!r}, isolation_level=None)\n"
        "c.execute('PRAGMA locking_mode = EXCLUSIVE')\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "c.execute('UPDATE meta SET value = value')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    # Another process holds the lock: started and stopped from the test's own thread.
    holder = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        async with database_runtime(tmp_path, mode="edn-only", busy_timeout=0.1) as rt:
            status, output = await _health(rt)
            assert (status, "locked" in output) == ("warn", True), output
            assert await rt.get(Store).get("doc/1") == {"v": 1}
            holder.communicate("", timeout=10)  # the other process lets go
            await _until_attached(rt)
            switch = await rt.get(Store).set_mode("dual-write")  # recorded in the database
            assert switch.previous == "edn-only"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


async def test_a_database_whose_directory_cannot_be_made(tmp_path: Path) -> None:
    # A legacy installation: only memory.edn, and the database's directory is a file.
    (tmp_path / "memory.edn").write_text("{:doc/1 1}", encoding="utf-8")
    (tmp_path / "db").write_text("a file where the directory should be", encoding="utf-8")
    async with database_runtime(tmp_path, sqlite_path="db/garrison.db") as rt:
        status, output = await _health(rt)
        assert status == "warn"
        assert "db/garrison.db cannot be opened" in output
        assert await rt.get(Store).get("doc/1") == 1
        await rt.get(Store).put("doc/2", 2)
        (tmp_path / "db").unlink()
        await _until_attached(rt)
        assert await rt.get(Store).mode() == "edn-only"
    assert (tmp_path / "db" / "garrison.db").is_file()


async def test_sqlite_only_never_falls_back_to_a_stale_edn_file(tmp_path: Path) -> None:
    await _prepared(tmp_path, "sqlite-only")
    (tmp_path / "memory.edn").write_text("{:doc/1 :stale}", encoding="utf-8")
    (tmp_path / "garrison.db").write_bytes(b"this is not a database" * 200)
    with pytest.raises(StartupError) as failed:
        async with database_runtime(tmp_path, mode="sqlite-only"):
            pass
    assert "cannot run on the EDN file alone: its mode is sqlite-only" in str(
        failed.value.__cause__
    )


async def test_a_database_owned_by_another_runtime_is_no_reason_to_fall_back(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path, mode="edn-only") as rt:
        await rt.get(Store).put("doc/1", 1)
        with pytest.raises(StartupError) as failed:
            async with database_runtime(tmp_path, mode="edn-only"):
                pass
        assert "in use by a running garrison" in str(failed.value.__cause__)
