"""Lossless value encoding for the SQLite store: plain JSON stays plain, the rest is tagged.

Format version 2 (:data:`VALUE_FORMAT_VERSION`; :class:`SqliteStore` records it
in its meta table and refuses a database written with a newer one; a format-1
database is upgraded by a schema migration, see :func:`upgrade_format_1`).

Plain JSON data is stored as the compact JSON text orjson writes, so SQLite's
JSON functions (``json_extract(value, '$.user.id')``) query it directly:

- ``None``, ``bool``, ``str``;
- ``int`` in the signed 64-bit range (SQLite's JSON functions read those as
  exact integers);
- finite ``float`` (``-0.0`` included);
- ``list`` of plain values; ``dict`` whose keys are all ``str`` not starting
  with ``:`` and whose values are plain, unless the dict is a *marker
  lookalike* (below).

**Maps with keyword keys are JSON objects too.** A ``dict`` whose every key is a
:class:`Keyword` or a ``str`` not starting with ``:`` is stored as a JSON
object; a keyword key is spelled as EDN spells it, with its colon
(``:session/user-id`` is the object key ``":session/user-id"``), so an object
key starting with ``:`` is always a keyword and any other object key is a
string. SQLite's JSON functions reach such a map's attributes
(``json_extract(value, '$.":session/user-id"')``). A map with any other key (a
number, a vector, ... or a ``str`` that starts with ``:``) is a ``#map``
marker, so no string key is ever read back as a keyword.

Every other value is written as a *marker*: a JSON object with exactly one key
that starts with ``#``. The marker's payload is itself encoded the same way, so
markers nest, and plain parts inside a tagged value stay queryable.

==================================  =========================================
Python value                        stored as
==================================  =========================================
:class:`Keyword` ``:ns/name``       ``{"#k": "ns/name"}``
:class:`Symbol`                     ``{"#sym": "ns/name"}``
:class:`Char`                       ``{"#char": "a"}``
``tuple`` (an EDN list)             ``{"#list": [...]}``
:class:`Vector`                     ``{"#vec": [...]}``
``frozenset`` (an EDN set)          ``{"#set": [...]}``
``set``                             ``{"#mutset": [...]}``
:class:`EdnSet`                     ``{"#eset": [...]}``
``dict`` with another key kind      ``{"#map": [[key, value], ...]}``
:class:`FrozenMap`                  ``{"#fmap": [[key, value], ...]}``
:class:`EdnMap`                     ``{"#emap": [[key, value], ...]}``
:class:`BigInt` ``42N``             ``{"#N": "42"}``
``int`` beyond 64 bits              ``{"#int": "123456789012345678901234"}``
NaN, ±infinity                      ``{"#float": "NaN"}``, ``"Infinity"``, ``"-Infinity"``
:class:`fractions.Fraction`         ``{"#ratio": "22/7"}``
:class:`decimal.Decimal`            ``{"#dec": "1.50"}`` (scale and sign kept)
:class:`datetime.datetime`          ``{"#inst": "2024-05-01T12:00:00.250000+02:00"}``
:class:`datetime.date`              ``{"#date": "2024-05-01"}``
:class:`datetime.time`              ``{"#time": "12:00:00"}``
:class:`uuid.UUID`                  ``{"#uuid": "…"}``
:class:`Tagged` ``#my/tag v``       ``{"#tag": ["my/tag", v]}``
a ``dict`` ``{"#x": v}``            ``{"#esc": {"#x": v}}``
==================================  =========================================

**Escaping.** Every single-key object whose key starts with ``#`` is reserved
for markers, including ones this version does not define (so a later version
can add markers without misreading old data). A user's own ``str``-keyed dict
that happens to have that shape is wrapped in ``#esc``; its values are still
encoded normally. Decoding an unknown marker raises :class:`StoreError` rather
than guessing.

**Clojure's equality.** Set elements and map keys are read back by Clojure's
``=``, as the EDN reader reads them (:mod:`garrison.edn._equality`):
an :class:`EdnSet` or :class:`EdnMap` (a set or map whose members Python's
``==`` would merge, such as ``1``, ``1.0`` and ``true``) has its own marker, so
it reads back as itself with every member, and a garrison that predates the
marker refuses the value instead of merging its members. A ``#set``, ``#map``
or ``#fmap`` whose members Python would merge reads back as an ``EdnSet`` or
``EdnMap`` too, never with fewer members.

**What is and is not kept.** Every EDN value and every plain Python value
listed above reads back equal and of the same type. A datetime's time zone is
kept as its UTC offset (a ``zoneinfo`` zone reads back as a fixed offset for
the same instant); ``fold`` is not kept. Subclasses of ``str``, ``int``,
``list`` and ``dict`` (other than :class:`BigInt`, :class:`Vector` and
``bool``) and other mappings and sequences are stored as the plain kind.
Values with no EDN form (bytes, arbitrary objects) raise
:class:`EdnEncodeError`, as the EDN file store would.

Encoding is the hot path of every write. The optional C accelerator
``garrison.stores._cvalues`` (built by ``setup.py`` when a C compiler is
available; off with ``GARRISON_NO_EXTENSIONS=1``) writes the text in one pass
and hands anything unusual (deep nesting, lone surrogates, parts it cannot
write) back to the pure-Python encoder below, which stays the reference: the
two give byte-identical texts, as stored digests and comparisons require. In
the pure encoder a plain value is checked with one tight walk and handed to
orjson. Decoding a text that contains neither ``{"#`` (which orjson writes only
for an object whose first key starts with ``#``) nor ``{":`` or ``,":`` (which
precede every keyword key) is a single ``orjson.loads``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

import orjson

from garrison.edn import (
    BigInt,
    Char,
    EdnMap,
    EdnSet,
    FrozenMap,
    Keyword,
    Symbol,
    Tagged,
    Vector,
    disabled_by_environment,
    distinct_map,
    distinct_set,
)
from garrison.exceptions import EdnEncodeError, StoreError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["VALUE_FORMAT_VERSION", "decode_value", "encode_value", "upgrade_format_1"]

#: The version of the stored value format described above.
VALUE_FORMAT_VERSION: Final = 2

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MARKER_HINT: Final = '{"#'
# A string starting with ":" right after "{" or "," (an object key spelling a
# keyword; in compact JSON a quote after either is never an escaped one).
_FIRST_KEYWORD_KEY: Final = '{":'
_NEXT_KEYWORD_KEY: Final = ',":'
_PLAIN_SCALARS: Final = frozenset({str, bool, type(None)})


def _plain_items(items: Iterable[Any]) -> bool:
    """Whether every one of ``items`` is plain. Scalars are checked inline, without a
    call each: this loop is most of the cost of encoding a typical record."""
    for item in items:
        kind = type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind is int:
            if _INT64_MIN <= item <= _INT64_MAX:
                continue
            return False
        if kind is float:
            # inf - inf and nan - nan are nan, which is unequal to 0.0.
            if item - item == 0.0:
                continue
            return False
        if not _is_plain(item):
            return False
    return True


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON data that orjson writes losslessly as is."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str or key[:1] == ":":
                return False
        if len(value) == 1 and next(iter(value)).startswith("#"):
            return False  # a marker lookalike: escaped by _tag
        return _plain_items(value.values())
    if kind is list:
        return _plain_items(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if kind is float:
        return bool(value - value == 0.0)
    return False


def _int_text(value: int) -> str:
    """``str(value)``, also past Python's ``int``/``str`` digit limit (EDN integers may be)."""
    try:
        return str(value)
    except ValueError:
        return str(Decimal(value))


