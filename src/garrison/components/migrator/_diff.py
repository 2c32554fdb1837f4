"""Comparing a value read from the EDN file with the text the database holds, and short diffs.

The fast path compares the database's stored text with the encoding of the
file's value: the value encoding is lossless and deterministic, so equal
texts mean equal values, and no database value has to be decoded. When the
texts differ (another map order, a different value) the stored value is
decoded and compared strictly with :func:`garrison.stores._compare.same_value`
(``1``, ``1.0`` and ``true`` differ; so do a vector and a list).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from garrison.edn import dumps
from garrison.exceptions import EdnError, StoreError
from garrison.stores import decode_value, encode_value, same_value

__all__ = [
    "same_as_stored",
    "short_diff",
    "stored_digest",
    "stored_text",
    "text_digest",
]

_TEXT_LIMIT: Final = 60


def stored_digest(data: bytes) -> bytes:
    """:func:`text_digest` of a stored text, from its UTF-8 bytes (see :func:`scan_stored`)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def stored_text(data: bytes, key: str, encoding: str = "utf-8") -> str:
    """The stored text of ``key`` from its bytes; :class:`StoreError` if they are not text."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise StoreError(f"cannot decode the stored value: {exc}", key=key) from exc


def same_as_stored(
    value: Any, stored: str, key: str, *, encoded: str | None = None
) -> tuple[bool, Any]:
    """``(same, stored value)``: whether the stored text holds ``value`` exactly.

    ``encoded`` is ``encode_value(value)`` when the caller has it already.
    The stored value is decoded only when the texts differ (else it is ``value``).
    """
    try:
        if (encode_value(value) if encoded is None else encoded) == stored:
            return True, value
    except EdnError:
        pass  # no stored form: it cannot be the same
    try:
        decoded = decode_value(stored)
    except StoreError as exc:
        raise StoreError(f"cannot decode the stored value: {exc}", key=key) from exc
    return same_value(value, decoded), decoded


def text_digest(text: str) -> bytes:
    """A 128-bit BLAKE2b digest of a stored value text.

    A migration keeps these (16 bytes a key instead of the text) for the keys
    it wrote or found unchanged, so that the validation right after it can
    tell equal texts apart from different ones without encoding each value
    of the file again; a collision is as likely as a random 128-bit match.
    """
    return stored_digest(text.encode("utf-8", "surrogatepass"))


def _text(value: Any) -> str:
    try:
        text = dumps(value, sort_keys=True)
    except EdnError:
        text = repr(value)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def short_diff(edn_value: Any, sqlite_value: Any, *, limit: int = 3) -> str:
    """A one-line readable difference: changed, added and removed map keys, or both values.

    >>> from garrison.edn import Keyword
    >>> short_diff({Keyword("a"): 1, Keyword("b"): 2}, {Keyword("a"): 1, Keyword("b"): 3})
    ':b edn 2 != sqlite 3'
    """
    if isinstance(edn_value, dict) and isinstance(sqlite_value, dict):
        parts: list[str] = []
        for key in edn_value:
            if key not in sqlite_value:
                parts.append(f"{_text(key)} only in edn")
            elif not same_value(edn_value[key], sqlite_value[key]):
                parts.append(
                    f"{_text(key)} edn {_text(edn_value[key])} != sqlite {_text(sqlite_value[key])}"
                )
        parts += [f"{_text(key)} only in sqlite" for key in sqlite_value if key not in edn_value]
        if parts:
            more = f"; … {len(parts) - limit} more" if len(parts) > limit else ""
            return "; ".join(parts[:limit]) + more
    return f"edn {_text(edn_value)} != sqlite {_text(sqlite_value)}"
