"""Bulk loading and stored-text reads: how the migrator reaches the database, by message.

The migrator moves a whole ``memory.edn`` into the database (SQLite or
PostgreSQL). It encodes each batch
itself (in a worker thread, ahead of the write) and sends the rows to the
actor that owns the store: :class:`LoadRows` writes them in one transaction
on the store's own write path, so the read cache forgets the keys, watchers
see a ``put`` per key, and the write has its handler and store spans like
any other. The comparisons before a write and the validation after it read
the stored texts, undecoded (:class:`ReadStored`, :class:`ScanStored`).

Two actors handle these messages with the same functions (:func:`load_rows`,
:func:`read_stored`, :func:`scan_stored_page`): the ``database`` component
inside a runtime (which adds its cache, change feed and repair backlog), and,
for the operator commands and other code with no runtime,
:func:`open_sqlite_owner`, an actor owning one :class:`SqliteStore` or
:class:`PostgresStore` for the
length of a block. Either way the caller holds a :class:`DatabaseLink`,
never the store. The owner also answers the operator commands' reads of
the database, beside a running garrison and without its lock (:class:`GetMany`,
:class:`Scan`, :class:`Backup`, the audit trail's :class:`History`,
:class:`Changes` and :class:`Events`, and the messages of :mod:`._operator`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.components.database._messages import (
    Backup,
    Changes,
    Events,
    GetMany,
    History,
    Query,
    Scan,
)
from garrison.components.database._operator import (
    CheckSchema,
    CountHistory,
    LastSeq,
    LevelledEdn,
    RevertPlan,
    count_history,
    levelled_edn,
    revert_plan,
)
from garrison.runtime import Actor, handler, open_actor
from garrison.stores import (
    Audit,
    EncodedRow,
    PostgresStore,
    current_audit,
    fetch_stored_versions,
    fetch_stored_versions_pg,
    put_new_rows,
    put_new_rows_pg,
    put_rows,
    put_rows_pg,
    running_as,
    scan_stored,
    scan_stored_pg,
    text_encoding,
    unexpected_versions,
    unexpected_versions_pg,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from garrison.runtime import ActorRef
    from garrison.stores import AuditEvent, Change, DatabaseStore, Reversion, Violation

__all__ = [
    "CountStored",
    "DatabaseLink",
    "LoadResult",
    "ListStored",
    "LoadRows",
    "ReadMeta",
    "ReadStored",
    "ScanStored",
    "StoredEncoding",
    "WaitRepaired",
    "load_rows",
    "open_sqlite_owner",
    "read_stored",
    "scan_stored_page",
    "stored_encoding",
]


@dataclass(frozen=True, slots=True)
class LoadRows:
    """Write encoded rows to the database in one transaction. Replies a :class:`LoadResult`.

    ``rows`` come from :func:`~garrison.stores._sqlite_bulk.encode_rows`;
    ``values`` are their values, in the same order (what watchers receive).
    ``meta`` is a ``(name, value)`` setting committed with the rows (a
    migration's progress record). ``only_new``: write only if none of the
    keys exists yet, checked in the same transaction; otherwise nothing is
    written and the reply carries the stored texts and versions.
    ``versions`` are the versions the caller decided to write on: a key
    whose version afterwards is not one more was written by someone else
    in between; it is named in the reply and, in the modes that write both
    sides, queued for repair from the EDN file. ``payload`` is the rows' JSON
    (:func:`~garrison.stores._sqlite_bulk.rows_json`) when made ahead (SQLite
    reads it; PostgreSQL sends the rows as arrays); ``writing`` is called as
    the rows go to the database (it must not block).
    """

    rows: Sequence[EncodedRow]
    values: Sequence[Any]
    meta: tuple[str, Any] | None = None
    only_new: bool = False
    versions: Mapping[str, int] | None = None
    payload: str | bool | None = True
    writing: Callable[[], object] | None = field(default=None, compare=False)
    #: Who writes the rows and why (see :func:`garrison.stores.acting_as`).
    audit: Audit = field(default_factory=current_audit)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What :class:`LoadRows` did: written, or (``only_new``) what is stored instead."""

    written: bool
    #: ``only_new`` refused: the stored value texts and versions of the keys that exist.
    stored: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    #: Keys someone else wrote between the caller's read and this write.
    raced: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReadStored:
    """The stored value texts and versions of those ``keys`` that exist, read together."""

    keys: Sequence[str]


@dataclass(frozen=True, slots=True)
class ScanStored:
    """Up to ``limit`` ``(key, stored text's bytes)`` under ``prefix`` after ``after``."""

    prefix: str
    after: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class StoredEncoding:
    """The Python codec of the database's texts (``"utf-8"`` for garrison's own)."""


@dataclass(frozen=True, slots=True)
class WaitRepaired:
    """Replies a future done once the repair backlog is empty (at once outside the dual modes).

    The wait runs beside the actor, which goes on serving meanwhile.
    """


@dataclass(frozen=True, slots=True)
class CountStored:
    """How many keys under ``prefix`` the SQLite side holds."""

    prefix: str = ""


@dataclass(frozen=True, slots=True)
class ListStored:
    """The keys under ``prefix`` the SQLite side holds, in key order."""

    prefix: str = ""


@dataclass(frozen=True, slots=True)
class ReadMeta:
    """A setting of the SQLite side's meta table, or ``default``."""

    name: str
    default: Any = None


# The work behind the messages above, on the store the calling actor owns.


async def load_rows(store: DatabaseStore, message: LoadRows) -> LoadResult:
    """Write (or, ``only_new``, refuse) the rows, under the message's audit; name the raced keys."""
    with running_as(message.audit):
        return await _load_rows(store, message)


async def _load_rows(store: DatabaseStore, message: LoadRows) -> LoadResult:
    m = message
    if isinstance(store, PostgresStore):
        if m.only_new:
            present = await put_new_rows_pg(store, m.rows, meta=m.meta, writing=m.writing)
        else:
            present = None
            await put_rows_pg(store, m.rows, meta=m.meta)
    elif m.only_new:
        present = await put_new_rows(
            store, m.rows, meta=m.meta, writing=m.writing, payload=m.payload
        )
    else:
        present = None
        await put_rows(store, m.rows, meta=m.meta)
    if present is not None:
        return LoadResult(written=False, stored=present[0], versions=present[1])
    raced: list[str] = []
    if m.versions is not None and m.rows:
        get = m.versions.get
        expected = {row[0]: get(row[0], 0) + 1 for row in m.rows}
        if isinstance(store, PostgresStore):
            raced = await unexpected_versions_pg(store, expected)
        else:
            raced = await unexpected_versions(store, expected)
    return LoadResult(written=True, raced=raced)


async def read_stored(
    store: DatabaseStore, message: ReadStored
) -> tuple[dict[str, str], dict[str, int]]:
    """:class:`ReadStored`."""
    if isinstance(store, PostgresStore):
        return await fetch_stored_versions_pg(store, message.keys)
    return await fetch_stored_versions(store, message.keys)


async def scan_stored_page(store: DatabaseStore, message: ScanStored) -> list[tuple[str, bytes]]:
    """:class:`ScanStored`."""
    if isinstance(store, PostgresStore):
        return await scan_stored_pg(store, message.prefix, message.after, message.limit)
    return await scan_stored(store, message.prefix, message.after, message.limit)


async def stored_encoding(store: DatabaseStore) -> str:
    """:class:`StoredEncoding`: the Python codec of the texts :class:`ScanStored` sends.

    ``"utf-8"`` on PostgreSQL, whose scan sends the texts as UTF-8 bytes
    whatever the database's encoding.
    """
    if isinstance(store, PostgresStore):
        return "utf-8"
    return await text_encoding(store)


class _StoreOwner(Actor):
    """The actor that owns one database store when no runtime does (see open_sqlite_owner)."""

    def __init__(self, store: DatabaseStore) -> None:
        self._store = store

    @handler(LoadRows)
    async def load(self, message: LoadRows) -> LoadResult:
        return await load_rows(self._store, message)

    @handler(ReadStored)
    async def read_stored(self, message: ReadStored) -> tuple[dict[str, str], dict[str, int]]:
        return await read_stored(self._store, message)

    @handler(ScanStored)
    async def scan_stored(self, message: ScanStored) -> list[tuple[str, bytes]]:
        return await scan_stored_page(self._store, message)

    @handler(StoredEncoding)
    async def encoding(self, message: StoredEncoding) -> str:
        del message
        return await stored_encoding(self._store)

    @handler(WaitRepaired)
    async def wait_repaired(self, message: WaitRepaired) -> asyncio.Future[None]:
        del message  # no repair backlog: nothing to wait for
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    @handler(CountStored)
    async def count(self, message: CountStored) -> int:
        return await self._store.count(message.prefix)

    @handler(ListStored)
    async def keys(self, message: ListStored) -> list[str]:
        return await self._store.keys(message.prefix)

    @handler(ReadMeta)
    async def read_meta(self, message: ReadMeta) -> Any:
        return await self._store.get_meta(message.name, message.default)

    # The reads of the operator commands (see ._operator), on the database alone.

    @handler(GetMany)
    async def get_many(self, message: GetMany) -> dict[str, Any]:
        return await self._store.get_many(message.keys)

    @handler(Scan)
    async def scan(self, message: Scan) -> list[tuple[str, Any]]:
        return await self._store.scan(message.prefix, after=message.after, limit=message.limit)

    @handler(Backup)
    async def backup(self, message: Backup) -> Path:
        target = Path(message.path)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        return await self._store.backup(target, overwrite=message.overwrite)

    @handler(CountHistory)
    async def count_history(self, message: CountHistory) -> int:
        del message
        return await count_history(self._store)

    @handler(LevelledEdn)
    async def levelled_edn(self, message: LevelledEdn) -> dict[str, Any]:
        return await levelled_edn(self._store, message)

    @handler(History)
    async def history(self, message: History) -> list[Change]:
        return await self._store.history(message.key, limit=message.limit)

    @handler(Changes)
    async def changes(self, message: Changes) -> list[Change]:
        m = message
        return await self._store.changes(
            m.since, prefix=m.prefix, actor=m.actor, after_seq=m.after_seq, limit=m.limit
        )

    @handler(Events)
    async def events(self, message: Events) -> list[AuditEvent]:
        return await self._store.events(message.since, actor=message.actor)

    @handler(RevertPlan)
    async def revert_plan(self, message: RevertPlan) -> list[Reversion]:
        return await revert_plan(self._store, message)

    @handler(Query)
    async def query(self, message: Query) -> Any:
        return await self._store.query(message.query, *message.inputs, explain=message.explain)

    @handler(LastSeq)
    async def last_seq(self, message: LastSeq) -> int:
        del message
        return await self._store.last_seq()

    @handler(CheckSchema)
    async def check_schema(self, message: CheckSchema) -> list[Violation]:
        return await self._store.schema_violations(message.schema)


class DatabaseLink:
    """The database as the migrator sees it: an actor that owns the store, and its file's path.

    Every method sends one message with ``ask``.
    """

    def __init__(self, ref: ActorRef, path: str) -> None:
        self.ref = ref
        #: The SQLite file or the PostgreSQL DSN (no password), for reports.
        self.path = path

    async def load(self, message: LoadRows) -> LoadResult:
        """Send :class:`LoadRows`."""
        result: LoadResult = await self.ref.ask(message)
        return result

    async def read_stored(self, keys: Sequence[str]) -> tuple[dict[str, str], dict[str, int]]:
        """The stored texts and versions of those ``keys`` that exist."""
        if not keys:
            return {}, {}
        found: tuple[dict[str, str], dict[str, int]] = await self.ref.ask(ReadStored(keys))
        return found

    async def scan_stored(
        self, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        """A page of stored texts in key order (see :class:`ScanStored`)."""
        page: list[tuple[str, bytes]] = await self.ref.ask(ScanStored(prefix, after, limit))
        return page

    async def text_encoding(self) -> str:
        """The Python codec of the stored texts."""
        encoding: str = await self.ref.ask(StoredEncoding())
        return encoding

    async def count(self, prefix: str = "") -> int:
        """How many keys the SQLite side holds under ``prefix``."""
        count: int = await self.ref.ask(CountStored(prefix))
        return count

    async def keys(self, prefix: str = "") -> list[str]:
        """The keys the SQLite side holds under ``prefix``, in key order."""
        keys: list[str] = await self.ref.ask(ListStored(prefix))
        return keys

    async def get_meta(self, name: str, default: Any = None) -> Any:
        """A setting of the meta table."""
        return await self.ref.ask(ReadMeta(name, default))

    async def set_meta(self, name: str, value: Any) -> None:
        """Store a setting of the meta table (a load of no rows)."""
        await self.load(LoadRows((), (), meta=(name, value)))

    async def wait_repaired(self) -> None:
        """Wait until keys queued for repair (see :class:`LoadRows`) are repaired."""
        repaired: asyncio.Future[None] = await self.ref.ask(WaitRepaired())
        await repaired

    # The reads of the operator commands (see ._operator).

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """``{key: value}`` for those ``keys`` the SQLite side holds."""
        found: dict[str, Any] = await self.ref.ask(GetMany(tuple(keys)))
        return found

    async def scan(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """The SQLite side's entries under ``prefix``, in key order (see :class:`Scan`)."""
        entries: list[tuple[str, Any]] = await self.ref.ask(Scan(prefix, after, limit))
        return entries

    async def backup(self, target: Path, *, overwrite: bool = False) -> Path:
        """Copy the database to ``target`` while in use (see :class:`Backup`)."""
        written: Path = await self.ref.ask(Backup(target, overwrite))
        return written

    async def count_history(self) -> int:
        """How many rows the history holds."""
        count: int = await self.ref.ask(CountHistory())
        return count

    async def levelled_edn(self, data: dict[str, Any], backlog: Path) -> dict[str, Any]:
        """The EDN file's map as the database serves it (see :class:`LevelledEdn`)."""
        levelled: dict[str, Any] = await self.ref.ask(LevelledEdn(data, backlog))
        return levelled

    async def query(self, query: Any, *inputs: Any, explain: bool = False) -> Any:
        """A Datalog query over the SQLite side (see :class:`Query`)."""
        return await self.ref.ask(Query(query, tuple(inputs), explain))

    async def history(self, key: str, *, limit: int | None = None) -> list[Change]:
        """Every recorded change of ``key``, oldest first (see :class:`History`)."""
        changes: list[Change] = await self.ref.ask(History(key, limit))
        return changes

    async def changes(
        self,
        since: Any = 0,
        *,
        prefix: str = "",
        actor: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[Change]:
        """The audit trail after ``since`` under ``prefix`` (see :class:`Changes`)."""
        changes: list[Change] = await self.ref.ask(Changes(since, prefix, actor, after_seq, limit))
        return changes

    async def events(self, since: Any = 0, *, actor: str | None = None) -> list[AuditEvent]:
        """The recorded events after ``since`` (see :class:`Events`)."""
        events: list[AuditEvent] = await self.ref.ask(Events(since, actor))
        return events

    async def revert_plan(self, keys: str | Sequence[str], to: Any) -> list[Reversion]:
        """What reverting ``keys`` to ``to`` would change (see :class:`RevertPlan`)."""
        target = keys if isinstance(keys, str) else tuple(keys)
        plan: list[Reversion] = await self.ref.ask(RevertPlan(target, to))
        return plan

    async def last_seq(self) -> int:
        """The ``seq`` of the newest history row (see :class:`LastSeq`)."""
        seq: int = await self.ref.ask(LastSeq())
        return seq


@contextlib.asynccontextmanager
async def open_sqlite_owner(store: DatabaseStore) -> AsyncIterator[DatabaseLink]:
    """Run an actor owning the open ``store`` for the block; yield a link to it.

    For code with no runtime (the operator commands, scripts, tests): the
    store is then reached through the same messages as the ``database``
    component's. ``store`` is a :class:`SqliteStore` or a
    :class:`PostgresStore` (the owner then holds a pool of its own beside any
    running instance's; PostgreSQL orders their writes). The store stays
    open; its opener closes it.
    """
    system = "postgresql" if isinstance(store, PostgresStore) else "sqlite"
    async with open_actor(_StoreOwner(store), name=f"{system}:{store.path}") as ref:
        yield DatabaseLink(ref, store.path)
