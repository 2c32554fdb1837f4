"""Health, stop and crash: real faults on real files, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import shutil
import threading
from typing import TYPE_CHECKING

import pytest

from garrison import (
    ActorStoppedError,
    ChangesLostError,
    ComponentState,
    FlushError,
    StartupError,
    StoreError,
)
from garrison.components.database import DatabaseComponent, Put, Store
from garrison.edn import Keyword, loads
from garrison.health import evaluate
from garrison.runtime import HealthStatus
from garrison.stores import SqliteStore
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


def _is_connection_thread(thread: threading.Thread) -> bool:
    # aiosqlite runs each connection on a thread of its own (a non-daemon one).
    target = getattr(thread, "_target", None)
    return getattr(target, "__name__", "") == "_connection_worker_thread"


def _database(rt: Runtime) -> DatabaseComponent:
    component = rt.component("database")
    assert isinstance(component, DatabaseComponent)
    return component


async def _running_again(rt: Runtime, restarts: int) -> None:
    """Wait until the database component has restarted ``restarts`` times and runs."""
    changed = asyncio.Event()
    remove = rt.add_state_listener(lambda *_: changed.set())
    try:
        async with asyncio.timeout(20):
            while not (
                rt.statistics()["database"].restarts >= restarts
                and rt.state("database") is ComponentState.RUNNING
            ):
                await changed.wait()
                changed.clear()
    finally:
        remove()


async def test_health_reports_mode_ping_lag_and_backlog(runtime: Runtime) -> None:
    result = await _database(runtime).check_health()
    assert result.status is HealthStatus.PASS
    assert result.observed["mode"] == "sqlite-only"
    assert result.observed["repair_backlog"] == 0
    assert result.observed["edn_writer_lag_s"] == 0.0
    assert result.observed["ping_ms"] >= 0
    report = await evaluate(runtime, "ready")
    assert report.status is HealthStatus.PASS


async def test_stop_drains_queued_writes_and_flushes_the_edn_file(tmp_path: Path) -> None:
    before = {t for t in threading.enumerate() if _is_connection_thread(t)}
    async with database_runtime(tmp_path, mode="dual-write", flush_max_delay=60.0) as rt:
        ref = rt.ref("database")
        opened = {t for t in threading.enumerate() if _is_connection_thread(t)} - before
        assert len(opened) == 1
        for i in range(300):
            await ref.tell(Put(f"q/{i:03}", i))  # queued, not waited for
    # The runtime stopped: every queued write was committed, the EDN file flushed,
    # and the connection closed, so its (non-daemon) thread ends.
    (thread,) = opened
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    edn = loads((tmp_path / "memory.edn").read_text(encoding="utf-8"))
    assert len(edn) == 300
    assert edn[Keyword("q/299")] == 299
    async with database_runtime(tmp_path) as rt:
        assert await rt.get(Store).count("q/") == 300


async def test_a_closed_connection_crashes_the_actor_and_the_restart_recovers(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        watch = await store.watch("ok/").start()
        await asyncio.gather(*(store.put(f"ok/{i}", i) for i in range(50)))
        # Break the connection under the actor, as a dead connection thread would.
        await _sqlite_of(rt).connection.close()
        with pytest.raises(StoreError, match="restarting after a storage failure"):
            await store.put("lost/1", 1)
        await _running_again(rt, 1)
        # The watcher got every committed change, then learns it must resync.
        delivered = [await anext(watch) for _ in range(50)]
        assert {c.key for c in delivered} == {f"ok/{i}" for i in range(50)}
        with pytest.raises(ChangesLostError) as lost:
            await anext(watch)
        assert lost.value.reason == "restart"
        await store.put("after/1", 1)
        assert await store.count("ok/") == 50
        assert await store.get("after/1") == 1
        assert await store.get("lost/1") is None  # it was failed, not acknowledged
    async with database_runtime(tmp_path) as rt:
        assert await rt.get(Store).count("ok/") == 50
        assert await rt.get(Store).get("after/1") == 1


async def test_a_database_refusing_writes_crashes_and_queued_writes_wait(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("ok/1", 1)
        # SQLite now refuses every write, as with a read-only file or a failed disk.
        await _sqlite_of(rt).connection.execute("PRAGMA query_only = 1")
        results = await asyncio.gather(
            *(store.put(f"w/{i}", i) for i in range(20)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed  # the first group failed (and nothing in it was acknowledged)
        # The failed group's callers hear why; the rest of that turn hears the actor stopped.
        assert all(isinstance(r, StoreError | ActorStoppedError) for r in failed)
        assert any(isinstance(r, StoreError) for r in failed)
        await _running_again(rt, 1)
        acknowledged = [f"w/{i}" for i, r in enumerate(results) if r is None]
        found = await store.get_many(acknowledged)
        assert sorted(found) == sorted(acknowledged)
        await store.put("after/1", 1)
        assert await store.get("ok/1") == 1
        assert rt.statistics()["database"].restarts == 1


async def test_an_unhealthy_connection_is_replaced(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        await rt.get(Store).put("ok/1", 1)
        await _sqlite_of(rt).connection.close()
        result = await _database(rt).check_health()
        assert result.status is HealthStatus.FAIL
        assert "ping failed" in result.output
        await _running_again(rt, 1)
        assert (await _database(rt).check_health()).status is HealthStatus.PASS
        assert await rt.get(Store).get("ok/1") == 1


async def test_edn_flush_failures_keep_data_and_warn(tmp_path: Path) -> None:
    edn_dir = tmp_path / "legacy"
    async with database_runtime(
        tmp_path, mode="dual-write", edn_path=str(edn_dir / "memory.edn")
    ) as rt:
        store = rt.get(Store)
        await store.put("a/1", 1)
        await store.flush()
        # The directory is replaced by a file: every flush fails, even for root.
        shutil.rmtree(edn_dir)
        edn_dir.write_text("not a directory", encoding="utf-8")
        await store.put("a/2", 2)  # still acknowledged: in memory and in SQLite
        with pytest.raises(FlushError):
            await store.flush()
        health = await _database(rt).check_health()
        assert health.status is HealthStatus.WARN
        assert "EDN flush failing" in health.output
        assert (await store.statistics()).edn_last_flush_error is not None
        assert await store.get("a/2") == 2
        edn_dir.unlink()
        edn_dir.mkdir()
        await store.flush()
        assert (await _database(rt).check_health()).status is HealthStatus.PASS
    edn = loads((edn_dir / "memory.edn").read_text(encoding="utf-8"))
    assert edn == {Keyword("a/1"): 1, Keyword("a/2"): 2}


async def test_a_second_runtime_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        await rt.get(Store).put("a/1", 1)
        with pytest.raises(StartupError) as info:
            async with database_runtime(tmp_path):
                pass
        assert "in use by a running garrison" in str(info.value.__cause__)
        assert await rt.get(Store).get("a/1") == 1
    async with database_runtime(tmp_path) as rt:  # released at stop
        assert await rt.get(Store).get("a/1") == 1


async def test_a_ping_slower_than_the_health_timeout_fails_health(tmp_path: Path) -> None:
    # One microsecond: no thread round trip can answer in time.
    async with database_runtime(tmp_path, health_timeout=1e-6) as rt:
        result = await _database(rt).check_health()
        assert result.status is HealthStatus.FAIL
        assert "did not answer SELECT 1 within" in result.output
        assert "ping_ms" not in result.observed
        # A slow answer is not a broken connection: nothing restarts.
        await rt.get(Store).put("a/1", 1)
        assert rt.statistics()["database"].restarts == 0


def _sqlite_of(rt: Runtime) -> SqliteStore:
    """The database component's SQLite store (these tests run on SQLite)."""
    store = _database(rt).router.sqlite
    assert isinstance(store, SqliteStore)
    return store
