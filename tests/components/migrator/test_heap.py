"""The migration keeps the collector off the parsed file, and gives the heap back as it was."""

from __future__ import annotations

import gc
import weakref
from typing import TYPE_CHECKING, Any

from garrison.components.migrator import MigrationProgress, migrate, validate
from garrison.components.migrator._heap import heap_frozen, promote_young_objects
from garrison.components.migrator._source import read_source

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


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


def test_a_parsed_file_is_left_in_the_oldest_generation(memory_edn: Path) -> None:
    # The parse runs with the collector paused; what it made is then moved to
    # the oldest generation, so the next young collection does not walk it.
    entries = read_source(memory_edn).entries
    assert _generation_of(entries) == 2
    assert gc.get_freeze_count() == 0


def test_promoting_young_objects_leaves_a_freeze_alone() -> None:
    young: list[list[int]] = [[]]
    with heap_frozen():
        promote_young_objects()  # a freeze is in place: nothing is done
        assert gc.get_freeze_count() > 0
    assert _generation_of(young) == 2  # unfrozen: into the oldest generation
    newer: list[list[int]] = [[]]
    promote_young_objects()
    assert _generation_of(newer) == 2
    assert gc.get_freeze_count() == 0
    ref = _cycle()
    promote_young_objects()
    gc.collect()  # garbage moved there is still collected
    assert ref() is None
