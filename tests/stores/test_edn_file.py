"""EdnFileStore: loading, the map operations, debounced atomic flushes, failures."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword, dumps, loads
from garrison.exceptions import FlushError, StoreError, StoreLoadError
from garrison.stores._edn_file import EdnFileStore
from garrison.stores._keys import edn_key
from garrison.stores._protocol import MISSING, KeyValueStore

if TYPE_CHECKING:
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def read_file(path: Path) -> object:
    return loads(path.read_text(encoding="utf-8"))


async def test_a_missing_file_is_an_empty_store_and_a_flush_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path) as store:
        assert isinstance(store, KeyValueStore)
        assert await store.count() == 0
        assert not path.exists()
        await store.put("presence/s-1", {Keyword("status"): "online"})
        await store.flush()
        assert read_file(path) == {Keyword("presence/s-1"): {Keyword("status"): "online"}}


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path) as store:
        await store.put_many([("a/1", 1), ("a/2", [1, "two", None]), ("b/1", "x")])
    async with EdnFileStore(path) as store:
        assert await store.scan() == [("a/1", 1), ("a/2", [1, "two", None]), ("b/1", "x")]


async def test_reads_writes_scans_and_counts(tmp_path: Path) -> None:
    async with EdnFileStore(tmp_path / "m.edn") as store:
        await store.put_many([(f"s/{i:02}", i) for i in range(10)])
        await store.put("t/x", None)
        await store.put("t/y", 2)
        assert await store.get("t/y") == 2
        assert await store.get("t/x", MISSING) is None  # nil is a value
        assert await store.get("t/zz", MISSING) is MISSING
        assert await store.get_many(["s/01", "nope", "t/x"]) == {"s/01": 1, "t/x": None}
        assert await store.count("s/") == 10
        assert await store.keys("t/") == ["t/x", "t/y"]
        assert await store.scan("s/", after="s/03", limit=2) == [("s/04", 4), ("s/05", 5)]
        assert await store.delete("s/00") is True
        assert await store.delete("s/00") is False
        assert await store.delete_many(["s/01", "s/02", "missing"]) == 2
        assert await store.count() == 9
        await store.clear()
        assert await store.count() == 0
        await store.flush()
    assert read_file(tmp_path / "m.edn") == {}


async def test_a_file_that_does_not_parse_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    original = b'{:a/b 1\n :c/d [1 2\n :e/f "x"}'
    path.write_bytes(original)
    with pytest.raises(StoreLoadError) as info:
        await EdnFileStore(path).open()
    message = str(info.value)
    assert str(path) in message
    cause = info.value.__cause__
    assert cause is not None
    assert f":{cause.line}:{cause.column}:" in message  # type: ignore[attr-defined]
    assert path.read_bytes() == original


async def test_a_top_level_that_is_not_a_map_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    path.write_bytes(b"[1 2 3]")
    with pytest.raises(StoreLoadError, match="not a map"):
        await EdnFileStore(path).open()
    assert path.read_bytes() == b"[1 2 3]"


async def test_non_keyword_top_level_keys_stay_lossless(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    path.write_text('{"s" 1, 42 :x, :k/w 4}', encoding="utf-8")
    async with EdnFileStore(path) as store:
        assert await store.keys() == sorted(['#edn "s"', "#edn 42", "k/w"])
        await store.put("k/w", 5)
    assert read_file(path) == {"s": 1, 42: Keyword("x"), Keyword("k/w"): 5}


async def test_a_write_is_saved_after_the_quiet_period(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path, quiet_period=0.05, max_delay=1.0) as store:
        # The first write after open is saved at once: that flush measures
        # how long a flush takes, which the later ones are scheduled by.
        await store.put("a/a", 0)
        await store.wait_flushed()
        assert store.statistics().flushes == 1
        started = time.monotonic()
        await store.put("a/b", 1)
        assert store.writer_lag >= 0.0
        await store.wait_flushed()
        elapsed = time.monotonic() - started
        assert elapsed >= 0.05, "flushed before the quiet period ended"
        assert elapsed < 2.0, "the debounced flush never came"
        assert read_file(path) == {Keyword("a/a"): 0, Keyword("a/b"): 1}
        assert store.writer_lag == 0.0


async def test_a_steady_stream_of_writes_still_reaches_disk(tmp_path: Path) -> None:
    # Writes every 10 ms never leave a 50 ms quiet period; max_delay bounds the wait.
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path, quiet_period=0.05, max_delay=0.15) as store:
        stop = asyncio.Event()

        async def stream() -> int:
            n = 0
            while not stop.is_set():
                n += 1
                await store.put("stream/n", n)
                await asyncio.sleep(0.01)  # the workload's pace, not synchronisation
            return n

        writer = asyncio.create_task(stream())
        await store.put("first/write", True)
        started = time.monotonic()
        await store.wait_flushed()
        elapsed = time.monotonic() - started
        stop.set()
        await writer
        # 0.15 s plus generous room for a loaded CI machine; without max_delay the
        # stream (which never pauses 50 ms) would hold the flush off indefinitely.
        assert elapsed < 1.5, "max_delay did not bound the wait under a steady write stream"
        assert Keyword("first/write") in read_file(path)  # type: ignore[operator]


async def test_a_flush_reserialises_only_changed_entries(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path) as store:
        await store.put_many([(f"k/{i}", {Keyword("i"): i}) for i in range(500)])
        await store.flush()
        assert store.statistics().last_flush_encoded == 500
        await store.put("k/7", "changed")
        await store.delete("k/8")
        await store.flush()
        assert store.statistics().last_flush_encoded == 1
        expected: dict[Keyword, object]
        expected = {Keyword(f"k/{i}"): {Keyword("i"): i} for i in range(500) if i != 8}
        expected[Keyword("k/7")] = "changed"
        assert read_file(path) == expected
    # After a reopen the loaded entries are encoded once, at the first flush.
    async with EdnFileStore(path) as store:
        await store.put("k/new", 1)
        await store.flush()
        assert store.statistics().last_flush_encoded == 500


async def test_flush_is_atomic_keeps_permissions_and_leaves_no_temp_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.edn"
    path.write_text("{:a 1}", encoding="utf-8")
    path.chmod(0o640)
    stale = tmp_path / ".memory.edn.garrison-tmp-1-dead"
    stale.write_text("{:half", encoding="utf-8")  # a crashed writer's leftover
    async with EdnFileStore(path) as store:
        assert not stale.exists()
        await store.put("b", 2)
        await store.flush()
    assert sorted(os.listdir(tmp_path)) == ["memory.edn"]
    assert path.stat().st_mode & 0o777 == 0o640
    assert read_file(path) == {Keyword("a"): 1, Keyword("b"): 2}


async def test_a_failing_flush_keeps_the_data_reports_it_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    store = await EdnFileStore(path, quiet_period=0.01, max_delay=0.05, max_backoff=0.05).open()
    try:
        await store.put("a/b", 1)
        await store.flush()
        # A directory where the file should be: os.replace fails (a real OSError,
        # which even root gets, unlike a permission bit).
        path.unlink()
        path.mkdir()
        await store.put("a/c", 2)
        with pytest.raises(FlushError, match="kept in memory") as info:
            await store.flush()
        assert isinstance(info.value.__cause__, OSError)
        assert store.last_flush_error is not None
        assert store.statistics().dirty_keys == 1
        assert store.writer_lag > 0.0
        assert await store.get("a/c") == 2
        path.rmdir()
        # The writer retries with backoff on its own; no new write is needed.
        await store.wait_flushed()
        assert store.statistics().last_flush_error is None
        assert store.statistics().failed_flushes >= 1
        assert read_file(path) == {Keyword("a/b"): 1, Keyword("a/c"): 2}
    finally:
        if path.is_dir():
            path.rmdir()
        await store.aclose()


async def test_close_reports_a_final_flush_that_fails(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    store = await EdnFileStore(path).open()
    await store.put("a/b", 1)
    path.mkdir()
    with pytest.raises(FlushError):
        await store.aclose()
    assert store.snapshot() == {"a/b": 1}  # still readable for a last-ditch save
    await store.aclose()  # idempotent


async def test_concurrent_writers_and_flushes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path, quiet_period=0.001, max_delay=0.005) as store:

        async def worker(w: int) -> None:
            for i in range(200):
                await store.put(f"w{w}/{i % 20}", i)
                if i % 50 == 0:
                    await store.flush()
                await asyncio.sleep(0)

        await asyncio.gather(*(worker(w) for w in range(4)))
    expected = {Keyword(f"w{w}/{k}"): 180 + k for w in range(4) for k in range(20)}
    assert read_file(path) == expected


async def test_a_cancelled_flush_caller_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path) as store:
        await store.put_many([(f"k/{i}", "v" * 100) for i in range(2000)])
        caller = asyncio.create_task(store.flush())
        await asyncio.sleep(0)  # let the flush start its thread
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await store.put("k/last", 1)
    data = read_file(path)
    assert isinstance(data, dict)
    assert len(data) == 2001


async def test_every_operation_makes_a_span(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    async with EdnFileStore(tmp_path / "memory.edn") as store:
        await store.put_many([("a", 1), ("b", 2)])
        await store.get("a")
        await store.flush()
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert {"load memory.edn", "put_many memory.edn", "get memory.edn", "flush memory.edn"} <= set(
        spans
    )
    attributes = spans["put_many memory.edn"].attributes or {}
    assert attributes["db.system.name"] == "garrison.edn"
    assert attributes["db.operation.batch.size"] == 2


async def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = await EdnFileStore(tmp_path / "memory.edn").open()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.put("a", 1)
    assert os.listdir(tmp_path) == []


async def test_an_incremental_file_is_byte_for_byte_a_whole_dump(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path) as store:
        await store.put_many(
            [(f"k/{i}", {Keyword("n"): i, Keyword("s"): {"x"}}) for i in range(50)]
        )
        await store.flush()
        await store.put("k/3", [1.5, None, "é"])
        await store.delete("k/4")
        await store.flush()
        expected = {edn_key(k): v for k, v in store.snapshot().items()}
    assert path.read_text(encoding="utf-8") == dumps(expected)


async def test_an_entry_the_file_cannot_hold_is_kept_aside_and_never_holds_the_others(
    tmp_path: Path,
) -> None:
    # The router refuses such entries before they are written; the store itself
    # still defends the file against one (a value mutated after its put).
    path = tmp_path / "memory.edn"
    store = await EdnFileStore(path, quiet_period=0.01).open()
    await store.put_many([("a/1", 1), ("a/2", [2])])
    await store.flush()
    await store.put("a/1", {"at": object()})  # no EDN form: the file keeps a/1 = 1
    await store.put("a/3", 3)
    with pytest.raises(FlushError, match=r"a/1 \(EdnEncodeError.*every other entry is on disk"):
        await store.flush()
    assert read_file(path) == {Keyword("a/1"): 1, Keyword("a/2"): [2], Keyword("a/3"): 3}
    assert list(store.unwritable) == ["a/1"]
    assert store.statistics().unwritable == 1
    assert store.last_flush_error is None  # the writer is not stuck: later writes land
    await store.put("a/4", 4)
    await store.wait_flushed()
    assert read_file(path)[Keyword("a/4")] == 4  # type: ignore[index]
    with pytest.raises(FlushError, match="a/1"):
        await store.aclose()  # the kept-aside entry is lost at close, and says so
    async with EdnFileStore(path) as again:
        assert await again.scan() == [("a/1", 1), ("a/2", [2]), ("a/3", 3), ("a/4", 4)]


async def test_writing_or_deleting_an_unwritable_key_again_clears_it(tmp_path: Path) -> None:
    async with EdnFileStore(tmp_path / "memory.edn", quiet_period=0.01) as store:
        await store.put_many([("a/1", b"bytes"), ("a/2", b"bytes")])
        with pytest.raises(FlushError, match="2 entries have no EDN form"):
            await store.flush()
        await store.put("a/1", 1)
        await store.delete("a/2")
        await store.flush()
        assert store.unwritable == {}
        assert read_file(tmp_path / "memory.edn") == {Keyword("a/1"): 1}


async def test_a_flush_that_finishes_after_the_bound_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    async with EdnFileStore(path, max_delay=0.0) as store:  # no flush finishes within 0 s
        await store.put("a/b", 1)
        await store.flush()
        assert store.statistics().late_flushes == 1
    async with EdnFileStore(path, max_delay=30.0) as store:
        await store.put("a/b", 2)
        await store.flush()
        assert store.statistics().late_flushes == 0


async def test_top_level_keys_python_would_merge_are_separate_entries(tmp_path: Path) -> None:
    # 0, false and 0.0 are three EDN keys (Clojure's =), and three store keys.
    path = tmp_path / "memory.edn"
    path.write_text("{0 :int, false :bool, 0.0 :double, :k #{0 false}}", encoding="utf-8")
    async with EdnFileStore(path) as store:
        assert await store.count() == 4
        assert await store.get("#edn 0") == Keyword("int")
        assert await store.get("#edn false") == Keyword("bool")
        assert await store.get("#edn 0.0") == Keyword("double")
        assert len(await store.get("k")) == 2
        await store.put("k", 1)
        await store.flush()
    assert read_file(path) == loads("{0 :int, false :bool, 0.0 :double, :k 1}")
