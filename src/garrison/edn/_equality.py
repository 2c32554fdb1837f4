"""Clojure's equality for EDN values, and the map and set kinds that keep it.

Python's ``==`` and ``hash`` say ``0 == False == 0.0``, ``1 == True == 1.0 ==
Decimal(1)`` and ``0.5 == Decimal("0.5") == Fraction(1, 2)``, also inside
tuples (``(1,) == (True,)``). Clojure's ``=`` keeps booleans apart from
numbers and keeps the number categories apart (integers, doubles, ratios,
decimals); inside one category it compares values (``1`` and ``1N``,
``0.0`` and ``-0.0``, ``1.0M`` and ``1.00M`` are equal), and a vector equals
the list with the same elements. ``clojure.edn`` reads every ``##NaN`` as the
same object, so a NaN is a duplicate of another NaN in a set.

A tagged literal (``#my/tag 1``, read by Clojure as a ``TaggedLiteral``)
compares its form with Java's ``equals``: there ``1`` and ``1N``, ``0.0`` and
``-0.0``, ``1.0M`` and ``1.00M`` differ, while map keys and set elements
inside it still follow ``=``.

:func:`clojure_key` turns a value into a hashable key whose ``==`` and
``hash`` are Clojure's; :func:`equal` compares two values with it.
:class:`EdnMap` and :class:`EdnSet` are what the reader returns for a map or
a set that Python would merge (``{0 :a false :b}``, ``#{1 true 1.0}``); every
other map and set stays a ``dict`` and a ``frozenset``.
"""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Set, ValuesView
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, final

from garrison.edn._types import BigInt, FrozenMap, Tagged, Vector

__all__ = ["EdnMap", "EdnSet", "clojure_key", "distinct_map", "distinct_set", "equal"]

# Category tags of the keys. Keys are only ever compared with other keys, so
# a tuple starting with one of these never meets a user's value.
_BOOL, _INT, _BIGINT, _FLOAT, _RATIO, _DECIMAL = 1, 2, 3, 4, 5, 6
_SEQ, _MAP, _SET, _TAGGED = 7, 8, 9, 10
_NAN: Final = (_FLOAT, "NaN")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# The two comparisons of _key: Clojure's = and, inside tagged literals, Java's equals.
_EQUIV: Final = False
_EXACT: Final = True

#: A value to report no duplicate with (``None`` is an EDN value).
NO_DUPLICATE: Final[Any] = object()


def _number_key(value: Any, kind: type, exact: bool) -> Any:
    if kind is float:
        if value != value:  # noqa: PLR0124 - NaN
            return _NAN
        if exact and value == 0.0:
            return (_FLOAT, value, math.copysign(1.0, value))
        return (_FLOAT, value)
    if kind is BigInt:
        return (_BIGINT if exact else _INT, int(value))
    if kind is Decimal:
        if value.is_nan():  # not an EDN value; a key that equals itself all the same
            return (_DECIMAL, "NaN")
        if exact:
            # Java's BigDecimal.equals: value and scale; it has no negative zero.
            sign, digits, exponent = value.as_tuple()
            return (_DECIMAL, 0 if value.is_zero() else sign, digits, exponent)
        return (_DECIMAL, value)
    if kind is Fraction:
        if value.denominator == 1:  # Clojure has no whole ratio: 4/2 is 2
            return _number_key(value.numerator, int, exact)
        return (_RATIO, value)
    # int; beyond 64 bits Clojure reads it as a BigInt
    if exact and not _LONG_MIN <= value <= _LONG_MAX:
        return (_BIGINT, value)
    return (_INT, value)


def _key(value: Any, exact: bool) -> Any:
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is bool:
        return (_BOOL, value)
    if kind is int or kind is float or kind is BigInt or kind is Decimal or kind is Fraction:
        return _number_key(value, kind, exact)
    if kind is list or kind is tuple or kind is Vector:
        return (_SEQ, tuple([_key(item, exact) for item in value]))
    if kind is dict or kind is FrozenMap or kind is EdnMap:
        return (_MAP, frozenset([(_key(k, _EQUIV), _key(v, exact)) for k, v in value.items()]))
    if kind is frozenset or kind is set or kind is EdnSet:
        return (_SET, frozenset([_key(item, _EQUIV) for item in value]))
    if kind is Tagged:
        return (_TAGGED, value.tag, _key(value.value, _EXACT))
    # Subclasses of the kinds above are compared as their kind.
    if isinstance(value, bool):
        return (_BOOL, bool(value))
    if isinstance(value, int):
        return _number_key(int(value), int, exact)
    if isinstance(value, float):
        return _number_key(float(value), float, exact)
    if isinstance(value, Decimal | Fraction):
        return _number_key(value, Decimal if isinstance(value, Decimal) else Fraction, exact)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return _key(list(value), exact)
    if isinstance(value, Mapping):
        return _key(dict(value.items()), exact)
    if isinstance(value, Set):
        return _key(frozenset(value), exact)
    # Keyword, Symbol, Char, UUID, datetime and anything else: Python's ==
    # already is Clojure's (a keyword never equals a str; instants by instant).
    return value


