"""A write transaction as one call on the connection's thread: atomic, cancellable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores import SqliteStore
from garrison.stores._sqlite_connection import raw_connection, run_in_thread
from garrison.stores._sqlite_transaction import Transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "store.db") as opened:
        yield opened


async def test_run_in_thread_runs_on_the_connection_thread_in_queue_order(
    store: SqliteStore,
) -> None:
    conn = store.connection
    seen: list[str] = []

    def step(name: str) -> int:
        seen.append(name)
        return threading.get_ident()

    first = asyncio.ensure_future(run_in_thread(conn, step, "first"))
    statement = asyncio.ensure_future(conn.execute_fetchall("SELECT 1"))
    last = asyncio.ensure_future(run_in_thread(conn, step, "last"))
    idents = {await first, await last}
    assert list(await statement) == [(1,)]
    assert seen == ["first", "last"]
    assert idents == {conn._thread.ident} != {threading.get_ident()}


async def test_statements_queued_during_a_write_never_see_its_uncommitted_rows(
    tmp_path: Path,
) -> None:
    writing = threading.Event()
    release = threading.Event()

    def classify(text: str, namespace: str | None) -> str:
        # Called on the connection's thread as each row is written.
        if text == "a/100":  # half the rows are written, uncommitted
            writing.set()
            assert release.wait(30)
        return "thing"

    async with SqliteStore(tmp_path / "atomic.db", kinds=classify) as store:
        conn = store.connection
        writer = asyncio.ensure_future(store.put_many([(f"a/{i:03}", i) for i in range(200)]))
        assert await asyncio.to_thread(writing.wait, 30)
        # Straight to the connection, past the store's lock: it still queues behind
        # the whole transaction, so it sees all of it or (here) none.
        peek = asyncio.ensure_future(conn.execute_fetchall("SELECT count(*) FROM entries"))
        release.set()
        await writer
        assert list(await peek) == [(200,)]
        assert await store.count("a/") == 200


async def test_cancelling_a_write_stops_it_early_and_rolls_it_back(tmp_path: Path) -> None:
    rows_seen = 0
    reached = threading.Event()
    release = threading.Event()

    def classify(text: str, namespace: str | None) -> str:
        nonlocal rows_seen
        rows_seen += 1
        if text == "big/1000":
            reached.set()
            assert release.wait(30)
        return "thing"

    async with SqliteStore(tmp_path / "cancel.db", kinds=classify) as store:
        await store.put("keep/1", 1)
        task = asyncio.create_task(store.put_many([(f"big/{i}", i) for i in range(100_000)]))
        assert await asyncio.to_thread(reached.wait, 30)
        task.cancel()
        # Callbacks run in order: the task takes its cancellation (and cancels the
        # transaction) before the thread is let go.
        asyncio.get_running_loop().call_soon(release.set)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rows_seen < 1100  # it stopped at the next row instead of writing them all
        assert await store.count("big/") == 0
        assert [c.key for c in await store.changed_since(0)] == ["keep/1"]
        await store.put("keep/2", 2)  # no transaction left open
        assert await store.count("keep/") == 2


def _transaction_db(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "t.db", isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE commits (at INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, "
        "actor TEXT, reason TEXT, event TEXT)"
    )
    db.execute("CREATE TABLE history (seq INTEGER PRIMARY KEY)")
    return db


def test_a_failing_statement_rolls_back_everything_and_is_named(tmp_path: Path) -> None:
    db = _transaction_db(tmp_path)
    statements = [
        ("INSERT INTO t (x) VALUES (?)", [(1,), (2,)], True),
        ("INSERT INTO t (x) VALUES (?)", (1,), False),  # duplicate key
    ]
    job = Transaction(db, lambda _now: statements, 42, record=("test", None, None))
    with pytest.raises(sqlite3.IntegrityError):
        job.run()
    assert job.sql == "INSERT INTO t (x) VALUES (?)"
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM commits").fetchone() == (0,)
    assert not db.in_transaction
    db.close()


def test_a_transaction_records_its_commit_and_returns_the_last_row_count(tmp_path: Path) -> None:
    db = _transaction_db(tmp_path)
    job = Transaction(
        db,
        lambda _now: [
            ("INSERT INTO t (x) VALUES (?)", [(1,), (2,), (3,)], True),
            ("DELETE FROM t WHERE x > ?", (1,), False),
        ],
        42,
        record=("test", None, None),
    )
    assert job.run() == 2
    assert db.execute("SELECT at, actor FROM commits").fetchall() == [(42, "test")]
    assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
    db.close()


def test_a_transaction_cancelled_before_it_runs_touches_nothing(tmp_path: Path) -> None:
    db = _transaction_db(tmp_path)
    statements = [("INSERT INTO t (x) VALUES (1)", (), False)]
    job = Transaction(db, lambda _now: statements, 1, record=("test", None, None))
    job.cancel()
    with pytest.raises(Exception, match="caller was cancelled"):
        job.run()
    assert job.sql is None
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    db.close()


async def test_a_bad_value_fails_the_call_with_nothing_written(store: SqliteStore) -> None:
    # (A key with no EDN form never gets here: the database's messages refuse it.)
    with pytest.raises(EdnEncodeError):
        await store.put_many([("a/1", 1), ("a/2", object())])
    assert await store.count() == 0
    await store.put("a/1", 1)
    assert await store.get("a/1") == 1


async def test_a_write_on_a_connection_closed_underneath_names_the_key(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "closed.db") as store:
        await store.connection.close()
        with pytest.raises(StoreError, match="connection closed") as info:
            await store.put_many([("a/1", 1)])
        assert "BEGIN" in str(info.value)
        with pytest.raises(ValueError, match="no active connection"):
            raw_connection(store.connection)
