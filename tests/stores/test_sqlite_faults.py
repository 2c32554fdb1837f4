"""SqliteStore under faults: a cancelled write, a locked database, a closed store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_cancelled_put_many_leaves_nothing_and_no_open_transaction(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "c.db") as store:
        running = threading.Event()

        def progress() -> int:
            running.set()  # SQLite is executing the batch on the connection's thread
            return 0

        await store.connection.set_progress_handler(progress, 1000)
        task = asyncio.create_task(store.put_many((f"a/{i}", i) for i in range(50_000)))
        assert await asyncio.to_thread(running.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.connection.set_progress_handler(None, 0)  # type: ignore[arg-type]
        assert await store.count() == 0
        assert await store.changed_since(0) == []
        await store.put("a/after", 1)  # no transaction was left open
        assert await store.get("a/after") == 1


async def test_a_database_locked_by_another_process_fails_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    async with SqliteStore(path, busy_timeout=0.05) as store:
        await store.put("a/1", 1)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="SQLITE_BUSY") as info:
                await store.put("a/1", 2)
            assert info.value.key == "a/1"
            assert await store.get("a/1") == 1  # WAL: reads go on while another writes
            other.execute("COMMIT")
        finally:
            other.close()
        await store.put("a/1", 3)
        assert await store.get("a/1") == 3


async def test_operations_on_a_closed_store_are_refused_clearly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    with pytest.raises(StoreError, match="not open yet"):
        await store.get("a/1")
    await store.open()
    await store.aclose()
    for call in (store.get("a/1"), store.put("a/1", 1), store.scan(), store.ping()):
        with pytest.raises(StoreError, match="closed"):
            await call


async def test_a_connection_closed_underneath_gives_store_errors(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "gone.db") as store:
        await store.put("a/1", 1)
        await store.connection.close()
        with pytest.raises(StoreError, match="connection closed"):
            await store.get("a/1")
        with pytest.raises(StoreError, match="connection closed") as info:
            await store.put("a/1", 2)
        assert info.value.key == "a/1"


async def test_reads_never_see_another_tasks_uncommitted_rows(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "rc.db") as store:
        running = threading.Event()

        def progress() -> int:
            running.set()
            return 0

        await store.connection.set_progress_handler(progress, 1000)
        rows: list[tuple[str, object]] = [(f"big/{i:05}", i) for i in range(5000)]
        rows[4500] = ("big/bad", object())  # the third chunk fails: everything rolls back
        writer = asyncio.create_task(store.put_many(rows))
        assert await asyncio.to_thread(running.wait, 30)  # the first chunk is being written
        assert await store.get("big/00000", "absent") == "absent"
        with pytest.raises(EdnEncodeError):
            await writer
        await store.connection.set_progress_handler(None, 0)  # type: ignore[arg-type]
