"""The LRU read cache and the change feed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from garrison import ChangesLostError
from garrison.components.database import Store
from garrison.components.database._cache import ReadCache
from garrison.stores._protocol import MISSING
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


async def test_repeated_reads_hit_the_cache_and_writes_invalidate(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put("c/1", {"v": 1})
    assert await store.get("c/1") == {"v": 1}  # miss, now cached
    assert await store.get("c/1") == {"v": 1}  # hit
    assert await store.get("c/absent") is None  # a miss cached as absent
    assert await store.get("c/absent") is None  # hit
    stats = await store.statistics()
    assert (stats.cache_hits, stats.cache_misses) == (2, 2)
    assert stats.cache_hit_ratio == 0.5
    await store.put("c/1", {"v": 2})
    await store.put("c/absent", "now here")
    assert await store.get("c/1") == {"v": 2}
    assert await store.get("c/absent") == "now here"
    await store.delete("c/1")
    assert await store.get("c/1", MISSING) is MISSING


async def test_cache_size_zero_turns_it_off(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, cache_size=0) as rt:
        await rt.get(Store).put("c/1", 1)
        for _ in range(3):
            assert await rt.get(Store).get("c/1") == 1
        stats = await rt.get(Store).statistics()
        assert (stats.cache_hits, stats.cache_entries, stats.cache_hit_ratio) == (0, 0, 0.0)


def test_the_cache_evicts_the_least_recently_used() -> None:
    cache = ReadCache(2)
    cache.store("a", 1)
    cache.store("b", 2)
    assert cache.lookup("a") == 1  # a is now the most recent
    cache.store("c", 3)
    assert cache.lookup("b") is ReadCache.UNCACHED
    assert cache.lookup("a") == 1
    assert cache.lookup("c") == 3
    assert len(cache) == 2


async def test_watch_yields_committed_changes_in_commit_order(runtime: Runtime) -> None:
    store = runtime.get(Store)
    async with store.watch("session/") as changes:
        await store.put("session/a", 1)
        await store.put("other/x", "not watched")
        await store.put_many([("session/b", 2), ("session/a", 3)])
        await store.delete("session/b")
        await store.delete("session/never")  # nothing existed: no change
        await store.put("session/end", None)
        seen = []
        async for change in changes:
            seen.append((change.op, change.key, change.value))
            if change.key == "session/end":
                break
    assert seen == [
        ("put", "session/a", 1),
        ("put", "session/b", 2),
        ("put", "session/a", 3),
        ("delete", "session/b", MISSING),
        ("put", "session/end", None),
    ]


async def test_changes_of_concurrent_writers_arrive_in_seq_order(runtime: Runtime) -> None:
    store = runtime.get(Store)
    async with store.watch("w/") as changes:
        await asyncio.gather(*(store.put(f"w/{i}", i) for i in range(50)))
        got = [await anext(changes) for _ in range(50)]
    assert sorted(c.value for c in got) == list(range(50))
    seqs = [c.seq for c in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 50


async def test_a_slow_watcher_loses_its_place_and_never_blocks_writers(runtime: Runtime) -> None:
    store = runtime.get(Store)
    slow = store.watch("k/", buffer=5)
    fast = store.watch("k/")
    await slow.start()
    await fast.start()
    # Nobody reads `slow` while 20 writes commit: writers are not held up.
    for i in range(20):
        await store.put(f"k/{i}", i)
    with pytest.raises(ChangesLostError) as info:
        await anext(slow)
    assert info.value.reason == "overflow"
    assert info.value.prefix == "k/"
    assert [(await anext(fast)).value for _ in range(20)] == list(range(20))
    stats = await store.statistics()
    assert stats.watch_overflows == 1
    # Resync: read the current state, then watch again.
    assert await store.count("k/") == 20
    async with store.watch("k/", buffer=5) as again:
        await store.put("k/20", 20)
        assert (await anext(again)).key == "k/20"


async def test_watching_ends_when_the_runtime_stops(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        watch = await rt.get(Store).watch().start()
        await rt.get(Store).put("a/1", 1)
    assert [c.key async for c in watch] == ["a/1"]


async def test_a_restore_makes_watchers_resync(runtime: Runtime, tmp_path: Path) -> None:
    store = runtime.get(Store)
    backup = await store.backup(tmp_path / "b.db")
    async with store.watch() as changes:
        await store.put("a/1", 1)
        await store.restore(backup)
        assert (await anext(changes)).key == "a/1"  # what came before is still delivered
        with pytest.raises(ChangesLostError) as info:
            await anext(changes)
    assert info.value.reason == "restore"


async def test_a_dropped_watcher_unsubscribes(runtime: Runtime) -> None:
    store = runtime.get(Store)
    watch = await store.watch().start()
    assert (await store.statistics()).watchers == 1
    del watch
    assert (await store.statistics()).watchers == 0
    with_block = store.watch()
    async with with_block:
        assert (await store.statistics()).watchers == 1
    assert (await store.statistics()).watchers == 0


async def test_concurrent_readers_of_a_hot_key_count_as_hits(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put("hot/1", "value")
    assert await store.get("hot/1") == "value"  # one miss fills the cache
    results = await asyncio.gather(*(store.get("hot/1") for _ in range(20)))
    assert results == ["value"] * 20
    stats = await store.statistics()
    assert (stats.cache_hits, stats.cache_misses) == (20, 1)
