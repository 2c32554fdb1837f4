"""PostgresStore: the key-value store on a PostgreSQL database, through an asyncpg pool.

The same contract as :class:`~garrison.stores.SqliteStore` (the same tables,
the same value texts, the same history, audit, kinds and attribute index; one
test suite runs against both), for applications that run several instances
on one shared database. The schema is described in
:mod:`garrison.stores._postgres_schema`.

Every write is one transaction on a connection of the pool. It first takes
the write lock (a transaction-level advisory lock), so the writes of every
instance commit one at a time: history ``seq`` numbers and commit times
increase in commit order, and a compare-and-set put reads the version it
compares under the same lock as it writes. Reads run on any connection of
the pool and see what was committed when they started. Every public
operation makes one span (:func:`store_span`) with ``db.system.name =
"postgresql"``, ``server.address``, ``server.port`` and ``db.namespace``.

Datalog queries (:meth:`query`) read the attribute index for declared
attributes and the stored values for the others (see
:mod:`garrison.stores._datalog`). :meth:`backup` and
:meth:`restore` raise :class:`StoreError`: use ``pg_dump`` / ``pg_restore``
(docs/postgresql.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import asyncpg
import orjson
from opentelemetry import trace

from garrison.edn import Keyword
from garrison.exceptions import (
    SchemaVersionError,
    StoreError,
    StoreLoadError,
    VersionConflictError,
)
from garrison.stores._attributes import AttributeRow, entity_attributes, index_value
from garrison.stores._audit import current_audit
from garrison.stores._datalog import CompiledQuery, compile_query
from garrison.stores._keys import key_namespace
from garrison.stores._kinds import KindMapping
from garrison.stores._postgres_schema import (
    APPLICATION,
    CHANGES_CHANNEL,
    GARRISON_TABLES,
    MIGRATIONS,
    SCHEMA_VERSION,
    WRITE_LOCK,
)
from garrison.stores._postgres_sql import (
    AS_OF,
    CATCH_UP,
    CHANGES,
    CLEAR_ATTRIBUTES,
    CURRENT_VERSION,
    DELETE,
    DELETE_ATTRIBUTES,
    EVENTS,
    GET,
    GET_MANY,
    HISTORY_OF,
    INSERT_ATTRIBUTE,
    META_GET,
    META_SET,
    RECORD_CLEAR,
    RECORD_COMMIT,
    RECORD_DELETES,
    REINDEX_KINDS,
    UPSERT,
    UPSERT_ROWS,
    changes_query,
    expression_index_pg,
    find_query,
    json_path_pg,
    range_clause,
    revert_query,
)
from garrison.stores._protocol import MISSING

# The rules' own collection kinds and violation messages (its private helpers, from
# the same package), so that both stores refuse a write alike.
from garrison.stores._rules import (
    EntitySchema,
    Violation,
    _dangling,
    _members,
    _shared,
    find_violations,
    refused,
    stored_data_breaks,
)
from garrison.stores._sqlite_types import (
    AuditEvent,
    Change,
    KindClassifier,
    Reversion,
    classifier_for,
    to_micros,
)
from garrison.stores._values import VALUE_FORMAT_VERSION, decode_value, encode_value
from garrison.tracing import DB_SYSTEM_POSTGRESQL, store_span

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Collection,
        Iterable,
        Sequence,
    )
    from os import PathLike
    from pathlib import Path
    from types import TracebackType

    from anyio.abc import TaskGroup
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["PostgresStore"]

#: A connection the store runs statements on (the pool hands out proxies).
_Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

_ENTRIES: Final = "entries"
_HISTORY: Final = "history"
_META: Final = "meta"
_FORMAT_META: Final = "garrison.value_format"
_INDEXED_META: Final = "garrison.indexed_attributes"
# The schema (its canonical config table) the stored data was last checked against.
_SCHEMA_META: Final = "garrison.schema"
#: The most items a put_many encodes on the event loop (~1 ms); more go to a thread.
_ENCODE_ON_LOOP: Final = 512

#: What a connection or server failure raises in asyncpg (wrapped in StoreError).
_DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def _status_count(status: str) -> int:
    """The row count of a command status such as ``"DELETE 3"``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _keep_session(_conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release: nothing to send.

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, one more round trip per read and per write
    transaction. The store leaves no session state on a pooled connection: its
    advisory lock is transaction-level, it never ``SET``s, ``LISTEN``s
    (:meth:`PostgresStore.notifications` has a connection of its own) or
    declares a cursor outside a transaction, and asyncpg itself rolls back a
    transaction left open (a cancelled caller's) before it calls this.
    """


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and ``path`` (``""``: libpq's ``PG*``)."""
    if not dsn:
        return "postgresql (from the PG* environment)"
    parts = urllib.parse.urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PostgresStore:
    """A :class:`KeyValueStore` on a PostgreSQL database, with history, find and audit.

    ``dsn`` is a libpq connection URI (``postgresql://user@host:5432/db``);
    ``""`` takes everything from libpq's ``PG*`` environment variables
    (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``).
    ``kinds``, ``indexes`` and ``indexed`` mean what they mean for
    :class:`SqliteStore`, and so does ``schema`` (``unique`` and
    ``reference`` are checked inside the write's transaction, under the write
    lock, so two instances cannot both pass the same check). ``pool_size`` is
    the most connections the store opens.

    ::

        async with PostgresStore("postgresql://app@db/app") as store:
            await store.put("session/abc", {"user": 42})
            await store.put("session/abc", {"user": 43}, if_version=1)
    """

    def __init__(
        self,
        dsn: str = "",
        *,
        kinds: Mapping[str, str] | KindClassifier | None = None,
        indexes: Sequence[str] = (),
        indexed: Mapping[str, Iterable[str]] | None = None,
        schema: EntitySchema | None = None,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
    ) -> None:
        if pool_size < 1:
            raise StoreError(f"pool_size must be at least 1, not {pool_size!r}")
        self.dsn = dsn
        self.path = describe_dsn(dsn)
        self.indexes = tuple(indexes)
        for index_path in self.indexes:
            json_path_pg(index_path)  # refuse a bad path now, not at open
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._classify = classifier_for(kinds)
        if indexed is None and schema is not None:
            indexed = schema.indexed
        self._schema_given = schema
        self._schema = schema or EntitySchema({})
        # The schema when it has rules to check: the one test on the write path.
        self._rules: EntitySchema | None = self._schema if self._schema.enforced else None
        self._indexed_given = indexed is not None
        self._indexed = frozenset(attr for attrs in (indexed or {}).values() for attr in attrs)
        self._pool: asyncpg.Pool[Any] | None = None
        self._closed = False
        self._server: dict[str, Any] = {}
        #: Names this store's commits (``commits.origin``), so that :meth:`catch_up`
        #: tells the other instances' changes from its own.
        self.origin = uuid.uuid4().hex

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else ("closed" if self._closed else "new")
        return f"<PostgresStore {self.path!r} {state}>"

    # -- lifecycle -------------------------------------------------------------

    async def open(self, *, task_group: TaskGroup | None = None) -> PostgresStore:
        """Connect the pool, create or upgrade the schema, create declared indexes.

        ``task_group`` is accepted for the same call as :meth:`SqliteStore.open`;
        the store runs no loop of its own. Raises :class:`StoreLoadError` when
        the server cannot be reached or the schema is not a garrison store
        (left untouched), :class:`SchemaVersionError` for a newer schema.
        """
        del task_group  # no background loop
        if self._pool is not None:
            return self
        if self._closed:
            raise StoreError(f"{self.path}: the store was closed; make a new PostgresStore")
        try:
            pool = await asyncpg.create_pool(
                self.dsn or None,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.connect_timeout,
                reset=_keep_session,
            )
        except (*_DRIVER_ERRORS, TimeoutError) as exc:
            raise StoreLoadError(f"{self.path}: cannot connect: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await self._ensure_schema(conn)
                await self._after_schema(conn)
                self._server = await self._describe_server(conn)
        except _DRIVER_ERRORS as exc:
            await pool.close()
            raise StoreLoadError(f"{self.path}: cannot open the database: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        return self

    async def _ensure_schema(self, conn: _Connection) -> None:
        async with conn.transaction():
            await conn.execute(WRITE_LOCK)
            marked = await conn.fetchval("SELECT to_regclass('garrison_store') IS NOT NULL")
            found = 0
            if marked:
                row = await conn.fetchrow(
                    "SELECT schema_version FROM garrison_store WHERE application = $1", APPLICATION
                )
                found = 0 if row is None else int(row[0])
            if not found:
                present = [
                    name
                    for name in GARRISON_TABLES
                    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
                ]
                if present:
                    raise StoreLoadError(
                        f"{self.path}: the schema holds the tables {', '.join(present)} but is "
                        "not a garrison store; it was left untouched (name another database "
                        "or search_path)"
                    )
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path}: database schema version {found} was written by a newer "
                    f"garrison; this version knows schema versions up to {SCHEMA_VERSION}"
                )
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO garrison_store (application, schema_version) VALUES ($1, $2) "
                    "ON CONFLICT (application) "
                    "DO UPDATE SET schema_version = excluded.schema_version",
                    APPLICATION,
                    version,
                )

    async def _after_schema(self, conn: _Connection) -> None:
        """Check the value format, create declared indexes, adopt or rebuild the attributes.

        Under the write lock, in one transaction: instances starting at once
        create an index or rebuild the table once.
        """
        async with conn.transaction():
            await conn.execute(WRITE_LOCK)
            stored = await conn.fetchval(META_GET, _FORMAT_META)
            if stored is not None:
                version = int(decode_value(stored))
                if version > VALUE_FORMAT_VERSION:
                    raise StoreLoadError(
                        f"{self.path}: values use format {version}, newer than this garrison's "
                        f"{VALUE_FORMAT_VERSION}"
                    )
            else:
                await conn.execute(META_SET, _FORMAT_META, encode_value(VALUE_FORMAT_VERSION))
            for index_path in self.indexes:
                await conn.execute(expression_index_pg(index_path))
            await self._adopt_schema(conn)
            recorded = await conn.fetchval(META_GET, _INDEXED_META)
            if recorded is not None and not self._indexed_given:
                self._indexed = frozenset(decode_value(recorded))
                return
            wanted = encode_value(sorted(self._indexed))
            if recorded != wanted:
                await self._rebuild_attributes(conn)
                await conn.execute(META_SET, _INDEXED_META, wanted)

    async def _adopt_schema(self, conn: _Connection) -> None:
        """Take the recorded schema, or check the stored data against the given one and
        record it (in the caller's locked transaction). Raises :class:`SchemaError`."""
        recorded = await conn.fetchval(META_GET, _SCHEMA_META)
        given = self._schema_given
        if given is None:
            if recorded is not None:
                self._set_schema(EntitySchema.parse(decode_value(recorded)))
            return
        wanted = encode_value(given.table)
        if recorded == wanted or (recorded is None and not given.enforced):
            return
        found = await self._stored_violations(conn, given)
        if found:
            raise stored_data_breaks(self.path, found)
        await conn.execute(META_SET, _SCHEMA_META, wanted)

    def _set_schema(self, schema: EntitySchema) -> None:
        self._schema = schema
        self._rules = schema if schema.enforced else None

    async def _stored_violations(self, conn: _Connection, schema: EntitySchema) -> list[Violation]:
        """Every rule the stored entries break (only kinds with rules are decoded)."""
        entries: list[tuple[str, str | None, Any]] = []
        async for key, kind, text in conn.cursor(
            "SELECT key, kind, value FROM entries ORDER BY key"
        ):
            checked = schema.rules_for(kind) and text[:1] == "{"
            entries.append((key, kind, decode_value(text) if checked else None))
        return find_violations(schema, entries)

    @property
    def schema(self) -> EntitySchema:
        """The schema writes are checked against (given, or recorded in the database)."""
        return self._schema

    def kind_of(self, key: str) -> str | None:
        """The kind the store gives the key text ``key`` (its classifier's)."""
        return self._classify(key, key_namespace(key))

    def check_entry(self, key: str, value: Any) -> None:
        """Raise :class:`SchemaError` when the entry breaks a rule (see SqliteStore)."""
        rules = self._rules
        if rules is not None and (found := rules.check(key, self.kind_of(key), value)):
            raise refused([found])

    def _enforce(
        self, rows: Iterable[tuple[Any, ...]], values: Iterable[Any]
    ) -> list[tuple[str, str | None, Any]] | None:
        """Raise :class:`SchemaError` when an encoded row's entry breaks a rule that needs
        no stored data; return the entries the ``unique`` and ``reference`` rules must
        still check in the write's transaction (``None``: none)."""
        rules = self._rules
        if rules is None:
            return None
        entries = [(row[0], row[2], value) for row, value in zip(rows, values, strict=True)]
        found = [
            violation
            for key, kind, value in entries
            if (violation := rules.check(key, kind, value)) is not None
        ]
        if found:
            raise refused(found)
        return entries if rules.needs_lookups else None

    async def _check_lookups_in(
        self, conn: _Connection, entries: list[tuple[str, str | None, Any]] | None
    ) -> None:
        """Raise :class:`SchemaError` when ``entries`` break a ``unique`` or ``reference``
        rule (in the write's transaction, under the write lock: no other instance's
        write can pass the same check at the same time)."""
        if entries is None or self._rules is None:
            return
        latest = {key: (key, kind, value) for key, kind, value in entries}
        found = await _lookup_violations(conn, self._rules, list(latest.values()), latest)
        if found:
            raise refused(found)

    async def check_lookups(self, items: Sequence[tuple[str, Any]]) -> None:
        """Raise :class:`SchemaError` when ``items`` break a ``unique`` or ``reference`` rule.

        A read of the stored data, for the modes that write the EDN file before
        the database: the mode router checks with it before either write.
        """
        rules = self._rules
        if rules is None or not rules.needs_lookups:
            return
        latest = dict(items)
        entries = [(key, self.kind_of(key), value) for key, value in latest.items()]
        try:
            async with self.pool.acquire() as conn:
                found = await _lookup_violations(conn, rules, entries, latest)
        except _DRIVER_ERRORS as exc:
            raise self._failure("SELECT", exc, None) from exc
        if found:
            raise refused(found)

    async def schema_violations(self, schema: EntitySchema | None = None) -> list[Violation]:
        """Every rule the stored entries break (``schema``, by default the store's own)."""
        checked = schema if schema is not None else self._schema
        with self._span("schema_violations", _ENTRIES, "SELECT"):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    return await self._stored_violations(conn, checked)
            except _DRIVER_ERRORS as exc:
                raise self._failure("SELECT", exc, None) from exc

    async def _rebuild_attributes(self, conn: _Connection) -> None:
        """Refill ``attributes`` for the declared attributes from every stored object."""
        await conn.execute("DELETE FROM attributes")
        if not self._indexed:
            return
        rows: list[tuple[Any, ...]] = []
        # Only objects can be entities: the other values are skipped in SQL.
        async for key, text in conn.cursor("SELECT key, value FROM entries WHERE value LIKE '{%'"):
            try:
                attributes = entity_attributes(decode_value(text), self._indexed)
            except Exception:  # noqa: BLE001, S112 - reported when it is read
                continue
            rows.extend(_attribute_params(key, attributes))
            if len(rows) >= 1024:
                await conn.executemany(INSERT_ATTRIBUTE, rows)
                rows.clear()
        if rows:
            await conn.executemany(INSERT_ATTRIBUTE, rows)

    async def _describe_server(self, conn: _Connection) -> dict[str, Any]:
        """The span attributes naming the server and database (semantic conventions).

        The address is the DSN's host (or ``host=`` parameter, a socket
        directory), else ``PGHOST``, else libpq's default ``localhost``.
        """
        database = await conn.fetchval("SELECT current_database()")
        parts = urllib.parse.urlsplit(self.dsn)
        query = urllib.parse.parse_qs(parts.query)
        host = parts.hostname or next(iter(query.get("host", [])), None)
        host = host or os.environ.get("PGHOST") or "localhost"
        port = parts.port or next(iter(query.get("port", [])), None) or os.environ.get("PGPORT")
        described: dict[str, Any] = {"server.address": host, "db.namespace": str(database)}
        if port:
            described["server.port"] = int(port)
        return described

    @property
    def indexed(self) -> frozenset[str]:
        """The attributes kept in the attribute index (those the ``indexed`` option names)."""
        return self._indexed

    @property
    def server(self) -> Mapping[str, Any]:
        """``server.address``, ``server.port`` (when known) and ``db.namespace``, once open."""
        return dict(self._server)

    async def __aenter__(self) -> PostgresStore:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool (its connections finish their statement first). Idempotent."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        """The open pool. Raises when closed.

        Its connections are not reset when returned (see ``_keep_session``):
        what runs on one must leave no session state (``SET``, ``LISTEN``,
        session advisory locks).
        """
        if self._pool is None:
            state = "closed" if self._closed else "not open yet"
            raise StoreError(f"{self.path}: the store is {state}")
        return self._pool

    # -- helpers ---------------------------------------------------------------

    def _span(
        self, operation: str, collection: str, query: str, batch_size: int | None = None
    ) -> Any:
        return store_span(
            DB_SYSTEM_POSTGRESQL,
            operation,
            collection,
            query=query,
            batch_size=batch_size,
            attributes=self._server,
        )

    def _failure(self, sql: str, exc: BaseException, key: str | None) -> StoreError:
        """A :class:`StoreError` naming the database, statement, SQLSTATE and key."""
        code = getattr(exc, "sqlstate", None) or type(exc).__name__
        trace.get_current_span().set_attribute("db.response.status_code", code)
        verb = sql.split(None, 1)[0].upper()
        return StoreError(f"{self.path}: {verb} failed with {code}: {exc}", key=key)

    async def _fetch(self, sql: str, *params: Any, key: str | None = None) -> list[Any]:
        try:
            return list(await self.pool.fetch(sql, *params))
        except _DRIVER_ERRORS as exc:
            raise self._failure(sql, exc, key) from exc

    def _decode(self, text: str, key: str) -> Any:
        try:
            return decode_value(text)
        except StoreError as exc:
            raise StoreError(f"{self.path}: {exc}", key=key) from exc

    def _row(self, key: str, value: Any, now: int, kind: str | None) -> tuple[Any, ...]:
        namespace = key_namespace(key)
        return (
            key,
            namespace,
            kind if kind is not None else self._classify(key, namespace),
            encode_value(value),
            now,
        )

    async def _write(
        self,
        work: Callable[[_Connection, int], Awaitable[int]],
        *,
        history: bool = True,
        key: str | None = None,
        event: str | None = None,
        sql: str = "BEGIN",
    ) -> int:
        """Run ``work(connection, at)`` in one write transaction committed at time ``at``.

        The transaction takes the write lock first (in its ``BEGIN``'s round
        trip), then records itself in ``commits`` (when ``history`` or
        ``event``) with the audit context's actor and reason, which gives it
        its time ``at``. Any failure rolls it all back; a cancelled caller's
        transaction rolls back too (asyncpg cancels the statement, and the pool
        rolls back a transaction still open when the connection returns).
        """
        audit = current_audit()
        pool = self.pool
        try:
            async with pool.acquire() as conn:
                # BEGIN and the lock in one round trip (asyncpg's transaction()
                # sends BEGIN on its own); the rollback is what it would do.
                try:
                    await conn.execute(_BEGIN_LOCKED)
                    at = 0
                    if history or event:
                        now = time.time_ns() // 1000
                        at = int(
                            await conn.fetchval(
                                RECORD_COMMIT, now, audit.actor, audit.reason, event, self.origin
                            )
                        )
                    done = await work(conn, at)
                except BaseException:
                    # A broken connection cannot roll back: the pool closes it, and
                    # the server ends its transaction. The original error is raised.
                    with contextlib.suppress(*_DRIVER_ERRORS):
                        await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
                return done
        except _DRIVER_ERRORS as exc:
            raise self._failure(sql, exc, key) from exc

    # -- reads -----------------------------------------------------------------

    async def get(self, key: str, default: Any = None, *, as_of: Any = None) -> Any:
        """The value of ``key``, or ``default``; ``as_of`` reads it at that time."""
        if as_of is not None:
            micros = to_micros(as_of)
            with self._span("get", _HISTORY, AS_OF):
                rows = await self._fetch(AS_OF, key, micros, key=key)
            if not rows or rows[0][0] == "delete":
                return default
            return self._decode(rows[0][1], key)
        with self._span("get", _ENTRIES, GET):
            rows = await self._fetch(GET, key, key=key)
        return self._decode(rows[0][0], key) if rows else default

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those ``keys`` that exist, by key text (absent keys left out)."""
        texts = list(keys)
        if not texts:
            return {}
        with self._span("get_many", _ENTRIES, GET_MANY, len(texts)):
            rows = await self._fetch(GET_MANY, texts)
        return {key: self._decode(text, key) for key, text in rows}

    async def version(self, key: str) -> int:
        """The stored version of ``key`` (``0``: absent), what ``if_version`` compares with."""
        with self._span("version", _ENTRIES, CURRENT_VERSION):
            rows = await self._fetch(CURRENT_VERSION, key, key=key)
        return int(rows[0][0]) if rows else 0

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """Entries whose key text starts with ``prefix``, in key order (see SqliteStore)."""
        where, params = range_clause(prefix, after)
        sql = f"SELECT key, value FROM entries{where} ORDER BY key LIMIT ${len(params) + 1}"
        with self._span("scan", _ENTRIES, sql):
            rows = await self._fetch(sql, *params, limit)
        return [(key, self._decode(text, key)) for key, text in rows]

    async def keys(self, prefix: str = "") -> list[str]:
        """All key texts starting with ``prefix``, in key order."""
        where, params = range_clause(prefix, None)
        sql = f"SELECT key FROM entries{where} ORDER BY key"
        with self._span("keys", _ENTRIES, sql):
            rows = await self._fetch(sql, *params)
        return [row[0] for row in rows]

    async def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        where, params = range_clause(prefix, None)
        sql = f"SELECT count(*) FROM entries{where}"
        with self._span("count", _ENTRIES, sql):
            rows = await self._fetch(sql, *params)
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
        """Entries whose value at JSON ``path`` matches, in key order (see SqliteStore.find).

        The stored text is read as ``jsonb`` for the match; declare the path in
        ``indexes=`` for an expression index on it.
        """
        sql, params = find_query(
            path, eq=eq, lt=lt, le=le, gt=gt, ge=ge, prefix=prefix, kind=kind, after=after
        )
        with self._span("find", _ENTRIES, sql):
            rows = await self._fetch(sql, *params, limit)
        return [(key, self._decode(text, key)) for key, text in rows]

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]:
        """Every recorded change of ``key``, oldest first (the newest ``limit`` if given)."""
        with self._span("history", _HISTORY, HISTORY_OF):
            rows = await self._fetch(
                HISTORY_OF, key, None if limit is None else max(limit, 0), key=key
            )
        return [self._change(row) for row in reversed(rows)]

    async def changed_since(
        self, since: Any, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Change]:
        """Every change made after ``since``, in commit order (pass the last ``seq`` on)."""
        with self._span("changed_since", _HISTORY, CHANGES):
            rows = await self._fetch(CHANGES, to_micros(since), after_seq, limit)
        return [self._change(row) for row in rows]

    async def last_seq(self) -> int:
        """The ``seq`` of the newest history row (``0`` for an empty history)."""
        sql = "SELECT coalesce(max(seq), 0) FROM history"
        with self._span("last_seq", _HISTORY, sql):
            rows = await self._fetch(sql)
        return int(rows[0][0])

    async def keys_changed_after(self, seq: int) -> list[str]:
        """The keys with a history row after ``seq`` (written or deleted since), sorted."""
        sql = "SELECT DISTINCT key FROM history WHERE seq > $1 ORDER BY key"
        with self._span("keys_changed_after", _HISTORY, sql):
            rows = await self._fetch(sql, seq)
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
        """The audit trail: changes after ``since`` of keys under ``prefix``, by ``actor``."""
        sql, params = changes_query(prefix, actor)
        with self._span("changes", _HISTORY, sql):
            rows = await self._fetch(sql, to_micros(since), after_seq, *params, limit)
        return [self._change(row) for row in rows]

    async def catch_up(self, after_seq: int, *, limit: int = 1000) -> tuple[list[Change], int]:
        """The other instances' changes after ``after_seq`` (the first ``limit``), and the
        ``seq`` to pass next time.

        Changes are in commit order; every change after ``after_seq`` committed
        before the read is counted (the write lock orders ``seq`` by commit),
        so following the returned ``seq`` misses none and repeats none. This
        store's own changes are skipped (its owner published them when it
        wrote them) but advance the ``seq``.
        """
        with self._span("catch_up", _HISTORY, CATCH_UP):
            rows = await self._fetch(CATCH_UP, after_seq, limit)
        if not rows:
            return [], after_seq
        others = [self._change(row[:8]) for row in rows if row[8] != self.origin]
        return others, int(rows[-1][0])

    async def holds_store(self) -> bool:
        """Whether the database already holds a garrison store; creates and writes nothing.

        For readers that must not create the schema, as :meth:`open` does in an
        empty database (the CLI's read commands). Raises :class:`StoreLoadError`
        when the server cannot be reached.
        """
        try:
            conn = await asyncpg.connect(self.dsn or None, timeout=self.connect_timeout)
        except (*_DRIVER_ERRORS, TimeoutError) as exc:
            raise StoreLoadError(f"{self.path}: cannot connect: {exc}") from exc
        try:
            marked = await conn.fetchval("SELECT to_regclass('garrison_store') IS NOT NULL")
        finally:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await conn.close(timeout=self.connect_timeout)
        return bool(marked)

    @contextlib.asynccontextmanager
    async def notifications(self) -> AsyncIterator[Notifications]:
        """A connection of its own listening for commits (every instance's), for the block.

        ``await notifications.wait()`` returns after one or more other
        instances' commits since the last call (this store's own wake nothing),
        and raises :class:`StoreError` once the connection is
        lost (a server restart): open a new one, then catch up.
        """
        try:
            conn = await asyncpg.connect(self.dsn or None, timeout=self.connect_timeout)
        except (*_DRIVER_ERRORS, TimeoutError) as exc:
            raise StoreError(f"{self.path}: cannot connect the listener: {exc}") from exc
        notifications = Notifications(self.path, self.origin)
        try:
            conn.add_termination_listener(notifications.lost)
            await conn.add_listener(CHANGES_CHANNEL, notifications.notified)
            yield notifications
        finally:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await conn.close(timeout=self.connect_timeout)

    async def events(self, since: Any = 0, *, actor: str | None = None) -> list[AuditEvent]:
        """The recorded events after ``since`` (mode switches, reverts), oldest first."""
        with self._span("events", "commits", EVENTS):
            rows = await self._fetch(EVENTS, to_micros(since), actor)
        return [
            AuditEvent(event=event, actor=who, reason=why, at_micros=at)
            for at, who, why, event in rows
        ]

    async def record_event(self, event: str) -> None:
        """Record ``event`` in the audit trail, by the current actor, as a commit of its own."""

        async def nothing(_conn: _Connection, _at: int) -> int:
            return 0

        with self._span("record_event", "commits", RECORD_COMMIT):
            await self._write(nothing, history=False, event=event)

    def _change(self, row: Sequence[Any]) -> Change:
        seq, key, op, text, version, at, actor, reason = row
        return Change(
            seq=seq,
            key=key,
            op=op,
            value=MISSING if text is None else self._decode(text, key),
            version=version,
            at_micros=at,
            actor=actor,
            reason=reason,
        )

    # -- writes ----------------------------------------------------------------

    async def _index(self, conn: _Connection, indexed: Mapping[str, Any]) -> None:
        """Replace the attribute rows of ``indexed``'s entities (in the write's transaction)."""
        await conn.execute(DELETE_ATTRIBUTES, list(indexed))
        rows = [
            row for entity, attrs in indexed.items() for row in _attribute_params(entity, attrs)
        ]
        if rows:
            await conn.executemany(INSERT_ATTRIBUTE, rows)

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
        written; ``enforce=False`` skips the check). ``if_version``: write only
        if the key is at that version (``0``: only if it does not exist);
        otherwise raise :class:`VersionConflictError` naming the current
        version, having written nothing.
        """
        stored = self._row(key, value, 0, kind)
        lookups = self._enforce([stored], [value]) if enforce else None
        attributes = entity_attributes(value, self._indexed) if self._indexed else None

        async def work(conn: _Connection, at: int) -> int:
            if if_version is not None:
                current = await conn.fetchval(CURRENT_VERSION, key)
                if (current or 0) != if_version:
                    raise VersionConflictError(key, expected=if_version, current=current or 0)
            await self._check_lookups_in(conn, lookups)
            await conn.execute(UPSERT, *stored[:4], at)
            if self._indexed:
                await self._index(conn, {key: attributes})
            return 1

        with self._span("put", _ENTRIES, UPSERT):
            await self._write(work, key=key, sql=UPSERT)

    async def put_many(
        self, items: Iterable[tuple[str, Any]], *, kind: str | None = None, enforce: bool = True
    ) -> None:
        """Set many keys in one transaction: all of them or, on error, none.

        Raises :class:`SchemaError` when an entry breaks the schema, with
        nothing written; ``enforce=False`` skips the check (the mode router's
        own, made before it writes the EDN file).
        """
        batch = list(items)
        if not batch:
            return
        if len(batch) > _ENCODE_ON_LOOP:
            # A bulk write's encoding would hold the event loop: a worker thread does it.
            rows, indexed = await asyncio.to_thread(self._encode, batch, kind)
        else:
            rows, indexed = self._encode(batch, kind)
        lookups = self._enforce(rows, (value for _, value in batch)) if enforce else None

        async def work(conn: _Connection, at: int) -> int:
            await self._check_lookups_in(conn, lookups)
            await _upsert(conn, rows, at)
            if indexed:
                await self._index(conn, indexed)
            return len(rows)

        with self._span("put_many", _ENTRIES, UPSERT, len(batch)):
            await self._write(work, sql=UPSERT)

    def _encode(
        self, batch: list[tuple[str, Any]], kind: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, tuple[AttributeRow, ...] | None]]:
        """The upsert rows of ``batch`` and the attribute rows of its keys (last value wins)."""
        rows = [self._row(key, value, 0, kind)[:4] for key, value in batch]
        indexed: dict[str, tuple[AttributeRow, ...] | None] = {}
        if self._indexed:
            for key, value in batch:
                indexed[key] = entity_attributes(value, self._indexed)
        return rows, indexed

    async def reindex_kinds(self, mapping: KindMapping | None = None) -> int:
        """Apply a kind mapping to every stored row; return how many rows changed kind."""
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

        async def work(conn: _Connection, _at: int) -> int:
            return _status_count(await conn.execute(REINDEX_KINDS, *params))

        with self._span("reindex_kinds", _ENTRIES, REINDEX_KINDS):
            return await self._write(work, history=False, sql=REINDEX_KINDS)

    async def query(self, query: Any, *inputs: Any, explain: bool = False) -> Any:
        """Answer a Datalog query (:mod:`garrison.stores._datalog`), as :meth:`SqliteStore.query`.

        Declared attributes are read from the attribute index, the others from
        the stored values (every entry read). ``explain=True`` returns the
        statement, its parameters, PostgreSQL's plan, ``unindexed`` (the
        attributes read from the stored values) and ``scans`` (the plan reads
        a whole table).
        """
        compiled = compile_query(query, inputs, self._indexed, dialect="postgresql")
        with self._span("query", "attributes", compiled.sql):
            if explain:
                plan = await self._fetch("EXPLAIN " + compiled.sql, *compiled.params)
                lines = [str(row[0]) for row in plan]
                return {
                    "sql": compiled.sql,
                    "params": list(compiled.params),
                    "plan": lines,
                    "scans": any("Seq Scan" in line for line in lines) or bool(compiled.unindexed),
                    "unindexed": list(compiled.unindexed),
                }
            rows = await self._fetch(compiled.sql, *compiled.params)
        return compiled.rows(rows)

    def compile_query(self, query: Any, inputs: Sequence[Any] = ()) -> CompiledQuery:
        """``query`` with ``inputs`` compiled for this store (see ``SqliteStore.compile_query``)."""
        return compile_query(query, inputs, self._indexed, dialect="postgresql")

    async def query_records(self, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
        """The rows of ``compiled``'s statement (``compiled.rows`` makes them the answer)."""
        with self._span("query", "attributes", compiled.sql):
            return [tuple(row) for row in await self._fetch(compiled.sql, *compiled.params)]

    async def query_records_many(
        self, compiled: Sequence[CompiledQuery]
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of several compiled queries (one statement each, on one connection)."""
        return [await self.query_records(query) for query in compiled]

    async def _delete_texts(self, conn: _Connection, texts: list[str], at: int) -> int:
        await conn.execute(RECORD_DELETES, texts, at)
        await conn.execute(DELETE_ATTRIBUTES, texts)
        return _status_count(await conn.execute(DELETE, texts))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        with self._span("delete", _ENTRIES, DELETE):
            return (
                await self._write(
                    lambda conn, at: self._delete_texts(conn, [key], at), key=key, sql=DELETE
                )
                > 0
            )

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove many keys in one transaction; return how many existed."""
        texts = list(keys)
        if not texts:
            return 0
        with self._span("delete_many", _ENTRIES, DELETE, len(texts)):
            return await self._write(
                lambda conn, at: self._delete_texts(conn, texts, at), sql=DELETE
            )

    async def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key text starts with ``prefix``; return how many."""

        async def work(conn: _Connection, at: int) -> int:
            where, params = range_clause(prefix, None, [at])
            await conn.execute(RECORD_CLEAR + where, *params)
            where, params = range_clause(prefix, None)
            await conn.execute(CLEAR_ATTRIBUTES + where + ")", *params)
            return _status_count(await conn.execute(f"DELETE FROM entries{where}", *params))

        with self._span("clear", _ENTRIES, "DELETE FROM entries"):
            return await self._write(work, sql="DELETE")

    # -- revert ----------------------------------------------------------------

    async def revert_plan(self, keys: str | Sequence[str], to: Any) -> list[Reversion]:
        """What reverting ``keys`` (a prefix, or key texts) to ``to`` changes (see SqliteStore)."""
        sql, params = revert_query(keys if isinstance(keys, str) else list(keys), to_micros(to))
        with self._span("revert_plan", _HISTORY, sql):
            rows = await self._fetch(sql, *params)
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

        ``enforce``: check ``puts`` against the schema first (see :meth:`put_many`).
        """
        rows = [self._row(key, value, 0, None)[:4] for key, value in puts]
        lookups = self._enforce(rows, (value for _, value in puts)) if enforce else None
        texts = list(deletes)
        indexed = (
            {key: entity_attributes(value, self._indexed) for key, value in puts}
            if self._indexed
            else {}
        )

        async def work(conn: _Connection, at: int) -> int:
            await self._check_lookups_in(conn, lookups)
            if rows:
                await _upsert(conn, rows, at)
                if indexed:
                    await self._index(conn, indexed)
            if texts:
                await self._delete_texts(conn, texts, at)
            return len(rows) + len(texts)

        with self._span("apply", _ENTRIES, UPSERT, len(rows) + len(texts)):
            await self._write(work, event=event, sql=UPSERT)

    # -- backup and restore ----------------------------------------------------

    async def backup(self, target: str | PathLike[str], *, overwrite: bool = False) -> Path:
        """Not supported on PostgreSQL: raises :class:`StoreError` (use ``pg_dump``)."""
        del target, overwrite
        raise StoreError(
            f"{self.path}: garrison backup copies SQLite files; back up PostgreSQL with "
            "pg_dump (docs/postgresql.md), or use garrison export for a logical backup"
        )

    async def restore(self, source: str | PathLike[str]) -> None:
        """Not supported on PostgreSQL: raises :class:`StoreError` (use ``pg_restore``)."""
        del source
        raise StoreError(
            f"{self.path}: garrison restore reads SQLite backups; restore PostgreSQL with "
            "pg_restore (docs/postgresql.md)"
        )

    # -- meta and health -------------------------------------------------------

    async def get_meta(self, name: str, default: Any = None) -> Any:
        """The setting ``name`` from the meta table, or ``default``."""
        with self._span("get_meta", _META, META_GET):
            rows = await self._fetch(META_GET, name, key=name)
        return self._decode(rows[0][0], name) if rows else default

    async def set_meta(self, name: str, value: Any) -> None:
        """Store the setting ``name`` (any storable value) in its own transaction."""
        await self.set_meta_many([(name, value)])

    async def set_meta_many(
        self, items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, event: str | None = None
    ) -> None:
        """Store several settings in one transaction, with ``event`` in the audit trail."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            return
        rows = [(name, encode_value(value)) for name, value in pairs]

        async def work(conn: _Connection, _at: int) -> int:
            await conn.executemany(META_SET, rows)
            return len(rows)

        with self._span("set_meta_many", _META, META_SET, len(rows)):
            await self._write(work, history=False, event=event, sql=META_SET)

    async def ping(self) -> None:
        """A round trip to the server on a pooled connection (``SELECT 1``), for health."""
        with self._span("ping", _ENTRIES, "SELECT 1"):
            await self._fetch("SELECT 1")


#: A write transaction's first round trip: it begins and waits for the write lock.
_BEGIN_LOCKED: Final = f"BEGIN; {WRITE_LOCK}"

_EXISTS: Final = "SELECT 1 FROM entries WHERE key = $1"
_HOLDERS: Final = (
    "SELECT a.entity FROM attributes AS a JOIN entries AS e ON e.key = a.entity "
    "WHERE a.attr = $1 AND a.value = $2::jsonb AND a.tag = $3 AND e.kind = $4"
)


async def _upsert(conn: _Connection, rows: Sequence[tuple[Any, ...]], at: int) -> None:
    """Write the upsert ``rows`` (key, namespace, kind, value text) committed at ``at``.

    One statement over arrays when every key is there once: the server plans
    it once and runs it over all the rows, a fifth cheaper per row than one
    execution per row. A batch that sets a key twice cannot be one statement
    (``ON CONFLICT`` updates a row once), so it runs row by row, in one
    pipelined round trip all the same.
    """
    keys = [row[0] for row in rows]
    if len(set(keys)) == len(keys):
        columns = list(zip(*rows, strict=True))
        await conn.execute(
            UPSERT_ROWS, keys, list(columns[1]), list(columns[2]), list(columns[3]), at
        )
    else:
        await conn.executemany(UPSERT, [(*row, at) for row in rows])


async def _lookup_violations(
    conn: _Connection,
    schema: EntitySchema,
    entries: Iterable[tuple[str, str | None, Any]],
    written: Collection[str],
) -> list[Violation]:
    """The ``unique`` and ``reference`` rules the written ``entries`` break.

    :func:`garrison.stores._rules.lookup_violations`, the same rules and
    messages, with PostgreSQL's queries: ``entries`` are ``(key, kind,
    value)``, each key once (its last value); ``written`` every key the write
    sets (a reference may name one; an entry is compared with the batch, not
    with its own old value).
    """
    found: list[Violation] = []
    seen: dict[tuple[Any, ...], str] = {}
    for key, kind, value in entries:
        if not isinstance(value, Mapping):
            continue
        for attr, lookup, rules, _test in schema.lookups(kind):
            for member in _members(value.get(lookup), rules):
                if rules.reference and type(member) is Keyword:
                    target = member.text
                    if target not in written and await conn.fetchval(_EXISTS, target) is None:
                        found.append(_dangling(key, attr, member))
                if rules.unique:
                    part = index_value(member)
                    if part is None:
                        continue
                    other = seen.setdefault((kind, attr, *part), key)
                    if other != key:
                        found.append(_shared(key, attr, member, other))
                        continue
                    stored, tag = part
                    for (holder,) in await conn.fetch(
                        _HOLDERS, attr, orjson.dumps(stored).decode(), tag, kind
                    ):
                        if holder not in written:
                            found.append(_shared(key, attr, member, holder))
                            break
    return found


class Notifications:
    """Commit notifications on one listening connection (:meth:`PostgresStore.notifications`).

    Each notification names its commit's origin and first ``seq``
    (``"<origin> <first_seq>"``, see :mod:`._postgres_schema`); they arrive in
    commit order. Only another instance's commit wakes :meth:`wait`. This
    store's own commits wake nothing: while no other instance's commit is
    waiting to be read, an own commit starting at ``seq`` *f* means every
    commit below *f* is either read already or this store's own, so
    :meth:`wait` returns *f - 1* as the ``seq`` a catch-up may start after.
    An own commit after another instance's unread one moves nothing: that
    catch-up reads it (it is committed before the read) and skips it.
    :meth:`wait` also says whether another instance's commit recorded an
    event (a mode switch is one).
    """

    def __init__(self, path: str, origin: str) -> None:
        self._path = path
        self._origin = origin
        self._woken = asyncio.Event()
        self._lost = False
        self._others = False  # another instance's commit not read yet
        self._events = False  # one of them recorded an event
        self._own_through = 0

    def notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        """asyncpg's listener callback: a commit happened."""
        origin, _, rest = str(payload).partition(" ")
        first_seq, _, event = rest.partition(" ")
        if origin != self._origin or not first_seq.isdigit():
            self._others = True
            self._events = self._events or event != "" or not first_seq.isdigit()
            self._woken.set()
        elif not self._others:
            self._own_through = max(self._own_through, int(first_seq) - 1)

    def lost(self, *_args: object) -> None:
        """asyncpg's termination callback: the connection is gone."""
        self._lost = True
        self._woken.set()

    async def wait(self) -> tuple[int, bool]:
        """Until another instance's commit since the last call; :class:`StoreError` once the
        connection is lost.

        Returns the ``seq`` below which every commit not read yet is this
        store's own (0 when none is known): the next catch-up may start there;
        and whether one of the other instances' commits recorded an event.
        """
        await self._woken.wait()
        self._woken.clear()
        if self._lost:
            raise StoreError(f"{self._path}: the listening connection was lost")
        events, self._others, self._events = self._events, False, False
        return self._own_through, events


def _attribute_params(
    entity: str, attributes: Iterable[AttributeRow] | None
) -> list[tuple[Any, ...]]:
    """The ``INSERT_ATTRIBUTE`` parameters of an entity's rows (values as JSON text)."""
    if not attributes:
        return []
    return [(attr, orjson.dumps(value).decode(), tag, entity) for attr, value, tag in attributes]
