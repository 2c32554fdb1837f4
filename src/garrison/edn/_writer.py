"""The EDN writer: Python values to text that Clojure's reader reads back as equal.

Output follows Clojure's printer (``pr-str``): ``{:a 1, :b 2}`` (entries
separated by ``", "``), ``[1 2]``, ``(1 2)``, ``#{1 2}``, ``#inst "…-00:00"``.
The writer walks the value with an explicit stack, so any depth the reader
accepts can be written back; no recursion limit applies. Deeper nesting (the
reader's ``MAX_DEPTH``: 10,000 levels), a value that contains itself, and a
``default`` hook whose results keep needing it raise ``EdnEncodeError``, so
what is written can always be read back. ``dumps`` runs the
faster encoder of :mod:`garrison.edn._encoder`, which writes the same
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

import itertools
import json.encoder
import math
import re
import uuid
from collections.abc import Callable, Mapping, Set
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from garrison.edn._atoms import SYMBOL_TEXT
from garrison.edn._equality import EdnMap, EdnSet
from garrison.edn._types import (
    CHAR_NAMES,
    BigInt,
    Char,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
)
from garrison.exceptions import EdnEncodeError

__all__ = ["MAX_DEPTH", "SCALARS", "SURROGATE", "TAG", "Default", "Raw", "Writer", "named_text"]

_encode_str: Final[Callable[[str], str]] = json.encoder.encode_basestring
SURROGATE: Final = re.compile("[\ud800-\udfff]")
_CHAR_NAMES_BY_CHAR: Final = {v: k for k, v in CHAR_NAMES.items()}
# What ``clojure.edn`` accepts as a symbol (its ``symbolPat`` and extra checks),
# plus no character that would end the token early.
_CLOJURE_SYMBOL: Final = re.compile(r":?([^0-9/].*/)?(/|[^0-9/][^/]*)", re.DOTALL)
_TOKEN: Final = re.compile(r'[^\s,()\[\]{}"\\;\ud800-\udfff]+')
_SYMBOL: Final = re.compile(SYMBOL_TEXT)
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
    if not prefix and (_SYMBOL.fullmatch(text) is None or text in ("nil", "true", "false")):
        raise EdnEncodeError(f"{value!r} would read back as another value, not a symbol")
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

_VEC, _LIST, _SET, _TAGGED, _TOP, _MAP, _SORTED_SET, _SORTED_MAP = 1, 2, 3, 4, 5, 6, 7, 8
# Each key and value of a map (and under sort_keys each element of a set) is
# followed by _END in a buffer of the collection's own; the entries are then
# joined, in the order of their texts under sort_keys. So keys are written by
# the same loop as everything else, never by a recursive call.
_END: Final = object()
_SEPARATOR: Final[dict[int, Any]] = {
    _VEC: " ",
    _LIST: " ",
    _SET: " ",
    _TAGGED: "",
    _TOP: "",
    _MAP: _END,
    _SORTED_SET: _END,
    _SORTED_MAP: _END,
}
_CLOSER: Final = {_VEC: "]", _LIST: ")", _SET: "}"}
#: Deepest nesting the writer writes: the reader's limit, so that every text
#: written reads back.
MAX_DEPTH: Final = 10_000


class Writer:
    """One ``dumps`` call's options and caches."""

    __slots__ = ("default", "depth", "named", "scalars", "sort_keys", "strict")

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
        # How deep the value being written is nested (a key written by key()
        # starts below its map).
        self.depth = 0
        self.named: dict[Any, str] = {}
        # The encoder passes writers for ints past str()'s digit limit here.
        self.scalars = scalars

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
        """Append the EDN text of ``value`` to ``out`` (iteratively, up to :data:`MAX_DEPTH`)."""
        parts: list[Any] = out  # strings, and _END marks in a sorted collection's buffer
        append = parts.append
        scalars = self.scalars
        named = self.named
        strict = self.strict
        sort_keys = self.sort_keys
        base = self.depth
        # Each frame: the parent's iterator, kind, the container, the parent's buffer.
        stack: list[tuple[Any, int, Any, list[Any]]] = []
        it: Any = iter((value,))
        kind = _TOP
        separator: Any = ""
        while True:
            for item in it:
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
                buffer = parts
                while True:
                    if kind_of is dict or kind_of is FrozenMap or kind_of is EdnMap:
                        buffer = []
                        new_kind = _SORTED_MAP if sort_keys else _MAP
                        children: Any = itertools.chain.from_iterable(item.items())
                    elif kind_of is list or kind_of is Vector:
                        append("[")
                        new_kind, children = _VEC, iter(item)
                    elif kind_of is tuple:
                        append("(")
                        new_kind, children = _LIST, iter(item)
                    elif kind_of is frozenset or kind_of is set or kind_of is EdnSet:
                        if sort_keys:
                            buffer = []
                            new_kind, children = _SORTED_SET, iter(item)
                        else:
                            append("#{")
                            new_kind, children = _SET, iter(item)
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
                if base + len(stack) >= MAX_DEPTH:
                    raise self._too_deep(item, [frame[2] for frame in stack])
                stack.append((it, kind, item, parts))
                self.depth = base + len(stack)
                if buffer is not parts:
                    parts = buffer
                    append = parts.append
                it, kind, separator = children, new_kind, _SEPARATOR[new_kind]
                break
            else:
                # The current collection is finished.
                if kind == _TOP:
                    self.depth = base
                    return
                if kind >= _MAP:
                    text = _buffered_text(kind, parts)
                    it, kind, _, parts = stack.pop()
                    append = parts.append
                    append(text)
                elif kind != _TAGGED:
                    # Each element was followed by the separator: the last one becomes the closer.
                    if parts[-1] == separator:
                        parts[-1] = _CLOSER[kind]
                    else:
                        append(_CLOSER[kind])
                    it, kind, _, _ = stack.pop()
                else:
                    it, kind, _, _ = stack.pop()
                self.depth = base + len(stack)
                separator = _SEPARATOR[kind]
                append(separator)

    def _too_deep(self, item: Any, path: list[Any]) -> EdnEncodeError:
        """The error for nesting past :data:`MAX_DEPTH`: a cycle, a looping hook, or deep data."""
        seen: dict[int, int] = {}
        for level, container in enumerate([*path, item], start=self.depth - len(path) + 1):
            first = seen.setdefault(id(container), level)
            if first != level:
                return EdnEncodeError(
                    f"a {type(container).__name__} contains itself (found at depth {level}):"
                    " a reference cycle has no EDN form"
                )
        hook = " (does the default= hook return values that need it again?)" if self.default else ""
        return EdnEncodeError(
            f"value nested deeper than {MAX_DEPTH} levels, which the reader refuses{hook}"
        )


def _buffered_text(kind: int, parts: list[Any]) -> str:
    """A map's entries (in order, or sorted by key text), or a set's sorted elements."""
    texts: list[str] = []
    start = 0
    for i, part in enumerate(parts):
        if part is _END:
            texts.append("".join(parts[start:i]))
            start = i + 1
    if kind == _SORTED_SET:
        texts.sort()
        return "#{" + " ".join(texts) + "}"
    entries = list(zip(texts[::2], texts[1::2], strict=True))
    if kind == _SORTED_MAP:
        entries.sort(key=_first)  # stable: by key text only
    return "{" + ", ".join([key + " " + value for key, value in entries]) + "}"


def _first(entry: tuple[str, str]) -> str:
    return entry[0]


class Raw:
    """Text already written (sorted keys and set elements)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
