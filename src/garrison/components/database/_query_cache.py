"""Which attributes a commit touched, and what follows from it: the query cache.

A commit *touches* the top-level attributes of the old and the new value of
each key it writes (:func:`garrison.stores.attribute_names`: an entity's
attribute spellings, ``":session/user-id"`` or ``"title"``; a value that is no
entity has none). A Datalog query reads the attributes of its patterns
(``CompiledQuery.reads``: ``"*"`` when a pattern's attribute is a variable,
``None`` when it pulls an entry no pattern binds, so any commit may change
it). Its answer can change only when a commit touched an attribute it reads:
that is the one rule by which the :class:`QueryCache` forgets answers and the
attribute subscriptions of live queries (:mod:`._attribute_feed`) wake.
:class:`Touches` computes a commit's touched attributes once and applies the
rule to both.

Writes that do not know the values they replace (a bulk load, a clear, a mode
switch, a restore, the operator's EDN-first writes), and every write while
SQLite is behind the EDN file (its repair backlog: the values read before the
write may not be SQLite's), touch *everything*: the cache is emptied and
every attribute subscription wakes.

The cache is an LRU of ``query_cache_size`` answers, keyed by the query (its
EDN text) and its inputs (their EDN text, so ``1`` and ``1.0`` stay apart, as
Clojure's equality keeps them). It holds the statement's rows, not the
answer: each hit builds the answer anew (values decoded afresh), so no caller
can change what another one gets. Only the actor touches it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from garrison.edn import dumps
from garrison.stores import attribute_names

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Sequence

    from garrison.components.database._attribute_feed import AttributeFeed
    from garrison.stores import CompiledQuery

__all__ = ["CacheKey", "QueryCache", "Touches", "cache_key"]

CacheKey: TypeAlias = "tuple[str, str]"


def cache_key(query: Any, inputs: Sequence[Any]) -> CacheKey | None:
    """The cache key of ``query`` with ``inputs``; ``None``: not cacheable.

    Not cacheable: an input with no EDN text, or of a subclass of ``str``,
    ``int`` or ``float`` (an ``IntEnum``, a ``StringKey``): its text is its
    base type's, but the query binds it otherwise.
    """
    if not all(_plain(given) for given in inputs):
        return None
    try:
        text = query if isinstance(query, str) else dumps(query)
        return (text, dumps(list(inputs)) if inputs else "")
    except Exception:  # noqa: BLE001 - such a query is answered, just not cached
        return None


_SCALARS: Final = (str, int, float)


def _plain(value: Any) -> bool:
    if isinstance(value, list | tuple | set | frozenset):
        return all(_plain(member) for member in value)
    if isinstance(value, _SCALARS):
        return type(value) in (str, int, float, bool)
    return True


class QueryCache:
    """A bounded LRU of Datalog answers, forgotten by the attributes commits touch."""

    __slots__ = (
        "_any",
        "_by_attribute",
        "_compiled",
        "_entries",
        "capacity",
        "evictions",
        "generation",
        "hits",
        "invalidations",
        "misses",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[CompiledQuery, list[Any]]] = OrderedDict()
        # The compiled queries of recent keys, kept when their answers are forgotten:
        # a live query's query, answered anew after each commit it reads, is compiled once.
        self._compiled: OrderedDict[Hashable, CompiledQuery] = OrderedDict()
        # attribute spelling (or "*") -> the keys of the answers that read it
        self._by_attribute: dict[str, set[Hashable]] = {}
        # the answers any commit may change (reads None)
        self._any: set[Hashable] = set()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0
        #: Increases at each invalidation: an answer read across one is not stored.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups since the component started (0.0 before any)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def lookup(self, key: Hashable) -> tuple[CompiledQuery, list[Any]] | None:
        """The compiled query and its rows, or ``None``; counts a hit or a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def compiled(self, key: Hashable) -> CompiledQuery | None:
        """The compiled query of ``key`` if it was compiled recently (its answer may be gone)."""
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
        return compiled

    def store(
        self, key: Hashable, compiled: CompiledQuery, rows: list[Any], generation: int
    ) -> None:
        """Keep ``rows`` unless an invalidation came after ``generation`` was read."""
        if self.capacity <= 0:
            return
        held = self._compiled
        held[key] = compiled
        held.move_to_end(key)
        if len(held) > self.capacity:
            held.popitem(last=False)
        if generation != self.generation:
            return
        entries = self._entries
        if key in entries:
            self._forget(key)
        entries[key] = (compiled, rows)
        reads = compiled.reads
        if reads is None:
            self._any.add(key)
        else:
            for attribute in reads:
                self._by_attribute.setdefault(attribute, set()).add(key)
        while len(entries) > self.capacity:
            self._forget(next(iter(entries)))
            self.evictions += 1

    def _forget(self, key: Hashable) -> None:
        compiled, _ = self._entries.pop(key)
        reads = compiled.reads
        if reads is None:
            self._any.discard(key)
            return
        by_attribute = self._by_attribute
        for attribute in reads:
            keys = by_attribute.get(attribute)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del by_attribute[attribute]

    def invalidate(self, touched: frozenset[str] | None) -> None:
        """Forget the answers that read an attribute in ``touched`` (``None``: all)."""
        self.generation += 1
        entries = self._entries
        if not entries:
            return
        if touched is None:
            self.invalidations += len(entries)
            entries.clear()
            self._compiled.clear()  # a reindex or a restart of the index may change them
            self._by_attribute.clear()
            self._any.clear()
            return
        victims = set(self._any)
        by_attribute = self._by_attribute
        for attribute in touched:
            victims.update(by_attribute.get(attribute, ()))
        if touched:
            victims.update(by_attribute.get("*", ()))
        for key in victims:
            self._forget(key)
        self.invalidations += len(victims)


