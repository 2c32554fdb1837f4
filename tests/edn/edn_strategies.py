"""Hypothesis strategies for EDN values of every kind, nested."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from garrison.edn import BigInt, Char, EdnMap, FrozenMap, Keyword, Symbol, Tagged, Vector
from garrison.edn._equality import distinct_map, distinct_set

_RESERVED = {"nil", "true", "false"}
names = st.from_regex(
    r"[a-z*!_?<>=][a-z0-9*+!_?<>=.-]{0,8}(/[a-z*!_?][a-z0-9*+!_?.-]{0,8})?", fullmatch=True
).map(lambda n: n + "?" if n in _RESERVED else n)
# Not inst or uuid, which read as datetime and UUID.
tags = st.from_regex(r"[a-z][a-z0-9.-]{0,8}(/[a-z][a-z0-9-]{0,5})?", fullmatch=True).map(
    lambda t: t + "-x" if t in {"inst", "uuid"} else t
)
# Odd over even: never a whole number (Clojure reads 4/2 as the integer 2).
ratios = st.tuples(st.integers(), st.integers(min_value=1)).map(
    lambda nd: Fraction(2 * nd[0] + 1, 2 * nd[1])
)
_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1000, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.one_of(st.just(UTC), _offsets),
)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers().map(BigInt),
    st.floats(),
    st.decimals(allow_nan=False, allow_infinity=False),
    ratios,
    st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    st.characters(exclude_categories=["Cs"], max_codepoint=0xFFFF).map(Char),
    names.map(Keyword),
    names.map(Symbol),
    instants,
    st.uuids(),
)

#: Values Python's == merges and Clojure's = keeps apart (nil, booleans, longs,
#: BigInts, doubles with -0.0, ratios, decimals), and some Clojure calls equal
#: (1 and 1N, 0.0 and -0.0, 1M and 1.0M): sets and map keys drawn from them
#: need Clojure's equality to keep what they hold.
COLLIDING: list[Any] = [
    None,
    False,
    True,
    0,
    1,
    -1,
    BigInt(0),
    BigInt(1),
    0.0,
    -0.0,
    1.0,
    0.5,
    Fraction(1, 2),
    Fraction(-1, 2),
    Decimal("0"),
    Decimal("1"),
    Decimal("1.0"),
    Decimal("0.5"),
    Decimal("0.50"),
]
colliding: st.SearchStrategy[Any] = st.sampled_from(COLLIDING)
#: A colliding value, or a vector or list of one or two of them.
colliding_members: st.SearchStrategy[Any] = st.one_of(
    colliding,
    st.lists(colliding, min_size=1, max_size=2).map(Vector),
    st.lists(colliding, min_size=1, max_size=2).map(tuple),
)


def edn_set(members: list[Any]) -> Any:
    """The set the reader makes of hashable ``members``: a frozenset, or an EdnSet."""
    return distinct_set(members)[0]


def edn_map(entries: list[tuple[Any, Any]]) -> Any:
    """The map the reader makes of ``entries`` with hashable keys: a dict, or an EdnMap."""
    return distinct_map([part for entry in entries for part in entry])[0]


def _freeze(value: Any) -> Any:
    """The hashable twin of a generated value, for map keys and set elements.

    NaN becomes 0.5 there: Python keeps two NaN objects apart in a set while
    EDN (and Clojure, whose boxed NaN equals itself) sees one repeated element.
    """
    if isinstance(value, float) and math.isnan(value):
        return 0.5
    if isinstance(value, list):
        return Vector(_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return FrozenMap({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, Tagged):
        return Tagged(value.tag, _freeze(value.value))
    if isinstance(value, EdnMap):
        return EdnMap([(k, _freeze(v)) for k, v in value.items()])
    return value


def _extend(nested: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Sets and maps are built from plain lists: hypothesis' unique-element
    # draws retry through a filter whose repr of this strategy is tens of kB.
    children = nested
    hashable = children.map(_freeze)
    members = st.one_of(hashable, colliding_members)
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.lists(hashable, max_size=5).map(frozenset),
        st.lists(st.tuples(hashable, children), max_size=5).map(dict),
        st.lists(members, max_size=6).map(edn_set),
        st.lists(st.tuples(members, children), max_size=6).map(edn_map),
        st.builds(Tagged, tags, children),
    )


values: st.SearchStrategy[Any] = st.recursive(scalars, _extend, max_leaves=25)
