"""garrison's EDN codec: reads everything Clojure writes, writes what Clojure reads.

>>> from garrison.edn import Keyword, dumps, loads
>>> loads('{:user/id 1, :roles #{:admin}}')
{Keyword('user/id'): 1, Keyword('roles'): frozenset({Keyword('admin')})}
>>> dumps([1, (2, 3), {Keyword("a"): None}])
'[1 (2 3) {:a nil}]'

The value mapping (EDN kind to Python type) is described in
:mod:`garrison.edn._types` and in ``docs/edn.md``.
"""

from __future__ import annotations

from garrison.edn._accel import disabled_by_environment
from garrison.edn._api import (
    MAP_ENTRY_SEPARATOR,
    MAX_DIGITS,
    collector_paused,
    dump,
    dumps,
    dumps_entry,
    iter_values,
    load,
    loads,
)
from garrison.edn._equality import EdnMap, EdnSet, distinct_map, distinct_set, equal
from garrison.edn._types import BigInt, Char, FrozenMap, Keyword, Symbol, Tagged, Vector

__all__ = [
    # reading
    "loads",
    "load",
    "iter_values",
    "collector_paused",
    # writing
    "dumps",
    "dump",
    "dumps_entry",
    "MAP_ENTRY_SEPARATOR",
    "MAX_DIGITS",
    # Clojure's equality
    "equal",
    "distinct_map",
    "distinct_set",
    # the C accelerators
    "disabled_by_environment",
    # EDN kinds
    "BigInt",
    "Char",
    "EdnMap",
    "EdnSet",
    "FrozenMap",
    "Keyword",
    "Symbol",
    "Tagged",
    "Vector",
]
