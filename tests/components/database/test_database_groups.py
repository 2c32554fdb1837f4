"""Groups of writes and reads: every caller answered, subclasses handled, feed numbering kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from garrison import RefusedWriteError
from garrison.components.database import Delete, Get, GetMany, Put, PutMany, Store
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


@dataclass(frozen=True, slots=True)
class AuditedPut(Put):
    """An application's own kind of put: still a put."""

    who: str = "someone"


@dataclass(frozen=True, slots=True)
class AuditedGet(Get):
    """An application's own kind of get."""


@dataclass(frozen=True, slots=True)
class AuditedDelete(Delete):
    """An application's own kind of delete."""


async def test_subclasses_of_the_grouped_messages_are_handled_like_them(
    runtime: Runtime,
) -> None:
    ref = runtime.ref("database")
    assert await ref.ask(AuditedPut("a/1", {"x": 1}, who="ops")) is None
    assert await ref.ask(AuditedGet("a/1")) == {"x": 1}
    assert await ref.ask(AuditedGet("a/2", "none")) == "none"
    assert await ref.ask(AuditedDelete("a/1")) is True
    assert await runtime.get(Store).get("a/1") is None


async def test_a_group_left_with_only_empty_put_manys_after_a_bad_value_is_answered(
    runtime: Runtime,
) -> None:
    ref = runtime.ref("database")
    # One drain, one group: the bad value fails its caller; the empty write succeeds.
    results = await asyncio.gather(
        ref.ask(PutMany(())), ref.ask(Put("a/bad", object())), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], RefusedWriteError)
    assert await runtime.get(Store).count() == 0


async def test_grouped_reads_answer_each_caller_with_its_own_keys_and_defaults(
    runtime: Runtime,
) -> None:
    await runtime.get(Store).put_many({"r/1": 1, "r/2": None})
    ref = runtime.ref("database")
    results = await asyncio.gather(
        ref.ask(Get("r/1")),
        ref.ask(Get("r/missing", "default")),
        ref.ask(GetMany(("r/1", "r/2", "r/missing"))),
        ref.ask(Get("r/2", "default")),  # stored nil is a value, not absence
        ref.ask(Get("r/1")),
    )
    assert list(results) == [1, "default", {"r/1": 1, "r/2": None}, None, 1]
    stats = await runtime.get(Store).statistics()
    assert stats.read_batches <= 2  # the put_many's group aside, one query for all five


async def test_feed_numbers_count_changes_made_while_nobody_watched(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put_many({"n/1": 1, "n/2": 2, "n/3": 3})  # nobody watches: seq 1 to 3
    async with store.watch("n/") as changes:
        await store.put("n/4", 4)
        change = await asyncio.wait_for(anext(aiter(changes)), 10)
    assert (change.key, change.seq) == ("n/4", 4)


@pytest.mark.parametrize("cache_size", [0, 100])
async def test_reads_after_writes_in_one_drain_see_them_with_and_without_cache(
    tmp_path: Path, cache_size: int
) -> None:
    async with database_runtime(tmp_path, cache_size=cache_size) as rt:
        ref = rt.ref("database")
        await rt.get(Store).put("c/1", "old")
        assert await rt.get(Store).get("c/1") == "old"  # cached now, when the cache is on
        results = await asyncio.gather(
            ref.ask(Put("c/1", "new")), ref.ask(Get("c/1")), ref.ask(GetMany(("c/1",)))
        )
        assert list(results) == [None, "new", {"c/1": "new"}]
