"""``durability = "debounced"``: a write is acknowledged once readable, committed within the bound.

Real runtimes on real files. What is committed is read from the SQLite file
with a second connection, as another process would see it. The SIGKILL side
of the contract is in ``tests/stores/test_crash.py``.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison import RefusedWriteError, StoreError
from garrison.components.database import DatabaseComponent, Store
from garrison.edn import Keyword, loads
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime

WRITING_SQLITE = ["dual-write", "sqlite-first", "sqlite-only"]
#: A bound no test waits for: what is committed before it was asked for.
LONG = 600.0


def committed(path: Path) -> dict[str, int]:
    """Key -> number of history rows, of the keys SQLite holds now."""
    with sqlite3.connect(path) as db:
        keys = [key for (key,) in db.execute("SELECT key FROM entries")]
        rows = dict(db.execute("SELECT key, count(*) FROM history GROUP BY key").fetchall())
    return {key: rows[key] for key in keys}


async def committed_now(rt: Runtime) -> dict[str, int]:
    return await asyncio.to_thread(committed, rt.data_dir / "garrison.db")


def database(rt: Runtime) -> DatabaseComponent:
    component = rt.component("database")
    assert isinstance(component, DatabaseComponent)
    return component


async def health(rt: Runtime) -> tuple[str, str]:
    """The database's own check (the runtime's probes cache answers briefly)."""
    result = await database(rt).check_health()
    return str(result.status), result.output


@pytest.mark.parametrize("mode", WRITING_SQLITE)
async def test_every_read_sees_acknowledged_writes_before_they_are_committed(
    tmp_path: Path, mode: str
) -> None:
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG}
    async with database_runtime(tmp_path, mode=mode, durability="debounced", **options) as rt:
        store = rt.get(Store)
        await store.put("user/1", {"name": "ann"})
        await store.put_many([("user/2", 2), (":user/3", 3)])
        assert await store.delete("user/3") is True
        assert await store.delete("user/3") is False
        await store.put("user/1", {"name": "bo"})
        assert await committed_now(rt) == {}
        assert (await store.statistics()).uncommitted_writes == 6
        # Point reads answer from the pending writes.
        assert await store.get("user/1") == {"name": "bo"}
        assert await store.get("user/3", "gone") == "gone"
        assert await store.get_many(["user/2", "user/3", "user/4"]) == {"user/2": 2}
        # Everything else commits them first, in order, every version in the history.
        assert await store.scan("user/") == [("user/1", {"name": "bo"}), ("user/2", 2)]
        assert await committed_now(rt) == {"user/1": 2, "user/2": 1}
        assert [c.value for c in await store.history("user/1")] == [{"name": "ann"}, {"name": "bo"}]
        assert [c.op for c in await store.history("user/3")] == ["put", "delete"]
        assert (await store.statistics()).uncommitted_writes == 0


async def test_watchers_see_each_write_when_it_is_acknowledged(tmp_path: Path) -> None:
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG}
    async with database_runtime(tmp_path, durability="debounced", **options) as rt:
        async with rt.get(Store).watch("user/") as watch:
            await rt.get(Store).put("user/1", 1)
            await rt.get(Store).delete("user/1")
            changes = [await anext(watch), await anext(watch)]
        assert [(c.key, c.op) for c in changes] == [("user/1", "put"), ("user/1", "delete")]
        assert changes[0].seq < changes[1].seq
        assert await committed_now(rt) == {}


async def test_a_refused_write_fails_its_caller_only_and_is_never_pending(tmp_path: Path) -> None:
    naive = datetime.datetime(2024, 5, 1, 12, 0)  # no time zone: the EDN file refuses it
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG}
    async with database_runtime(
        tmp_path, mode="dual-write", durability="debounced", **options
    ) as rt:
        store = rt.get(Store)
        good = asyncio.ensure_future(store.put("user/1", 1))
        with pytest.raises(RefusedWriteError):
            await store.put_many([("user/2", 2), ("user/3", {"at": naive})])
        await good
        assert await store.get_many(["user/1", "user/2", "user/3"]) == {"user/1": 1}
        assert (await store.statistics()).uncommitted_writes == 1
    assert committed(tmp_path / "garrison.db") == {"user/1": 1}


@pytest.mark.parametrize("mode", WRITING_SQLITE)
async def test_a_clean_stop_commits_every_acknowledged_write(tmp_path: Path, mode: str) -> None:
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG}
    async with database_runtime(tmp_path, mode=mode, durability="debounced", **options) as rt:
        await asyncio.gather(*(rt.get(Store).put(f"k/{i % 50}", i) for i in range(200)))
        await rt.get(Store).delete_many([f"k/{i}" for i in range(40, 50)])
        assert await committed_now(rt) == {}
    # Every acknowledged version is in the history: 4 puts per key, then 10 deletes.
    found = committed(tmp_path / "garrison.db")
    assert found == {f"k/{i}": 4 for i in range(40)}
    if mode != "sqlite-only":
        text = (tmp_path / "memory.edn").read_text(encoding="utf-8")
        on_file = loads(text)
        assert isinstance(on_file, dict)
        assert {k.text for k in on_file if isinstance(k, Keyword)} == set(found)


async def test_the_loop_commits_every_write_within_flush_max_delay(tmp_path: Path) -> None:
    bound = 0.5
    # The quiet period never passes while writes keep coming: the bound decides.
    options = {"flush_max_delay": bound, "flush_quiet_period": bound}
    async with database_runtime(tmp_path, durability="debounced", **options) as rt:
        loop = database(rt).commit_loop
        assert loop is not None
        clock = asyncio.get_running_loop()
        acknowledged: list[tuple[str, float]] = []

        async def writer() -> None:
            for n in range(120):
                await rt.get(Store).put(f"k/{n}", n)
                acknowledged.append((f"k/{n}", clock.time()))
                await asyncio.sleep(0.01)  # a paced writer (not synchronisation)

        await rt.get(Store).put("first", 0)
        assert await committed_now(rt) == {}  # acknowledged before it is committed
        writing = asyncio.ensure_future(writer())
        checked = 0
        while True:
            commit = asyncio.ensure_future(loop.wait_committed())
            await asyncio.wait({commit, writing}, return_when=asyncio.FIRST_COMPLETED)
            if not commit.done():  # the writer is done, and no commit is due
                commit.cancel()
                break
            now = clock.time()
            keys = await committed_now(rt)
            due = [key for key, at in acknowledged if at <= now - bound]
            assert set(due) <= set(keys), f"acknowledged over {bound}s ago, not committed"
            checked += 1
        await writing
        stats = await rt.get(Store).statistics()
    assert checked >= 2, "the writes were not committed while they kept coming"
    assert stats.late_commits == 0
    # Many writes per commit: one transaction per window, not per write.
    assert checked <= stats.commits <= 12


async def test_a_failing_commit_keeps_the_writes_readable_and_health_says_so(
    tmp_path: Path,
) -> None:
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG, "busy_timeout": 0.05}
    async with database_runtime(tmp_path, durability="debounced", **options) as rt:
        await rt.get(Store).put("user/1", 1)
        other = await asyncio.to_thread(
            sqlite3.connect,
            rt.data_dir / "garrison.db",
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")  # another writer's lock
            with pytest.raises(StoreError, match="1 acknowledged writes must be committed"):
                await rt.get(Store).count()
            assert await rt.get(Store).get("user/1") == 1
            status, output = await health(rt)
            assert status == "warn"
            assert "committing acknowledged writes failing" in output
            assert "locked" in output
        finally:
            await asyncio.to_thread(other.execute, "ROLLBACK")
            await asyncio.to_thread(other.close)
        await rt.get(Store).flush()
        assert await committed_now(rt) == {"user/1": 1}
        assert await health(rt) == ("pass", "")


async def test_in_dual_write_a_commit_sqlite_refuses_queues_the_keys_for_repair(
    tmp_path: Path,
) -> None:
    options = {"flush_max_delay": LONG, "flush_quiet_period": LONG, "busy_timeout": 0.05}
    async with database_runtime(
        tmp_path, mode="dual-write", durability="debounced", **options
    ) as rt:
        await rt.get(Store).put("user/1", 1)
        other = await asyncio.to_thread(
            sqlite3.connect,
            rt.data_dir / "garrison.db",
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")  # another writer's lock
            # The commit writes the EDN side, SQLite's fails into the repair backlog,
            # and the flush saves the file: nothing acknowledged is dropped.
            await rt.get(Store).flush()
            stats = await rt.get(Store).statistics()
            assert (stats.uncommitted_writes, stats.repair_backlog) == (0, 1)
            on_file = loads((tmp_path / "memory.edn").read_text(encoding="utf-8"))
            assert on_file == {Keyword("user/1"): 1}
            assert await rt.get(Store).get("user/1") == 1
        finally:
            await asyncio.to_thread(other.execute, "ROLLBACK")
            await asyncio.to_thread(other.close)
        await database(rt).router.wait_repaired()
    assert committed(tmp_path / "garrison.db") == {"user/1": 1}
