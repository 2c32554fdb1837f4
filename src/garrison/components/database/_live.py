"""Live queries: a result that updates itself, from :meth:`Store.subscribe`.

A :class:`LiveQuery` yields the current result of its query (the entries
under a key prefix, a ``find`` under it, or a Datalog query) at once, then a
new result each time a commit changes it.

- A *prefix* query rides on the change feed (:meth:`Store.watch`), which
  delivers every committed change under the prefix in commit order, and
  applies those changes to the result it holds: following it costs writers
  nothing but the feed they feed anyway.
- A *Datalog* query (EDN text starting with ``[`` or ``{``, or the query as
  Python data) and a *find* query run their query again, but only after a
  commit that touched an attribute they read (a find: its path's top-level
  attribute, under its prefix); see :mod:`._attribute_feed`. Their answers go
  through the database's query cache, so many live queries of one query cost
  one evaluation per change.

Coalescing
    After a change it waits until :data:`COALESCE_INTERVAL` (10 ms) has passed
    since its last result, takes every change that arrived meanwhile, and
    yields once: at most one result per 10 ms, however fast the writes come.
    A result equal to the previous one (Clojure's equality,
    :func:`garrison.edn.equal`; a Datalog answer as a set of tuples) is not
    yielded again.

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
A Datalog query's results are what :meth:`Store.query` answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, Final

from garrison.components.database._messages import Subscribe, WatchAttributes
from garrison.edn import dumps, equal
from garrison.exceptions import ChangesLostError
from garrison.stores import compile_query

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from garrison.components.database._attribute_feed import AttributeWatch
    from garrison.components.database._facade import Store
    from garrison.components.database._feed import ChangeEvent, Subscription

__all__ = ["COALESCE_INTERVAL", "LiveQuery", "find_reads"]

log = logging.getLogger(__name__)

#: The least time between two results of one live query (seconds).
COALESCE_INTERVAL: Final = 0.010

Result = list[Any]

# The first step of a find path: a keyword key ($.:ns/name) or a word ($.name).
_TOP_ATTRIBUTE: Final = re.compile(r"\$\.(:[^.\[]+|[A-Za-z_][A-Za-z0-9_]*)")


def find_reads(path: str) -> frozenset[str] | None:
    """The top-level attribute a find's ``path`` reads; ``None`` (anything) for ``$[0]...``."""
    match = _TOP_ATTRIBUTE.match(path)
    return frozenset({match.group(1)}) if match else None


