"""garrison's EDN codec: reads everything Clojure writes, writes what Clojure reads.

The value mapping is described in :mod:`garrison.stores.edn._types`.
"""

from __future__ import annotations

from garrison.stores.edn._types import BigInt, Char, FrozenMap, Keyword, Symbol, Tagged, Vector

__all__ = ["BigInt", "Char", "FrozenMap", "Keyword", "Symbol", "Tagged", "Vector"]
