"""Live queries: a result that updates itself, from :meth:`Store.subscribe`.

A :class:`LiveQuery` yields the current result of its query (a ``scan`` of a
key prefix, or a ``find`` under it) at once, then a new result each time a
committed change under the prefix changes it. It rides on the change feed
(:meth:`Store.watch`): the feed says *that* something under the prefix
changed, and the query is read again.

Coalescing
    After a change it waits until :data:`COALESCE_INTERVAL` (10 ms) has passed
    since its last result, takes every change that arrived meanwhile, and
    reads once: at most one result per 10 ms, however fast the writes come.
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

__all__ = ["COALESCE_INTERVAL", "LiveQuery"]

log = logging.getLogger(__name__)

#: The least time between two results of one live query (seconds).
COALESCE_INTERVAL: Final = 0.010

Result = list[tuple[str, Any]]


class LiveQuery:
    """The async iterator :meth:`Store.subscribe` returns (see the module docstring)."""

    __slots__ = ("_find", "_last", "_last_at", "_prefix", "_store", "_watch", "resyncs")

    def __init__(self, store: Store, prefix: str, find: Mapping[str, Any] | None) -> None:
        self._store = store
        self._prefix = prefix
        self._find = dict(find) if find is not None else None
        self._watch: Watch | None = None
        self._last: Result | None = None
        self._last_at = 0.0
        #: How many times the query lost the feed (overflow, restart, restore) and read anew.
        self.resyncs = 0

    async def _read(self) -> Result:
        if self._find is None:
            return await self._store.scan(self._prefix)
        criteria = dict(self._find)
        path = criteria.pop("path")
        return await self._store.find(path, prefix=self._prefix, **criteria)

    async def _start(self) -> None:
        # Watch first, then read: no change can fall between the read and the feed.
        self._watch = await self._store.watch(self._prefix).start()

    def close(self) -> None:
        """Stop following the query; iteration ends."""
        if self._watch is not None:
            self._watch.close()

    def __aiter__(self) -> LiveQuery:
        return self

    async def __anext__(self) -> Result:
        if self._watch is None:
            await self._start()
            return self._yield(await self._read())
        while True:
            if not await self._wait_for_change():
                raise StopAsyncIteration
            result = await self._read()
            if not _same(result, self._last):
                return self._yield(result)

    def _yield(self, result: Result) -> Result:
        self._last = result
        self._last_at = asyncio.get_running_loop().time()
        return result

    async def _wait_for_change(self) -> bool:
        """Wait for changes and let a burst gather; ``False`` when the feed ended."""
        watch = self._watch
        assert watch is not None
        try:
            await anext(watch)
            loop = asyncio.get_running_loop()
            delay = self._last_at + COALESCE_INTERVAL - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the coalescing window, not a synchronisation
            for _ in range(watch.pending):
                await anext(watch)  # buffered: returns at once
        except StopAsyncIteration:
            return False
        except ChangesLostError as exc:
            self.resyncs += 1
            log.info("live query of %r lost its feed (%s); reading it anew", self._prefix, exc)
            watch.close()
            await self._start()
        return True


def _same(result: Result, last: Result | None) -> bool:
    if last is None or len(result) != len(last):
        return False
    return all(
        key == other_key and equal(value, other)
        for (key, value), (other_key, other) in zip(result, last, strict=True)
    )
