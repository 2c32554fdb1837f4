"""SqliteStore history: the audit trail, as-of reads, the change feed, versions."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword
from garrison.stores import SqliteStore
from garrison.stores._protocol import MISSING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "h.db") as opened:
        yield opened


async def test_history_records_every_change_in_order(store: SqliteStore) -> None:
    await store.put("user/1", {"v": 1})
    await store.put_many([("user/1", {"v": 2}), ("user/2", Keyword("x"))])
    await store.delete("user/1")
    await store.put("user/1", {"v": 3})
    changes = await store.history("user/1")
    assert [(c.op, c.value, c.version) for c in changes] == [
        ("put", {"v": 1}, 1),
        ("put", {"v": 2}, 2),
        ("delete", MISSING, 3),
        ("put", {"v": 3}, 1),  # a re-created key starts its versions again
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert all(c.at.tzinfo is dt.UTC for c in changes)
    assert [c.value for c in await store.history("user/1", limit=1)] == [{"v": 3}]
    assert [c.version for c in await store.history("user/1", limit=2)] == [3, 1]
    assert await store.history("user/1", limit=0) == []


async def test_entry_times_and_version(store: SqliteStore) -> None:
    await store.put("a/1", 1)
    await store.put("a/1", 2)
    rows = list(
        await store.connection.execute_fetchall(
            "SELECT created_at, updated_at, version FROM entries"
        )
    )
    created, updated, version = rows[0]
    assert created < updated
    assert version == 2


async def test_get_as_of_reads_the_past(store: SqliteStore) -> None:
    await store.put("doc/1", "first")
    await store.put("doc/1", "second")
    await store.delete("doc/1")
    first, second, deleted = await store.history("doc/1")
    assert await store.get("doc/1", as_of=first.at) == "first"
    assert await store.get("doc/1", as_of=second.at) == "second"
    assert await store.get("doc/1", as_of=second.at_micros / 1e6) == "second"
    assert await store.get("doc/1", "gone", as_of=deleted.at) == "gone"
    before = first.at - dt.timedelta(microseconds=1)
    assert await store.get("doc/1", MISSING, as_of=before) is MISSING


async def test_as_of_refuses_a_naive_datetime(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.get("doc/1", as_of=dt.datetime(2024, 1, 1))


async def test_changed_since_is_a_paginated_change_feed(store: SqliteStore) -> None:
    await store.put("a/0", 0)
    (mark,) = await store.history("a/0")
    await store.put_many([("a/1", 1), ("a/2", 2)])
    await store.delete("a/1")
    feed = await store.changed_since(mark.at)
    assert [(c.key, c.op) for c in feed] == [("a/1", "put"), ("a/2", "put"), ("a/1", "delete")]
    page1 = await store.changed_since(mark.at, limit=2)
    page2 = await store.changed_since(mark.at, after_seq=page1[-1].seq, limit=2)
    assert page1 + page2 == feed


async def test_history_is_append_only_even_through_sql(store: SqliteStore) -> None:
    await store.put("a/1", 1)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.connection.execute("DELETE FROM history")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.connection.execute("UPDATE history SET value = '2'")


async def test_commit_times_never_go_backwards(store: SqliteStore, tmp_path: Path) -> None:
    for i in range(50):
        await store.put("t/1", i)
    times = [c.at_micros for c in await store.history("t/1")]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    await store.aclose()
    async with SqliteStore(tmp_path / "h.db") as reopened:
        await reopened.put("t/1", "after")
        last = (await reopened.history("t/1"))[-1]
        assert last.at_micros > times[-1]


async def test_change_feed_misses_nothing_under_concurrent_writers(store: SqliteStore) -> None:
    await store.put("c/start", 0)
    (mark,) = await store.history("c/start")

    async def writer(n: int) -> None:
        for i in range(5):
            await store.put(f"c/{n}", i)

    async with asyncio.TaskGroup() as group:
        for n in range(8):
            group.create_task(writer(n))
    feed = await store.changed_since(mark.at)
    assert len(feed) == 40
    assert [c.seq for c in feed] == sorted(c.seq for c in feed)
    assert [c.at_micros for c in feed] == sorted(c.at_micros for c in feed)
    for n in range(8):
        assert [c.value for c in feed if c.key == f"c/{n}"] == [0, 1, 2, 3, 4]


async def test_feed_starts_strictly_after_the_given_time(store: SqliteStore) -> None:
    await store.put("b/1", 1)
    await store.put("b/2", 2)
    first, second = await store.changed_since(0)
    assert [c.key for c in await store.changed_since(first.at)] == ["b/2"]  # exclusive
    assert await store.changed_since(second.at) == []
