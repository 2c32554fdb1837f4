"""Exact sameness of EDN values: equal, and of the same kinds all the way down."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from garrison.edn import EdnMap, EdnSet, FrozenMap, Tagged, Vector, dumps
from garrison.edn._equality import clojure_key

# A value and its hashable twin are the same EDN kind.
_KIND: dict[type, type] = {Vector: list, FrozenMap: dict, set: frozenset}


def _kind(value: Any) -> type:
    kind = type(value)
    return _KIND.get(kind, kind)


def _texts(collection: Any) -> list[str]:
    if isinstance(collection, Mapping):
        return sorted(
            dumps(k, sort_keys=True) + " " + dumps(v, sort_keys=True) for k, v in collection.items()
        )
    return sorted(dumps(m, sort_keys=True) for m in collection)


def same(a: Any, b: Any) -> bool:
    """``a == b`` and every part is the same EDN kind (vector vs list, int vs BigInt, scale).

    An :class:`EdnMap` or :class:`EdnSet` is a kind of its own: the reader
    makes one exactly where Python would merge keys or elements.

    Iterative, so values nested deeper than the recursion limit compare too.
    """
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if _kind(x) is not _kind(y):
            return False
        if isinstance(x, float):
            if not ((math.isnan(x) and math.isnan(y)) or x == y):
                return False
        elif isinstance(x, Decimal):
            if x.as_tuple() != y.as_tuple():
                return False
        elif isinstance(x, EdnMap | EdnSet):
            # Members paired by Clojure's = (Python's == would pair 1 with true).
            if len(x) != len(y):
                return False
            members = {clojure_key(m): m for m in y}
            for m in x:
                other = members.get(clojure_key(m), members)
                if other is members:
                    return False
                pending.append((m, other))
                if isinstance(x, EdnMap):
                    pending.append((x[m], y[m]))
        elif isinstance(x, Mapping):
            if len(x) != len(y):
                return False
            keys = {k: k for k in y}
            if all(k in keys for k in x):
                for k, v in x.items():
                    pending.append((k, keys[k]))
                    pending.append((v, y[k]))
            elif _texts(x) != _texts(y):  # a NaN key: compare written forms
                return False
        elif isinstance(x, frozenset | set):
            if len(x) != len(y):
                return False
            members = {m: m for m in y}
            if all(m in members for m in x):
                pending.extend((m, members[m]) for m in x)
            elif _texts(x) != _texts(y):  # NaN is never "in" a set: compare written forms
                return False
        elif isinstance(x, list | tuple):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif isinstance(x, Tagged):
            if x.tag != y.tag:
                return False
            pending.append((x.value, y.value))
        elif x != y:
            return False
    return True


def explain(a: Any, b: Any, path: str = "") -> str:
    """Where ``a`` and ``b`` first differ (for assertion messages)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping) and type(a) is type(b):
        for k, v in a.items():
            if k not in b:
                return f"{path}: key {k!r} missing"
            if not same(v, b[k]):
                return explain(v, b[k], f"{path}[{k!r}]")
    if isinstance(a, list | tuple) and type(a) is type(b) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if not same(x, y):
                return explain(x, y, f"{path}[{i}]")
    return f"{path}: {a!r:.200} ({type(a).__name__}) != {b!r:.200} ({type(b).__name__})"
