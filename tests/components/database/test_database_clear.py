"""store.clear(prefix): every mode, real files, history, the EDN file, watchers and the cache."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.components.database import Clear, Store
from garrison.stores._edn_file_format import load_file
from garrison.stores._protocol import MISSING
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

MODES = ["edn-only", "dual-write", "sqlite-first", "sqlite-only"]


def _sqlite_rows(path: Path) -> tuple[list[str], list[tuple[str, str, int]], int]:
    """Entry keys, the history's (key, op, at) rows, and the number of commits."""
    with sqlite3.connect(path) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM entries ORDER BY key")]
        history = list(conn.execute("SELECT key, op, at FROM history ORDER BY seq"))
        (commits,) = conn.execute("SELECT count(*) FROM commits").fetchone()
    conn.close()
    return keys, history, commits


@pytest.mark.parametrize("mode", MODES)
async def test_clear_a_prefix_in_every_mode(tmp_path: Path, mode: str) -> None:
    async with database_runtime(tmp_path, mode=mode, cache_size=100) as rt:
        store = rt.get(Store)
        await store.put_many({"session/a": 1, "session/b": {"user": 2}, "user/c": 3})
        assert await store.get("session/a") == 1  # now in the read cache
        async with store.watch("") as changes:
            assert await store.clear("session/") == 2
            first, second = await anext(changes), await anext(changes)
        assert [(c.op, c.key, c.value) for c in (first, second)] == [
            ("delete", "session/a", MISSING),
            ("delete", "session/b", MISSING),
        ]
        assert await store.get("session/a", MISSING) is MISSING  # not from the cache
        assert await store.scan() == [("user/c", 3)]
        assert await store.clear("session/") == 0
        await store.flush()
        if mode != "edn-only":
            commits_before = _sqlite_rows(tmp_path / "garrison.db")[2]
        # The whole store, through the message as well.
        assert await rt.ref("database").ask(Clear()) == 1
        assert await store.count() == 0
        await store.flush()
    edn = load_file(tmp_path / "memory.edn") if (tmp_path / "memory.edn").exists() else {}
    if mode == "sqlite-only":
        assert "session/a" not in edn  # never written there
    else:
        assert edn == {}
    if mode == "edn-only":
        return
    keys, history, commits = _sqlite_rows(tmp_path / "garrison.db")
    assert keys == []
    deletes = [(k, at) for k, op, at in history if op == "delete"]
    assert [k for k, _ in deletes] == ["session/a", "session/b", "user/c"]
    # The prefix clear was one transaction: one commit time for both of its deletes.
    assert deletes[0][1] == deletes[1][1]
    # And the full clear one more commit.
    assert commits == commits_before + 1


async def test_clear_reaches_the_edn_file_on_its_next_flush_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        await rt.get(Store).put_many({"a/1": 1, "a/2": 2, "b/1": 3})
        await rt.get(Store).flush()
        await rt.get(Store).clear("a/")
        await rt.get(Store).flush()
        assert load_file(tmp_path / "memory.edn") == {"b/1": 3}
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        assert await rt.get(Store).scan() == [("b/1", 3)]
        await rt.get(Store).set_mode("sqlite-only")  # validates: both sides agree
        assert await rt.get(Store).scan() == [("b/1", 3)]
