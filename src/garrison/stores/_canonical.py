"""One text per value by Clojure's ``=``: what the attribute index holds for a tagged value.

The attribute index keeps an attribute's value that is neither a string, a
number, a boolean nor a keyword (a tagged literal, a UUID, an instant, a
decimal, a ratio, a big integer, ...) as text, tag ``x``
(:mod:`garrison.stores._attributes`), and a query finds it by comparing texts.
The stored encoding (:func:`~garrison.stores._values.encode_value`) cannot be
that text: it keeps a set's members and a map's entries in their iteration
order, a decimal's scale and an instant's offset, so two values Clojure's
``=`` calls the same (``#my/tag #{1 2}`` and ``#my/tag #{2 1}``; ``1.0M`` and
``1.00M``; the same instant at two offsets) would have different texts, and
a query by one would miss the other.

:func:`canonical` gives the structure whose text (:func:`canonical_text`) is
the same for values Clojure's ``=`` calls equal and different otherwise, the
rules of :mod:`garrison.edn._equality`:

- set members and map entries sorted by their own canonical text;
- a vector and a list are one sequence (a JSON array);
- numbers by category: ``1`` and ``1N`` are one integer (plain JSON in the
  64-bit range, ``{"#N": ...}`` beyond), ``0.0`` and ``-0.0`` one double,
  ``1.0M`` and ``1.00M`` one decimal, ``4/2`` the integer ``2``;
- inside a tagged literal the form compares with Java's ``equals``, as
  Clojure's ``TaggedLiteral`` does: there ``1`` and ``1N``, ``0.0`` and
  ``-0.0``, ``1.0M`` and ``1.00M`` stay apart (map keys and set members
  still follow ``=``);
- an instant in UTC.

The text uses the stored encoding's markers, so
:func:`~garrison.stores._values.decode_value` reads it back as a value equal
(by Clojure's ``=``) to the one indexed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import orjson

from garrison.edn import BigInt, Char, Keyword, Symbol, Tagged
from garrison.stores._values import encode_value

__all__ = ["canonical", "canonical_text"]

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Clojure's = (an attribute's value, map keys, set members), and Java's equals
# (the form of a tagged literal).
_EQUIV: Final = False
_EXACT: Final = True


def _text(structure: Any) -> str:
    try:
        return orjson.dumps(structure).decode()
    except orjson.JSONEncodeError:
        # orjson stops at 255 levels of nesting; the standard library goes deeper.
        return json.dumps(structure, ensure_ascii=False, separators=(",", ":"))


def _integer(value: int, exact: bool, big: bool) -> Any:
    if _INT64_MIN <= value <= _INT64_MAX and not (exact and big):
        return value
    try:
        digits = str(value)
    except ValueError:  # past Python's int/str digit limit
        digits = str(Decimal(value))
    return {"#N": digits}


def _float(value: float, exact: bool) -> Any:
    if math.isnan(value):
        return {"#float": "NaN"}
    if math.isinf(value):
        return {"#float": "Infinity" if value > 0 else "-Infinity"}
    if value == 0.0 and not exact:
        return 0.0
    return value


def _decimal(value: Decimal, exact: bool) -> Any:
    if value.is_nan():
        return {"#dec": "NaN"}
    if value.is_zero():
        # Java's BigDecimal has no negative zero; = ignores the scale, equals keeps it.
        return {"#dec": str(value.copy_abs()) if exact else "0"}
    return {"#dec": str(value if exact else value.normalize())}


def _sorted(members: list[Any]) -> list[Any]:
    return sorted(members, key=_text)


def _canonical(value: Any, exact: bool) -> Any:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _integer(value, exact, big=False)
    if kind is float:
        return _float(value, exact)
    if kind is Keyword:
        return {"#k": value.text}
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, BigInt):
        return _integer(int(value), exact, big=True)
    if isinstance(value, int):
        return _integer(int(value), exact, big=False)
    if isinstance(value, float):
        return _float(float(value), exact)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal(value, exact)
    if isinstance(value, Fraction):
        if value.denominator == 1:  # Clojure has no whole ratio: 4/2 is 2
            return _integer(value.numerator, exact, big=False)
        return {"#ratio": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, Symbol):
        return {"#sym": value.text}
    if isinstance(value, Char):
        return {"#char": value.value}
    if isinstance(value, Tagged):
        return {"#tag": [value.tag, _canonical(value.value, _EXACT)]}
    if isinstance(value, list | tuple):  # a vector equals the list of the same members
        return [_canonical(item, exact) for item in value]
    if isinstance(value, Mapping):
        pairs = [[_canonical(key, _EQUIV), _canonical(item, exact)] for key, item in value.items()]
        return {"#map": _sorted(pairs)}
    if isinstance(value, AbstractSet):
        return {"#set": _sorted([_canonical(member, _EQUIV) for member in value])}
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        return {"#inst": value.astimezone(dt.UTC).isoformat()}
    # A UUID, a date, a time, a naive datetime: one stored text per value already.
    return orjson.loads(encode_value(value))


def canonical(value: Any) -> Any:
    """The JSON-ready structure standing for ``value`` by Clojure's ``=``.

    >>> from garrison.edn import loads
    >>> canonical(loads("#my/tag #{2 1}")) == canonical(loads("#my/tag #{1 2}"))
    True
    """
    return _canonical(value, _EQUIV)


def canonical_text(value: Any) -> str:
    """The JSON text of :func:`canonical`: equal texts for values Clojure's ``=`` calls equal."""
    return _text(canonical(value))
