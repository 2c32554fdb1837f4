"""Attribute subscriptions: a live query's wake-up when a commit touched what it reads.

A Datalog live query (and a ``find`` one) cannot apply a commit's changes to
the result it holds, as a prefix one does: it must run its query again. It
runs it only when a commit touched an attribute it reads (see
:mod:`._query_cache` for the rule, which the query cache shares): the actor
marks its :class:`AttributeWatch` *dirty*, and the live query, woken, runs the
query once for however many commits marked it meanwhile. A commit that
touched nothing it reads costs it nothing, not even a wake-up.

The watch of a ``find`` has the prefix of its keys: only the keys under it
count. Like the change feed's subscriptions, watches are held weakly, end
when the runtime stops, and lose their place (:class:`~garrison.ChangesLostError`,
``reason="restart"`` or ``"restore"``) when the component restarts or a backup
is restored, so the live query reads its result anew.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from garrison.components.database._feed import Waitable
from garrison.exceptions import ChangesLostError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AttributeFeed", "AttributeWatch"]


class AttributeWatch(Waitable):
    """One live query's dirty flag; made by the actor for :class:`WatchAttributes`."""

    __slots__ = ("_dirty", "prefix", "reads")

    def __init__(self, prefix: str, reads: frozenset[str] | None) -> None:
        super().__init__()
        self.prefix = prefix
        #: The attributes it reads (``"*"``: any); ``None``: any change under the prefix.
        self.reads = reads
        self._dirty = False

    def _mark(self) -> bool:
        """Mark dirty; ``True`` if it was clean (a wake-up)."""
        if self._dirty or self.closed:
            return False
        self._dirty = True
        self._wake()
        return True

    def take(self) -> bool:
        """Whether a commit touched it since the last ``take`` (and clear the mark)."""
        dirty, self._dirty = self._dirty, False
        return dirty

    async def wait(self) -> bool:
        """Wait until a commit touched it; ``False`` when it ended.

        Raises :class:`~garrison.ChangesLostError` when it lost its place.
        """
        return await self._wait_while(lambda: not self._dirty)

    def close(self) -> None:
        """Stop following; :meth:`wait` returns ``False``."""
        self._end(None)


class AttributeFeed:
    """The actor's side: attribute watches by attribute, marked after each commit."""

    def __init__(self) -> None:
        self._watches: weakref.WeakSet[AttributeWatch] = weakref.WeakSet()
        # attribute -> watches reading it; None until rebuilt after a change of watches
        self._index: dict[str | None, list[weakref.ref[AttributeWatch]]] | None = None
        #: Times a commit marked a clean watch dirty (each is one re-run of a query).
        self.wakeups = 0

    @property
    def listening(self) -> bool:
        """Whether any watch may want to know."""
        return bool(self._watches)

    @property
    def watches(self) -> int:
        """Open watches."""
        return sum(1 for w in self._watches if not w.closed)

    def watch(self, prefix: str, reads: frozenset[str] | None) -> AttributeWatch:
        """A new watch of the keys under ``prefix`` for the attributes ``reads``."""
        watch = AttributeWatch(prefix, reads)
        self._watches.add(watch)
        self._index = None
        return watch

    def _built(self) -> dict[str | None, list[weakref.ref[AttributeWatch]]]:
        index: dict[str | None, list[weakref.ref[AttributeWatch]]] = {}
        for watch in self._watches:
            if watch.closed:
                continue
            reads: Sequence[str | None] = (None,) if watch.reads is None else tuple(watch.reads)
            for attribute in reads:
                index.setdefault(attribute, []).append(weakref.ref(watch))
        self._index = index
        return index

    def touch(self, changes: Sequence[tuple[str, frozenset[str]]]) -> None:
        """A commit touched, per key written, these attributes: mark the watches that read one."""
        if not self._watches:
            return
        index = self._index if self._index is not None else self._built()
        stale = False
        woken = 0
        anything = index.get(None, ())
        star = index.get("*", ())
        for key, attributes in changes:
            for group in (
                anything,
                star if attributes else (),
                *(index.get(a, ()) for a in attributes),
            ):
                for ref in group:
                    watch = ref()
                    if watch is None or watch.closed:
                        stale = True
                    elif key.startswith(watch.prefix) and watch._mark():
                        woken += 1
        self.wakeups += woken
        if stale:
            self._index = None

    def touch_all(self) -> None:
        """A commit whose touched attributes are unknown: mark every watch."""
        for watch in list(self._watches):
            if watch._mark():
                self.wakeups += 1

    def close(self) -> None:
        """End every watch (the runtime stops)."""
        for watch in list(self._watches):
            watch._end(None)
        self._watches = weakref.WeakSet()
        self._index = None

    def lose_all(self, reason: str) -> None:
        """Every watch loses its place (a restart, a restore): the live queries read anew."""
        for watch in list(self._watches):
            watch._end(
                ChangesLostError(
                    f"live query lost its place: {reason}; read the current result again",
                    prefix=watch.prefix,
                    reason=reason,
                )
            )
        self._watches = weakref.WeakSet()
        self._index = None
