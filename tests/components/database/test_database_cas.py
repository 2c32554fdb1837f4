"""Compare-and-set puts through the Store facade (``put(..., if_version=n)``) on SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison import StoreError, VersionConflictError
from garrison.components.database import PutIfVersion, Store
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_compare_and_set_put_reaches_watchers_and_refuses_a_stale_version(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path, mode="sqlite-only", cache_size=10) as rt:
        store = rt.get(Store)
        async with store.watch("c/") as changes:
            await store.put("c/1", "a", if_version=0)
            assert await store.get("c/1") == "a"  # cached from here
            await store.put("c/1", "b", if_version=1)
            with pytest.raises(VersionConflictError, match="at version 2") as caught:
                await store.put("c/1", "stale", if_version=1)
            assert caught.value.current == 2
            assert await store.get("c/1") == "b"  # the cache followed the write
            seen = []
            async for change in changes:
                seen.append((change.key, change.value))
                if len(seen) == 2:
                    break
        assert seen == [("c/1", "a"), ("c/1", "b")]
        with pytest.raises(StoreError, match="if_version must be an integer 0 or more"):
            PutIfVersion("c/1", "x", -1)


async def test_a_compare_and_set_put_needs_the_database_only_mode(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        with pytest.raises(StoreError, match="needs the sqlite-only mode"):
            await rt.get(Store).put("c/1", "a", if_version=0)
        assert await rt.get(Store).get("c/1") is None
