"""``garrison.edn``: the EDN codec, re-exported from :mod:`garrison.stores.edn`.

>>> from garrison import edn
>>> edn.loads("[1 2N 1.50M]")
[1, BigInt(2), Decimal('1.50')]
"""

from __future__ import annotations

from garrison.stores.edn import (
    MAP_ENTRY_SEPARATOR,
    MAX_DIGITS,
    BigInt,
    Char,
    EdnMap,
    EdnSet,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    dump,
    dumps,
    dumps_entry,
    equal,
    iter_values,
    load,
    loads,
)

__all__ = [
    "loads",
    "load",
    "iter_values",
    "dumps",
    "dump",
    "dumps_entry",
    "MAP_ENTRY_SEPARATOR",
    "MAX_DIGITS",
    "equal",
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