def _text_int(text: str) -> int:
    """``int(text)``, also past Python's ``int``/``str`` digit limit."""
    try:
        return int(text)
    except ValueError:
        return int(Decimal(text))


def _object_keys(value: dict[Any, Any]) -> bool:
    """Whether ``value`` is stored as a JSON object: every key a keyword, or a string
    that does not start with ``:`` (the spelling that says "keyword")."""
    for key in value:
        kind = type(key)
        if kind is Keyword:
            continue
        if kind is not str or key[:1] == ":":
            return False
    return True


def _tag(value: Any) -> Any:
    """The JSON-ready structure of any value: plain parts as they are, the rest as markers."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else {"#int": _int_text(value)}
    if kind is float:
        if math.isfinite(value):
            return value
        return {
            "#float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        }
    if kind is dict:
        if _object_keys(value):
            tagged = {
                (":" + key.text if type(key) is Keyword else key): _tag(item)
                for key, item in value.items()
            }
            if len(tagged) == 1 and next(iter(tagged)).startswith("#"):
                return {"#esc": tagged}
            return tagged
        return {"#map": [[_tag(key), _tag(item)] for key, item in value.items()]}
    if kind is list:
        return [_tag(item) for item in value]
    if isinstance(value, Keyword):
        return {"#k": value.text}
    if isinstance(value, Symbol):
        return {"#sym": value.text}
    if isinstance(value, Char):
        return {"#char": value.value}
    if isinstance(value, BigInt):
        return {"#N": _int_text(int(value))}
    if isinstance(value, Vector):
        return {"#vec": [_tag(item) for item in value]}
    if isinstance(value, tuple):
        return {"#list": [_tag(item) for item in value]}
    if isinstance(value, frozenset):
        return {"#set": [_tag(item) for item in value]}
    if isinstance(value, set):
        return {"#mutset": [_tag(item) for item in value]}
    if isinstance(value, FrozenMap):
        return {"#fmap": [[_tag(key), _tag(item)] for key, item in value.items()]}
    if isinstance(value, EdnSet):
        return {"#eset": [_tag(item) for item in value]}
    if isinstance(value, EdnMap):
        return {"#emap": [[_tag(key), _tag(item)] for key, item in value.items()]}
    if isinstance(value, Decimal):
        return {"#dec": str(value)}
    if isinstance(value, Fraction):
        return {"#ratio": f"{_int_text(value.numerator)}/{_int_text(value.denominator)}"}
    if isinstance(value, dt.datetime):
        return {"#inst": value.isoformat()}
    if isinstance(value, dt.date):
        return {"#date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"#time": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"#uuid": str(value)}
    if isinstance(value, Tagged):
        return {"#tag": [value.tag, _tag(value.value)]}
    # Subclasses of the plain kinds, and other mappings and sequences.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return _tag(int(value))
    if isinstance(value, float):
        return _tag(float(value))
    if isinstance(value, Mapping):
        return _tag(dict(value))
    if isinstance(value, list):
        return _tag(list(value))
    raise EdnEncodeError(f"cannot store a value of type {kind.__qualname__}: it has no EDN form")


def _dumps(structure: Any) -> str:
    try:
        return orjson.dumps(structure).decode()
    except orjson.JSONEncodeError as exc:
        if "recursion" not in str(exc).lower():
            raise EdnEncodeError(f"cannot store this value: {exc}") from exc
    # orjson stops at 255 levels of nesting; the standard library goes as deep as
    # Python's recursion limit, and deep legacy data must still be storable.
    try:
        return json.dumps(structure, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except RecursionError as exc:
        raise EdnEncodeError("cannot store this value: it nests too deeply") from exc


def _load_accelerator() -> ModuleType | None:
    """The configured C encoder, or ``None`` (not built, or turned off by the environment)."""
    if disabled_by_environment():
        return None
    try:
        module = importlib.import_module("garrison.stores._cvalues")
    except ImportError:
        return None
    module.configure(
        keyword=Keyword,
        symbol=Symbol,
        vector=Vector,
        uuid=uuid.UUID,
        datetime=dt.datetime,
        date=dt.date,
        tag=_tag,
    )
    return module


#: The C encoder (``garrison.stores._cvalues``) or ``None``; read at each call,
#: so tests can compare both paths by setting it to ``None``.
accelerator: ModuleType | None = _load_accelerator()


def encode_value(value: Any) -> str:
    """The stored JSON text of ``value`` (see the module docstring for the format).

    >>> encode_value({"a": [1, 2.5, None]})
    '{"a":[1,2.5,null]}'
    >>> encode_value(Keyword("user/name"))
    '{"#k":"user/name"}'
    """
    if accelerator is not None:
        text: str | None = accelerator.encode(value)
        if text is not None:
            return text
    return encode_value_pure(value)


def encode_value_pure(value: Any) -> str:
    """:func:`encode_value` without the C accelerator: the reference the accelerator matches."""
    try:
        if _is_plain(value):
            return _dumps(value)
        return _dumps(_tag(value))
    except RecursionError as exc:
        raise EdnEncodeError("cannot store this value: it nests too deeply") from exc


def _hashable(value: Any) -> Any:
    """``value`` made usable as a map key or set element."""
    if type(value) is list:
        return Vector(value)
    if type(value) is dict:
        return FrozenMap(value)
    if type(value) is set:
        return frozenset(value)
    return value


def _pairs(payload: list[list[Any]]) -> list[Any]:
    """Alternating keys and values, the keys made hashable."""
    items: list[Any] = []
    for key, item in payload:
        items.append(_hashable(_untag(key)))
        items.append(_untag(item))
    return items


def _set(members: list[Any]) -> frozenset[Any] | EdnSet:
    """A set by Clojure's ``=``: a ``frozenset`` unless Python would merge members."""
    result = frozenset(members)
    if len(result) != len(members):
        return distinct_set(members)[0]
    return result


