"""The Store facade's asks on a real runtime: full mailbox, stopped runtime, cancel, timeout."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from garrison import ActorStoppedError, open_runtime
from garrison.components.database import Store
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path


async def test_many_callers_through_a_tiny_mailbox_all_commit_in_their_own_order(
    tmp_path: Path,
) -> None:
    # Capacity 2: most calls find the mailbox full and take ask()'s waiting path.
    config = {
        "runtime": {"data_dir": str(tmp_path), "mailbox_capacity": 2},
        "components": {"database": {}},
    }
    async with open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        assert store.ref.statistics().mailbox_capacity == 2

        async def caller(n: int) -> list[int]:
            seen = []
            for i in range(20):
                await store.put(f"c/{n}", i)
                seen.append(await store.get(f"c/{n}"))
            return seen

        results = await asyncio.gather(*(caller(n) for n in range(16)))
        assert all(seen == list(range(20)) for seen in results)
        assert await store.get_many([f"c/{n}" for n in range(16)]) == {
            f"c/{n}": 19 for n in range(16)
        }


async def test_store_of_a_stopped_runtime_refuses_with_actor_stopped(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("k", 1)
    with pytest.raises(ActorStoppedError):
        await store.put("k", 2)
    with pytest.raises(ActorStoppedError):
        await store.get("k")


async def test_a_cancelled_caller_leaves_the_store_usable(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        task = asyncio.create_task(store.put("k", 1))
        await asyncio.sleep(0)  # one turn: the task queues its message and waits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.put("k", 2)
        assert await store.get("k") == 2


async def test_a_store_with_a_timeout_still_answers(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = Store(rt, timeout=30.0)
        await store.put("k", {"a": 1})
        assert await store.get("k") == {"a": 1}
        assert await store.delete("k") is True
