"""The typed :class:`Store` facade: application code's way into the database component.

::

    async with garrison.open_runtime("config/garrison.toml") as rt:
        store = rt.get(Store)
        await store.put("session/abc", {"user": 42})
        session = await store.get("session/abc")
        async with store.watch("session/") as changes:
            async for change in changes:
                print(change.op, change.key, change.value)

Each method is one ``ask`` to the component, so a :class:`Store` is cheap,
holds no connection, stays valid across restarts of the component (its
messages wait in the mailbox while it restarts), and may be shared by any
number of tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.components.database._live import LiveQuery
from garrison.components.database._messages import (
    Backup,
    Changes,
    Clear,
    Count,
    Delete,
    DeleteMany,
    Events,
    Find,
    Flush,
    Get,
    GetAsOf,
    GetMany,
    GetStatistics,
    History,
    Put,
    PutIfVersion,
    PutMany,
    Query,
    Restore,
    Revert,
    Scan,
    SetMode,
    Subscribe,
)
from garrison.runtime import ActorRef
from garrison.stores import MISSING, Mode, acting_as, current_audit

if TYPE_CHECKING:
    import os
    from collections.abc import Coroutine, Iterable
    from contextlib import AbstractContextManager
    from types import TracebackType

    from garrison.components.database._feed import ChangeEvent, Subscription
    from garrison.components.database._statistics import DatabaseStatistics
    from garrison.runtime import Runtime
    from garrison.stores import Audit, AuditEvent, Change, ModeSwitch, Reversion

__all__ = ["Store", "Watch"]


class Store:
    """Typed access to the ``database`` component of a runtime.

    ``target`` is a :class:`~garrison.Runtime` (the component named ``name``
    in it) or an :class:`~garrison.ActorRef` to a database component.
    ``timeout`` (seconds) bounds every call (``None``: wait as long as it
    takes); it raises :class:`~garrison.AskTimeoutError`.

    Keys are key texts (a ``str`` is the keyword with that text:
    ``"session/abc"`` and ``":session/abc"`` are ``:session/abc``) or any EDN
    key. Values are EDN or plain Python values. Store errors raise
    :class:`~garrison.StoreError` and its subclasses; a write whose key or
    value a store of the current mode cannot hold (a key with no EDN form, a
    naive ``datetime`` while the EDN file is written, ``bytes``) raises
    :class:`~garrison.RefusedWriteError` naming the key, writes nothing and
    fails that call only.

    Every change is recorded with who made it and why: the audit context of
    the caller (:meth:`acting_as`), carried in the message.
    """

    __slots__ = ("_ref", "timeout")

    def __init__(
        self, target: Runtime | ActorRef, *, name: str = "database", timeout: float | None = None
    ) -> None:
        self._ref = target if isinstance(target, ActorRef) else target.ref(name)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<Store {self._ref.name!r}>"

    @property
    def ref(self) -> ActorRef:
        """The ref of the database component this store talks to."""
        return self._ref

    def _ask(self, message: object) -> Coroutine[Any, Any, Any]:
        # The ask itself, not a coroutine around it: one frame less on every
        # suspension and resumption of every call.
        return self._ref.ask(message, timeout=self.timeout)

    # -- reads -------------------------------------------------------------------

    async def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (pass ``MISSING`` to tell nil from absent)."""
        return await self._ask(Get(key, default))

    async def get_many(self, keys: Iterable[Any]) -> dict[str, Any]:
        """``{key_text: value}`` for those of ``keys`` that exist."""
        result: dict[str, Any] = await self._ask(GetMany(tuple(keys)))
        return result

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """``(key_text, value)`` of keys starting with ``prefix``, in key order.

        Paginate with ``limit`` and ``after`` (the last key of the previous page).
        A leading colon of ``prefix`` is dropped, as for keys (``":session/"``).
        """
        result: list[tuple[str, Any]] = await self._ask(Scan(prefix, after, limit))
        return result

    async def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        result: int = await self._ask(Count(prefix))
        return result

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
        """Entries whose value at JSON ``path`` (``"$.user.id"``) matches, in key order.

        Runs on SQLite (not available in ``edn-only`` mode); declare the path
        in ``indexes`` to make it an index search. See ``SqliteStore.find``.
        """
        result: list[tuple[str, Any]] = await self._ask(
            Find(path, eq, lt, le, gt, ge, prefix, kind, after, limit)
        )
        return result

    async def query(self, query: Any, *inputs: Any, explain: bool = False) -> Any:
        """Answer a Datalog query (Datomic's form, EDN text or Python data) over the
        attribute index; ``inputs`` bind its ``:in`` after ``$``.

        Runs on SQLite (``edn-only`` refuses it, naming the mode to switch to).
        ``explain=True`` returns the one SQL statement and its plan instead.
        See ``docs/queries.md``.
        """
        result: Any = await self._ask(Query(query, tuple(inputs), explain))
        return result

    async def history(self, key: Any, *, limit: int | None = None) -> list[Change]:
        """Every recorded change of ``key``, oldest first (the newest ``limit`` if given)."""
        result: list[Change] = await self._ask(History(key, limit))
        return result

    async def get_as_of(self, key: Any, at: Any, default: Any = None) -> Any:
        """The value ``key`` had at ``at`` (an aware datetime or POSIX seconds)."""
        result: Any = await self._ask(GetAsOf(key, at, default))
        return result

    async def changes(
        self,
        since: Any = 0,
        *,
        prefix: str = "",
        actor: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[Change]:
        """The audit trail: changes made after ``since`` to keys under ``prefix``, oldest first.

        ``since`` is an aware datetime or POSIX seconds (``0``: all of it);
        ``actor`` keeps one actor's changes. Each ``Change`` names its actor
        and reason. Page with ``after_seq`` (the last ``seq`` seen) and ``limit``.
        """
        result: list[Change] = await self._ask(Changes(since, prefix, actor, after_seq, limit))
        return result

    async def events(self, since: Any = 0, *, actor: str | None = None) -> list[AuditEvent]:
        """The recorded events after ``since``: mode switches, restores, reverts."""
        result: list[AuditEvent] = await self._ask(Events(since, actor))
        return result

    @staticmethod
    def acting_as(actor: str, *, reason: str | None = None) -> AbstractContextManager[Audit]:
        """Record the changes made inside the block as ``actor``'s, for ``reason``::

            with store.acting_as("user:42", reason="gdpr request"):
                await store.delete("user/42")

        The same as :func:`garrison.stores.acting_as`: it sets a context
        variable, so it covers every store and every task started inside it.
        """
        return acting_as(actor, reason=reason)

    # -- writes ------------------------------------------------------------------

    async def put(self, key: Any, value: Any, *, if_version: int | None = None) -> None:
        """Set ``key`` to ``value``; returns once committed (or readable: ``durability``).

        ``if_version=n`` makes it a compare-and-set: written only if the key is
        at version ``n`` (``0``: only if absent; :meth:`history` shows each
        change's version), else :class:`VersionConflictError` says the current
        version and nothing is written. It needs the ``sqlite-only`` mode (the
        database the only store written) and returns once committed.
        """
        if if_version is None:
            await self._ask(Put(key, value))
        else:
            await self._ask(PutIfVersion(key, value, if_version))

    async def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Set several keys in one transaction (all or none); returns as :meth:`put` does."""
        pairs = items.items() if isinstance(items, Mapping) else items
        await self._ask(PutMany(tuple(pairs)))

    async def delete(self, key: Any) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        existed: bool = await self._ask(Delete(key))
        return existed

    async def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove several keys; how many existed."""
        result: int = await self._ask(DeleteMany(tuple(keys)))
        return result

    async def clear(self, prefix: str | None = None) -> int:
        """Remove every key starting with ``prefix`` (``None``: every key); how many there were.

        One transaction on the SQLite side, recorded in the history as a
        delete per key; the EDN file loses the keys at its next flush (await
        :meth:`flush` to wait for it). Watchers see a delete per key.
        """
        result: int = await self._ask(Clear("" if prefix is None else prefix))
        return result

    async def revert(
        self,
        keys: str | Iterable[Any],
        *,
        to: Any,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> list[Reversion]:
        """Give ``keys`` (a key prefix, or several keys) the values they had at ``to``.

        ``to`` is an aware datetime or POSIX seconds. The values are written
        as new changes, in one SQLite transaction (nothing in the history is
        lost): keys deleted since come back, keys created since are deleted.
        Recorded with the caller's actor, ``reason`` (default: the audit
        context's) and an event naming the revert. Returns what changes (or,
        with ``dry_run``, what would: nothing is written). Needs a mode that
        writes SQLite; ``edn-only`` raises :class:`~garrison.StoreError`.
        """
        target = keys if isinstance(keys, str) else tuple(keys)
        if reason is None:
            message = Revert(target, to, dry_run)
        else:
            with self.acting_as(current_audit().actor, reason=reason):
                message = Revert(target, to, dry_run)
        result: list[Reversion] = await self._ask(message)
        return result

    async def flush(self) -> None:
        """Wait until every earlier write is committed and on disk in the EDN file as well."""
        await self._ask(Flush())

    # -- operations ----------------------------------------------------------------

    async def mode(self) -> Mode:
        """The current mode of the mode router."""
        stats = await self.statistics()
        return Mode(stats.mode)

    async def set_mode(
        self, mode: Mode | str, *, force: bool = False, reason: str = ""
    ) -> ModeSwitch:
        """Switch the store's mode (see ``ModeRouter.switch_mode``); returns the recorded switch."""
        result: ModeSwitch = await self._ask(SetMode(str(Mode(mode)), force, reason))
        return result

    async def backup(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy the SQLite database to ``path`` while in use; returns the absolute path.

        An existing file at ``path`` raises :class:`StoreError` unless ``overwrite``.
        """
        result: Path = await self._ask(Backup(Path(path), overwrite))
        return result

    async def restore(self, path: str | os.PathLike[str]) -> None:
        """Replace the SQLite data with the backup at ``path`` (checked before anything changes).

        The store's mode stays what it is, whatever mode the backup recorded;
        in ``dual-write`` and ``sqlite-first`` SQLite is then repaired from
        the EDN file, which holds every write.
        """
        await self._ask(Restore(Path(path)))

    async def statistics(self) -> DatabaseStatistics:
        """Cache hit ratio, batching, feed and store counters."""
        result: DatabaseStatistics = await self._ask(GetStatistics())
        return result

    # -- change feed ---------------------------------------------------------------

    def subscribe(
        self, query: Any = "", *inputs: Any, find: Mapping[str, Any] | None = None
    ) -> LiveQuery:
        """A live query: its result now, then each time a commit changes it.

        ``query`` is a key prefix (the entries under it), or a Datalog query:
        EDN text starting with ``[`` or ``{``, or the query as Python data
        (see :meth:`query`), with ``inputs`` binding its ``:in``. ``find``
        makes a prefix query a :meth:`find` under the prefix (its arguments:
        ``{"path": "$.user", "eq": 42}``). Iterate it with ``async for``: a
        prefix or find result is a list of ``(key_text, value)`` in key order,
        a Datalog result what :meth:`query` answers; never the same twice in
        a row, at most one per 10 ms (bursts are coalesced). A Datalog or
        find query runs again only after a commit that touched an attribute
        it reads. A slow consumer gets the latest result and never slows
        writers; it resyncs across a restart of the component and ends when
        the runtime stops. A malformed query raises
        :class:`~garrison.QueryError` here. See
        :mod:`garrison.components.database._live`.
        """
        if isinstance(query, str) and not query.lstrip().startswith(("[", "{")):
            if inputs:
                raise TypeError("inputs bind a Datalog query's :in; a key prefix takes none")
            return LiveQuery(self, query, find)
        if find is not None:
            raise TypeError("find= narrows a key prefix, not a Datalog query")
        return LiveQuery(self, "", query=query, inputs=inputs)

    def watch(self, prefix: str = "", *, buffer: int | None = None) -> Watch:
        """Committed changes of keys starting with ``prefix``, in commit order.

        Use it as ``async with store.watch(p) as changes: async for c in changes``
        (subscribed when the block is entered), or directly as
        ``async for c in store.watch(p)`` (subscribed at the first iteration).
        It raises :class:`~garrison.ChangesLostError` when the watcher fell more
        than ``buffer`` changes behind (default: the ``watch_buffer`` setting),
        or the component restarted, or a backup was restored: read the current
        state again and watch anew. It ends when the runtime stops.
        """
        return Watch(self, prefix, buffer)


class Watch:
    """A change-feed iterator made by :meth:`Store.watch`."""

    __slots__ = ("_buffer", "_prefix", "_store", "_subscription")

    def __init__(self, store: Store, prefix: str, buffer: int | None) -> None:
        self._store = store
        self._prefix = prefix
        self._buffer = buffer
        self._subscription: Subscription | None = None

    async def start(self) -> Watch:
        """Subscribe now (changes committed from here on are delivered); idempotent."""
        if self._subscription is None:
            self._subscription = await self._store._ask(Subscribe(self._prefix, self._buffer))
        return self

    @property
    def pending(self) -> int:
        """Changes received and not read yet."""
        return 0 if self._subscription is None else self._subscription.pending

    def close(self) -> None:
        """Unsubscribe; iteration ends after what is already buffered."""
        if self._subscription is not None:
            self._subscription.close()

    async def __aenter__(self) -> Watch:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> ChangeEvent:
        subscription = self._subscription
        if subscription is None:
            await self.start()
            subscription = self._subscription
            assert subscription is not None
        return await subscription.__anext__()
