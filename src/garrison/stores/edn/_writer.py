"""The EDN writer: Python values to text that Clojure's reader reads back as equal.

Output follows Clojure's printer (``pr-str``): ``{:a 1, :b 2}`` (entries
separated by ``", "``), ``[1 2]``, ``(1 2)``, ``#{1 2}``, ``#inst "…-00:00"``.
The writer walks the value with an explicit stack, so any depth the reader
accepts can be written back; no recursion limit applies.

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
import threading
import uuid
from collections.abc import Callable, Mapping, Set
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from operator import add, call
from typing import Any, Final

import orjson

from garrison.exceptions import EdnEncodeError
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

__all__ = ["encode", "encode_key"]

_encode_str: Final[Callable[[str], str]] = json.encoder.encode_basestring
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CHAR_NAMES_BY_CHAR: Final = {v: k for k, v in CHAR_NAMES.items()}
# What ``clojure.edn`` accepts as a symbol (its ``symbolPat`` and extra checks),
# plus no character that would end the token early.
_CLOJURE_SYMBOL: Final = re.compile(r":?([^0-9/].*/)?(/|[^0-9/][^/]*)", re.DOTALL)
_TOKEN: Final = re.compile(r'[^\s,()\[\]{}"\\;\ud800-\udfff]+')
_TAG: Final = re.compile(r'[A-Za-z][^\s,()\[\]{}"\\;\ud800-\udfff]*')

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


def _named(value: Keyword | Symbol, strict: bool) -> str:
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
_SCALARS: Final[dict[type, Callable[[Any], str]]] = {
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
    (bool, _SCALARS[bool]),
    (BigInt, _SCALARS[BigInt]),
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


class _Writer:
    """One ``dumps`` call's options and caches."""

    __slots__ = ("default", "named", "sort_keys", "strict")

    def __init__(self, *, sort_keys: bool, strict: bool, default: Default | None) -> None:
        self.sort_keys = sort_keys
        self.strict = strict
        self.default = default
        self.named: dict[Any, str] = {}

    def key(self, key: Any) -> str:
        """The text of one map key (keys are usually keywords: cached)."""
        kind = type(key)
        if kind is _Raw:
            return str(key.text)
        if kind is Keyword:
            text = self.named.get(key)
            if text is None:
                text = self.named[key] = _named(key, self.strict)
            return text
        out: list[str] = []
        self.write(key, out)
        return "".join(out)

    def coerce(self, value: Any, attempt: int = 0) -> Any:
        """Map a value of a type outside the table (a subclass, or via ``default``)."""
        for base, scalar in _SCALAR_BASES:
            if isinstance(value, base):
                return _Raw(scalar(value))
        if isinstance(value, Keyword | Symbol):
            return _Raw(_named(value, self.strict))
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
        scalars = _SCALARS
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
                        text = named[item] = _named(item, strict)
                    append(text)
                    append(separator)
                    continue
                coerced = 0
                while True:
                    if kind_of is dict or kind_of is FrozenMap:
                        append("{")
                        new_kind = _MAP
                        if sort_keys:
                            entries = [(_Raw(self.key(k)), v) for k, v in item.items()]
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
                    elif kind_of is frozenset or kind_of is set:
                        append("#{")
                        new_kind = _SET
                        if sort_keys:
                            children = iter([_Raw(t) for t in sorted(map(self.key, item))])
                        else:
                            children = iter(item)
                    elif kind_of is Tagged:
                        tag = item.tag
                        if _TAG.fullmatch(tag) is None:
                            raise EdnEncodeError(f"{item!r}: tag {tag!r} is not an EDN tag")
                        inner = type(item.value)
                        glue = inner in (dict, list, tuple, Vector, FrozenMap)
                        append("#" + tag + ("" if glue else " "))
                        # A one-element frame: the tagged value followed by no separator.
                        new_kind, children = _TAGGED, iter((item.value,))
                    elif kind_of is _Raw:
                        append(item.text)
                        new_kind = 0
                    else:
                        scalar = scalars.get(kind_of)
                        if scalar is not None:
                            append(scalar(item))
                            new_kind = 0
                        elif kind_of is Keyword or kind_of is Symbol:
                            append(_named(item, strict))
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