def clojure_key(value: Any) -> Any:
    """A hashable stand-in for ``value`` whose ``==`` and ``hash`` follow Clojure's ``=``.

    ``clojure_key(0) != clojure_key(False) != clojure_key(0.0)``, while
    ``clojure_key(1) == clojure_key(BigInt(1))`` and
    ``clojure_key([1]) == clojure_key((1,))``. Recursive through vectors,
    lists, maps, sets and tagged values. A value of no EDN kind is its own key.
    """
    return _key(value, _EQUIV)


def equal(a: Any, b: Any) -> bool:
    """Whether Clojure's ``=`` holds for the EDN values ``a`` and ``b``.

    >>> equal(1, 1.0), equal(0, False), equal(1, BigInt(1)), equal([1], (1,))
    (False, False, True, True)
    >>> equal({0: "a"}, {False: "a"})
    False

    NaN equals NaN (``clojure.edn`` reads every ``##NaN`` as one object).
    """
    if a is b:
        return True
    return bool(_key(a, _EQUIV) == _key(b, _EQUIV))


@final
class EdnSet(Set[Any]):
    """An EDN set whose elements Python's ``==`` would merge: ``#{1 true 1.0 1M}``.

    The reader returns it only for such sets (all others are ``frozenset``).
    Membership and equality follow Clojure's ``=`` (:func:`equal`): ``1.0 in
    s`` is true only when ``s`` holds a double equal to 1.0, and an
    ``EdnSet`` equals any set with the same elements by that rule. Immutable
    and hashable. Iteration gives the elements in the order they were read.
    As in a ``frozenset``, elements are hashable values (:class:`Vector`,
    :class:`FrozenMap` for vectors and maps), as the reader makes them.

    >>> s = EdnSet([1, True, 1.0])
    >>> len(s), 1.0 in s, 2 in s
    (3, True, False)
    """

    __slots__ = ("_cached_hash", "_members")
    _members: dict[Any, Any]
    _cached_hash: int | None

    def __init__(self, members: Iterable[Any] = ()) -> None:
        table: dict[Any, Any] = {}
        for member in members:
            table.setdefault(_key(member, _EQUIV), member)  # the first of equals stays
        object.__setattr__(self, "_members", table)
        object.__setattr__(self, "_cached_hash", None)

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> EdnSet:
        return cls(it)

    def __contains__(self, value: object) -> bool:
        try:
            return _key(value, _EQUIV) in self._members
        except TypeError:  # a value of no EDN kind that is not hashable
            return False

    def __iter__(self) -> Iterator[Any]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def _keys(self, other: object) -> frozenset[Any] | None:
        if isinstance(other, EdnSet):
            return frozenset(other._members)
        if isinstance(other, Set):
            return frozenset([_key(m, _EQUIV) for m in other])
        return None

    def __eq__(self, other: object) -> bool:
        keys = self._keys(other)
        if keys is None:
            return NotImplemented
        return keys == self._members.keys()

    def __le__(self, other: object) -> bool:
        keys = self._keys(other)
        if keys is None:
            return NotImplemented
        return self._members.keys() <= keys

    def __lt__(self, other: object) -> bool:
        keys = self._keys(other)
        if keys is None:
            return NotImplemented
        return self._members.keys() < keys

    def __ge__(self, other: object) -> bool:
        keys = self._keys(other)
        if keys is None:
            return NotImplemented
        return self._members.keys() >= keys

    def __gt__(self, other: object) -> bool:
        keys = self._keys(other)
        if keys is None:
            return NotImplemented
        return self._members.keys() > keys

    def __hash__(self) -> int:
        # Python's hash of the elements: Clojure-equal sets hold pairwise
        # Python-equal elements, so equal sets hash alike, and an EdnSet that
        # equals a frozenset hashes like it.
        if self._cached_hash is None:
            object.__setattr__(self, "_cached_hash", hash(frozenset(self._members.values())))
        assert self._cached_hash is not None
        return self._cached_hash

    def __repr__(self) -> str:
        return f"EdnSet({list(self._members.values())!r})"

    def __reduce__(self) -> tuple[Any, tuple[list[Any]]]:
        return (EdnSet, (list(self._members.values()),))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EdnSet is immutable")


class _Items(ItemsView[Any, Any]):
    __slots__ = ()
    _mapping: EdnMap

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._mapping._entries.values())


