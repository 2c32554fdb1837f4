"""SqliteStore: the operational key-value store on one aiosqlite connection.

The store owns one connection (aiosqlite runs it on a dedicated thread, so no
statement blocks the event loop) and follows :class:`KeyValueStore`. On top of
that it keeps an append-only history of every change (``history``,
``changed_since``, ``get(key, as_of=...)``), queries values by JSON path
(``find``, optionally backed by expression indexes), keeps small settings
(``get_meta`` / ``set_meta``), and backs up and restores the database while in
use (see :mod:`garrison.stores._sqlite_backup`).

Every write is one explicit ``BEGIN IMMEDIATE`` transaction: all of a
``put_many`` or none of it, with its history rows, run from ``BEGIN`` to
``COMMIT`` as one call on the connection's thread (one thread hop, see
:mod:`garrison.stores._sqlite_transaction`), which also encodes the values.
Writes of concurrent tasks are serialised by a lock, which also keeps backup
and restore from straddling a transaction; a read that arrives while the
lock is held waits for it (reads never wait for one another). Every public
operation makes exactly one span (:func:`store_span`), on the event-loop side
around its awaits.

Times are microseconds since the Unix epoch (UTC) in the database, aware
:class:`datetime.datetime` in the API. The store never hands out a time older
than one it already wrote, so history stays ordered if the wall clock steps
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import aiosqlite
import orjson
from opentelemetry import trace

from garrison.exceptions import SchemaError, StoreError, StoreLoadError, VersionConflictError
from garrison.stores._attributes import (
    DELETE_ENTITIES,
    AttributeRow,
    entity_attributes,
    fill_attributes,
    index_statements,
)
from garrison.stores._audit import current_audit
from garrison.stores._datalog import CompiledQuery, compile_query
from garrison.stores._keys import EDN_KEY_PREFIX, key_namespace
from garrison.stores._kinds import KindMapping
from garrison.stores._protocol import MISSING
from garrison.stores._rules import (
    EntitySchema,
    Violation,
    lookup_violations,
    refused,
    stored_data_breaks,
    stored_violations,
)
from garrison.stores._schema import (
    ensure_schema,
    expression_index_sql,
    json_path_sql,
)
from garrison.stores._sqlite_connection import (
    Checkpointer,
    close,
    connect,
    raw_connection,
    run_in_thread,
)
from garrison.stores._sqlite_sql import (
    AS_OF,
    CHANGES,
    CURRENT_VERSION,
    DELETE,
    EVENTS,
    GET,
    GET_MANY,
    HISTORY_OF,
    META_GET,
    META_SET,
    RECORD_CLEAR,
    RECORD_DELETES,
    REINDEX_KINDS,
    UPSERT,
    changes_query,
    find_query,
    range_clause,
    revert_query,
)
from garrison.stores._sqlite_transaction import BEGIN, Statement, Transaction
from garrison.stores._sqlite_types import (
    AuditEvent,
    Change,
    KindClassifier,
    Reversion,
    by_namespace_kind,
    classifier_for,
    to_micros,
)
from garrison.stores._values import VALUE_FORMAT_VERSION, decode_value, encode_value
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
    from os import PathLike
    from pathlib import Path
    from types import TracebackType

    from anyio.abc import TaskGroup

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

_ENTRIES: Final = "entries"
_HISTORY: Final = "history"
_META: Final = "meta"
_FORMAT_META: Final = "garrison.value_format"
# The indexed attributes (sorted) the attribute table was last built for.
_INDEXED_META: Final = "garrison.indexed_attributes"
# The schema (its canonical config table) the stored data was last checked against.
_SCHEMA_META: Final = "garrison.schema"

_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
# The attribute rows of the entries a clear removes (its key range appended, and ")").
_CLEAR_ATTRIBUTES: Final = "DELETE FROM attributes WHERE entity IN (SELECT key FROM entries"
# A plan step reading a whole table (an alias of attributes, or entries), not a
# search of an index or a scan of the query's own subquery.
_TABLE_SCAN: Final = re.compile(r"SCAN (a\d+|entries)\b")


async def _settled(conn: aiosqlite.Connection) -> None:
    """Wait until the connection's thread has finished what was queued before (shielded)."""
    waiter = asyncio.ensure_future(run_in_thread(conn, _nothing))
    waiter.add_done_callback(_collect)  # if we are cancelled again, nobody else will
    # ValueError: the connection closed meanwhile, which ended any transaction too.
    with contextlib.suppress(ValueError):
        await asyncio.shield(waiter)


def _nothing() -> None:
    """A no-op to queue behind a cancelled transaction (see _settled)."""


def _collect(future: asyncio.Future[Any]) -> None:
    """Retrieve an outcome nobody may await any more (no "never retrieved" report)."""
    if not future.cancelled():
        future.exception()


