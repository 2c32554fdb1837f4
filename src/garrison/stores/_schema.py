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

Schema 2 stores values in value format 2 (maps with keyword keys are JSON
objects, see :mod:`garrison.stores._values`): upgrading from schema 1 rewrites
every stored text of ``entries``, ``history`` and ``meta`` that format 2 spells
differently, with the same values.

Schema 3 records who made each change and why: ``commits`` gains ``actor``,
``reason`` and ``event`` (a write that changes no key, such as a mode switch or
a restore, is a commit with an ``event`` text and no history rows). A history
row's actor and reason are its commit's: the ``commits`` row with the same
``at`` (each transaction has its own). Commits made before the upgrade have
no actor (NULL).

Schema 4 adds the attribute index (``attributes``, kept by the store's write
statements in the write's transaction; see :mod:`garrison.stores._attributes`),
empty: the store fills it for its indexed attributes when it opens. A put now records history when
it changes the value (``UPDATE OF value``), so re-classifying kinds records none.

Schema 5 keeps one index text per value by Clojure's ``=``
(:mod:`garrison.stores._canonical`): the rows of tag ``x`` that schema 4 kept
as the value's stored text (a set's members in iteration order, a decimal's
scale, ``1N`` apart from ``1``) are rewritten, in Python, to the row the value
gives now.

Upgrades: :data:`MIGRATIONS` is an ordered list; migration *n* takes the
database from version *n-1* to *n*. At open every missing one is applied in
order, each in its own ``BEGIN IMMEDIATE`` transaction together with the new
``user_version``, so a crash mid-upgrade leaves the last complete version.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Final, TypeAlias

from garrison.exceptions import SchemaVersionError, StoreError, StoreLoadError
from garrison.stores._attributes import ATTRIBUTE_SCHEMA, canonical_rows
from garrison.stores._values import upgrade_format_1

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    import aiosqlite

#: One step of a migration: an SQL statement, or a function run on the
#: connection's thread with the raw ``sqlite3`` connection, in the transaction.
Step: TypeAlias = "str | Callable[[sqlite3.Connection], None]"

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

_ENTRIES_HISTORY_UPDATE: Final = """CREATE TRIGGER entries_history_update AFTER UPDATE ON entries
    BEGIN
        INSERT INTO history (key, op, value, version, at)
        VALUES (NEW.key, 'put', NEW.value, NEW.version, NEW.updated_at);
    END"""
_HISTORY_APPEND_ONLY_UPDATE: Final = """CREATE TRIGGER history_append_only_update
    BEFORE UPDATE ON history BEGIN
        SELECT RAISE(ABORT, 'history is append-only');
    END"""

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
    _ENTRIES_HISTORY_UPDATE,
    # Append-only: history rows cannot be edited or removed through SQL either.
    _HISTORY_APPEND_ONLY_UPDATE,
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

#: The SQL function the value-format upgrade runs (see :func:`upgrade_format_1`).
_UPGRADE_FUNCTION: Final = "garrison_upgrade_format_1"


def _may_change(column: str) -> str:
    """Rows whose format-1 text :func:`upgrade_format_1` may change: a ``#map``
    marker or an object key starting with ``:`` (the rest is the same text)."""
    return (
        f"""(instr({column}, '{{"#map"') OR instr({column}, '{{":') """
        f"""OR instr({column}, ',":'))"""
    )


# Value format 2: maps with keyword keys become JSON objects. Every stored text,
# current and past, is rewritten, so as-of reads decode by one format; the two
# triggers that would record the rewrite as a change are set aside meanwhile.
_V2: Final = (
    "DROP TRIGGER entries_history_update",
    "DROP TRIGGER history_append_only_update",
    f"UPDATE entries SET value = {_UPGRADE_FUNCTION}(value) WHERE {_may_change('value')}",
    f"UPDATE history SET value = {_UPGRADE_FUNCTION}(value) WHERE {_may_change('value')}",
    f"UPDATE meta SET value = {_UPGRADE_FUNCTION}(value) WHERE {_may_change('value')}",
    "UPDATE meta SET value = '2' WHERE name = 'garrison.value_format'",
    _ENTRIES_HISTORY_UPDATE,
    _HISTORY_APPEND_ONLY_UPDATE,
)

# The audit trail: who and why, per commit. A history row's commit is the one
# with its time (the commit clock gives each transaction its own ``at``), so
# the history itself stays as it is and a write pays nothing more per row.
_V3: Final = (
    "ALTER TABLE commits ADD COLUMN actor TEXT",
    "ALTER TABLE commits ADD COLUMN reason TEXT",
    "ALTER TABLE commits ADD COLUMN event TEXT",
)