class _Values(ValuesView[Any]):
    __slots__ = ()
    _mapping: EdnMap

    def __iter__(self) -> Iterator[Any]:
        for _, value in self._mapping._entries.values():
            yield value


@final
class EdnMap(Mapping[Any, Any]):
    """An EDN map whose keys Python's ``==`` would merge: ``{0 :a false :b}``.

    The reader returns it only for such maps (all others are ``dict``).
    Lookups and equality follow Clojure's ``=`` (:func:`equal`): ``m[0]`` and
    ``m[False]`` are different entries, and ``m[0.0]`` is a ``KeyError``.
    Immutable, and hashable when its values are (keys are hashable values,
    as in a ``dict``). Iteration gives the keys in the order they were read.

    >>> m = EdnMap([(0, "a"), (False, "b")])
    >>> m[0], m[False], len(m)
    ('a', 'b', 2)
    """

    __slots__ = ("_cached_hash", "_entries")
    _entries: dict[Any, tuple[Any, Any]]
    _cached_hash: int | None

    def __init__(self, entries: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        table: dict[Any, tuple[Any, Any]] = {}
        for key, value in pairs:
            ckey = _key(key, _EQUIV)
            old = table.get(ckey)
            # The first of equal keys stays, with the last value (as Clojure's assoc).
            table[ckey] = (key if old is None else old[0], value)
        object.__setattr__(self, "_entries", table)
        object.__setattr__(self, "_cached_hash", None)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._entries[_key(key, _EQUIV)][1]
        except TypeError:
            raise KeyError(key) from None
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        try:
            return _key(key, _EQUIV) in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[Any]:
        for key, _ in self._entries.values():
            yield key

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> ItemsView[Any, Any]:
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(other) != len(self):
            return False
        try:
            return bool(_key(self, _EQUIV) == _key(other, _EQUIV))
        except TypeError:  # the other mapping holds a value of no EDN kind, unhashable
            return False

    def __hash__(self) -> int:
        # As for EdnSet: Python's hash of the entries agrees with Clojure's =.
        if self._cached_hash is None:
            object.__setattr__(self, "_cached_hash", hash(frozenset(self._entries.values())))
        assert self._cached_hash is not None
        return self._cached_hash

    def __repr__(self) -> str:
        return f"EdnMap({list(self._entries.values())!r})"

    def __reduce__(self) -> tuple[Any, tuple[list[tuple[Any, Any]]]]:
        return (EdnMap, (list(self._entries.values()),))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EdnMap is immutable")


def distinct_set(members: Iterable[Any]) -> tuple[frozenset[Any] | EdnSet, Any]:
    """The set of hashable ``members`` by Clojure's ``=``, and the first duplicate.

    For members whose ``frozenset`` came out smaller than the list: the set is
    a ``frozenset`` when Python's ``==`` merges nothing but true duplicates,
    else an :class:`EdnSet`. The duplicate is :data:`NO_DUPLICATE` when there
    is none. The first of equal members stays.
    """
    table: dict[Any, Any] = {}
    duplicate = NO_DUPLICATE
    for member in members:
        ckey = _key(member, _EQUIV)
        if ckey in table:
            if duplicate is NO_DUPLICATE:
                duplicate = member
        else:
            table[ckey] = member
    plain = frozenset(table.values())
    if len(plain) == len(table):
        return plain, duplicate
    result = EdnSet.__new__(EdnSet)
    object.__setattr__(result, "_members", table)
    object.__setattr__(result, "_cached_hash", None)
    return result, duplicate


def distinct_map(items: list[Any]) -> tuple[dict[Any, Any] | EdnMap, Any]:
    """The map of ``items`` (alternating hashable keys and values) by Clojure's ``=``.

    As :func:`distinct_set`: a ``dict`` unless Python would merge keys that
    Clojure keeps apart (then an :class:`EdnMap`), and the first duplicate key
    (:data:`NO_DUPLICATE` when none). Of equal keys the first stays, with the
    last value.
    """
    table: dict[Any, tuple[Any, Any]] = {}
    duplicate = NO_DUPLICATE
    it = iter(items)
    for key, value in zip(it, it, strict=True):
        ckey = _key(key, _EQUIV)
        old = table.get(ckey)
        if old is None:
            table[ckey] = (key, value)
        else:
            if duplicate is NO_DUPLICATE:
                duplicate = key
            table[ckey] = (old[0], value)
    plain = dict(table.values())
    if len(plain) == len(table):
        return plain, duplicate
    result = EdnMap.__new__(EdnMap)
    object.__setattr__(result, "_entries", table)
    object.__setattr__(result, "_cached_hash", None)
    return result, duplicate