def _map(items: list[Any]) -> dict[Any, Any] | EdnMap:
    """A map by Clojure's ``=``: a ``dict`` unless Python would merge keys."""
    it = iter(items)
    result = dict(zip(it, it, strict=True))
    if len(result) * 2 != len(items):
        return distinct_map(items)[0]
    return result


def _untag(node: Any) -> Any:
    """The Python value of a decoded JSON structure, markers turned back into values."""
    kind = type(node)
    if kind is list:
        return [_untag(item) for item in node]
    if kind is not dict:
        return node
    if len(node) == 1:
        ((marker, payload),) = node.items()
        if marker.startswith("#"):
            return _unmark(marker, payload)
    return {
        (Keyword(key[1:]) if key[:1] == ":" else key): _untag(item) for key, item in node.items()
    }


_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _unmark(marker: str, payload: Any) -> Any:
    if marker == "#k":
        return Keyword(payload)
    if marker == "#esc":
        return {key: _untag(item) for key, item in payload.items()}
    if marker == "#list":
        return tuple(_untag(item) for item in payload)
    if marker == "#vec":
        return Vector(_untag(item) for item in payload)
    if marker == "#set":
        return _set([_hashable(_untag(item)) for item in payload])
    if marker == "#mutset":
        members = _set([_hashable(_untag(item)) for item in payload])
        return set(members) if type(members) is frozenset else members
    if marker == "#map":
        return _map(_pairs(payload))
    if marker == "#fmap":
        pairs = _map(_pairs(payload))
        return FrozenMap(pairs) if type(pairs) is dict else pairs
    if marker == "#eset":
        return EdnSet([_hashable(_untag(item)) for item in payload])
    if marker == "#emap":
        it = iter(_pairs(payload))
        return EdnMap(zip(it, it, strict=True))
    if marker == "#sym":
        return Symbol(payload)
    if marker == "#char":
        return Char(payload)
    if marker == "#N":
        return BigInt(_text_int(payload))
    if marker == "#int":
        return _text_int(payload)
    if marker == "#float":
        return _FLOATS[payload]
    if marker == "#dec":
        return Decimal(payload)
    if marker == "#ratio":
        numerator, _, denominator = payload.partition("/")
        return Fraction(_text_int(numerator), _text_int(denominator))
    if marker == "#inst":
        return dt.datetime.fromisoformat(payload)
    if marker == "#date":
        return dt.date.fromisoformat(payload)
    if marker == "#time":
        return dt.time.fromisoformat(payload)
    if marker == "#uuid":
        return uuid.UUID(payload)
    if marker == "#tag":
        tag, inner = payload
        return Tagged(tag, _untag(inner))
    raise StoreError(
        f"stored value uses the marker {marker!r}, unknown to value format "
        f"{VALUE_FORMAT_VERSION}: was it written by a newer garrison?"
    )


