"""The SQLite store's schema: tables, ordered upgrades, and the checks made at open.

The schema version lives in ``PRAGMA user_version`` and the file is marked
with ``PRAGMA application_id`` (:data:`APPLICATION_ID`, "GARR"), so a garrison
database is recognisable with the ``sqlite3`` shell alone.

Schema 1:

``entries``
    the current value of every key: ``key`` (the key text, primary key),
    ``namespace`` (its keyword namespace or NULL), ``kind`` (the entity kind),
    ``value`` (JSON text, see :mod:`garrison.stores._values`), ``created_at``
    and ``updated_at`` (microseconds since the Unix epoch, UTC) and
    ``version`` (1 for a new key, +1 on every put; a deleted and re-created key
    starts again at 1).
``history``
    the append-only audit trail and change feed: ``seq`` (increasing),
    ``key``, ``op`` (``put`` or ``delete``), ``value`` (NULL for a delete),
    ``version``, ``at``. Puts are recorded by triggers on ``entries``, so a row
    can never be changed without its history row, in the same transaction;
    deletes are recorded by the statement that deletes.
``commits``
    one row per write transaction: its time ``at`` (unique, increasing) and
    the ``seq`` of its first history row, so ``changed_since(t)`` starts
    with one lookup instead of an index on every history row.
``meta``
    small named settings (``name``, JSON ``value``): the value format, the
    mode router's mode, anything an application wants to keep with the data.

Upgrades: :data:`MIGRATIONS` is an ordered list; migration *n* takes the
database from version *n-1* to *n*. At open every missing one is applied in
order, each in its own ``BEGIN IMMEDIATE`` transaction together with the new
``user_version``, so a crash mid-upgrade leaves the last complete version.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from garrison.exceptions import SchemaVersionError, StoreError, StoreLoadError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import aiosqlite

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "check_database",
    "ensure_schema",
    "expression_index_sql",
    "json_path_sql",
]

#: ``PRAGMA application_id`` of a garrison store: the ASCII bytes "GARR".
APPLICATION_ID: Final = 0x47415252

_V1: Final = (
    """CREATE TABLE entries (
        key        TEXT PRIMARY KEY NOT NULL,
        namespace  TEXT,
        kind       TEXT,
        value      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        version    INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE history (
        seq     INTEGER PRIMARY KEY,
        key     TEXT NOT NULL,
        op      TEXT NOT NULL CHECK (op IN ('put', 'delete')),
        value   TEXT,
        version INTEGER NOT NULL,
        at      INTEGER NOT NULL
    )""",
    "CREATE INDEX history_by_key ON history (key, seq)",
    # One row per write transaction, not per change: the change feed finds its
    # starting point here. (An index on history.at cost more than the whole
    # history write in the put_many benchmark.)
    """CREATE TABLE commits (
        at        INTEGER PRIMARY KEY,
        first_seq INTEGER NOT NULL
    )""",
    """CREATE TABLE meta (
        name  TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
    # History is part of every write: no code path can skip it.
    """CREATE TRIGGER entries_history_insert AFTER INSERT ON entries BEGIN
        INSERT INTO history (key, op, value, version, at)
        VALUES (NEW.key, 'put', NEW.value, NEW.version, NEW.updated_at);
    END""",
    """CREATE TRIGGER entries_history_update AFTER UPDATE ON entries BEGIN
        INSERT INTO history (key, op, value, version, at)
        VALUES (NEW.key, 'put', NEW.value, NEW.version, NEW.updated_at);
    END""",
    # Append-only: history rows cannot be edited or removed through SQL either.
    """CREATE TRIGGER history_append_only_update BEFORE UPDATE ON history BEGIN
        SELECT RAISE(ABORT, 'history is append-only');
    END""",
    """CREATE TRIGGER history_append_only_delete BEFORE DELETE ON history BEGIN
        SELECT RAISE(ABORT, 'history is append-only');
    END""",
    """CREATE TRIGGER commits_append_only_update BEFORE UPDATE ON commits BEGIN
        SELECT RAISE(ABORT, 'history is append-only');
    END""",
    """CREATE TRIGGER commits_append_only_delete BEFORE DELETE ON commits BEGIN
        SELECT RAISE(ABORT, 'history is append-only');
    END""",
)

#: Migration *n* (1-based) upgrades a database from version *n-1* to *n*.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)
#: The schema version this garrison writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


async def _scalar(conn: aiosqlite.Connection, sql: str) -> int:
    rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0])


async def check_database(
    conn: aiosqlite.Connection, path: str, newest: int = SCHEMA_VERSION
) -> int:
    """Check, changing nothing, that ``conn`` holds a garrison store of a known schema.

    Returns the schema version found (0 for an empty file). Raises
    :class:`SchemaVersionError` for a database written by a newer garrison,
    and :class:`StoreLoadError` for some other application's database.
    """
    app_id = await _scalar(conn, "PRAGMA application_id")
    found = await _scalar(conn, "PRAGMA user_version")
    if app_id not in (0, APPLICATION_ID):
        raise StoreLoadError(
            f"{path}: not a garrison store (application_id {app_id:#x}); it was left untouched"
        )
    if app_id == 0:
        tables = await _scalar(conn, "SELECT count(*) FROM sqlite_schema")
        if tables:
            raise StoreLoadError(
                f"{path}: holds {tables} schema objects but is not a garrison store; "
                "it was left untouched"
            )
    if found > newest:
        raise SchemaVersionError(
            f"{path}: database schema version {found} was written by a newer garrison; "
            f"this version knows schema versions up to {newest}"
        )
    return found


async def ensure_schema(
    conn: aiosqlite.Connection,
    path: str,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
) -> int:
    """Bring the database on ``conn`` to the newest schema; return the version found.

    Checks first with :func:`check_database`; nothing is changed when that fails.
    """
    newest = len(migrations)
    found = await check_database(conn, path, newest)
    for version in range(found + 1, newest + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[version - 1]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await conn.execute(f"PRAGMA user_version = {version}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return found


# A JSON path the store will put literally into SQL: only object keys made of
# word characters and array indexes, so no quoting or injection is possible.
_JSON_PATH: Final = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])+")


def json_path_sql(path: str) -> str:
    """The SQL expression extracting ``path`` from a stored value.

    The path is written literally (not bound) because SQLite only uses an
    expression index when the query's expression is the same text as the
    index's. Hence the strict syntax: ``$.a.b``, ``$.items[0].id``.
    """
    if not _JSON_PATH.fullmatch(path):
        raise StoreError(
            f"unsupported JSON path {path!r}: use $.name segments and [index] steps, "
            "names made of letters, digits and underscores"
        )
    return f"json_extract(value, '{path}')"


def expression_index_sql(path: str) -> str:
    """The ``CREATE INDEX`` statement for an expression index on ``path``."""
    expression = json_path_sql(path)
    name = "entries_by_" + re.sub(r"[^A-Za-z0-9]+", "_", path[1:]).strip("_")
    return f"CREATE INDEX IF NOT EXISTS {name} ON entries ({expression})"
