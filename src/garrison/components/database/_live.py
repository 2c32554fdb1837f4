"""Live queries: a result that updates itself, from :meth:`Store.subscribe`.

A :class:`LiveQuery` yields the current result of its query (the entries
under a key prefix, or a ``find`` under it) at once, then a new result each
time a committed change under the prefix changes it. It rides on the change
feed (:meth:`Store.watch`), which delivers every committed change under the
prefix in commit order: a prefix query applies those changes to the result
it holds, so following it costs writers nothing but the feed they feed
anyway; a ``find`` query reads its result again after changes under the
prefix.

Coalescing
    After a change it waits until :data:`COALESCE_INTERVAL` (10 ms) has passed
    since its last result, takes every change that arrived meanwhile, and
    yields once: at most one result per 10 ms, however fast the writes come.
    A result equal to the previous one (Clojure's equality,
    :func:`garrison.edn.equal`) is not yielded again.

Slow consumers
    Writers never wait for a consumer: the feed drops a watcher that falls
    more than its buffer behind (:class:`~garrison.ChangesLostError`). The
    live query then watches anew and reads the current result, so a slow
    consumer gets the latest result, not every intermediate one. The same
    resync happens across a restart of the database component or a restore;
    :attr:`LiveQuery.resyncs` counts them and each is logged. Iteration ends
    when the runtime stops.

The values of a prefix query's results are those the feed carries: the
values as written (as :meth:`Store.watch` gives them), not copies read back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from garrison.edn import equal
from garrison.exceptions import ChangesLostError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from garrison.components.database._facade import Store, Watch
    from garrison.components.database._feed import ChangeEvent

__all__ = ["COALESCE_INTERVAL", "LiveQuery"]

log = logging.getLogger(__name__)

#: The least time between two results of one live query (seconds).
COALESCE_INTERVAL: Final = 0.010

Result = list[tuple[str, Any]]


class LiveQuery:
    """The async iterator :meth:`Store.subscribe` returns (see the module docstring)."""

    __slots__ = (
        "_entries",
        "_find",
        "_last",
        "_last_at",
        "_prefix",
        "_store",
        "_watch",
        "resyncs",
    )

    def __init__(self, store: Store, prefix: str, find: Mapping[str, Any] | None) -> None:
        self._store = store
        self._prefix = prefix
        self._find = dict(find) if find is not None else None
        self._watch: Watch | None = None
        #: A prefix query's current entries, kept up to date from the feed.
        self._entries: dict[str, Any] = {}
        self._last: Result | None = None
        self._last_at = 0.0
        #: How many times the query lost the feed (overflow, restart, restore) and read anew.
        self.resyncs = 0

    async def _read(self) -> Result:
        if self._find is None:
            entries = await self._store.scan(self._prefix)
            self._entries = dict(entries)
            return entries
        criteria = dict(self._find)
        path = criteria.pop("path")
        return await self._store.find(path, prefix=self._prefix, **criteria)

    async def _start(self) -> Result:
        """Watch, then read: no change can fall between the read and the feed."""
        self._watch = await self._store.watch(self._prefix).start()
        return await self._read()

    def close(self) -> None:
        """Stop following the query; iteration ends."""
        if self._watch is not None:
            self._watch.close()

    def __aiter__(self) -> LiveQuery:
        return self

    async def __anext__(self) -> Result:
        if self._watch is None:
            return self._yield(await self._start())
        while True:
            result = await self._next_result()
            if result is None:
                raise StopAsyncIteration
            if not _same(result, self._last):
                return self._yield(result)

    def _yield(self, result: Result) -> Result:
        self._last = result
        self._last_at = asyncio.get_running_loop().time()
        return result

    async def _next_result(self) -> Result | None:
        """Wait for changes, let a burst gather, and make the result (``None``: the feed ended)."""
        watch = self._watch
        assert watch is not None
        try:
            dirty = self._apply(await anext(watch))
            loop = asyncio.get_running_loop()
            delay = self._last_at + COALESCE_INTERVAL - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the coalescing window, not a synchronisation
            for _ in range(watch.pending):
                dirty = self._apply(await anext(watch)) or dirty  # buffered: returns at once
        except StopAsyncIteration:
            return None
        except ChangesLostError as exc:
            self.resyncs += 1
            log.info("live query of %r lost its feed (%s); reading it anew", self._prefix, exc)
            watch.close()
            return await self._start()
        if self._find is not None:
            return await self._read()
        if not dirty:
            return self._last
        return sorted(self._entries.items(), key=_by_key)

    def _apply(self, change: ChangeEvent) -> bool:
        """Apply a change to a prefix query's entries; ``True`` if they changed."""
        if self._find is not None:
            return True
        entries = self._entries
        if change.op == "delete":
            return entries.pop(change.key, _ABSENT) is not _ABSENT
        held = entries.get(change.key, _ABSENT)
        if held is not _ABSENT and equal(held, change.value):
            return False
        entries[change.key] = change.value
        return True


_ABSENT: Final = object()


def _by_key(entry: tuple[str, Any]) -> str:
    return entry[0]


def _same(result: Result, last: Result | None) -> bool:
    if result is last:
        return True
    if last is None or len(result) != len(last):
        return False
    return all(
        key == other_key and equal(value, other)
        for (key, value), (other_key, other) in zip(result, last, strict=True)
    )