def decode_value(text: str) -> Any:
    """The value whose stored JSON text is ``text`` (the inverse of :func:`encode_value`).

    >>> decode_value('{"#k":"user/name"}')
    Keyword('user/name')
    """
    try:
        node = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "recursion" not in str(exc).lower():
            raise StoreError(f"stored value is not valid JSON: {exc}") from exc
        node = json.loads(text)  # deeper than orjson reads; see _dumps
    if (
        _MARKER_HINT not in text
        and _FIRST_KEYWORD_KEY not in text
        and _NEXT_KEYWORD_KEY not in text
    ):
        return node
    try:
        return _untag(node)
    except RecursionError as exc:
        raise StoreError("stored value nests too deeply to decode") from exc
    except StoreError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"stored value has a malformed marker: {exc}") from exc


def _format_1_objects(node: Any) -> Any:
    """A format-1 JSON structure with each object whose keys start with ``:`` (plain
    strings in format 1) turned into the ``#map`` pairs format 2 keeps such maps as."""
    kind = type(node)
    if kind is list:
        return [_format_1_objects(item) for item in node]
    if kind is not dict:
        return node
    if any(key[:1] == ":" for key in node):
        return {"#map": [[key, _format_1_objects(item)] for key, item in node.items()]}
    return {key: _format_1_objects(item) for key, item in node.items()}


def upgrade_format_1(text: str | None) -> str | None:
    """The format-2 text of the value a format-1 text ``text`` stores (``None`` stays).

    Format 1 kept every map with a keyword key as ``#map`` pairs and read an object
    key starting with ``:`` as a string; format 2 keeps keyword keys in the object.
    The schema migration runs this as an SQL function over every stored value.
    """
    if text is None:
        return None
    try:
        node = orjson.loads(text)
    except orjson.JSONDecodeError:
        node = json.loads(text)  # deeper than orjson reads; see _dumps
    return encode_value(_untag(_format_1_objects(node)))
