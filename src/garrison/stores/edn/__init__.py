"""garrison's EDN codec: reads everything Clojure writes, writes what Clojure reads.

>>> from garrison.stores.edn import Keyword, dumps, loads
>>> loads('{:user/id 1, :roles #{:admin}}')
{Keyword('user/id'): 1, Keyword('roles'): frozenset({Keyword('admin')})}
>>> dumps([1, (2, 3), {Keyword("a"): None}])
'[1 (2 3) {:a nil}]'

The value mapping (EDN kind to Python type) is described in
:mod:`garrison.stores.edn._types` and in ``docs/edn.md``.
"""

from __future__ import annotations

from garrison.stores.edn._api import (
    MAP_ENTRY_SEPARATOR,
    MAX_DIGITS,
    dump,
    dumps,
    dumps_entry,
    iter_values,
    load,
    loads,
)
from garrison.stores.edn._equality import EdnMap, EdnSet, equal
from garrison.stores.edn._types import BigInt, Char, FrozenMap, Keyword, Symbol, Tagged, Vector

__all__ = [
    # reading
    "loads",
    "load",
    "iter_values",
    # writing
    "dumps",
    "dump",
    "dumps_entry",
    "MAP_ENTRY_SEPARATOR",
    "MAX_DIGITS",
    # Clojure's equality
    "equal",
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