# The attribute index, empty (the store fills it for its declared attributes when
# it opens); history records a change of the value only (reindexing kinds changes none).
_V4: Final[tuple[Step, ...]] = (
    *ATTRIBUTE_SCHEMA,
    "DROP TRIGGER entries_history_update",
    _ENTRIES_HISTORY_UPDATE.replace("AFTER UPDATE ON entries", "AFTER UPDATE OF value ON entries"),
)

# The attribute index holds one text per value by Clojure's = (a set's members
# sorted, ...): the rows an older index kept as the stored text are rewritten.
_V5: Final[tuple[Step, ...]] = (canonical_rows,)

#: Migration *n* (1-based) upgrades a database from version *n-1* to *n*.
MIGRATIONS: Final[
    tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[Step, ...], tuple[Step, ...]]
] = (_V1, _V2, _V3, _V4, _V5)
#: The schema version this garrison writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


def _upgrade_or_keep(text: str | None) -> str | None:
    """:func:`upgrade_format_1`, keeping a text it cannot read as it is: such a row
    is as unreadable in either format, and raising would make the whole database
    unopenable for it; reading it raises, naming its key."""
    try:
        return upgrade_format_1(text)
    except Exception:  # noqa: BLE001 - the row is reported when it is read
        return text


async def _scalar(conn: aiosqlite.Connection, sql: str) -> int:
    rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0])


async def _run_step(conn: aiosqlite.Connection, step: Callable[[sqlite3.Connection], None]) -> None:
    """Run a Python migration step on the connection's thread (one hop, in the transaction)."""
    from garrison.stores._sqlite_connection import (  # noqa: PLC0415 - it imports this module
        raw_connection,
        run_in_thread,
    )

    await run_in_thread(conn, step, raw_connection(conn))


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
    migrations: Sequence[Sequence[Step]] = MIGRATIONS,
) -> int:
    """Bring the database on ``conn`` to the newest schema; return the version found.

    Checks first with :func:`check_database`; nothing is changed when that fails.
    """
    newest = len(migrations)
    found = await check_database(conn, path, newest)
    if found < newest:
        await conn.create_function(_UPGRADE_FUNCTION, 1, _upgrade_or_keep, deterministic=True)
    for version in range(found + 1, newest + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for step in migrations[version - 1]:
                if isinstance(step, str):
                    await conn.execute(step)
                else:
                    await _run_step(conn, step)
            await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await conn.execute(f"PRAGMA user_version = {version}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return found


# A JSON path the store will put literally into SQL: only object keys made of
# word characters, keyword keys (":ns/name", no dot, quote or space) and array
# indexes, so no quoting or injection is possible.
_KEYWORD_SEGMENT: Final = r"\.(:[A-Za-z_*+!?<>=-][A-Za-z0-9_*+!?<>=/-]*)"
_JSON_PATH: Final = re.compile(rf"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|{_KEYWORD_SEGMENT}|\[[0-9]+\])+")


_QUOTED_KEY: Final = r'."\1"'


def json_path_sql(path: str) -> str:
    """The SQL expression extracting ``path`` from a stored value.

    The path is written literally (not bound) because SQLite only uses an
    expression index when the query's expression is the same text as the
    index's. Hence the strict syntax: ``$.a.b``, ``$.items[0].id``, and
    ``$.:session/user-id`` for a keyword key (the SQL path quotes it:
    ``$.":session/user-id"``).
    """
    if not _JSON_PATH.fullmatch(path):
        raise StoreError(
            f"unsupported JSON path {path!r}: use $.name segments, $.:ns/name for a keyword "
            "key and [index] steps, names made of letters, digits and underscores"
        )
    sql_path = re.sub(_KEYWORD_SEGMENT, _QUOTED_KEY, path)
    return f"json_extract(value, '{sql_path}')"


def expression_index_sql(path: str) -> str:
    """The ``CREATE INDEX`` statement for an expression index on ``path``."""
    expression = json_path_sql(path)
    name = "entries_by_" + re.sub(r"[^A-Za-z0-9]+", "_", path[1:]).strip("_")
    if ":" in path:  # keyword keys: told apart from the word paths that sanitise alike
        name += f"_{zlib.crc32(path.encode()):08x}"
    return f"CREATE INDEX IF NOT EXISTS {name} ON entries ({expression})"