class LiveQuery:
    """The async iterator :meth:`Store.subscribe` returns (see the module docstring)."""

    __slots__ = (
        "_attributes",
        "_entries",
        "_find",
        "_inputs",
        "_last",
        "_last_at",
        "_prefix",
        "_query",
        "_reads",
        "_store",
        "_watch",
        "evaluations",
        "resyncs",
    )

    def __init__(
        self,
        store: Store,
        prefix: str,
        find: Mapping[str, Any] | None = None,
        *,
        query: Any = None,
        inputs: Sequence[Any] = (),
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._find = dict(find) if find is not None else None
        self._query = query
        self._inputs = tuple(inputs)
        self._reads: frozenset[str] | None = frozenset()
        if query is not None:
            # Compiled here too: a bad query fails the subscribe call, naming the clause.
            self._reads = compile_query(query, self._inputs).reads
        elif self._find is not None:
            self._reads = find_reads(str(self._find.get("path", "")))
        self._watch: Subscription | None = None
        self._attributes: AttributeWatch | None = None
        #: A prefix query's current entries, kept up to date from the feed.
        self._entries: dict[str, Any] = {}
        self._last: Result | None = None
        self._last_at = 0.0
        #: How many times the query lost the feed (overflow, restart, restore) and read anew.
        self.resyncs = 0
        #: How many times a Datalog or find query was run (its first result included).
        self.evaluations = 0

    @property
    def _follows_attributes(self) -> bool:
        return self._query is not None or self._find is not None

    async def _read(self) -> Result:
        if self._query is not None:
            self.evaluations += 1
            answer: Result = await self._store.query(self._query, *self._inputs)
            return answer
        if self._find is None:
            entries = await self._store.scan(self._prefix)
            self._entries = dict(entries)
            return entries
        self.evaluations += 1
        criteria = dict(self._find)
        path = criteria.pop("path")
        return await self._store.find(path, prefix=self._prefix, **criteria)

    async def _start(self) -> Result:
        """Watch, then read: no change can fall between the read and the watch."""
        if self._follows_attributes:
            self._attributes = await self._store._ask(WatchAttributes(self._prefix, self._reads))
        else:
            self._watch = await self._store._ask(Subscribe(self._prefix))
        return await self._read()

    def close(self) -> None:
        """Stop following the query; iteration ends."""
        if self._watch is not None:
            self._watch.close()
        if self._attributes is not None:
            self._attributes.close()

    def __aiter__(self) -> LiveQuery:
        return self

    async def __anext__(self) -> Result:
        if self._watch is None and self._attributes is None:
            return self._yield(await self._start())
        while True:
            if self._attributes is not None:
                result = await self._next_answer(self._attributes)
            else:
                result = await self._next_result(self._watch)
            if result is None:
                raise StopAsyncIteration
            if result is _CHANGED:  # a prefix query's entries, known to differ from the last
                return self._yield(sorted(self._entries.items()))
            if result is not _UNCHANGED and not self._same(result):
                return self._yield(result)

    def _same(self, result: Result) -> bool:
        last = self._last
        if result is last:
            return True
        if last is None or len(result) != len(last):
            return False
        if self._query is not None:
            # A Datalog answer is a set of tuples: compared in a canonical order.
            result, last = sorted(result, key=dumps), sorted(last, key=dumps)
            return all(equal(row, other) for row, other in zip(result, last, strict=True))
        return all(
            key == other_key and equal(value, other)
            for (key, value), (other_key, other) in zip(result, last, strict=True)
        )

    def _yield(self, result: Result) -> Result:
        self._last = result
        self._last_at = asyncio.get_running_loop().time()
        return result

    async def _coalesce(self) -> None:
        delay = self._last_at + COALESCE_INTERVAL - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)  # the coalescing window, not a synchronisation

    def _lost(self, exc: ChangesLostError) -> None:
        self.resyncs += 1
        log.info("live query of %r lost its feed (%s); reading it anew", self._prefix, exc)

    async def _next_answer(self, watch: AttributeWatch) -> Result | None:
        """Wait for a commit that touched what the query reads, let a burst gather, run it."""
        try:
            if not await watch.wait():
                return None
            await self._coalesce()
        except ChangesLostError as exc:
            self._lost(exc)
            watch.close()
            return await self._start()
        watch.take()  # commits from here on wake it again
        return await self._read()

    async def _next_result(self, watch: Subscription | None) -> Any:
        """Wait for changes, let a burst gather, apply them to the entries.

        Returns :data:`_CHANGED` or :data:`_UNCHANGED` (the burst changed the
        entries or not), a result read anew after the feed was lost, or
        ``None`` once the feed ended.
        """
        assert watch is not None
        try:
            if not await watch.wait():
                return None
            await self._coalesce()
            changes = watch.take()
        except ChangesLostError as exc:
            self._lost(exc)
            watch.close()
            return await self._start()
        entries = self._entries
        if len(changes) == 1:
            return _CHANGED if self._apply(changes[0]) else _UNCHANGED
        # Several: the entries differ from the last result if some key ends the burst
        # with another value than it had before it (a change and its undo cancel).
        before: dict[str, Any] = {}
        for change in changes:
            before.setdefault(change.key, entries.get(change.key, _ABSENT))
            self._apply(change)
        for key, value in before.items():
            now = entries.get(key, _ABSENT)
            if (now is _ABSENT) is not (value is _ABSENT) or (
                now is not _ABSENT and not equal(now, value)
            ):
                return _CHANGED
        return _UNCHANGED

    def _apply(self, change: ChangeEvent) -> bool:
        """Apply a change to a prefix query's entries; ``True`` if they changed."""
        entries = self._entries
        if change.op == "delete":
            return entries.pop(change.key, _ABSENT) is not _ABSENT
        held = entries.get(change.key, _ABSENT)
        if held is not _ABSENT and equal(held, change.value):
            return False
        entries[change.key] = change.value
        return True


_ABSENT: Final = object()
#: What a prefix query's burst did to its entries.
_CHANGED: Final = object()
_UNCHANGED: Final = object()
