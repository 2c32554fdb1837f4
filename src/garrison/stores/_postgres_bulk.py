"""Bulk loading into a :class:`PostgresStore`: rows encoded before the write, elsewhere.

The PostgreSQL half of :mod:`garrison.stores._sqlite_bulk`, with the same
functions and the same meaning (the migrator reaches either through the
database actor's messages, :mod:`garrison.components.database._bulk`):

- :func:`put_rows_pg` writes rows from ``encode_rows`` in one transaction on
  the store's own write path: the write lock (one total order with every
  other instance's writes), the ``commits`` record with the audit context,
  history rows by the ``entries`` trigger, the schema's rules (those needing
  no stored data before the transaction, ``unique`` and ``reference`` in it,
  under the lock), the attribute rows of the declared attributes, and a
  ``meta`` setting committed with the rows. The database afterwards is what
  ``put_many`` of the same pairs would have made.
- :func:`put_new_rows_pg` does the same when none of the rows' keys exists
  yet, checked in the same transaction (under the lock: no other instance
  can write one of them in between); otherwise it writes nothing and returns
  what is stored.
- :func:`fetch_stored_versions_pg`, :func:`scan_stored_pg` and
  :func:`unexpected_versions_pg` read stored texts and versions undecoded.

The rows go to the server as four arrays in one ``INSERT ... SELECT FROM
unnest(...)`` statement (``UPSERT_ROWS``, as ``put_many`` writes them).
Measured against asyncpg's ``executemany`` of the one-row upsert and
against ``COPY`` into a temporary table followed by ``INSERT ... SELECT ...
ON CONFLICT`` (100k rows in batches of 1000,
``benchmarks/bench_migrate.py --postgresql --bulk-paths``: 3.2 s against
COPY's 3.7 s and executemany's 4.6 s), it is the fastest: one statement
and one round trip per batch, as COPY, without COPY's temporary table.
``unnest`` yields the rows in array order, so the history's order is
``put_many``'s. A batch naming one key twice (which an upsert statement
cannot update twice) is written row by row, as ``put_many`` writes it.

The functions use the store's own write path and checks (its private
helpers, from the same package), so that a bulk load and ``put_many`` cannot
drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from garrison.stores._attributes import AttributeRow, entity_attributes
from garrison.stores._postgres import _lookup_violations, _upsert
from garrison.stores._postgres_sql import META_SET, UPSERT_ROWS, range_clause
from garrison.stores._rules import refused
from garrison.stores._values import decode_value, encode_value

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from garrison.stores._postgres import PostgresStore, _Connection
    from garrison.stores._sqlite_bulk import EncodedRow

__all__ = [
    "count_history_pg",
    "fetch_stored_versions_pg",
    "put_new_rows_pg",
    "put_rows_pg",
    "scan_stored_pg",
    "unexpected_versions_pg",
]

_STORED_VERSIONS: Final = "SELECT key, value, version FROM entries WHERE key = ANY($1::text[])"
# $1 keys, $2 the versions expected of them (in the same order); a missing key's is NULL.
_UNEXPECTED_VERSIONS: Final = (
    "SELECT expected.key FROM unnest($1::text[], $2::bigint[]) AS expected (key, version) "
    "LEFT JOIN entries ON entries.key = expected.key "
    "WHERE entries.version IS DISTINCT FROM expected.version"
)
_COUNT_HISTORY: Final = "SELECT count(*) FROM history"


async def put_rows_pg(
    store: PostgresStore, rows: Sequence[EncodedRow], *, meta: tuple[str, Any] | None = None
) -> None:
    """Write ``rows`` (from ``encode_rows``) to ``store`` in one transaction.

    All of them or, on error, none; the history and commit record are those
    of a ``put_many`` of the same pairs. ``meta`` is a setting ``(name,
    value)`` stored in the same transaction. Raises :class:`SchemaError`
    (nothing written) for a row that breaks the schema, :class:`StoreError`
    naming the database and statement when PostgreSQL fails.
    """
    await _write_rows(store, rows, meta=meta, check_absent=False)


async def put_new_rows_pg(
    store: PostgresStore,
    rows: Sequence[EncodedRow],
    *,
    meta: tuple[str, Any] | None = None,
    writing: Callable[[], object] | None = None,
) -> tuple[dict[str, str], dict[str, int]] | None:
    """:func:`put_rows_pg`, if none of the rows' keys is in ``store`` yet; else nothing.

    The check and the write are one transaction under the write lock.
    Returns ``None`` once the rows (and ``meta``) are committed; otherwise the
    stored value texts and versions of the keys that exist, with nothing
    written (rolled back, no commit recorded). ``writing()`` is called once
    the check found none of the keys, as the rows go to the server (a bulk
    load starts its next batch's work then); it must not block.
    """
    return await _write_rows(store, rows, meta=meta, check_absent=True, writing=writing)


class _Present(Exception):  # noqa: N818 - private; caught in _write_rows
    """Keys of the rows exist: roll the transaction back and hand them over."""

    def __init__(self, found: list[Any]) -> None:
        super().__init__(f"{len(found)} keys exist")
        self.found = found


async def _write_rows(
    store: PostgresStore,
    rows: Sequence[EncodedRow],
    *,
    meta: tuple[str, Any] | None,
    check_absent: bool,
    writing: Callable[[], object] | None = None,
) -> tuple[dict[str, str], dict[str, int]] | None:
    if not rows:
        if meta is not None:
            await store.set_meta(*meta)
        return None
    setting = None if meta is None else (meta[0], encode_value(meta[1]))
    lookups = _enforce(store, rows)
    indexed = _indexed(store, rows)
    keys = [row[0] for row in rows]
    written = set(keys)

    async def work(conn: _Connection, at: int) -> int:
        if check_absent:
            found = await conn.fetch(_STORED_VERSIONS, keys)
            if found:
                raise _Present(found)
        if lookups is not None and store._rules is not None:
            # A reference may name any key the batch writes, of any kind.
            found = await _lookup_violations(conn, store._rules, lookups, written)
            if found:
                raise refused(found)
        if writing is not None:
            writing()
        await _upsert(conn, rows, at)
        if indexed:
            await store._index(conn, indexed)
        if setting is not None:
            await conn.execute(META_SET, *setting)
        return len(rows)

    with store._span("put_many", "entries", UPSERT_ROWS, len(rows)):
        try:
            await store._write(work, sql=UPSERT_ROWS)
        except _Present as present:
            found = present.found
            return {str(r[0]): str(r[1]) for r in found}, {str(r[0]): int(r[2]) for r in found}
    return None


def _indexed(
    store: PostgresStore, rows: Sequence[EncodedRow]
) -> dict[str, tuple[AttributeRow, ...] | None]:
    """The attribute rows of ``rows``' entities (a key's last row), read back from the texts.

    Empty when the store indexes no attribute (then nothing is decoded).
    """
    declared = store.indexed
    if not declared:
        return {}
    return {
        key: entity_attributes(decode_value(text), declared) if text[:1] == "{" else None
        for key, _namespace, _kind, text in rows
    }


def _enforce(
    store: PostgresStore, rows: Sequence[EncodedRow]
) -> list[tuple[str, str | None, Any]] | None:
    """Refuse rows breaking a rule that needs no stored data; the entries left to check
    in the transaction (``unique``, ``reference``), or ``None``.

    Only the values of kinds with rules are read back from their text.
    """
    schema = store.schema
    if not schema.enforced:
        return None
    latest: dict[str, tuple[str, str]] = {}
    for key, _namespace, kind, text in rows:
        latest[key] = (kind, text)
    checked = [
        ((key, None, kind, text), decode_value(text))
        for key, (kind, text) in latest.items()
        if schema.rules_for(kind) and text[:1] == "{"
    ]
    if not checked:
        return None
    return store._enforce([row for row, _ in checked], [value for _, value in checked])


# -- stored texts, undecoded (a bulk load compares and validates with them)


async def scan_stored_pg(
    store: PostgresStore, prefix: str, after: str | None, limit: int
) -> list[tuple[str, bytes]]:
    """Up to ``limit`` (key, stored text's UTF-8 bytes) under ``prefix`` after ``after``.

    In key order, one walk of the primary key a page at a time. The server
    sends the texts' bytes (``convert_to``), which are hashed as they come.
    """
    where, params = range_clause(prefix, after)
    sql = (
        f"SELECT key, convert_to(value, 'UTF8') FROM entries{where} "
        f"ORDER BY key LIMIT ${len(params) + 1}"
    )
    with store._span("scan", "entries", sql):
        rows = await store._fetch(sql, *params, limit)
    return [(str(row[0]), bytes(row[1])) for row in rows]


async def fetch_stored_versions_pg(
    store: PostgresStore, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """The stored value texts and versions of those ``keys`` that exist, read together."""
    if not keys:
        return {}, {}
    with store._span("get_many", "entries", _STORED_VERSIONS, len(keys)):
        rows = await store._fetch(_STORED_VERSIONS, list(keys))
    return {str(r[0]): str(r[1]) for r in rows}, {str(r[0]): int(r[2]) for r in rows}


async def unexpected_versions_pg(store: PostgresStore, expected: dict[str, int]) -> list[str]:
    """Those keys of ``expected`` whose version is not the one given (or that are gone)."""
    if not expected:
        return []
    keys = list(expected)
    versions = [expected[key] for key in keys]
    with store._span("check_versions", "entries", _UNEXPECTED_VERSIONS, len(keys)):
        rows = await store._fetch(_UNEXPECTED_VERSIONS, keys, versions)
    return [str(row[0]) for row in rows]


async def count_history_pg(store: PostgresStore) -> int:
    """How many rows the history holds."""
    with store._span("count", "history", _COUNT_HISTORY):
        rows = await store._fetch(_COUNT_HISTORY)
    return int(rows[0][0])
