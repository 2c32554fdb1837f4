"""Hypothesis strategies for every value a store keeps, and an exact-sameness check."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from garrison.edn import (
    BigInt,
    Char,
    EdnMap,
    EdnSet,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
)
from garrison.edn._equality import clojure_key
from tests.edn.edn_strategies import colliding, edn_map, edn_set

_names = st.from_regex(r"[a-z][a-z0-9*+!_?-]{0,8}(/[a-z][a-z0-9*+!_?-]{0,8})?", fullmatch=True)
_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70).map(BigInt),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["#k", "#esc", "#", '{"#k":"x"}', "#unknown"]),
    _names.map(Keyword),
    _names.map(Symbol),
    st.characters(exclude_categories=["Cs"]).map(Char),
    st.fractions().filter(lambda f: f.denominator != 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()),
    st.datetimes(timezones=st.none() | _offsets, allow_imaginary=False).map(
        lambda d: d.replace(fold=0)
    ),
    st.dates(),
    st.uuids(),
)


def _not_nan(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    return not (isinstance(value, Decimal) and value.is_nan())


hashables: st.SearchStrategy[Any] = st.recursive(
    # NaN never equals itself, so it cannot be found again as a key or element.
    scalars.filter(_not_nan) | colliding,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(Vector),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner, max_size=3),
        st.dictionaries(inner, inner, max_size=3).map(FrozenMap),
        # Members Python's == merges and Clojure's = keeps apart (1, 1.0, true).
        st.lists(inner | colliding, max_size=4).map(edn_set),
        st.lists(st.tuples(inner | colliding, inner), max_size=4)
        .map(edn_map)
        .map(lambda m: FrozenMap(m) if type(m) is dict else m),
    ),
    max_leaves=8,
)


#: String keys shaped like the stored spelling of a keyword key or a marker.
object_key_lookalikes: st.SearchStrategy[str] = st.sampled_from(
    [":a", ":session/id", "::a", ":", "#k", "#esc", "#map", ":#k", "a"]
) | st.text(max_size=4).map(lambda text: ":" + text)


def _tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(Tagged, _names, inner)


values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4).map(Vector),
        st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["#k", "#esc", "#x"]), inner, max_size=4
        ),
        # Keyword-keyed maps (JSON objects), with string keys that look like the
        # keyword spelling (":a") or a marker ("#k") mixed in.
        st.dictionaries(_names.map(Keyword) | object_key_lookalikes, inner, min_size=1, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),
        st.dictionaries(hashables, inner, max_size=3).map(FrozenMap),
        st.frozensets(hashables, max_size=3),
        st.sets(hashables, max_size=3),
        st.lists(hashables | colliding, max_size=4).map(edn_set),
        st.lists(st.tuples(hashables | colliding, inner), max_size=4).map(edn_map),
        _tagged(inner),
    ),
    max_leaves=20,
)

#: Plain JSON data: what must stay queryable with SQL JSON functions.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=6).filter(lambda k: not k.startswith(":")), inner, max_size=4
        ).filter(lambda d: not (len(d) == 1 and next(iter(d)).startswith("#")))
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, of exactly the same types all the way down, NaN equal to NaN, ``-0.0`` not ``0.0``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, Decimal):
        return bool((a.is_nan() and b.is_nan()) or str(a) == str(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | FrozenMap | EdnMap | frozenset | set | EdnSet):
        # Keys and members paired by Clojure's = (Python's == pairs 1 with true).
        if len(a) != len(b):
            return False
        paired = {clojure_key(m): m for m in b}
        for m in a:
            other = paired.get(clojure_key(m), paired)
            if other is paired or not same(m, other):
                return False
            if isinstance(a, Mapping) and not same(a[m], b[other]):
                return False
        return True
    if isinstance(a, Tagged):
        return bool(a.tag == b.tag and same(a.value, b.value))
    if isinstance(a, dt.datetime):
        return bool(a == b and a.isoformat() == b.isoformat())
    return bool(a == b)