class SqliteStore:
    """A :class:`KeyValueStore` on one SQLite file, with history, find and backup.

    ``path`` is the database file (created when missing). ``synchronous`` is
    SQLite's durability level (``"NORMAL"``: safe against application crashes,
    the last commits may be lost on power failure; ``"FULL"``: every commit
    survives power loss, slower). ``busy_timeout`` (seconds) is how long a write
    waits for another process's lock. ``kinds`` names the entity kind of each
    key: a mapping namespace → kind, or a callable ``(key_text, namespace) ->
    kind`` (called on the connection's thread, so it must be a pure function);
    by default the kind is the key's namespace. ``indexes`` lists JSON
    paths (``"$.user.id"``) to keep expression indexes on, for :meth:`find`.
    ``indexed`` maps kinds to the attribute spellings (``":session/user-id"``)
    their schema declares indexed: every entity's values of those attributes
    are kept in the attribute index, which :meth:`query` reads (see
    :mod:`garrison.stores._attributes`); with none a write keeps no attribute
    rows. The database records the attributes its table holds: opening with
    other ``indexed`` attributes rebuilds the table (in one transaction), and
    a store opened without ``indexed`` (most CLI commands, a trial open) keeps
    and maintains the recorded ones.
    ``schema`` is the :class:`~garrison.stores.EntitySchema` every write is
    checked against (:mod:`garrison.stores._rules`): a write that breaks it
    raises :class:`~garrison.exceptions.SchemaError` with nothing written
    (``unique`` and ``reference`` are checked inside the write's
    transaction). Its indexed attributes are the default of ``indexed``. The
    database records the schema its data was checked against: opening with
    another one checks every stored entry first and raises ``SchemaError``
    (the database left as it was) when the data breaks it; a store opened
    without ``schema`` enforces the recorded one.
    ``checkpoint_every`` is how many write transactions pass between two
    checkpoints of the write-ahead log, made by a second connection in the
    background so that no write waits for one (see
    :class:`~garrison.stores._sqlite_connection.Checkpointer`); ``0`` leaves
    them to SQLite, which makes them inside the commit of a write.

    Use it as an async context manager, or ``await store.open()`` and
    ``await store.aclose()``::

        async with SqliteStore("data/garrison.db") as store:
            await store.put("session/abc", {"user": 42})
            sessions = await store.scan("session/", limit=100)
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL",
        busy_timeout: float = 5.0,
        kinds: Mapping[str, str] | KindClassifier | None = None,
        indexes: Sequence[str] = (),
        indexed: Mapping[str, Iterable[str]] | None = None,
        schema: EntitySchema | None = None,
        checkpoint_every: int = 256,
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {_SYNCHRONOUS}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.indexes = tuple(indexes)
        if checkpoint_every < 0:
            raise StoreError(f"checkpoint_every must be 0 or more, not {checkpoint_every!r}")
        self.checkpoint_every = checkpoint_every
        for index_path in self.indexes:
            json_path_sql(index_path)  # refuse a bad path now, not at open
        self._classify = classifier_for(kinds)
        if indexed is None and schema is not None:
            indexed = schema.indexed
        self._schema_given = schema
        self._schema = schema or EntitySchema({})
        # The schema when it has rules to check: the one test on the write path.
        self._rules: EntitySchema | None = self._schema if self._schema.enforced else None
        self._indexed_given = indexed is not None
        self._indexed = frozenset(attr for attrs in (indexed or {}).values() for attr in attrs)
        self._conn: aiosqlite.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._write_lock = asyncio.Lock()
        self._last_micros = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else ("closed" if self._closed else "new")
        return f"<SqliteStore {self.path!r} {state}>"

    # -- lifecycle -------------------------------------------------------------

    async def open(self, *, task_group: TaskGroup | None = None) -> SqliteStore:
        """Open the connection, apply pending schema upgrades, create declared indexes.

        The checkpoint loop (see ``checkpoint_every``) runs in ``task_group``,
        the owner's; without one, in a task of the store's own (see
        :mod:`garrison.stores._loops`).

        Raises :class:`SchemaVersionError` for a database written by a newer
        garrison, and :class:`StoreLoadError` when the file is not a usable
        garrison database; the file is left untouched in both cases.
        """
        if self._conn is not None:
            return self
        if self._closed:
            raise StoreError(f"{self.path}: the store was closed; make a new SqliteStore")
        conn = await connect(
            self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout
        )
        try:
            await self._after_schema(conn)
            await self._start_checkpointer(conn)
        except aiosqlite.DatabaseError as exc:
            await close(conn)
            raise StoreLoadError(f"{self.path}: cannot open the database: {exc}") from exc
        except BaseException:
            await close(conn)
            raise
        self._conn = conn
        if self._checkpointer is not None:
            await self._checkpointer.start(task_group)
        return self

    async def _start_checkpointer(self, conn: aiosqlite.Connection) -> None:
        """Checkpoint from a second connection (see Checkpointer); without it, as SQLite does."""
        if not self.checkpoint_every or self.path == ":memory:" or self.path.startswith("file:"):
            return  # no WAL to move, or a URI that a second connect may not reach alike
        await conn.execute(f"PRAGMA wal_autocheckpoint = {Checkpointer.SAFETY_NET_PAGES}")
        self._checkpointer = Checkpointer(
            self.path, busy_timeout=self.busy_timeout, every=self.checkpoint_every
        )

    async def _after_schema(self, conn: aiosqlite.Connection, *, restored: bool = False) -> None:
        """Check the value format and the schema, create declared indexes, resume the clock.

        ``restored``: after a restore, whose data is kept even if it breaks the
        schema (a warning says so; the next open refuses it until fixed).
        """
        rows = list(await conn.execute_fetchall(META_GET, (_FORMAT_META,)))
        if rows:
            stored = int(decode_value(rows[0][0]))
            if stored > VALUE_FORMAT_VERSION:
                raise StoreLoadError(
                    f"{self.path}: values use format {stored}, newer than this garrison's "
                    f"{VALUE_FORMAT_VERSION}"
                )
        else:
            await conn.execute(META_SET, (_FORMAT_META, encode_value(VALUE_FORMAT_VERSION)))
        for index_path in self.indexes:
            await conn.execute(expression_index_sql(index_path))
        try:
            await self._adopt_schema(conn)
        except SchemaError as exc:
            if not restored:
                raise
            log.warning("the restored data breaks the schema: %s", exc)
        await self._rebuild_attributes(conn)
        # Every history row's time is its commit's; an event is a commit alone.
        rows = list(await conn.execute_fetchall("SELECT max(at) FROM commits"))
        self._last_micros = max(self._last_micros, int(rows[0][0] or 0))

    async def _rebuild_attributes(self, conn: aiosqlite.Connection) -> None:
        """Adopt the recorded indexed attributes, or rebuild the table for the given ones."""
        rows = list(await conn.execute_fetchall(META_GET, (_INDEXED_META,)))
        if rows and not self._indexed_given:
            self._indexed = frozenset(decode_value(rows[0][0]))
            return
        wanted = encode_value(sorted(self._indexed))
        if rows and rows[0][0] == wanted:
            return
        declared = self._indexed

        def rebuild(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                fill_attributes(db, declared)
                db.execute(META_SET, (_INDEXED_META, wanted))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await run_in_thread(conn, rebuild, raw_connection(conn))

    async def _adopt_schema(self, conn: aiosqlite.Connection) -> None:
        """Take the recorded schema, or check the stored data against the given one and record it.

        Raises :class:`SchemaError` (nothing recorded) when the data breaks the given schema.
        """
        rows = list(await conn.execute_fetchall(META_GET, (_SCHEMA_META,)))
        given = self._schema_given
        if given is None:
            if rows:
                self._set_schema(EntitySchema.parse(decode_value(rows[0][0])))
            return
        wanted = encode_value(given.table)
        if (rows and rows[0][0] == wanted) or (not rows and not given.enforced):
            return
        path = self.path

        def check(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                found = stored_violations(db, given)
                if found:
                    raise stored_data_breaks(path, found)
                db.execute(META_SET, (_SCHEMA_META, wanted))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await run_in_thread(conn, check, raw_connection(conn))

    def _set_schema(self, schema: EntitySchema) -> None:
        self._schema = schema
        self._rules = schema if schema.enforced else None

    @property
    def schema(self) -> EntitySchema:
        """The schema writes are checked against (given, or recorded in the database)."""
        return self._schema

    def kind_of(self, key: str) -> str | None:
        """The kind the store gives the key text ``key`` (its classifier's)."""
        return self._classify(key, key_namespace(key))

    def check_entry(self, key: str, value: Any) -> None:
        """Raise :class:`SchemaError` when the entry breaks a rule that needs no stored data.

        (``type``, ``cardinality``, ``required``, a reference that is no
        keyword.) The mode router admits a write with it before writing the EDN file.
        """
        rules = self._rules
        if rules is not None and (found := rules.check(key, self.kind_of(key), value)):
            raise refused([found])

    def enforce(
        self,
        db: sqlite3.Connection,
        entries: Iterable[tuple[str, str | None, Any]],
        *,
        written: Collection[str] | None = None,
    ) -> None:
        """Raise :class:`SchemaError` when ``(key, kind, value)`` entries break the schema.

        Blocking: on the connection's thread, inside the write's transaction
        (the bulk loader's too), before its statements. ``entries`` are the
        write's (a key written twice is checked with each value, and compared
        with the others by its last); ``written`` every key the write sets,
        when ``entries`` leaves some out.
        """
        rules = self._rules
        if rules is None:
            return
        batch = entries if isinstance(entries, list) else list(entries)
        found: list[Violation] = [
            violation
            for key, kind, value in batch
            if (violation := rules.check(key, kind, value)) is not None
        ]
        if not found and rules.needs_lookups:
            latest = {key: (key, kind, value) for key, kind, value in batch}
            keys = written if written is not None else latest
            found = lookup_violations(db, rules, latest.values(), keys)
        if found:
            raise refused(found)

    async def check_lookups(self, items: Sequence[tuple[str, Any]]) -> None:
        """Raise :class:`SchemaError` when ``items`` break a ``unique`` or ``reference`` rule.

        A read of the stored data, for the modes that write the EDN file
        before SQLite: the mode router checks with it before either write.
        """
        rules = self._rules
        if rules is None or not rules.needs_lookups:
            return
        latest = dict(items)
        entries = [(key, self.kind_of(key), value) for key, value in latest.items()]
        conn = self.connection
        db = self._raw(conn, None)
        async with self._write_lock:
            found = await run_in_thread(conn, lookup_violations, db, rules, entries, latest)
        if found:
            raise refused(found)

    async def schema_violations(self, schema: EntitySchema | None = None) -> list[Violation]:
        """Every rule the stored entries break (``schema``, by default the store's own)."""
        conn = self.connection
        db = self._raw(conn, None)
        checked = schema if schema is not None else self._schema
        with store_span(DB_SYSTEM_SQLITE, "schema_violations", _ENTRIES, query="SELECT"):
            async with self._write_lock:
                return await run_in_thread(conn, stored_violations, db, checked)

    @property
    def indexed(self) -> frozenset[str]:
        """The attributes kept in the attribute index (those the ``indexed`` option names)."""
        return self._indexed

    async def __aenter__(self) -> SqliteStore:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection and stop its thread. Idempotent.

        The close runs to completion even if the caller is cancelled meanwhile:
        a connection left open keeps its (non-daemon) thread, and with it the
        process, alive.
        """
        self._closed = True
        checkpointer, self._checkpointer = self._checkpointer, None
        conn, self._conn = self._conn, None
        try:
            if checkpointer is not None:
                await checkpointer.aclose()
        finally:
            if conn is not None:
                # The last connection to close also checkpoints what is left.
                await close(conn, optimize=True)

    @property
    def connection(self) -> aiosqlite.Connection:
        """The open connection (for the backup helpers and tests). Raises when closed."""
        if self._conn is None:
            state = "closed" if self._closed else "not open yet"
            raise StoreError(f"{self.path}: the store is {state}")
        return self._conn

    # -- helpers ---------------------------------------------------------------

    def _now(self) -> int:
        """A commit time: wall-clock microseconds, never before the last one written."""
        now = time.time_ns() // 1000
        if now <= self._last_micros:
            now = self._last_micros + 1
        self._last_micros = now
        return now

    async def _fetch(
        self, sql: str, params: Sequence[Any] = (), *, key: str | None = None
    ) -> list[Any]:
        conn = self.connection
        try:
            if self._write_lock.locked():
                # Another task's transaction is open on this same connection, where
                # it would be visible: wait for it, so reads only see committed data.
                async with self._write_lock:
                    return list(await conn.execute_fetchall(sql, params))
            return list(await conn.execute_fetchall(sql, params))
        except (sqlite3.Error, ValueError) as exc:
            raise self._failure(sql, exc, key) from exc

    def _failure(self, sql: str, exc: Exception, key: str | None) -> StoreError:
        """A :class:`StoreError` naming the file, statement, SQLite error and key.

        ``exc`` is a ``sqlite3.Error``, or the ``ValueError`` aiosqlite raises
        when its connection was closed underneath the store.
        """
        if isinstance(exc, ValueError):
            code = "connection closed"
        else:
            code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        # The store span is current here: give it the database's own error code.
        trace.get_current_span().set_attribute("db.response.status_code", code)
        verb = sql.split(None, 1)[0].upper()
        return StoreError(f"{self.path}: {verb} failed with {code}: {exc}", key=key)

    def _raw(self, conn: aiosqlite.Connection, key: str | None) -> sqlite3.Connection:
        try:
            return raw_connection(conn)
        except ValueError as exc:  # aiosqlite's connection was closed underneath the store
            raise self._failure(BEGIN, exc, key) from exc

    def _decode(self, text: str, key: str) -> Any:
        try:
            return decode_value(text)
        except StoreError as exc:
            raise StoreError(f"{self.path}: {exc}", key=key) from exc

    def _row(self, key: str, value: Any, now: int, kind: str | None) -> tuple[Any, ...]:
        text = key
        namespace = key_namespace(text)
        return (
            text,
            namespace,
            kind if kind is not None else self._classify(text, namespace),
            encode_value(value),
            now,
        )

    async def _write(
        self,
        build: Callable[[int], Iterable[Statement]],
        *,
        history: bool = True,
        key: str | None = None,
        event: str | None = None,
    ) -> int:
        """Run the statements ``build(now)`` yields in one transaction committed at ``now``.

        The whole transaction is one call on the connection's thread (see
        :mod:`garrison.stores._sqlite_transaction`), and so is ``build``:
        values are encoded there. ``now`` is taken under the write lock, so
        commit times increase in commit order. Any failure rolls the whole
        transaction back; an unencodable value raises its
        :class:`EdnEncodeError` with nothing written. If the caller is
        cancelled, the transaction rolls back (unless its ``COMMIT`` had
        begun) before the lock is released. ``history`` records the
        transaction in ``commits`` (every write of entries does) with the
        actor and reason of the audit context (:func:`current_audit`), which
        its history rows copy, and ``event`` when given. Returns the row
        count of the last statement (triggers not included).
        """
        conn = self.connection
        audit = current_audit()
        record = (audit.actor, audit.reason, event) if history or event else None
        async with self._write_lock:
            job = Transaction(self._raw(conn, key), build, self._now(), record=record)
            try:
                rowcount = await run_in_thread(conn, job.run)
            except asyncio.CancelledError:
                job.cancel()
                await _settled(conn)
                raise
            except sqlite3.Error as exc:
                raise self._failure(job.sql or BEGIN, exc, key) from exc
            except ValueError as exc:
                if job.sql is not None:
                    raise  # from building the statements (a bad key), not from aiosqlite
                raise self._failure(BEGIN, exc, key) from exc
        if self._checkpointer is not None:
            self._checkpointer.note_commit()
        return rowcount

    async def write_statements(self, build: Callable[[int], Iterable[Statement]]) -> int:
        """Run ``build(now)``'s statements as one write transaction, then checkpoint.

        The store's own write path (:meth:`_write`: lock, commit clock,
        ``commits`` record, rollback on error or cancellation), for the bulk
        loader (:mod:`garrison.stores._sqlite_bulk`), whose transactions are
        big: a background checkpoint is asked for at once after each, instead
        of every ``checkpoint_every`` commits, so its log is copied as it grows
        rather than by the writer's safety net inside a commit. Returns the row
        count of the last statement.
        """
        rowcount = await self._write(build)
        if self._checkpointer is not None:
            self._checkpointer.request()
        return rowcount

    # -- reads -----------------------------------------------------------------

    async def get(self, key: str, default: Any = None, *, as_of: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it has none.

        ``as_of`` (an aware :class:`datetime.datetime`, or POSIX seconds) reads
        the value the key had at that time, from the history.
        """
        text = key
        if as_of is not None:
            micros = to_micros(as_of)
            with store_span(DB_SYSTEM_SQLITE, "get", _HISTORY, query=AS_OF):
                rows = await self._fetch(AS_OF, (text, micros), key=text)
            if not rows or rows[0][0] == "delete":
                return default
            return self._decode(rows[0][1], text)
        with store_span(DB_SYSTEM_SQLITE, "get", _ENTRIES, query=GET):
            rows = await self._fetch(GET, (text,), key=text)
        return self._decode(rows[0][0], text) if rows else default

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those ``keys`` that exist, by key text (absent keys left out)."""
        texts = list(keys)
        if not texts:
            return {}
        with store_span(
            DB_SYSTEM_SQLITE, "get_many", _ENTRIES, query=GET_MANY, batch_size=len(texts)
        ):
            # Key texts are plain strings: no need for encode_value's check of them.
            rows = await self._fetch(GET_MANY, (orjson.dumps(texts).decode(),))
        try:
            return {key: decode_value(text) for key, text in rows}
        except StoreError:
            # Find the row at fault, for the error's key (rare: off the hot path).
            return {key: self._decode(text, key) for key, text in rows}

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """Entries whose key text starts with ``prefix``, in key order.

        Paginate with ``after`` (the last key of the previous page, exclusive)
        and ``limit``. ``prefix="session/"`` scans the ``session`` namespace.
        """
        where, params = range_clause(prefix, after)
        sql = f"SELECT key, value FROM entries{where} ORDER BY key LIMIT ?"
        with store_span(DB_SYSTEM_SQLITE, "scan", _ENTRIES, query=sql):
            rows = await self._fetch(sql, [*params, -1 if limit is None else limit])
        return [(key, self._decode(text, key)) for key, text in rows]

    async def keys(self, prefix: str = "") -> list[str]:
        """All key texts starting with ``prefix``, in key order."""
        where, params = range_clause(prefix, None)
        sql = f"SELECT key FROM entries{where} ORDER BY key"
        with store_span(DB_SYSTEM_SQLITE, "keys", _ENTRIES, query=sql):
            rows = await self._fetch(sql, params)
        return [row[0] for row in rows]

    async def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        where, params = range_clause(prefix, None)
        sql = f"SELECT count(*) FROM entries{where}"
        with store_span(DB_SYSTEM_SQLITE, "count", _ENTRIES, query=sql):
            rows = await self._fetch(sql, params)
        return int(rows[0][0])

    async def find(
        self,
        path: str,
        *,
        eq: Any = MISSING,
        lt: Any = MISSING,
        le: Any = MISSING,
        gt: Any = MISSING,
        ge: Any = MISSING,
        prefix: str = "",
        kind: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, Any]]:
        """Entries whose value at JSON ``path`` matches, in key order.

        ``path`` is ``$.field`` or ``$.a.b[0].c``. ``eq`` matches equal values
        (``eq=None`` matches JSON null and absent fields); ``lt``/``le``/``gt``/
        ``ge`` bound a range and combine with each other. Plain JSON values are
        compared as SQL compares them (numbers with numbers, text with text);
        another value (a keyword, a date) matches when its stored form is equal.
        ``prefix``, ``kind``, ``after`` and ``limit`` narrow and paginate as in
        :meth:`scan`. Declare the path in ``indexes=`` to make this an index
        search rather than a table scan.
        """
        sql, params = find_query(
            path, eq=eq, lt=lt, le=le, gt=gt, ge=ge, prefix=prefix, kind=kind, after=after
        )
        with store_span(DB_SYSTEM_SQLITE, "find", _ENTRIES, query=sql):
            rows = await self._fetch(sql, [*params, -1 if limit is None else limit])
        return [(key, self._decode(text, key)) for key, text in rows]

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]:
        """Every recorded change of ``key``, oldest first (the newest ``limit`` if given)."""
        text = key
        with store_span(DB_SYSTEM_SQLITE, "history", _HISTORY, query=HISTORY_OF):
            rows = await self._fetch(
                HISTORY_OF, (text, -1 if limit is None else max(limit, 0)), key=text
            )
        return [self._change(row) for row in reversed(rows)]

    async def changed_since(
        self, since: Any, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Change]:
        """Every change made after ``since``, in the order it was made (a change feed).

        ``since`` is an aware datetime or POSIX seconds. To follow the feed
        page by page, pass the last change's ``seq`` as ``after_seq``.
        """
        micros = to_micros(since)
        with store_span(DB_SYSTEM_SQLITE, "changed_since", _HISTORY, query=CHANGES):
            rows = await self._fetch(CHANGES, (micros, after_seq, -1 if limit is None else limit))
        return [self._change(row) for row in rows]

    async def last_seq(self) -> int:
        """The ``seq`` of the newest history row (``0`` for an empty history)."""
        sql = "SELECT coalesce(max(seq), 0) FROM history"
        with store_span(DB_SYSTEM_SQLITE, "last_seq", _HISTORY, query=sql):
            rows = await self._fetch(sql)
        return int(rows[0][0])

    async def keys_changed_after(self, seq: int) -> list[str]:
        """The keys with a history row after ``seq`` (written or deleted since), sorted."""
        sql = "SELECT DISTINCT key FROM history WHERE seq > ? ORDER BY key"
        with store_span(DB_SYSTEM_SQLITE, "keys_changed_after", _HISTORY, query=sql):
            rows = await self._fetch(sql, (seq,))
        return [row[0] for row in rows]

    async def changes(
        self,
        since: Any = 0,
        *,
        prefix: str = "",
        actor: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[Change]:
        """The audit trail: changes made after ``since`` of keys under ``prefix``, by ``actor``.

        As :meth:`changed_since`, narrowed to a key prefix and (when given) one
        actor; each :class:`Change` names its actor and reason.
        """
        sql, params = changes_query(prefix, actor)
        with store_span(DB_SYSTEM_SQLITE, "changes", _HISTORY, query=sql):
            rows = await self._fetch(
                sql, [to_micros(since), after_seq, *params, -1 if limit is None else limit]
            )
        return [self._change(row) for row in rows]

    async def events(self, since: Any = 0, *, actor: str | None = None) -> list[AuditEvent]:
        """The recorded events after ``since`` (mode switches, restores, reverts), oldest first."""
        with store_span(DB_SYSTEM_SQLITE, "events", "commits", query=EVENTS):
            rows = await self._fetch(EVENTS, (to_micros(since), actor))
        return [
            AuditEvent(event=event, actor=who, reason=why, at_micros=at)
            for at, who, why, event in rows
        ]

    async def record_event(self, event: str) -> None:
        """Record ``event`` in the audit trail, by the current actor, as a commit of its own."""
        with store_span(DB_SYSTEM_SQLITE, "record_event", "commits", query="INSERT"):
            await self._write(lambda _now: (), history=False, event=event)

    def _change(self, row: Sequence[Any]) -> Change:
        seq, key, op, text, version, at, actor, reason = row
        value = MISSING if text is None else self._decode(text, key)
        return Change(
            seq=seq,
            key=key,
            op=op,
            value=value,
            version=version,
            at_micros=at,
            actor=actor,
            reason=reason,
        )

    # -- writes ----------------------------------------------------------------

    async def put(
        self,
        key: str,
        value: Any,
        *,
        kind: str | None = None,
        enforce: bool = True,
        if_version: int | None = None,
    ) -> None:
        """Set ``key`` to ``value`` (``kind`` overrides the store's classifier).

        Raises :class:`SchemaError` when the entry breaks the schema (nothing
        written); ``enforce=False`` writes without checking it (see :meth:`put_many`).
        ``if_version``: write only if the key is at that version (``0``: only
        if it does not exist); otherwise raise :class:`VersionConflictError`
        naming the current version, having written nothing.
        """

        rules = self._rules if enforce else None
        reads = rules is not None or if_version is not None
        db = self._raw(self.connection, key) if reads else None

        def build(now: int) -> tuple[Statement, ...]:
            # On the connection's thread: the value is encoded and its attributes
            # indexed there, in the write's transaction (which also reads the
            # version a compare-and-set compares, and what the schema's rules need).
            if db is not None and if_version is not None:
                found = db.execute(CURRENT_VERSION, (key,)).fetchone()
                current = 0 if found is None else int(found[0])
                if current != if_version:
                    raise VersionConflictError(key, expected=if_version, current=current)
            row = self._row(key, value, now, kind)
            if db is not None and rules is not None:
                self.enforce(db, [(key, row[2], value)])
            if not self._indexed:
                return ((UPSERT, row, False),)
            rows = entity_attributes(value, self._indexed)
            raw = db if db is not None else self._raw(self.connection, key)
            return ((UPSERT, row, False), *index_statements(raw, {key: rows}))

        with store_span(DB_SYSTEM_SQLITE, "put", _ENTRIES, query=UPSERT):
            await self._write(build, key=key)

    async def put_many(
        self, items: Iterable[tuple[str, Any]], *, kind: str | None = None, enforce: bool = True
    ) -> None:
        """Set many keys in one transaction: all of them or, on error, none.

        Raises :class:`SchemaError` when an entry breaks the schema, with
        nothing written. ``enforce=False`` writes without checking it: for
        the mode router, which checked before writing the EDN file, or
        repairs SQLite from what the file already holds.
        """
        batch = items if isinstance(items, list | tuple) else list(items)
        if not batch:
            return
        rules = self._rules if enforce else None
        db = self._raw(self.connection, None) if rules is not None else None

        # The attribute rows of each key's last value, filled as rows() encodes them.
        indexed: dict[str, tuple[AttributeRow, ...] | None] = {}

        def rows(now: int) -> Iterator[tuple[Any, ...]]:
            # The hot loop of bulk writes, consumed by executemany on the connection's
            # thread: _row inlined, the default classifier skipped.
            classify = self._classify
            by_namespace = kind is None and classify is by_namespace_kind
            declared_of = self._indexed
            for key, value in batch:
                text = key
                slash = text.find("/")
                namespace = (
                    text[:slash] if slash > 0 and not text.startswith(EDN_KEY_PREFIX) else None
                )
                if by_namespace:
                    entity = namespace
                else:
                    entity = kind if kind is not None else classify(text, namespace)
                stored = encode_value(value)
                if declared_of:
                    indexed[text] = entity_attributes(value, declared_of)
                yield (text, namespace, entity, stored, now)

        def build(now: int) -> Iterator[Statement]:
            if db is None:
                yield (UPSERT, rows(now), True)
            else:
                # Encoded first: the rows carry each key's kind, which the rules need.
                encoded = list(rows(now))
                pairs = zip(encoded, batch, strict=True)
                self.enforce(db, [(row[0], row[2], value) for row, (_, value) in pairs])
                yield (UPSERT, encoded, True)
            # rows() has run: indexed holds every key, once, with its last value's rows.
            if self._indexed:
                yield from index_statements(self._raw(self.connection, None), indexed)

        with store_span(
            DB_SYSTEM_SQLITE, "put_many", _ENTRIES, query=UPSERT, batch_size=len(batch)
        ):
            await self._write(build)

    def _entries(
        self, items: Iterable[tuple[str, Any]], kind: str | None
    ) -> list[tuple[str, str | None, Any]]:
        """``(key, kind, value)`` of each key of ``items`` once, with its last value."""
        latest = dict(items)
        if kind is not None:
            return [(key, kind, value) for key, value in latest.items()]
        classify = self._classify
        return [(k, classify(k, key_namespace(k)), v) for k, v in latest.items()]

    async def reindex_kinds(self, mapping: KindMapping | None = None) -> int:
        """Apply a kind mapping to every stored row; return how many rows changed kind.

        ``mapping`` defaults to the store's own (its ``kinds``, which must then
        be a :class:`KindMapping`). One transaction; values, versions and
        history are untouched (a kind is how a key is classified, not data).
        """
        if mapping is None:
            if not isinstance(self._classify, KindMapping):
                raise StoreError(
                    f"{self.path}: reindex_kinds needs a KindMapping; this store classifies "
                    "keys with a function, so pass the mapping to apply"
                )
            mapping = self._classify
        params = (
            orjson.dumps(dict(mapping.keys)).decode(),
            orjson.dumps(dict(mapping.namespaces)).decode(),
            mapping.default,
        )
        with store_span(DB_SYSTEM_SQLITE, "reindex_kinds", _ENTRIES, query=REINDEX_KINDS):
            return await self._write(lambda _now: ((REINDEX_KINDS, params, False),), history=False)

    async def query(self, query: Any, *inputs: Any, explain: bool = False) -> Any:
        """Answer a Datalog query over the stored entities (:mod:`garrison.stores._datalog`).

        ``query`` is EDN text or Python data in Datomic's form; ``inputs`` bind
        its ``:in`` after ``$``. Returns the result tuples (each once). A
        pattern on an indexed attribute (see ``indexed``) reads the attribute
        index; one on another attribute reads the stored JSON (a scan). With
        ``explain=True`` nothing is answered: returns the one SQL statement,
        its parameters, SQLite's plan, ``scans`` (whether it reads a whole
        table) and ``unindexed`` (the attributes read from the JSON). Raises
        :class:`QueryError` naming the clause at fault.

        >>> await store.query('[:find ?s :in $ ?u :where [?s :session/user-id ?u]]', "u1")
        ... # doctest: +SKIP
        [('session/s1',)]
        """
        compiled = compile_query(query, inputs, self._indexed)
        with store_span(DB_SYSTEM_SQLITE, "query", "attributes", query=compiled.sql):
            if explain:
                plan = await self._fetch("EXPLAIN QUERY PLAN " + compiled.sql, compiled.params)
                details = [str(row[3]) for row in plan]
                return {
                    "sql": compiled.sql,
                    "params": list(compiled.params),
                    "plan": details,
                    "scans": any(_TABLE_SCAN.match(detail) for detail in details),
                    "unindexed": list(compiled.unindexed),
                }
            rows = await self._fetch(compiled.sql, compiled.params)
        return compiled.rows(rows)

    def compile_query(self, query: Any, inputs: Sequence[Any] = ()) -> CompiledQuery:
        """``query`` with ``inputs`` compiled for this store's attribute index.

        With :meth:`query_records`, for a caller that keeps compiled queries
        (the database component's query cache): :meth:`query` is both.
        """
        return compile_query(query, inputs, self._indexed)

    async def query_records(self, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
        """The rows of ``compiled``'s statement (``compiled.rows`` makes them the answer)."""
        with store_span(DB_SYSTEM_SQLITE, "query", "attributes", query=compiled.sql):
            return await self._fetch(compiled.sql, compiled.params)

    async def query_records_many(
        self, compiled: Sequence[CompiledQuery]
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of several compiled queries, in one call on the connection's thread."""
        statements = [(query.sql, query.params) for query in compiled]

        def run(db: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
            return [db.execute(sql, params).fetchall() for sql, params in statements]

        conn = self.connection
        first = statements[0][0] if statements else ""
        with store_span(
            DB_SYSTEM_SQLITE, "query", "attributes", query=first, batch_size=len(statements)
        ):
            try:
                # As _fetch: never inside another task's open transaction.
                async with self._write_lock:
                    return await run_in_thread(conn, run, self._raw(conn, None))
            except (sqlite3.Error, ValueError) as exc:
                raise self._failure(first, exc, None) from exc

    def _deletes(self, texts: list[str]) -> Callable[[int], tuple[Statement, ...]]:
        param = encode_value(texts)
        return lambda now: (
            (RECORD_DELETES, (param, now), False),
            (DELETE_ENTITIES, (param,), False),
            (DELETE, (param,), False),  # last: its row count is the result
        )

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        text = key
        with store_span(DB_SYSTEM_SQLITE, "delete", _ENTRIES, query=DELETE):
            return await self._write(self._deletes([text]), key=text) > 0

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove many keys in one transaction; return how many existed."""
        texts = list(keys)
        if not texts:
            return 0
        with store_span(
            DB_SYSTEM_SQLITE, "delete_many", _ENTRIES, query=DELETE, batch_size=len(texts)
        ):
            return await self._write(self._deletes(texts))

    async def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key text starts with ``prefix``; return how many.

        One transaction; each removal is recorded in the history as a delete.
        """
        where, params = range_clause(prefix, None)
        sql = f"DELETE FROM entries{where}"
        with store_span(DB_SYSTEM_SQLITE, "clear", _ENTRIES, query=sql):
            return await self._write(
                lambda now: (
                    (RECORD_CLEAR + where, (now, *params), False),
                    (_CLEAR_ATTRIBUTES + where + ")", params, False),
                    (sql, params, False),  # last: its row count is the result
                )
            )

    # -- revert ----------------------------------------------------------------

    async def revert_plan(self, keys: str | Sequence[str], to: Any) -> list[Reversion]:
        """What reverting ``keys`` (a key prefix, or a list of key texts) to ``to`` changes.

        One :class:`Reversion` per key whose stored value now differs from the
        one it had at ``to`` (an aware datetime or POSIX seconds), in key order.
        Values are compared by their stored form, which is the same for
        values Clojure calls equal.
        """
        micros = to_micros(to)
        if isinstance(keys, str):
            sql, params = revert_query(keys)
            args = [None, micros, *params]
        else:
            sql, params = revert_query(None)
            args = [encode_value(list(keys)), micros, *params]
        with store_span(DB_SYSTEM_SQLITE, "revert_plan", _HISTORY, query=sql):
            rows = await self._fetch(sql, args)
        return [
            Reversion(
                key=key,
                current=MISSING if now is None else self._decode(now, key),
                target=MISSING if then is None else self._decode(then, key),
            )
            for key, now, then in rows
        ]

    async def apply(
        self,
        puts: Sequence[tuple[str, Any]],
        deletes: Sequence[str],
        *,
        event: str | None = None,
        enforce: bool = True,
    ) -> None:
        """Set ``puts`` and remove ``deletes`` in one transaction (a revert), with ``event``.

        The puts are checked against the schema as :meth:`put_many`'s.
        """
        batch = list(puts)
        texts = list(deletes)
        rules = self._rules if enforce and batch else None
        db = self._raw(self.connection, None) if rules is not None else None

        def build(now: int) -> Iterator[Statement]:
            if db is not None:
                self.enforce(db, self._entries(batch, None))
            if batch:
                yield (UPSERT, [self._row(key, value, now, None) for key, value in batch], True)
            if texts:
                yield from self._deletes(texts)(now)

        with store_span(
            DB_SYSTEM_SQLITE, "apply", _ENTRIES, query=UPSERT, batch_size=len(batch) + len(texts)
        ):
            await self._write(build, event=event)

    # -- backup and restore ----------------------------------------------------

    async def backup(self, target: str | PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy the database to the file ``target`` while the store stays in use.

        Uses SQLite's online backup API; ``target`` only ever holds a complete
        backup (written beside it, fsynced, renamed). Returns the absolute path.
        An existing ``target`` raises :class:`StoreError` unless ``overwrite``.
        """
        from garrison.stores._sqlite_backup import backup_store  # noqa: PLC0415 - cycle

        return await backup_store(self.connection, self._write_lock, target, overwrite=overwrite)

    async def restore(self, source: str | PathLike[str]) -> None:
        """Replace the store's data with the backup file ``source``.

        The backup is checked first (``PRAGMA integrity_check``, a garrison
        store, a schema this version reads); a backup that fails raises
        :class:`StoreLoadError` (or :class:`SchemaVersionError`) and the
        current database is left exactly as it was. A backup of an older
        schema is upgraded after the copy.
        """
        from garrison.stores._sqlite_backup import restore_store  # noqa: PLC0415 - cycle

        await restore_store(
            self.connection, self.path, self._write_lock, source, after=self._after_restore
        )

    async def _after_restore(self) -> None:
        conn = self.connection
        await ensure_schema(conn, self.path)
        await self._after_schema(conn, restored=True)

    # -- meta and health -------------------------------------------------------

    async def get_meta(self, name: str, default: Any = None) -> Any:
        """The setting ``name`` from the meta table, or ``default``.

        Names starting with ``garrison.`` are used by garrison itself (the value
        format, the mode router's mode).
        """
        with store_span(DB_SYSTEM_SQLITE, "get_meta", _META, query=META_GET):
            rows = await self._fetch(META_GET, (name,), key=name)
        return self._decode(rows[0][0], name) if rows else default

    async def set_meta(self, name: str, value: Any) -> None:
        """Store the setting ``name`` (any storable value), durably, in its own transaction."""
        with store_span(DB_SYSTEM_SQLITE, "set_meta", _META, query=META_SET):
            text = encode_value(value)
            await self._write(
                lambda _now: ((META_SET, (name, text), False),), history=False, key=name
            )

    async def set_meta_many(
        self, items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, event: str | None = None
    ) -> None:
        """Store several settings in one transaction: all of them or none.

        For settings that must change together, such as a mode and the record
        of the switch to it. ``event`` records the change in the audit trail
        (see :meth:`events`) in the same transaction.
        """
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            return
        rows = [(name, encode_value(value)) for name, value in pairs]
        with store_span(
            DB_SYSTEM_SQLITE, "set_meta_many", _META, query=META_SET, batch_size=len(rows)
        ):
            await self._write(lambda _now: ((META_SET, rows, True),), history=False, event=event)

    async def ping(self) -> None:
        """A cheap round trip through the connection's thread (``SELECT 1``), for health checks."""
        with store_span(DB_SYSTEM_SQLITE, "ping", _ENTRIES, query="SELECT 1"):
            await self._fetch("SELECT 1")
