"""How store keys are named: one canonical text per EDN key.

The legacy map's keys are EDN values, almost always namespaced keywords such
as ``:presence/s-1``. Every store in garrison names an entry by a *key text*:

- a keyword ``:ns/name`` is the text ``"ns/name"`` (its namespace is ``"ns"``);
- a Python ``str`` given as a key means the keyword with that text, so
  ``store.put("session/abc", …)`` and ``store.put(Keyword("session/abc"), …)``
  are the same entry. The keyword may be spelt with its colon as well:
  ``":session/abc"`` is the same key (the colon is dropped), everywhere a key
  is taken (the Python API and every CLI command);
- any other EDN key (a string, number, vector, map, symbol, …) is the text
  ``"#edn "`` followed by its EDN form, so it stays distinct and lossless. An
  EDN *string* used as a key is written :class:`StringKey` on the Python side.

The SQLite ``key`` column holds the key text; the EDN file gets the EDN key back
with :func:`edn_key`.

A key is normalised once, where it enters: the database component's messages
do it when they are built (:func:`write_key_text` for a write,
:func:`lookup_text` for a read or delete, :func:`key_prefix` for a prefix), and
so do the readers of the EDN file and the CLI. The stores below (the mode
router, SQLite, the EDN file) take key texts and trust them.

A key that has no EDN form is refused with a :class:`~garrison.exceptions.StoreError`
naming it: a keyword text with a character the EDN writer cannot put in a
keyword (whitespace, ``,()[]{}"\\;``), ``"::x"``, an empty text, or a ``"#edn "``
text that is not the canonical form of an EDN key. Every text :func:`key_text`
returns is written to the EDN file and read back as the same key.
"""

from __future__ import annotations

import re
from typing import Any, Final

from garrison.edn import Keyword, dumps, loads
from garrison.exceptions import EdnError, RefusedWriteError, StoreError

__all__ = [
    "EDN_KEY_PREFIX",
    "StringKey",
    "edn_key",
    "key_namespace",
    "key_prefix",
    "key_text",
    "lookup_text",
    "write_key_text",
]

#: Marks a key text that holds the EDN form of a key that is not a keyword.
EDN_KEY_PREFIX: Final = "#edn "

# The EDN writer's rule for the text of a keyword (without its colon), plus no
# leading colon: exactly the texts it writes and the reader reads back as the
# same keyword. tests/stores/test_keys.py keeps this in step with the writer.
_KEYWORD_TEXT: Final = re.compile(
    r'[^\s,()\[\]{}"\\;\ud800-\udfff:][^\s,()\[\]{}"\\;\ud800-\udfff]*'
)
_is_keyword_text: Final = _KEYWORD_TEXT.fullmatch


class StringKey(str):
    """An EDN string used as a map key (a plain ``str`` key means a keyword)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"StringKey({str(self)!r})"


def key_text(key: Any) -> str:
    """The canonical text of ``key``; raises :class:`StoreError` for a key with no EDN form.

    >>> key_text("presence/s-1"), key_text(":presence/s-1"), key_text(Keyword("presence/s-1"))
    ('presence/s-1', 'presence/s-1', 'presence/s-1')
    >>> key_text(StringKey("x"))
    '#edn "x"'
    """
    if type(key) is str:
        # The hot path of every operation: a plain keyword text.
        if _is_keyword_text(key) is not None:
            return key
        return _unusual_text(key)
    if isinstance(key, Keyword):
        text = key.text
        if _is_keyword_text(text) is None:
            raise StoreError(
                f"this key is not an EDN keyword: it {_why_not_keyword(text)}", key=text
            )
        return text
    raw = str(key) if isinstance(key, StringKey) else key
    try:
        # Sorted, so a map or set used as a key has exactly one text.
        return EDN_KEY_PREFIX + dumps(raw, sort_keys=True)
    except EdnError as exc:
        raise StoreError(f"the key {raw!r} has no EDN form: {exc}") from exc


def write_key_text(key: Any) -> str:
    """:func:`key_text` for a key about to be written: a key with no EDN form is a refused write.

    Raises :class:`~garrison.exceptions.RefusedWriteError` naming the key.

    >>> write_key_text(":session/abc")
    'session/abc'
    """
    if type(key) is str and _is_keyword_text(key) is not None:
        return key  # the hot path of every write: a plain keyword text
    try:
        return key_text(key)
    except StoreError as exc:
        refused = RefusedWriteError(f"refused: {exc}")
        refused.key = exc.key
        raise refused from exc


def lookup_text(key: Any) -> str:
    """The key text a read or delete of ``key`` looks for: :func:`key_text`'s
    spelling, without its check of a plain ``str``.

    A write is checked (``key_text``) where it enters the stores, so a key with
    no EDN form is never stored; a read of one finds nothing, as for any absent
    key, and costs no check on the hot path of every read.

    >>> lookup_text(":presence/s-1"), lookup_text("presence/s-1")
    ('presence/s-1', 'presence/s-1')
    """
    if type(key) is str and key and key[0] != ":":
        return key
    return key_text(key)


def _unusual_text(text: str) -> str:
    """A ``str`` key that is not a plain keyword text: the colon form, a ``#edn`` text, or bad."""
    if text.startswith(EDN_KEY_PREFIX):
        try:
            parsed = loads(text[len(EDN_KEY_PREFIX) :])
            canonical = key_text(StringKey(parsed) if type(parsed) is str else parsed)
        except (EdnError, StoreError) as exc:
            raise StoreError(
                f"the {EDN_KEY_PREFIX!r} key text is not EDN: {exc}", key=text
            ) from exc
        if canonical != text:
            raise StoreError(
                f"the {EDN_KEY_PREFIX!r} key text is not in its canonical form {canonical!r}",
                key=text,
            )
        return text
    if text.startswith(":") and _KEYWORD_TEXT.fullmatch(text, 1) is not None:
        return text[1:]  # ":session/abc" spells the keyword with its colon
    why = _why_not_keyword(text, spelt_with_colon=True)
    raise StoreError(f"this key is not an EDN keyword: it {why}", key=text)


def _why_not_keyword(text: str, *, spelt_with_colon: bool = False) -> str:
    if not text or (text == ":" and spelt_with_colon):
        return "is empty"
    if text.startswith("::"):
        return "starts with '::' (an auto-resolved keyword, which EDN does not have)"
    start = 1 if spelt_with_colon and text.startswith(":") else 0
    bad = next(
        (i for i in range(start, len(text)) if _is_keyword_text("a" + text[i]) is None),
        start,
    )
    return f"contains {text[bad]!r} at position {bad + 1}, which cannot appear in a keyword"


def key_prefix(prefix: str) -> str:
    """The key-text prefix a scan, count or watch of ``prefix`` matches.

    The colon of a keyword is dropped, as :func:`key_text` drops it:

    >>> key_prefix(":session/"), key_prefix("session/")
    ('session/', 'session/')
    """
    return prefix[1:] if prefix.startswith(":") else prefix


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
