"""Bulk loading into a :class:`SqliteStore`: values encoded before the write, elsewhere.

:meth:`SqliteStore.put_many` encodes its values on the connection's thread,
inside the write transaction, between SQLite's steps. For one call that is
right (one thread hop, the event loop never waits for the encoding), but a
bulk load of many batches then runs encode, write, encode, write in one
thread, and neither overlaps the other. Here the two halves are separate:

- :func:`encode_rows` turns ``(key, value)`` pairs into the rows put_many
  would write (key text, namespace, kind, stored JSON text). It is pure and
  blocking: run it in a worker thread, for batch *n + 1* while batch *n* is
  being written (SQLite releases the GIL while it steps, so the two overlap).
- :func:`put_rows` writes such rows in one transaction through the store's
  own write path: the same upsert (its rows read from one JSON array, so the
  whole batch is one SQLite statement that runs without the GIL), the same
  attribute rows (of the store's indexed attributes, read back from the
  rows' texts, only when it has some), the same schema checks (in the
  transaction, before any row), the same write lock and commit clock, the
  same ``commits`` record, history by the same triggers, the same rollback
  on error or cancellation, the same ``put_many`` span.
  The database afterwards is exactly what ``put_many`` of the same pairs
  would have made (tests compare the two).
- :func:`put_new_rows` does the same when none of the rows' keys exists yet,
  checked in the same transaction; otherwise it writes nothing and returns
  what is stored.
- :func:`fetch_stored_versions`, :func:`scan_stored`, :func:`text_encoding`
  and :func:`unexpected_versions` read stored texts and versions undecoded.

Only the actor that owns the store calls these (the database component, or
the owner the operator commands run; see
:mod:`garrison.components.database._bulk`).

The caller keeps the encoded texts, which a bulk load can use to compare
with what a database already holds without encoding the values again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

import orjson

from garrison.stores._attributes import AttributeRow, entity_attributes, index_statements
from garrison.stores._keys import key_namespace
from garrison.stores._sqlite_connection import raw_connection
from garrison.stores._sqlite_sql import META_SET, UPSERT, range_clause
from garrison.stores._values import decode_value, encode_value
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from garrison.stores._sqlite import SqliteStore
    from garrison.stores._sqlite_transaction import Statement

__all__ = [
    "EncodedRow",
    "encode_rows",
    "fetch_stored_versions",
    "put_new_rows",
    "put_rows",
    "rows_json",
    "scan_stored",
    "text_encoding",
    "unexpected_versions",
]

# UPSERT with its rows taken from one JSON array of [key, namespace, kind,
# value] arrays: one statement, so SQLite steps through the whole batch
# without taking the GIL back after each row as executemany does, and the
# next batch's encoding (Python, in another thread) runs beside it. Rows are
# inserted in array order, so the history's order is put_many's. ("WHERE
# true": SQLite's rule for an upsert whose rows come from a SELECT.)
_UPSERT_JSON: Final = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), ?2, ?2, 1 "
    "FROM json_each(?1) WHERE true "
    "ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, kind = excluded.kind, "
    "value = excluded.value, updated_at = excluded.updated_at, version = version + 1"
)
# The stored texts and versions of a list of keys (a JSON array): read-only
# access to many keys at once, undecoded (the store's get_many decodes every
# value, which a comparison does not need when the texts already agree).
_STORED_VERSIONS: Final = (
    "SELECT key, value, version FROM entries WHERE key IN (SELECT value FROM json_each(?1))"
)
# ?1 is a JSON object {key: expected version}; a missing key's version is NULL.
_UNEXPECTED_VERSIONS: Final = (
    "SELECT expected.key FROM json_each(?1) AS expected "
    "LEFT JOIN entries ON entries.key = expected.key "
    "WHERE entries.version IS NOT expected.value"
)
_CODECS: Final = {"UTF-8": "utf-8", "UTF-16LE": "utf-16-le", "UTF-16BE": "utf-16-be"}
# What orjson writes for a NUL character, at which SQLite's JSON reader ends a string.
_ESCAPED_NUL: Final = b"\\u0000"

#: One row for :func:`put_rows`: (key text, namespace or None, kind, stored JSON text).
EncodedRow: TypeAlias = tuple[str, str | None, str, str]


def encode_rows(items: Iterable[tuple[str, Any]], *, kind: str) -> list[EncodedRow]:
    """The rows ``put_many(items, kind=kind)`` would write (blocking: CPU only).

    Keys are key texts, as for ``put_many``. Raises :class:`EdnEncodeError`
    for a value that cannot be stored, before anything is written.
    """
    rows: list[EncodedRow] = []
    append = rows.append
    for key, value in items:
        text = encode_value(value)
        append((key, key_namespace(key), kind, text))
    return rows


async def put_rows(
    store: SqliteStore, rows: Sequence[EncodedRow], *, meta: tuple[str, Any] | None = None
) -> None:
    """Write ``rows`` (from :func:`encode_rows`) to ``store`` in one transaction.

    All of them or, on error, none; the history and the commit record are
    those of a ``put_many`` of the same pairs. ``meta`` is a setting
    ``(name, value)`` stored in the same transaction, as
    :meth:`SqliteStore.set_meta` would store it: a bulk load's progress
    record then commits with the batch it counts (and costs no commit of its
    own). Raises :class:`StoreError` naming the file and statement when
    SQLite fails, :class:`EdnEncodeError` (nothing written) when the
    setting's value cannot be stored.
    """
    if not rows:
        if meta is not None:
            await store.set_meta(*meta)
        return
    setting = () if meta is None else ((META_SET, (meta[0], encode_value(meta[1])), False),)

    db = raw_connection(store.connection) if store.schema.enforced else None

    def build(now: int) -> tuple[Statement, ...]:
        # Called on the connection's thread with the commit time.
        if db is not None:
            _enforce(store, db, rows)
        return (_upsert(rows, now), *_index(store, rows), *setting)

    with store_span(DB_SYSTEM_SQLITE, "put_many", "entries", query=UPSERT, batch_size=len(rows)):
        await store.write_statements(build)


def rows_json(rows: Sequence[EncodedRow]) -> str | None:
    """``rows`` as the JSON array the one-statement upsert reads, or ``None`` (blocking).

    ``None`` for rows it cannot carry: a text holding a NUL (or only seeming
    to: a value text holding the six characters \\u0000 of an escaped one),
    at which SQLite's JSON reader would end the string, or anything orjson
    refuses (a lone surrogate); those are written by put_many's own
    statement, row by row (and fail as it fails). A bulk load makes it in
    its encoding thread, off the write's path (:func:`put_new_rows`).
    """
    try:
        payload = orjson.dumps(rows)
    except TypeError:
        return None
    return None if _ESCAPED_NUL in payload else payload.decode()


def _upsert(rows: Sequence[EncodedRow], now: int, payload: str | bool | None = True) -> Statement:
    """The statement writing ``rows`` at ``now``; ``payload`` their :func:`rows_json` if made."""
    if payload is True:
        payload = rows_json(rows)
    if isinstance(payload, str):
        return (_UPSERT_JSON, (payload, now), False)
    timed: Iterator[tuple[Any, ...]] = ((row[0], row[1], row[2], row[3], now) for row in rows)
    return (UPSERT, timed, True)


def _index(store: SqliteStore, rows: Sequence[EncodedRow]) -> tuple[Statement, ...]:
    """The statements replacing the attribute rows of ``rows``' entities (a key's last row).

    None when the store indexes no attribute; otherwise the entities' values
    are read back from their stored text (only then is that paid).
    """
    declared = store.indexed
    if not declared:
        return ()
    indexed: dict[str, tuple[AttributeRow, ...] | None] = {}
    for key, _namespace, _kind, text in rows:
        indexed[key] = entity_attributes(decode_value(text), declared) if text[:1] == "{" else None
    return index_statements(raw_connection(store.connection), indexed)


def _enforce(store: SqliteStore, db: sqlite3.Connection, rows: Sequence[EncodedRow]) -> None:
    """Refuse ``rows`` that break the store's schema (on the connection's thread).

    Only the values of the kinds with rules are read back from their text.
    """
    schema = store.schema
    latest: dict[str, tuple[str, str]] = {}
    for key, _namespace, kind, text in rows:
        latest[key] = (kind, text)
    entries = [
        (key, kind, decode_value(text))
        for key, (kind, text) in latest.items()
        if schema.rules_for(kind) and text[:1] == "{"
    ]
    if entries:
        store.enforce(db, entries, written=latest)


class _Present(Exception):  # noqa: N818 - private; caught in put_new_rows
    """Raised on the connection's thread: keys of the rows exist; roll back, hand them over."""

    def __init__(self, found: list[Any]) -> None:
        super().__init__(f"{len(found)} keys exist")
        self.found = found