class Touches:
    """Computes what each commit touched, for the query cache and the attribute feed.

    ``write(changes)`` takes ``(key, old, new)`` per key written: the
    attributes of the value it replaced (:meth:`attributes`; :meth:`known`
    remembers those of recent writes) and the value written (``MISSING`` for
    a delete); ``everything()`` is a commit whose touched attributes are not
    known. ``wanted`` is false when nothing would follow (no cached answer, no
    attribute subscription): writers then skip finding the values they
    replace, and call :meth:`forget` instead.
    """

    __slots__ = ("_behind", "_known", "cache", "feed")

    #: How many keys' attributes :meth:`known` remembers (the most recently written).
    REMEMBERED = 16_384

    def __init__(self, cache: QueryCache, feed: AttributeFeed, behind: Callable[[], bool]) -> None:
        self.cache = cache
        self.feed = feed
        # Whether SQLite may be behind the EDN file: the old values a writer
        # read may then not be SQLite's, so a write touches everything.
        self._behind = behind
        # key -> the attributes of the value it holds, for keys written lately:
        # rewriting a hot key needs no read of the value it replaces.
        self._known: OrderedDict[str, frozenset[str]] = OrderedDict()

    @property
    def wanted(self) -> bool:
        """Whether a commit's touched attributes matter to anyone now."""
        return len(self.cache) > 0 or self.feed.listening

    attributes = staticmethod(attribute_names)

    def known(self, keys: Iterable[str]) -> tuple[dict[str, frozenset[str]], list[str]]:
        """The attributes the values of ``keys`` have, where remembered; and the other keys."""
        remembered = self._known
        found: dict[str, frozenset[str]] = {}
        unknown: list[str] = []
        for key in dict.fromkeys(keys):
            attributes = remembered.get(key)
            if attributes is None:
                unknown.append(key)
            else:
                found[key] = attributes
        return found, unknown

    def forget(self, keys: Iterable[str]) -> None:
        """Keys written while nothing wanted their attributes: no longer remembered."""
        remembered = self._known
        if remembered:
            for key in keys:
                remembered.pop(key, None)

    def write(self, changes: Iterable[tuple[str, frozenset[str], Any]]) -> None:
        """A commit replaced values with these attributes by these values: invalidate, wake."""
        if self._behind():
            self.everything()
            return
        remembered = self._known
        per_key: list[tuple[str, frozenset[str]]] = []
        touched: set[str] = set()
        for key, old, new in changes:
            attributes = attribute_names(new)
            remembered[key] = attributes
            remembered.move_to_end(key)
            both = old | attributes
            touched.update(both)
            per_key.append((key, both))
        while len(remembered) > self.REMEMBERED:
            remembered.popitem(last=False)
        self.cache.invalidate(frozenset(touched))
        self.feed.touch(per_key)

    def everything(self) -> None:
        """A commit whose touched attributes are unknown: forget every answer, wake everyone."""
        self._known.clear()
        self.cache.invalidate(None)
        self.feed.touch_all()