class _Raw:
    """Text already written (sorted keys and set elements)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _entry_text(entry: tuple[_Raw, Any]) -> str:
    return entry[0].text


class _NamedTexts(dict[Any, str]):
    """Keyword/symbol -> text, filled on first use: a hit is one C-level lookup."""

    __slots__ = ("strict", "suffix")

    def __init__(self, strict: bool, suffix: str = "") -> None:
        super().__init__()
        self.strict = strict
        self.suffix = suffix

    def __missing__(self, key: Any) -> str:
        text = self[key] = _named(key, self.strict) + self.suffix
        return text


class _Dispatch(dict[type, Callable[[Any], str]]):
    """Exact type -> function writing a value of it; other types get ``fallback``."""

    __slots__ = ("fallback",)

    def __init__(self, table: dict[type, Callable[[Any], str]], fallback: Callable[[Any], str]):
        super().__init__(table)
        self.fallback = fallback

    def __missing__(self, kind: type) -> Callable[[Any], str]:
        # Not stored: classes made at run time would otherwise pile up here.
        return self.fallback


# Containers nested deeper than this are handed to the iterative writer, so the
# recursive fast path never comes near Python's recursion limit.
_RECURSION_DEPTH: Final = 48
_GLUED: Final = frozenset((dict, list, tuple, Vector, FrozenMap))
_KNOWN: Final = _GLUED | {frozenset, set, Tagged}
# What float.__repr__ writes for non-finite values (EDN needs ##Inf ##-Inf ##NaN).
_NON_FINITE: Final = ("inf", "-inf", "nan")


def _encoder(
    *, sort_keys: bool, strict: bool, default: Default | None, long_ints: bool = False
) -> tuple[Callable[[Any], str], list[dict[Any, str]]]:
    """A function ``value -> text`` for one set of options, and its caches.

    Recursive over containers; inside one, every element's text comes from a
    chain of C-level ``map`` calls (``type`` -> the function for that exact
    type from a dispatch table -> ``operator.call``), so a scalar costs no
    Python frame at all when its writer is a C function (``str``, ``int``,
    ``float``, cached keywords and symbols). Floats are written by
    ``float.__repr__``; a container whose texts include ``inf`` or ``nan``
    (a non-finite float, or a symbol of that name) is written again by the
    exact iterative writer.
    """
    keyword_texts, symbol_texts = _NamedTexts(strict), _NamedTexts(strict)
    # Map keys are written with the space that separates them from their value.
    keyword_keys = _NamedTexts(strict, " ")
    slow = _Writer(sort_keys=sort_keys, strict=strict, default=default)
    depth = 0

    def iterative(value: Any) -> str:
        out: list[str] = []
        slow.write(value, out)
        return "".join(out)

    def other(value: Any) -> str:
        # A subclass, or a value for ``default`` to convert (it may take a few rounds).
        attempt = 0
        while True:
            value = slow.coerce(value, attempt)
            attempt += 1
            kind = type(value)
            if kind in table or kind in _KNOWN:
                return values(kind)(value)

    def key_other(value: Any) -> str:
        text = values(type(value))(value)
        if text in _NON_FINITE:
            text = iterative(value)
        return text + " "

    def container(value: Any) -> str:
        nonlocal depth
        if depth > _RECURSION_DEPTH:
            return iterative(value)
        depth += 1
        kind = type(value)
        if kind is dict or kind is FrozenMap:
            if sort_keys:
                texts = list(map(call, map(values, map(type, value)), value))
                entries = sorted(
                    zip(
                        texts,
                        map(call, map(values, map(type, value.values())), value.values()),
                        strict=True,
                    )
                )
                if any(k in _NON_FINITE or v in _NON_FINITE for k, v in entries):
                    text = iterative(value)
                else:
                    text = "{" + ", ".join([k + " " + v for k, v in entries]) + "}"
            else:
                texts = list(map(call, map(values, map(type, value.values())), value.values()))
                if "inf" in texts or "nan" in texts or "-inf" in texts:
                    text = iterative(value)
                else:
                    keys = map(call, map(keys_of, map(type, value)), value)
                    text = "{" + ", ".join(map(add, keys, texts)) + "}"
        elif kind is frozenset or kind is set:
            texts = list(map(call, map(values, map(type, value)), value))
            if sort_keys:
                texts.sort()
            text = "#{" + " ".join(texts) + "}"
            if "inf" in texts or "nan" in texts or "-inf" in texts:
                text = iterative(value)
        elif kind is Tagged:
            tag: str = value.tag
            if _TAG.fullmatch(tag) is None:
                raise EdnEncodeError(f"{value!r}: tag {tag!r} is not an EDN tag")
            inner = value.value
            text = values(type(inner))(inner)
            if text in _NON_FINITE:
                text = iterative(inner)
            text = "#" + tag + ("" if type(inner) in _GLUED else " ") + text
        elif kind is list and value and type(value[0]) is float and _only_floats(value):
            fast = _float_vector(value)
            if fast is not None:
                text = fast
            else:
                texts = list(map(float.__repr__, value))
                if "inf" in texts or "nan" in texts or "-inf" in texts:
                    text = iterative(value)
                else:
                    text = "[" + " ".join(texts) + "]"
        else:  # list, Vector, tuple
            texts = list(map(call, map(values, map(type, value)), value))
            if "inf" in texts or "nan" in texts or "-inf" in texts:
                text = iterative(value)
            elif kind is tuple:
                text = "(" + " ".join(texts) + ")"
            else:
                text = "[" + " ".join(texts) + "]"
        depth -= 1
        return text

    table: dict[type, Callable[[Any], str]] = dict(_SCALARS)
    table[float] = float.__repr__
    table[Keyword] = keyword_texts.__getitem__
    table[Symbol] = symbol_texts.__getitem__
    table[_Raw] = _raw_text
    if long_ints:
        table[int] = lambda v: str(Decimal(v))
        table[BigInt] = lambda v: f"{Decimal(v)}N"
    for kind in _KNOWN:
        table[kind] = container
    values = _Dispatch(table, other).__getitem__
    key_table: dict[type, Callable[[Any], str]] = {Keyword: keyword_keys.__getitem__}
    keys_of = _Dispatch(key_table, key_other).__getitem__

    def encode_value(value: Any) -> str:
        nonlocal depth
        depth = 0  # a previous call that raised may have left it raised
        text: str = values(type(value))(value)
        if text in _NON_FINITE:  # a lone non-finite float
            text = iterative(value)
        return text

    return encode_value, [keyword_texts, symbol_texts, keyword_keys, slow.named]


_FLOAT_ONLY: Final = frozenset((float,))


def _only_floats(value: list[Any]) -> bool:
    return set(map(type, value)) == _FLOAT_ONLY


def _float_vector(value: list[float]) -> str | None:
    """A vector of floats written by orjson (about 10x faster than ``float.__repr__``).

    orjson writes the same shortest round-trip digits as ``repr`` and, like
    ``repr``, without an exponent from 1e-4 up to 1e16; outside that range the
    two differ (``1e-05`` vs ``0.00001``, ``1e-08`` vs ``1e-8``), and
    non-finite values become ``null``. Those texts are recognised (an ``e``, a
    ``0.0000``, a ``null``) and the caller writes the vector with ``repr``, so
    the output is the same text either way.
    """
    out = orjson.dumps(value)
    if b"e" in out or b"0.0000" in out or b"n" in out:
        return None
    # A JSON array of numbers is an EDN vector once commas become spaces.
    return out.replace(b",", b" ").decode("ascii")


def _raw_text(value: _Raw) -> str:
    return value.text


def _escape_surrogates(text: str) -> str:
    if not text.isascii() and _SURROGATE.search(text):
        # Lone surrogates can only come from strings (keywords, symbols and tags
        # refuse them; chars are escaped), so escaping them in place is exact.
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def encode(
    value: Any,
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Default | None = None,
) -> str:
    """The EDN text of ``value`` (the body of :func:`garrison.stores.edn.dumps`)."""
    enc = _cached_encoder(sort_keys, strict) if default is None else None
    if enc is None:
        enc = _encoder(sort_keys=sort_keys, strict=strict, default=default)[0]
    try:
        return _escape_surrogates(enc(value))
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
    # An int past Python's 4300-digit str() limit: write ints through Decimal.
    enc = _encoder(sort_keys=sort_keys, strict=strict, default=default, long_ints=True)[0]
    return _escape_surrogates(enc(value))


# Encoders for the option sets without ``default``, kept between calls so that
# the many small calls of a store (one dumps_entry per changed entry) reuse the
# keyword texts instead of rebuilding them. The caches are emptied past a bound.
# One set per thread: an encoder counts its nesting depth in a variable it
# shares between its calls, which two threads must not share.
_ENCODERS = threading.local()
_CACHE_LIMIT: Final = 1 << 16


def _cached_encoder(sort_keys: bool, strict: bool) -> Callable[[Any], str]:
    encoders: dict[tuple[bool, bool], tuple[Callable[[Any], str], list[dict[Any, str]]]] | None
    encoders = getattr(_ENCODERS, "table", None)
    if encoders is None:
        encoders = _ENCODERS.table = {}
    entry = encoders.get((sort_keys, strict))
    if entry is None:
        entry = encoders[(sort_keys, strict)] = _encoder(
            sort_keys=sort_keys, strict=strict, default=None
        )
    enc, caches = entry
    for cache in caches:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
    return enc


def encode_key(key: Any, *, sort_keys: bool = False, strict: bool = False) -> str:
    """The text of one map key as :func:`encode` writes it inside a map."""
    return encode(key, sort_keys=sort_keys, strict=strict)