async def put_new_rows(
    store: SqliteStore,
    rows: Sequence[EncodedRow],
    *,
    meta: tuple[str, Any] | None = None,
    writing: Callable[[], object] | None = None,
    payload: str | bool | None = True,
) -> tuple[dict[str, str], dict[str, int]] | None:
    """:func:`put_rows`, if none of the rows' keys is in ``store`` yet; else nothing.

    The check and the write are one transaction (``BEGIN IMMEDIATE``: no
    other writer in between, so nobody can write one of the keys after the
    check). Returns ``None`` once the rows (and ``meta``) are committed;
    otherwise the stored value texts and versions of the keys that exist
    (as ``fetch_stored_versions`` gives them), with nothing written: the
    transaction rolled back, no commit recorded. ``writing()`` is called on
    the connection's thread once the check found none of the keys, as the
    rows go to SQLite (a bulk load starts its next batch's Python work then,
    while SQLite writes without the GIL); it must not block. ``payload`` is
    :func:`rows_json` of ``rows`` when the caller made it already (``True``,
    the default: not made, made here).
    """
    if not rows:
        await put_rows(store, rows, meta=meta)
        return None
    setting = () if meta is None else ((META_SET, (meta[0], encode_value(meta[1])), False),)
    keys = orjson.dumps([row[0] for row in rows]).decode()
    db = raw_connection(store.connection)

    def build(now: int) -> tuple[Statement, ...]:
        # On the connection's thread, inside the transaction, before any row.
        found = db.execute(_STORED_VERSIONS, (keys,)).fetchall()
        if found:
            raise _Present(found)
        if store.schema.enforced:
            _enforce(store, db, rows)
        statement = _upsert(rows, now, payload)
        if writing is not None:
            writing()
        return (statement, *_index(store, rows), *setting)

    with store_span(DB_SYSTEM_SQLITE, "put_many", "entries", query=UPSERT, batch_size=len(rows)):
        try:
            await store.write_statements(build)
        except _Present as present:
            found = present.found
            return {str(r[0]): str(r[1]) for r in found}, {str(r[0]): int(r[2]) for r in found}
    return None


