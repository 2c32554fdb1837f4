"""The migration keeps the collector off the parsed file, and gives the heap back as it was."""

from __future__ import annotations

import gc
import weakref
from typing import TYPE_CHECKING, Any

from garrison.components.migrator import MigrationProgress, migrate, validate
from garrison.components.migrator._heap import heap_frozen

if TYPE_CHECKING:
    from pathlib import Path

    from garrison.stores import SqliteStore


class _Node:
    other: Any = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


async def test_the_heap_is_frozen_while_migrating_and_validating_only(
    store: SqliteStore, memory_edn: Path
) -> None:
    frozen_during: list[int] = []

    def listener(progress: MigrationProgress) -> None:
        if progress.phase in ("migrate", "validate") and progress.done:
            frozen_during.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    await migrate(store, memory_edn, batch_size=4, listener=listener)
    await validate(store, memory_edn, listener=listener)

    assert frozen_during
    assert all(count > 0 for count in frozen_during)
    assert gc.get_freeze_count() == 0


def test_garbage_among_frozen_objects_is_only_deferred() -> None:
    ref = _cycle()
    with heap_frozen(), heap_frozen():  # nested uses share one freeze
        gc.collect()
        assert ref() is not None  # frozen: the collector does not look at it
    gc.collect()
    assert ref() is None
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_by_someone_else_is_left_alone() -> None:
    gc.freeze()  # as a pre-fork server does
    try:
        frozen = gc.get_freeze_count()
        with heap_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
