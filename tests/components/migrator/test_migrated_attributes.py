"""The migrator's bulk load keeps the attribute index exact, as every other write does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.components.migrator import migrate
from garrison.stores import SqliteStore
from tests.stores.test_attributes import assert_index_exact, rows_of

if TYPE_CHECKING:
    from pathlib import Path

# Declared indexed by one kind, indexed on every entity that has them.
INDEXED = {"cache": [":events", ":members", ":tags", ":nested", ":a"]}


async def test_a_migrated_file_is_indexed_as_live_writes_are(
    tmp_path: Path, memory_edn: Path
) -> None:
    async with SqliteStore(tmp_path / "indexed.db", indexed=INDEXED) as store:
        await _check(store, memory_edn)


async def _check(store: SqliteStore, memory_edn: Path) -> None:
    await migrate(store, memory_edn)
    await assert_index_exact(store)
    rows = await rows_of(store)
    assert (":events", "push", "k", "webhook/w1") in rows
    assert (":members", "user/u2", "k", "project/p1") in rows
    assert (":tags", "b", "k", "learning/r1") in rows  # a list's members
    assert not {row for row in rows if row[0] == ":nested"}  # a nested map stays JSON
    # Migrating again (all keys rewritten) leaves the same rows.
    await migrate(store, memory_edn)
    assert await rows_of(store) == rows
