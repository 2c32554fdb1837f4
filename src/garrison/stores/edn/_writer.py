"""The EDN writer: Python values to text that Clojure's reader reads back as equal.

Output follows Clojure's printer (``pr-str``): ``{:a 1, :b 2}`` (entries
separated by ``", "``), ``[1 2]``, ``(1 2)``, ``#{1 2}``, ``#inst "…-00:00"``.
The writer walks the value with an explicit stack, so any depth the reader
accepts can be written back; no recursion limit applies. ``dumps`` runs the
faster encoder of :mod:`garrison.stores.edn._encoder`, which writes the same
text and hands this writer whatever it cannot write exactly.

Mapping decisions (see also ``docs/edn.md``):

- ``float('inf')``, ``-inf`` and ``nan`` are written ``##Inf``, ``##-Inf``,
  ``##NaN`` (Clojure 1.9+ reads them). ``Decimal`` NaN/Infinity have no EDN
  form and raise :class:`~garrison.exceptions.EdnEncodeError`.
- A ``datetime`` must be timezone-aware; it is written in UTC as Clojure does
  (``-00:00``), with milliseconds, or microseconds when it has them (Clojure
  keeps milliseconds). A naive ``datetime`` raises ``EdnEncodeError``.
- Python values with no EDN form (``bytes``, ``date``, arbitrary objects)
  raise ``EdnEncodeError`` unless a ``default`` hook turns them into
  something that has one.
- Strings are written with the escapes Clojure reads (``\\" \\\\ \\n \\t \\r
  \\b \\f \\uXXXX``); other characters are written as they are, except lone
  UTF-16 surrogates, which are written ``\\uXXXX``.
"""

from __future__ import annotations

import json.encoder
import math
import re
import uuid
from collections.abc import Callable, Mapping, Set
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from garrison.exceptions import EdnEncodeError
from garrison.stores.edn._equality import EdnMap, EdnSet
from garrison.stores.edn._types import (
    CHAR_NAMES,
    BigInt,
    Char,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
)

__all__ = ["SCALARS", "SURROGATE", "TAG", "Default", "Raw", "Writer", "named_text"]

_encode_str: Final[Callable[[str], str]] = json.encoder.encode_basestring
SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CHAR_NAMES_BY_CHAR: Final = {v: k for k, v in CHAR_NAMES.items()}
# What ``clojure.edn`` accepts as a symbol (its ``symbolPat`` and extra checks),
# plus no character that would end the token early.
_CLOJURE_SYMBOL: Final = re.compile(r":?([^0-9/].*/)?(/|[^0-9/][^/]*)", re.DOTALL)
_TOKEN: Final = re.compile(r'[^\s,()\[\]{}"\\;\ud800-\udfff]+')
TAG: Final = re.compile(r'[A-Za-z][^\s,()\[\]{}"\\;\ud800-\udfff]*')

Default = Callable[[Any], Any]


def _float(value: float) -> str:
    if value - value == 0:  # finite (inf - inf and nan - nan are nan)
        return repr(value)
    if math.isnan(value):
        return "##NaN"
    if value in (math.inf, -math.inf):
        return "##Inf" if value > 0 else "##-Inf"
    return repr(value)


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise EdnEncodeError(f"Decimal {value} has no EDN form (only finite M decimals exist)")
    return f"{value}M"


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _char(value: Char) -> str:
    char = value.value
    name = _CHAR_NAMES_BY_CHAR.get(char)
    if name is not None:
        return "\\" + name
    code = ord(char)
    if code > 0xFFFF:
        raise EdnEncodeError(
            f"Char {char!r} is outside the Basic Multilingual Plane; a Clojure char is "
            "one UTF-16 unit, so it has no EDN form (use a string)"
        )
    if code < 0x21 or 0x7F <= code <= 0xA0 or 0xD800 <= code <= 0xDFFF or not char.isprintable():
        return f"\\u{code:04x}"
    return "\\" + char