# -- stored texts, undecoded (a bulk load compares and validates with them)


async def scan_stored(
    store: SqliteStore, prefix: str, after: str | None, limit: int
) -> list[tuple[str, bytes]]:
    """Up to ``limit`` (key, stored text's bytes) under ``prefix`` after ``after``, in key order.

    One walk of the primary key index a page at a time (the store's own key
    range for a prefix), instead of listing the keys and then looking each up.
    The texts come as SQLite holds them (UTF-8 in a garrison database, see
    :func:`text_encoding`), neither decoded nor encoded again: most are only
    hashed (the migrator's digest), and its text decoding decodes the rest.
    """
    # The clause holds only placeholders; prefix and page start are bound.
    where, params = range_clause(prefix, after)
    sql = f"SELECT key, CAST(value AS BLOB) FROM entries{where} ORDER BY key LIMIT ?"
    with store_span(DB_SYSTEM_SQLITE, "scan", "entries", query=sql):
        rows = await store.connection.execute_fetchall(sql, (*params, limit))
    return [(str(row[0]), bytes(row[1])) for row in rows]


async def text_encoding(store: SqliteStore) -> str:
    """The Python codec of ``store``'s texts: ``"utf-8"`` (SQLite's default, garrison's)."""
    with store_span(DB_SYSTEM_SQLITE, "encoding", "main", query="PRAGMA encoding"):
        rows = list(await store.connection.execute_fetchall("PRAGMA encoding"))
    return _CODECS.get(str(rows[0][0]).upper(), "utf-8")


async def fetch_stored_versions(
    store: SqliteStore, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """The stored value texts and versions of those ``keys`` that exist, read together."""
    if not keys:
        return {}, {}
    batch = len(keys)
    with store_span(
        DB_SYSTEM_SQLITE, "get_many", "entries", query=_STORED_VERSIONS, batch_size=batch
    ):
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
    batch = len(expected)
    with store_span(
        DB_SYSTEM_SQLITE, "check_versions", "entries", query=_UNEXPECTED_VERSIONS, batch_size=batch
    ):
        rows = await store.connection.execute_fetchall(
            _UNEXPECTED_VERSIONS, (orjson.dumps(expected).decode(),)
        )
    return [str(row[0]) for row in rows]
