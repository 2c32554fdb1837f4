"""The database component's LRU read cache.

It maps key texts to the value last read or :data:`MISSING` (a key known to be
absent, so repeated misses stay cheap). Only the actor touches it, so it needs
no lock. Writes *invalidate* their keys rather than storing the written
value: the next read fetches what the store actually holds, and a write that
fails can never leave a value in the cache that was not committed.

Values are held by reference, like the EDN store's map: a value returned by a
read may be the very object another read returned. Do not mutate values you
read; put a new value instead.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from garrison.stores import MISSING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ReadCache"]

# What lookup() returns for a key the cache does not hold (MISSING means
# "cached as absent", so it needs a marker of its own).
_UNCACHED: Any = object()


class ReadCache:
    """A bounded LRU of key text → value (or :data:`MISSING`); ``capacity`` 0 disables it."""

    __slots__ = ("_entries", "capacity", "hits", "misses")

    UNCACHED = _UNCACHED

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        """False when the capacity is 0 (every read goes to the store)."""
        return self.capacity > 0

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups since the component started (0.0 before any lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def lookup(self, key: str) -> Any:
        """The cached value (maybe :data:`MISSING`), or :attr:`UNCACHED`; counts hit or miss."""
        entries = self._entries
        value = entries.get(key, _UNCACHED)
        if value is _UNCACHED:
            self.misses += 1
            return _UNCACHED
        entries.move_to_end(key)
        self.hits += 1
        return value

    def peek(self, key: str) -> Any:
        """The cached value (maybe :data:`MISSING`), or :attr:`UNCACHED`; counts nothing."""
        return self._entries.get(key, _UNCACHED)

    def store(self, key: str, value: Any) -> None:
        """Remember ``value`` (or :data:`MISSING`) for ``key``, evicting the least recent."""
        if self.capacity <= 0:
            return
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def store_found(self, keys: Iterable[str], found: dict[str, Any]) -> None:
        """Remember the result of a multi-key read: found values, the rest as absent."""
        if self.capacity <= 0:
            return
        for key in keys:
            self.store(key, found.get(key, MISSING))

    def invalidate(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (they were written)."""
        entries = self._entries
        if entries:
            for key in keys:
                entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything (a restore or a mode switch)."""
        self._entries.clear()