def _datetime(value: datetime) -> str:
    if value.tzinfo is not UTC:
        offset = value.utcoffset()
        if offset is None:
            raise EdnEncodeError(
                f"naive datetime {value.isoformat()} has no EDN form: #inst needs a time zone "
                "(use datetime(..., tzinfo=UTC))"
            )
        value = value.astimezone(UTC)
    if value.year < 1000:
        # isoformat would not pad the year the way #inst needs it.
        return f'#inst "{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond:06d}-00:00"'
    # Clojure prints #inst with -00:00; isoformat ends a UTC time with +00:00.
    # isoformat() without arguments is twice as fast as with a timespec: it
    # writes no fraction when there are no microseconds, else all six digits.
    text = value.isoformat()
    micro = value.microsecond
    if not micro:
        return '#inst "' + text[:19] + '.000-00:00"'
    return '#inst "' + (text[:26] if micro % 1000 else text[:23]) + '-00:00"'


def _uuid(value: uuid.UUID) -> str:
    return f'#uuid "{value}"'


def named_text(value: Keyword | Symbol, strict: bool) -> str:
    """The text of a keyword or symbol, checked once per distinct value (callers cache it)."""
    text = value.text
    prefix = ":" if type(value) is Keyword else ""
    if _TOKEN.fullmatch(text) is None or (prefix and text.startswith(":")):
        raise EdnEncodeError(f"{value!r} contains characters that cannot appear in EDN")
    if strict:
        m = _CLOJURE_SYMBOL.fullmatch(prefix + text)
        if m is None or m.group(2).endswith(":") or (m.group(1) or "").endswith(":/"):
            raise EdnEncodeError(f"{value!r} would not read back in Clojure (strict mode)")
    return prefix + text


# Scalars: one function per exact type. Keywords and symbols are cached per call.
SCALARS: Final[dict[type, Callable[[Any], str]]] = {
    str: _encode_str,
    int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): {None: "nil"}.__getitem__,
    float: _float,
    BigInt: lambda v: f"{int(v)}N",
    Decimal: _decimal,
    Fraction: _fraction,
    Char: _char,
    datetime: _datetime,
    uuid.UUID: _uuid,
}

# isinstance order for subclasses: bool before int, BigInt before int.
_SCALAR_BASES: Final[tuple[tuple[type, Callable[[Any], str]], ...]] = (
    (bool, SCALARS[bool]),
    (BigInt, SCALARS[BigInt]),
    (int, lambda v: int.__repr__(int(v))),
    (float, lambda v: _float(float(v))),
    (str, lambda v: _encode_str(str(v))),
    (Decimal, _decimal),
    (Fraction, _fraction),
    (Char, _char),
    (datetime, _datetime),
    (uuid.UUID, _uuid),
)

_VEC, _LIST, _SET, _MAP, _TAGGED, _TOP = 1, 2, 3, 4, 5, 6
_SEPARATOR: Final = {_VEC: " ", _LIST: " ", _SET: " ", _MAP: ", ", _TAGGED: "", _TOP: ""}
_CLOSER: Final = {_VEC: "]", _LIST: ")", _SET: "}", _MAP: "}"}


