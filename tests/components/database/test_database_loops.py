"""An unexpected error in any loop of the database crashes the actor, which restarts.

Each test makes one loop raise a RuntimeError (not an error the loop expects,
such as a failing flush or SQLite side) the first time it runs its step, and
checks that the supervisor restarts the component, health counts the
restart, and every write acknowledged before is still there.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from garrison import ComponentState
from garrison.components.database import DatabaseComponent, DatabaseLink, Store
from garrison.health import evaluate
from garrison.stores import EdnFileStore, ModeRouter
from garrison.stores._sqlite_connection import Checkpointer
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from garrison import Runtime


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> asyncio.Event:
    """Make ``owner.name`` (a coroutine method) raise RuntimeError on its first call only."""
    original = getattr(owner, name)
    raised = asyncio.Event()

    async def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not raised.is_set():
            raised.set()
            raise RuntimeError(f"injected into {owner.__name__}.{name}")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return raised


async def _restarted(rt: Runtime) -> None:
    """Wait until the database component has restarted once and runs again."""
    changed = asyncio.Event()
    remove = rt.add_state_listener(lambda *_: changed.set())
    try:
        async with asyncio.timeout(20):
            while not (
                rt.statistics()["database"].restarts >= 1
                and rt.state("database") is ComponentState.RUNNING
            ):
                await changed.wait()
                changed.clear()
    finally:
        remove()


async def _restart_shows_in_health(rt: Runtime) -> None:
    await _restarted(rt)
    report = await evaluate(rt, "ready")
    database = report.check("database")
    assert database.observed["restarts"] == 1


async def test_a_failing_edn_writer_restarts_the_actor_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _fail_once(monkeypatch, EdnFileStore, "_debounce")
    async with database_runtime(tmp_path, mode="edn-only", flush_max_delay=60.0) as rt:
        await rt.get(Store).put("a/1", "acknowledged")  # in memory only: edn-only
        await raised.wait()
        await _restart_shows_in_health(rt)
        # The restart's stop flushed the file; the new instance loaded it.
        assert await rt.get(Store).get("a/1") == "acknowledged"
        await rt.get(Store).put("a/2", "after")
        await rt.get(Store).flush()
    assert b"acknowledged" in (tmp_path / "memory.edn").read_bytes()


async def test_a_failing_repair_loop_restarts_the_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _fail_once(monkeypatch, ModeRouter, "repair")
    async with database_runtime(tmp_path, mode="edn-only") as rt:
        await rt.get(Store).put("a/1", "acknowledged")
        # Entering dual-write from edn-only queues a full repair: the loop runs it.
        await rt.get(Store).set_mode("dual-write")
        await raised.wait()
        await _restart_shows_in_health(rt)
        assert await rt.get(Store).get("a/1") == "acknowledged"
        # The new instance's repair loop runs the full repair: SQLite catches up.
        await DatabaseLink(rt.ref("database"), "garrison.db").wait_repaired()
        stats = await rt.get(Store).statistics()
        assert (stats.mode, stats.repair_backlog, stats.full_repair_pending) == (
            "dual-write",
            0,
            False,
        )


async def test_a_failing_checkpointer_restarts_the_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _fail_once(monkeypatch, Checkpointer, "_checkpoint")
    async with database_runtime(tmp_path, mode="sqlite-only") as rt:
        # 256 write transactions make the checkpointer run.
        for i in range(300):
            await rt.get(Store).put(f"a/{i:03}", i)
            if raised.is_set():
                break
        await raised.wait()
        await _restart_shows_in_health(rt)
        acknowledged = [f"a/{n:03}" for n in range(i + 1)]
        assert len(await rt.get(Store).get_many(acknowledged)) == i + 1


async def test_a_failing_commit_loop_restarts_the_actor_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = _fail_once(monkeypatch, DatabaseComponent, "_commit_pending")
    async with database_runtime(
        tmp_path, mode="sqlite-only", durability="debounced", flush_quiet_period=0.01
    ) as rt:
        await rt.get(Store).put("a/1", "acknowledged")  # pending: the loop commits it
        await raised.wait()
        await _restart_shows_in_health(rt)
        # The crashed instance's stop committed what it had acknowledged.
        assert await rt.get(Store).get("a/1") == "acknowledged"
