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
  own write path: the same ``UPSERT``, the same write lock and commit clock,
  the same ``commits`` record, history by the same triggers, the same
  rollback on error or cancellation, the same ``put_many`` span. The database
  afterwards is exactly what ``put_many`` of the same pairs would have made
  (tests compare the two).

The caller keeps the encoded texts, which a bulk load can use to compare
with what a database already holds without encoding the values again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from garrison.stores._keys import key_namespace, key_text
from garrison.stores._sqlite_sql import META_SET, UPSERT
from garrison.stores._tracing import DB_SYSTEM_SQLITE, store_span
from garrison.stores._values import encode_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from garrison.stores._sqlite import SqliteStore
    from garrison.stores._sqlite_transaction import Statement

__all__ = ["EncodedRow", "encode_rows", "put_rows"]

#: One row for :func:`put_rows`: (key text, namespace or None, kind, stored JSON text).
EncodedRow: TypeAlias = tuple[str, str | None, str, str]


def encode_rows(items: Iterable[tuple[Any, Any]], *, kind: str) -> list[EncodedRow]:
    """The rows ``put_many(items, kind=kind)`` would write (blocking: CPU only).

    Keys are key texts or anything :func:`key_text` accepts, as for
    ``put_many``. Raises :class:`EdnEncodeError` for a value that cannot be
    stored, before anything is written.
    """
    rows: list[EncodedRow] = []
    append = rows.append
    for key, value in items:
        text = key if type(key) is str and key else key_text(key)
        append((text, key_namespace(text), kind, encode_value(value)))
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
        # Called on the connection's thread with the commit time; the
        # generator is consumed there by executemany.
        timed: Iterator[tuple[Any, ...]] = (
            (text, namespace, kind, value, now) for text, namespace, kind, value in rows
        )
        return ((UPSERT, timed, True), *setting)

    with store_span(DB_SYSTEM_SQLITE, "put_many", "entries", query=UPSERT, batch_size=len(rows)):
        # The store's one write path (lock, clock, commit record, rollback on
        # cancellation), which is private to the stores package this module is in.
        await store._write(build)
    checkpointer = store._checkpointer
    if checkpointer is not None:
        # A bulk load's transactions are big (a thousand rows make megabytes
        # of log): counted one by one (checkpoint_every), they would leave the
        # log to the writer's safety net, which copies tens of megabytes inside
        # a commit and at close. A background checkpoint after each of them
        # (when the last one is done) copies the log as it grows, beside the
        # writes.
        checkpointer.request()