class Writer:
    """One ``dumps`` call's options and caches."""

    __slots__ = ("default", "named", "scalars", "sort_keys", "strict")

    def __init__(
        self,
        *,
        sort_keys: bool,
        strict: bool,
        default: Default | None,
        scalars: Mapping[type, Callable[[Any], str]] = SCALARS,
    ) -> None:
        self.sort_keys = sort_keys
        self.strict = strict
        self.default = default
        self.named: dict[Any, str] = {}
        # The encoder passes writers for ints past str()'s digit limit here.
        self.scalars = scalars

    def key(self, key: Any) -> str:
        """The text of one map key (keys are usually keywords: cached)."""
        kind = type(key)
        if kind is Raw:
            return str(key.text)
        if kind is Keyword:
            text = self.named.get(key)
            if text is None:
                text = self.named[key] = named_text(key, self.strict)
            return text
        out: list[str] = []
        self.write(key, out)
        return "".join(out)

    def coerce(self, value: Any, attempt: int = 0) -> Any:
        """Map a value of a type outside the table (a subclass, or via ``default``)."""
        for base, scalar in _SCALAR_BASES:
            if isinstance(value, base):
                return Raw(scalar(value))
        if isinstance(value, Keyword | Symbol):
            return Raw(named_text(value, self.strict))
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, Vector):
            return Vector(value)
        if isinstance(value, list):
            return list(value)
        if isinstance(value, tuple):
            return tuple(value)
        if isinstance(value, Set):
            return frozenset(value)
        if isinstance(value, Tagged):
            return Tagged(value.tag, value.value)
        if self.default is not None and attempt < 8:
            return self.default(value)
        raise EdnEncodeError(
            f"{type(value).__module__}.{type(value).__qualname__} value {value!r:.80} has no "
            "EDN form (pass default= to convert it)"
        )

    def write(self, value: Any, out: list[str]) -> None:
        """Append the EDN text of ``value`` to ``out`` (iteratively, any depth)."""
        append = out.append
        scalars = self.scalars
        named = self.named
        strict = self.strict
        sort_keys = self.sort_keys
        key_text = self.key
        stack: list[tuple[Any, int]] = []
        it: Any = iter((value,))
        kind = _TOP
        separator = ""
        while True:
            for item in it:
                if kind == _MAP:
                    append(key_text(item[0]))
                    append(" ")
                    item = item[1]  # noqa: PLW2901 - the entry's value is the element to write
                kind_of = type(item)
                scalar = scalars.get(kind_of)
                if scalar is not None:
                    append(scalar(item))
                    append(separator)
                    continue
                if kind_of is Keyword or kind_of is Symbol:
                    text = named.get(item)
                    if text is None:
                        text = named[item] = named_text(item, strict)
                    append(text)
                    append(separator)
                    continue
                coerced = 0
                while True:
                    if kind_of is dict or kind_of is FrozenMap or kind_of is EdnMap:
                        append("{")
                        new_kind = _MAP
                        if sort_keys:
                            entries = [(Raw(self.key(k)), v) for k, v in item.items()]
                            entries.sort(key=_entry_text)
                            children: Any = iter(entries)
                        else:
                            children = iter(item.items())
                    elif kind_of is list or kind_of is Vector:
                        append("[")
                        new_kind, children = _VEC, iter(item)
                    elif kind_of is tuple:
                        append("(")
                        new_kind, children = _LIST, iter(item)
                    elif kind_of is frozenset or kind_of is set or kind_of is EdnSet:
                        append("#{")
                        new_kind = _SET
                        if sort_keys:
                            children = iter([Raw(t) for t in sorted(map(self.key, item))])
                        else:
                            children = iter(item)
                    elif kind_of is Tagged:
                        tag = item.tag
                        if TAG.fullmatch(tag) is None:
                            raise EdnEncodeError(f"{item!r}: tag {tag!r} is not an EDN tag")
                        inner = type(item.value)
                        glue = inner in (dict, list, tuple, Vector, FrozenMap, EdnMap)
                        append("#" + tag + ("" if glue else " "))
                        # A one-element frame: the tagged value followed by no separator.
                        new_kind, children = _TAGGED, iter((item.value,))
                    elif kind_of is Raw:
                        append(item.text)
                        new_kind = 0
                    else:
                        scalar = scalars.get(kind_of)
                        if scalar is not None:
                            append(scalar(item))
                            new_kind = 0
                        elif kind_of is Keyword or kind_of is Symbol:
                            append(named_text(item, strict))
                            new_kind = 0
                        else:
                            item = self.coerce(item, coerced)  # noqa: PLW2901 - converted value
                            kind_of = type(item)
                            coerced += 1
                            continue
                    break
                if new_kind == 0:
                    append(separator)
                    continue
                stack.append((it, kind))
                it, kind, separator = children, new_kind, _SEPARATOR[new_kind]
                break
            else:
                # The current collection is finished.
                if kind == _TOP:
                    return
                if kind != _TAGGED:
                    # Each element was followed by the separator: the last one becomes the closer.
                    if out[-1] == separator:
                        out[-1] = _CLOSER[kind]
                    else:
                        append(_CLOSER[kind])
                it, kind = stack.pop()
                separator = _SEPARATOR[kind]
                append(separator)


class Raw:
    """Text already written (sorted keys and set elements)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _entry_text(entry: tuple[Raw, Any]) -> str:
    return entry[0].text
