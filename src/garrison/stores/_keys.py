"""How store keys are named: one canonical text per EDN key.

The legacy map's keys are EDN values, almost always namespaced keywords such
as ``:presence/s-1``. Every store in garrison names an entry by a *key text*:

- a keyword ``:ns/name`` is the text ``"ns/name"`` (its namespace is ``"ns"``);
- a Python ``str`` given as a key means the keyword with that text, so
  ``store.put("session/abc", …)`` and ``store.put(Keyword("session/abc"), …)``
  are the same entry;
- any other EDN key (a string, number, vector, map, symbol, …) is the text
  ``"#edn "`` followed by its EDN form, so it stays distinct and lossless. An
  EDN *string* used as a key is written :class:`StringKey` on the Python side.

The SQLite ``key`` column holds the key text; the EDN file gets the EDN key back
with :func:`edn_key`.
"""

from __future__ import annotations

from typing import Any, Final

from garrison.stores.edn import dumps, loads
from garrison.stores.edn._types import Keyword

__all__ = ["EDN_KEY_PREFIX", "StringKey", "edn_key", "key_namespace", "key_text"]

#: Marks a key text that holds the EDN form of a key that is not a keyword.
EDN_KEY_PREFIX: Final = "#edn "


class StringKey(str):
    """An EDN string used as a map key (a plain ``str`` key means a keyword)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"StringKey({str(self)!r})"


def key_text(key: Any) -> str:
    """The canonical text of ``key``.

    >>> key_text("presence/s-1"), key_text(Keyword("presence/s-1"))
    ('presence/s-1', 'presence/s-1')
    >>> key_text(StringKey("x"))
    '#edn "x"'
    """
    if type(key) is str:
        if not key:
            raise ValueError("a store key must not be empty")
        return key
    if isinstance(key, Keyword):
        return key.text
    raw = str(key) if isinstance(key, StringKey) else key
    # Sorted, so a map or set used as a key has exactly one text.
    return EDN_KEY_PREFIX + dumps(raw, sort_keys=True)


def edn_key(text: str) -> Any:
    """The EDN value a key text stands for (the inverse of :func:`key_text`).

    >>> edn_key("presence/s-1")
    Keyword('presence/s-1')
    """
    if text.startswith(EDN_KEY_PREFIX):
        return loads(text[len(EDN_KEY_PREFIX) :])
    return Keyword(text)


def key_namespace(text: str) -> str | None:
    """The namespace part of a key text, or ``None`` (no ``/`` or not a keyword).

    >>> key_namespace("learning/tag-index"), key_namespace("cache")
    ('learning', None)
    """
    if text.startswith(EDN_KEY_PREFIX):
        return None
    slash = text.find("/")
    return text[:slash] if slash > 0 else None
