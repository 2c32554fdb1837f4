"""Keeping the cyclic garbage collector off the parsed file while a migration works on it.

A parsed ``memory.edn`` is a big heap (a 25 MB file of 100 000 keys adds
~265 000 maps, lists and sets the collector tracks, besides the strings),
alive for the whole migration. Every
batch allocates containers (rows, tag structures, the database's rows), so
the collector runs often, and each of its full passes walks all of those
objects again, finding nothing: the parsed values hold no reference cycles.
That was ~15% of a migration's time (3.9-4.3 s against 3.2-3.8 s with the
collector off, alternating runs of the 100k-key benchmark file).

:func:`heap_frozen` moves every object that exists when it starts into the
collector's permanent generation (:func:`gc.freeze`) and back when it ends
(:func:`gc.unfreeze`). Objects made meanwhile are collected as usual, and
so is garbage among the frozen ones once the block ends (it is only
deferred). Nested and concurrent uses share one freeze, undone when the last
one ends. When something else (a pre-fork server, say) has already frozen
the heap, nothing is done, so its freeze is never undone by a migration.

:func:`promote_young_objects` is for the end of the parse itself, which runs
with the collector paused: every object it made is still in the youngest
generation then, so the first allocations after it would start a collection
of that generation that walks the whole parsed file, finding nothing (~0.19 s
for the 100 000-key benchmark file). It moves them to the oldest generation
instead, where only a full collection looks at them.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["heap_frozen", "promote_young_objects"]

_lock = threading.Lock()
_users = 0
_ours = False  # whether the current freeze is ours to undo


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """While the block runs, the collector leaves alone every object that exists now."""
    global _users, _ours
    with _lock:
        if _users == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _ours:
                _ours = False
                gc.unfreeze()


def promote_young_objects() -> None:
    """Move every object the collector tracks into its oldest generation (in O(1)).

    ``gc.freeze()`` then ``gc.unfreeze()``: all generations into the
    permanent one, then all of it into the oldest. Nothing is done while a
    freeze is in place (a migration's, or another's), which this would undo.
    """
    with _lock:
        if _users == 0 and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
