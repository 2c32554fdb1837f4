"""The fast EDN encoder behind ``dumps``: the C writer, and C-level dispatch per container.

:mod:`garrison.edn._writer` holds the mapping decisions, the scalar
writers and the exact iterative writer; this module writes the same text
faster, in two ways:

- :func:`encode` first asks the C writer (``_cwriter.c``, when built; see
  :mod:`garrison.edn._accel`). It writes the codec's own kinds and
  Python's built-in ones itself, calls the pure writer's scalar functions
  for the rest (``Decimal``, ``Fraction``, ``Char``, non-UTC ``datetime``) and
  ``Writer.coerce`` for subclasses and ``default``, and this module's
  :func:`encode_pure` for the rare ``EdnMap`` and ``EdnSet`` (its text then
  stands in their place). Where it cannot be sure of
  the pure text (map keys with equal texts under ``sort_keys``, lone
  surrogates in texts it must sort, nesting past its ``MAX_DEPTH``) and on
  any error, :func:`encode_pure` writes the whole value instead, so the text
  and the errors are always the pure encoder's.
- :func:`encode_pure`: inside a container, every element's text comes from a
  chain of C-level ``map`` calls (``type`` -> the writer for that exact type
  -> ``operator.call``), so a scalar whose writer is a C function costs no
  Python frame. Whatever this path cannot write exactly (non-finite floats,
  subclasses, values for ``default``, nesting deeper than
  ``_RECURSION_DEPTH``) is handed to the iterative writer, so the output is
  the same text either way.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from operator import add, call
from typing import TYPE_CHECKING, Any, Final

import orjson

from garrison.edn import _accel
from garrison.edn._equality import EdnMap, EdnSet
from garrison.edn._types import BigInt, FrozenMap, Keyword, Symbol, Tagged, Vector
from garrison.edn._writer import (
    SCALARS,
    SURROGATE,
    TAG,
    Default,
    Raw,
    Writer,
    named_text,
)
from garrison.exceptions import EdnEncodeError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["c_coerce_for", "encode", "encode_key", "encode_pure"]


class _NamedTexts(dict[Any, str]):
    """Keyword/symbol -> text, filled on first use: a hit is one C-level lookup."""

    __slots__ = ("strict", "suffix")

    def __init__(self, strict: bool, suffix: str = "") -> None:
        super().__init__()
        self.strict = strict
        self.suffix = suffix

    def __missing__(self, key: Any) -> str:
        text = self[key] = named_text(key, self.strict) + self.suffix
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
_GLUED: Final = frozenset((dict, list, tuple, Vector, FrozenMap, EdnMap))
_KNOWN: Final = _GLUED | {frozenset, set, EdnSet, Tagged}
# How the pure encoder writes a lone surrogate.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89abcdefABCDEF]")
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
    scalars = dict(SCALARS)
    if long_ints:
        scalars[int] = _long_int_text
        scalars[BigInt] = _long_bigint_text
    slow = Writer(sort_keys=sort_keys, strict=strict, default=default, scalars=scalars)
    depth = 0

    def iterative(value: Any, base: int) -> str:
        # base: the containers around value (the writer's depth limit counts them).
        out: list[str] = []
        slow.depth = base
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
            text = iterative(value, 0)
        return text + " "

    def container(value: Any) -> str:
        nonlocal depth
        if depth > _RECURSION_DEPTH:
            return iterative(value, depth)
        depth += 1
        kind = type(value)
        if kind is dict or kind is FrozenMap or kind is EdnMap:
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
                    text = iterative(value, depth - 1)
                else:
                    text = "{" + ", ".join([k + " " + v for k, v in entries]) + "}"
            else:
                texts = list(map(call, map(values, map(type, value.values())), value.values()))
                if "inf" in texts or "nan" in texts or "-inf" in texts:
                    text = iterative(value, depth - 1)
                else:
                    keys = map(call, map(keys_of, map(type, value)), value)
                    text = "{" + ", ".join(map(add, keys, texts)) + "}"
        elif kind is frozenset or kind is set or kind is EdnSet:
            texts = list(map(call, map(values, map(type, value)), value))
            if sort_keys:
                texts.sort()
            text = "#{" + " ".join(texts) + "}"
            if "inf" in texts or "nan" in texts or "-inf" in texts:
                text = iterative(value, depth - 1)
        elif kind is Tagged:
            tag: str = value.tag
            if TAG.fullmatch(tag) is None:
                raise EdnEncodeError(f"{value!r}: tag {tag!r} is not an EDN tag")
            inner = value.value
            text = values(type(inner))(inner)
            if text in _NON_FINITE:
                text = iterative(inner, depth)
            text = "#" + tag + ("" if type(inner) in _GLUED else " ") + text
        elif kind is list and value and type(value[0]) is float and _only_floats(value):
            fast = _float_vector(value)
            if fast is not None:
                text = fast
            else:
                texts = list(map(float.__repr__, value))
                if "inf" in texts or "nan" in texts or "-inf" in texts:
                    text = iterative(value, depth - 1)
                else:
                    text = "[" + " ".join(texts) + "]"
        else:  # list, Vector, tuple
            texts = list(map(call, map(values, map(type, value)), value))
            if "inf" in texts or "nan" in texts or "-inf" in texts:
                text = iterative(value, depth - 1)
            elif kind is tuple:
                text = "(" + " ".join(texts) + ")"
            else:
                text = "[" + " ".join(texts) + "]"
        depth -= 1
        return text

    table = dict(scalars)
    table[float] = float.__repr__
    table[Keyword] = keyword_texts.__getitem__
    table[Symbol] = symbol_texts.__getitem__
    table[Raw] = _raw_text
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
            text = iterative(value, 0)
        return text

    return encode_value, [keyword_texts, symbol_texts, keyword_keys, slow.named]


def _long_int_text(value: int) -> str:
    # str(int) refuses more than sys.get_int_max_str_digits() digits; Decimal's
    # conversion is arithmetic.
    return str(Decimal(int(value)))


def _long_bigint_text(value: int) -> str:
    return _long_int_text(value) + "N"


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


def _raw_text(value: Raw) -> str:
    return value.text


def _escape_surrogates(text: str) -> str:
    if not text.isascii() and SURROGATE.search(text):
        # Lone surrogates can only come from strings (keywords, symbols and tags
        # refuse them; chars are escaped), so escaping them in place is exact.
        text = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def encode(
    value: Any,
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Default | None = None,
) -> str:
    """The EDN text of ``value`` (the body of :func:`garrison.edn.dumps`).

    With the C writer (:data:`garrison.edn._accel.writer`), the text is
    written in C; whatever it leaves to Python (its ``Fallback`` signal) and
    every error is decided by the pure writer below, which writes the whole
    value again: the text, or the exception, is the pure writer's either way.
    A ``default`` hook may therefore be called again for a value that fails.
    """
    writer = _accel.writer  # read per call: tests switch the accelerator off
    if writer is not None:
        if writer is not _configured[0]:
            _configure(writer)
        coerce = (
            _C_COERCE[sort_keys, strict]
            if default is None
            else c_coerce_for(sort_keys=sort_keys, strict=strict, default=default)
        )
        try:
            text: str = writer.encode(value, sort_keys, strict, coerce)
        except Exception:  # noqa: BLE001, S110 - the pure writer below gives the text or the error
            pass
        else:
            return text
    return encode_pure(value, sort_keys=sort_keys, strict=strict, default=default)


def encode_pure(
    value: Any,
    *,
    sort_keys: bool = False,
    strict: bool = False,
    default: Default | None = None,
) -> str:
    """:func:`encode` without the C writer: the reference text, the fallback, the errors."""
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


# What the C writer calls for values it does not write itself: coerce (a
# subclass, or a value for ``default``) per ``strict``; without ``default`` the
# writers hold no per-call state, so one each serves every call and thread.
_COERCE: Final = {
    strict: Writer(sort_keys=False, strict=strict, default=None).coerce for strict in (False, True)
}


def c_coerce_for(
    *, sort_keys: bool, strict: bool, default: Default | None
) -> Callable[[Any, int], Any]:
    """The ``coerce`` argument of the C writer's ``encode`` for these options."""
    if default is None:
        return _C_COERCE[sort_keys, strict]
    coerce = Writer(sort_keys=sort_keys, strict=strict, default=default).coerce
    return _c_coerce(coerce, sort_keys=sort_keys, strict=strict, default=default)


