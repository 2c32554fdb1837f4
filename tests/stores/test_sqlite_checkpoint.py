"""The WAL is checkpointed by a second connection in the background, never inside a write."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

from garrison.stores import SqliteStore
from garrison.stores._sqlite_connection import Checkpointer

if TYPE_CHECKING:
    from pathlib import Path


def checkpointer_of(store: SqliteStore) -> Checkpointer:
    checkpointer = store._checkpointer
    assert checkpointer is not None
    return checkpointer


def _connection_threads() -> set[threading.Thread]:
    # aiosqlite runs each connection on a (non-daemon) thread of its own.
    return {
        t
        for t in threading.enumerate()
        if getattr(getattr(t, "_target", None), "__name__", "") == "_connection_worker_thread"
    }


async def test_background_checkpoints_keep_the_log_small_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    value = {"pad": "x" * 2000}  # each put dirties at least a page of entries and of history
    async with SqliteStore(path, checkpoint_every=5) as store:
        checkpointer = checkpointer_of(store)
        for i in range(200):
            await store.put(f"k/{i:04}", {**value, "i": i})
            if i % 5 == 4:  # the fifth write since the last one started a checkpoint
                await checkpointer.wait_idle()
        assert checkpointer.checkpoints == 40
        assert checkpointer.failures == 0
        # 200 transactions of several pages each would make a log of well over
        # a thousand pages; once a checkpoint has copied all of it, the next
        # write starts the log over, so it never holds more than a few dozen.
        assert checkpointer.copied_pages == checkpointer.log_pages
        assert 0 < checkpointer.log_pages < 200
        assert await store.count("k/") == 200
        assert (await store.get("k/0199"))["i"] == 199
        assert [c.version for c in await store.history("k/0007")] == [1]
    with sqlite3.connect(path) as conn:  # and it is all in the file for anyone else
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (200,)
        assert conn.execute("SELECT count(*) FROM history").fetchone() == (200,)
    conn.close()


async def test_the_writer_only_checkpoints_as_a_safety_net(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        rows = list(await store.connection.execute_fetchall("PRAGMA wal_autocheckpoint"))
        assert rows == [(Checkpointer.SAFETY_NET_PAGES,)]
    async with SqliteStore(tmp_path / "off.db", checkpoint_every=0) as store:
        assert store._checkpointer is None
        rows = list(await store.connection.execute_fetchall("PRAGMA wal_autocheckpoint"))
        assert rows == [(1000,)]  # SQLite's own default, in the committing write


async def test_the_second_connection_opens_at_the_first_checkpoint_and_closes_with_the_store(
    tmp_path: Path,
) -> None:
    before = _connection_threads()
    store = await SqliteStore(tmp_path / "t.db", checkpoint_every=2).open()
    assert checkpointer_of(store).checkpoints == 0
    await store.put("a/1", 1)
    assert len(_connection_threads() - before) == 1  # a store that writes little: one thread
    await store.put("a/2", 2)  # the second write starts the first checkpoint
    await checkpointer_of(store).wait_idle()
    opened = _connection_threads() - before
    assert len(opened) == 2
    assert checkpointer_of(store).checkpoints == 1
    await store.put("a/3", 3)
    await store.put("a/4", 4)  # a checkpoint that may still be running at close
    await store.aclose()
    await store.aclose()  # idempotent
    for thread in opened:
        thread.join(10)
        assert not thread.is_alive()


async def test_a_failing_checkpoint_is_counted_never_fails_a_write_and_recovers(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "f.db", checkpoint_every=1) as store:
        checkpointer = checkpointer_of(store)
        await store.put("a/1", 1)
        await checkpointer.wait_idle()
        assert checkpointer.checkpoints == 1
        assert checkpointer._conn is not None
        await checkpointer._conn.close()  # its connection is gone underneath it
        await store.put("a/2", 2)
        await checkpointer.wait_idle()
        assert checkpointer.failures == 1
        assert isinstance(checkpointer.last_error, ValueError)
        await store.put("a/3", 3)  # the next checkpoint opens a new connection
        await checkpointer.wait_idle()
        assert (checkpointer.checkpoints, checkpointer.failures) == (2, 1)
        assert await store.count("a/") == 3


async def test_an_in_memory_store_has_no_checkpointer(tmp_path: Path) -> None:
    del tmp_path
    async with SqliteStore(":memory:") as store:
        assert store._checkpointer is None
        await store.put("a/1", 1)
        assert await store.get("a/1") == 1
