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
from typing import TYPE_CHECKING, Any, Final

import orjson

from garrison.edn import dumps
from garrison.exceptions import EdnError, StoreError
from garrison.stores import decode_value, encode_value, range_clause, same_value

if TYPE_CHECKING:
    from collections.abc import Sequence

    from garrison.stores import SqliteStore

__all__ = [
    "fetch_stored_versions",
    "same_as_stored",
    "scan_stored",
    "short_diff",
    "stored_digest",
    "stored_text",
    "text_digest",
    "text_encoding",
    "unexpected_versions",
]

# Read-only access to the stored texts of many keys at once: the store's own
# get_many decodes every value, which the comparisons do not need when the
# texts already agree. Same table and key-list form as SqliteStore's get_many.
_STORED_VERSIONS: Final = (
    "SELECT key, value, version FROM entries WHERE key IN (SELECT value FROM json_each(?1))"
)
# ?1 is a JSON object {key: expected version}; a missing key's version is NULL.
_UNEXPECTED_VERSIONS: Final = (
    "SELECT expected.key FROM json_each(?1) AS expected "
    "LEFT JOIN entries ON entries.key = expected.key "
    "WHERE entries.version IS NOT expected.value"
)
_TEXT_LIMIT: Final = 60
_CODECS: Final = {"UTF-8": "utf-8", "UTF-16LE": "utf-16-le", "UTF-16BE": "utf-16-be"}


async def scan_stored(
    store: SqliteStore, prefix: str, after: str | None, limit: int
) -> list[tuple[str, bytes]]:
    """Up to ``limit`` (key, stored text's bytes) under ``prefix`` after ``after``, in key order.

    One walk of the primary key index a page at a time (the store's own key
    range for a prefix), instead of listing the keys and then looking each up.
    The texts come as SQLite holds them (UTF-8 in a garrison database, see
    :func:`text_encoding`), neither decoded nor encoded again: most are only
    hashed (:func:`stored_digest`), and :func:`stored_text` decodes the rest.
    """
    # The clause holds only placeholders; prefix and page start are bound.
    where, params = range_clause(prefix, after)
    rows = await store.connection.execute_fetchall(
        f"SELECT key, CAST(value AS BLOB) FROM entries{where} ORDER BY key LIMIT ?",
        (*params, limit),
    )
    return [(str(row[0]), bytes(row[1])) for row in rows]


async def text_encoding(store: SqliteStore) -> str:
    """The Python codec of ``store``'s texts: ``"utf-8"`` (SQLite's default, garrison's)."""
    rows = list(await store.connection.execute_fetchall("PRAGMA encoding"))
    return _CODECS.get(str(rows[0][0]).upper(), "utf-8")


def stored_digest(data: bytes) -> bytes:
    """:func:`text_digest` of a stored text, from its UTF-8 bytes (see :func:`scan_stored`)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def stored_text(data: bytes, key: str, encoding: str = "utf-8") -> str:
    """The stored text of ``key`` from its bytes; :class:`StoreError` if they are not text."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise StoreError(f"cannot decode the stored value: {exc}", key=key) from exc


async def fetch_stored_versions(
    store: SqliteStore, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """The stored value texts and versions of those ``keys`` that exist, read together."""
    if not keys:
        return {}, {}
    rows = await store.connection.execute_fetchall(
        _STORED_VERSIONS, (orjson.dumps(list(keys)).decode(),)
    )
    return {str(r[0]): str(r[1]) for r in rows}, {str(r[0]): int(r[2]) for r in rows}


async def unexpected_versions(store: SqliteStore, expected: dict[str, int]) -> list[str]:
    """Those keys of ``expected`` whose version is not the one given (or that are gone).

    The comparison runs in SQLite, so only the (usually no) keys that differ
    come back: cheaper than reading the version of every key of a batch.
    """
    if not expected:
        return []
    rows = await store.connection.execute_fetchall(
        _UNEXPECTED_VERSIONS, (orjson.dumps(expected).decode(),)
    )
    return [str(row[0]) for row in rows]


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