def _c_coerce(
    coerce: Callable[[Any, int], Any], *, sort_keys: bool, strict: bool, default: Default | None
) -> Callable[[Any, int], Any]:
    """``coerce`` for the C writer, which leaves :class:`EdnMap` and :class:`EdnSet` to Python.

    They are rare (the reader makes them only where Python's ``==`` would merge
    keys or elements), and the C writer meets them only here: the pure
    encoder writes that part, with the same options, and the C writer puts
    its text in place (a :class:`Raw`), so the rest is still written in C.
    """

    def c_coerce(value: Any, attempt: int) -> Any:
        if type(value) is EdnMap or type(value) is EdnSet:
            text = encode_pure(value, sort_keys=sort_keys, strict=strict, default=default)
            if sort_keys and "\\u" in text and _SURROGATE_ESCAPE.search(text):
                # The pure writer sorts by the text before it escapes lone
                # surrogates; the C writer would sort by the escaped text.
                raise _accel.writer.Fallback("a lone surrogate in a text to sort")  # type: ignore[union-attr]
            return Raw(text)
        return coerce(value, attempt)

    return c_coerce


# What the C writer calls, per (sort_keys, strict), when there is no ``default``.
_C_COERCE: Final = {
    (sort_keys, strict): _c_coerce(
        _COERCE[strict], sort_keys=sort_keys, strict=strict, default=None
    )
    for sort_keys in (False, True)
    for strict in (False, True)
}
# The C writer module that _configure has set up (tests may swap modules).
_configured: list[ModuleType | None] = [None]


def _configure(writer: ModuleType) -> None:
    """Give the C writer the codec's types and the pure writer's helpers."""
    writer.configure(
        keyword=Keyword,
        symbol=Symbol,
        bigint=BigInt,
        vector=Vector,
        frozen_map=FrozenMap,
        tagged=Tagged,
        raw=Raw,
        uuid=uuid.UUID,
        scalars=SCALARS,
        tag_match=TAG.fullmatch,
        named_text=named_text,
        long_int_text=_long_int_text,
        orjson_dumps=orjson.dumps,
        edn_map=EdnMap,
    )
    _configured[0] = writer


def encode_key(key: Any, *, sort_keys: bool = False, strict: bool = False) -> str:
    """The text of one map key as :func:`encode` writes it inside a map."""
    return encode(key, sort_keys=sort_keys, strict=strict)
