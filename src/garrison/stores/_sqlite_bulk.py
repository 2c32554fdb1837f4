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
  write lock and commit clock, the same ``commits`` record, history by the
  same triggers, the same rollback on error or cancellation, the same
  ``put_many`` span. The database afterwards is exactly what ``put_many`` of
  the same pairs would have made (tests compare the two).
- :func:`put_new_rows` does the same when none of the rows' keys exists yet,
  checked in the same transaction; otherwise it writes nothing and returns
  what is stored.

The caller keeps the encoded texts, which a bulk load can use to compare
with what a database already holds without encoding the values again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

import orjson

from garrison.stores._keys import key_namespace
from garrison.stores._sqlite_connection import raw_connection
from garrison.stores._sqlite_sql import META_SET, UPSERT
from garrison.stores._values import encode_value
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from garrison.stores._sqlite import SqliteStore
    from garrison.stores._sqlite_transaction import Statement

__all__ = ["EncodedRow", "encode_rows", "put_new_rows", "put_rows", "rows_json"]

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
# The stored texts and versions of a list of keys (a JSON array), as the
# migrator's fetch_stored_versions reads them.
_STORED_VERSIONS: Final = (
    "SELECT key, value, version FROM entries WHERE key IN (SELECT value FROM json_each(?1))"
)
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
        append((key, key_namespace(key), kind, encode_value(value)))
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

    def build(now: int) -> tuple[Statement, ...]:
        # Called on the connection's thread with the commit time.
        return (_upsert(rows, now), *setting)

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
    timed: Iterator[tuple[Any, ...]] = (
        (text, namespace, kind, value, now) for text, namespace, kind, value in rows
    )
    return (UPSERT, timed, True)


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
        statement = _upsert(rows, now, payload)
        if writing is not None:
            writing()
        return (statement, *setting)

    with store_span(DB_SYSTEM_SQLITE, "put_many", "entries", query=UPSERT, batch_size=len(rows)):
        try:
            await store.write_statements(build)
        except _Present as present:
            found = present.found
            return {str(r[0]): str(r[1]) for r in found}, {str(r[0]): int(r[2]) for r in found}
    return None
