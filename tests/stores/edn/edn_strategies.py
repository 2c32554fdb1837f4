"""Hypothesis strategies for EDN values of every kind, nested."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from garrison.stores.edn import BigInt, Char, FrozenMap, Keyword, Symbol, Tagged, Vector

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
    return value


def _extend(nested: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Sets and maps are built from plain lists: hypothesis' unique-element
    # draws retry through a filter whose repr of this strategy is tens of kB.
    children = nested
    hashable = children.map(_freeze)
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.lists(hashable, max_size=5).map(frozenset),
        st.lists(st.tuples(hashable, children), max_size=5).map(dict),
        st.builds(Tagged, tags, children),
    )


values: st.SearchStrategy[Any] = st.recursive(scalars, _extend, max_leaves=25)
