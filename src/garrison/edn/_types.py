"""The Python values that stand for EDN's own kinds.

The mapping between EDN and Python (the codec's contract, also used by the
stores to keep values lossless):

=================  ==========================================================
EDN                Python
=================  ==========================================================
nil true false     ``None`` ``True`` ``False``
42  / 42N          ``int`` / :class:`BigInt` (an ``int`` that remembers ``N``)
1.5 / 1.50M        ``float`` / :class:`decimal.Decimal` (scale kept)
22/7               :class:`fractions.Fraction`
"text"             ``str``
\\a                :class:`Char`
:ns/name           :class:`Keyword`
ns/name            :class:`Symbol`
[1 2]              ``list`` (:class:`Vector` where it must be hashable)
(1 2)              ``tuple``
{:a 1}             ``dict`` (:class:`FrozenMap` where it must be hashable)
#{1 2}             ``frozenset`` (a ``set`` is written the same way)
{0 :a false :b}    :class:`EdnMap`, when Python's ``==`` would merge keys
#{1 true 1.0}      :class:`EdnSet`, when Python's ``==`` would merge elements
#inst "…"          timezone-aware :class:`datetime.datetime`
#uuid "…"          :class:`uuid.UUID`
#tag value         :class:`Tagged` (records, ``#object[…]``, any unknown tag)
=================  ==========================================================

Keywords, symbols and chars compare by value and never equal a ``str``, so a
map may hold ``:a``, ``a`` and ``"a"`` as three different keys.

Set elements and map keys follow Clojure's ``=``, where booleans are never
numbers and integers, doubles, ratios and decimals are never equal to each
other. A map or set whose keys or elements Python's ``==`` would merge
(``0``, ``false``, ``0.0``) is read as an :class:`EdnMap` or :class:`EdnSet`
(:mod:`garrison.edn._equality`), which look members up by Clojure's
``=``; every other map and set stays a ``dict`` and a ``frozenset``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final

__all__ = ["BigInt", "Char", "FrozenMap", "Keyword", "Symbol", "Tagged", "Vector"]


class _Named:
    """Shared body of :class:`Keyword` and :class:`Symbol`: ``ns/name`` text."""

    __slots__ = ("_hash", "name", "namespace", "text")
    _salt: ClassVar[int] = 0

    text: str
    namespace: str | None
    name: str
    _hash: int

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError(f"{type(self).__name__} text must be a non-empty str, got {text!r}")
        # object.__setattr__ skips the immutability guard: the codec creates
        # one keyword per distinct text it reads, so this is on a hot path.
        setattr_ = object.__setattr__
        setattr_(self, "text", text)
        slash = text.find("/")
        if slash <= 0 or text == "/":
            setattr_(self, "namespace", None)
            setattr_(self, "name", text)
        else:
            setattr_(self, "namespace", text[:slash])
            setattr_(self, "name", text[slash + 1 :])
        setattr_(self, "_hash", hash((self._salt, text)))

    @classmethod
    def from_parts(cls, namespace: str | None, name: str) -> Any:
        """Build from a namespace (or ``None``) and a name, like Clojure's ``(keyword ns name)``."""
        return cls(f"{namespace}/{name}" if namespace else name)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return type(other) is type(self) and other.text == self.text

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.text < other.text

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self), (self.text,))

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_hash"):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)


class Keyword(_Named):
    """An EDN keyword. ``Keyword("presence/s-1")`` is ``:presence/s-1``.

    ``text`` is the keyword without its colon; ``namespace`` and ``name`` split
    it at the first ``/`` as Clojure does.
    """

    __slots__ = ()
    _salt: ClassVar[int] = 0x6B77

    def __repr__(self) -> str:
        return f"Keyword({self.text!r})"

    def __str__(self) -> str:
        return ":" + self.text


class Symbol(_Named):
    """An EDN symbol. ``Symbol("clojure.core/inc")``."""

    __slots__ = ()
    _salt: ClassVar[int] = 0x73796D

    def __repr__(self) -> str:
        return f"Symbol({self.text!r})"

    def __str__(self) -> str:
        return self.text


class Char:
    """An EDN character (``\\a``, ``\\newline``): one code point, never equal to a ``str``."""

    __slots__ = ("_hash", "value")
    value: str
    _hash: int

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or len(value) != 1:
            raise ValueError(f"Char needs exactly one character, got {value!r}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_hash", hash(("char", value)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return type(other) is Char and other.value == self.value

    def __lt__(self, other: object) -> bool:
        if type(other) is not Char:
            return NotImplemented
        return self.value < other.value

    def __repr__(self) -> str:
        return f"Char({self.value!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Char, (self.value,))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Char is immutable")


class BigInt(int):
    """An integer written with Clojure's ``N`` suffix (a ``clojure.lang.BigInt``).

    It is an ``int`` in every way except that it prints back as ``42N``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"BigInt({int(self)})"


class Vector(tuple[Any, ...]):
    """An EDN vector in a place that must be hashable (a map key, a set element).

    Elsewhere vectors are plain ``list``. Like Clojure, a vector equals the list
    with the same elements.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"Vector({list(self)!r})"


class FrozenMap(Mapping[Any, Any]):
    """An EDN map in a place that must be hashable. Equal to a ``dict`` with the same items."""

    __slots__ = ("_data", "_hash")
    _data: dict[Any, Any]
    _hash: int | None

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(frozenset(self._data.items())))
        assert self._hash is not None
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, tuple[dict[Any, Any]]]:
        return (FrozenMap, (self._data,))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FrozenMap is immutable")


class Tagged:
    """A tagged literal the codec does not interpret: ``#my.ns.Rec{:a 1}``, ``#object[…]``.

    ``tag`` is the tag symbol's text without ``#``; ``value`` is the element that
    followed it. A ``Tagged`` dumps back exactly as it was read.
    """

    __slots__ = ("tag", "value")
    tag: str
    value: Any

    def __init__(self, tag: str, value: Any) -> None:
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "value", value)

    def __eq__(self, other: object) -> bool:
        # ``is`` first, as containers compare their items: the reader's one NaN
        # object then equals itself, as Clojure's does (#a/b ##NaN twice is a
        # duplicate set element).
        return (
            type(other) is Tagged
            and other.tag == self.tag
            and (other.value is self.value or other.value == self.value)
        )

    def __hash__(self) -> int:
        # The value may be a list or a dict, and an equal value its hashable
        # twin (Vector, FrozenMap): both hash as the twin. By tag alone, a set
        # of many records of one tag would take quadratic time to build.
        from garrison.edn._reader import _freeze  # noqa: PLC0415 - _reader imports this module

        return hash(("tagged", self.tag, _freeze(self.value)))

    def __repr__(self) -> str:
        return f"Tagged({self.tag!r}, {self.value!r})"

    def __reduce__(self) -> tuple[Any, tuple[str, Any]]:
        return (Tagged, (self.tag, self.value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Tagged is immutable")


#: Clojure's printed names for the special characters, both ways.
CHAR_NAMES: Final[dict[str, str]] = {
    "newline": "\n",
    "space": " ",
    "tab": "\t",
    "return": "\r",
    "formfeed": "\f",
    "backspace": "\b",
}
