"""Values as plain JSON for ``--json`` output: what a script or ``jq`` expects.

This is a reading form, not a storage form (the store's lossless tagged form
is :mod:`garrison.stores._values`): different EDN values may print alike.

=====================================  ==========================================
EDN value                              JSON
=====================================  ==========================================
nil, true, false, strings              null, true, false, strings
integers (``42``, ``42N``)             numbers
floats                                 numbers; ``##NaN``, ``##Inf``, ``##-Inf``
                                       as the strings "NaN", "Infinity", "-Infinity"
keyword ``:ns/name``, symbol           the string "ns/name" (the keyword's text)
character ``\\a``                      the string "a"
vector, list, set                      array
map with keyword or string keys        object keyed by the key text
any other map (number, vector keys,    array of [key, value] pairs
or two keys with the same text)
ratio ``22/7``, decimal ``1.50M``      the strings "22/7", "1.50"
``#inst``, ``#uuid``                   ISO 8601 string, UUID string
other tagged literal ``#my/tag v``     {"tag": "my/tag", "value": v}
=====================================  ==========================================
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Mapping, Set
from decimal import Decimal
from fractions import Fraction
from typing import Any

from garrison.edn import Char, Keyword, Symbol, Tagged

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """``value`` as plain JSON data (see the module's table)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Keyword | Symbol):
        return value.text
    if isinstance(value, Char):
        return value.value
    if isinstance(value, Mapping):
        return _map(value)
    if isinstance(value, list | tuple | Set):
        return [plain(item) for item in value]
    if isinstance(value, Fraction | Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Tagged):
        return {"tag": value.tag, "value": plain(value.value)}
    return str(value)


def _map(value: Mapping[Any, Any]) -> Any:
    keys = [k.text if isinstance(k, Keyword) else k for k in value]
    if all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
        return {k: plain(v) for k, v in zip(keys, value.values(), strict=True)}
    return [[plain(k), plain(v)] for k, v in value.items()]
