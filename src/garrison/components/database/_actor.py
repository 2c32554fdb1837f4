"""The ``database`` component: one actor owning the SQLite connection and the EDN file.

Every read and write reaches the stores through this actor's mailbox, so one
task owns the aiosqlite connection and the EDN writer (docs/architecture.md).

Batching
    Each turn of the actor's loop takes everything queued (up to the mailbox
    capacity) and walks it in mailbox order, cutting it into *groups*: a run
    of consecutive writes of one kind (puts, or deletes) becomes one
    transaction on the mode router, a run of consecutive point reads one
    ``get_many`` query; each group holds at most ``batch_limit`` messages.
    Any other message is handled on its own. Because groups run one after the
    other in mailbox order, a read never overtakes an earlier write: every
    caller reads its own writes (and everyone else's that came first). A write
    is answered only after its transaction committed.

    With ``durability = "debounced"`` a write in the modes that write SQLite
    is answered once it is admitted and readable, and committed later (see
    :mod:`._commit_loop`): point reads see the pending writes first, and every
    message that is neither grouped nor a statistics or subscription request
    commits them before it runs, so scans, counts, history, finds, mode
    switches and flushes see them too.

    A put whose key or value a store of the mode cannot hold fails that caller
    alone: the mode router admits every entry of the group before it writes
    any (see ``ModeRouter.admit``); when it refuses one, nothing was written,
    each caller is admitted on its own, the refused ones fail with
    :class:`~garrison.RefusedWriteError` and the rest are written again.

Tracing
    Each message gets its own handler span (an ask's is a child of the
    caller's span). A group's store spans hang under one ``database <kind>
    batch`` span, itself a child of the group's *first* message's handler span
    and linked to the handler spans of the others, so a lone request (the
    common case at low load) is one connected trace down to the SQL, and a
    batched one can still be followed by its link.

Faults
    A broken connection or failing disk (see :mod:`._faults`) fails the
    callers of the operation, none of whom was answered with success, and
    crashes the actor; the supervisor restarts it with a fresh connection.
    EDN flush failures do not crash it: the EDN writer keeps the data in
    memory and retries (a restart would reload the file and lose it); health
    reports them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from opentelemetry import trace

from garrison.components.database._attribute_feed import AttributeFeed, AttributeWatch
from garrison.components.database._bulk import (
    CountStored,
    ListStored,
    LoadResult,
    LoadRows,
    ReadMeta,
    ReadStored,
    ScanStored,
    StoredEncoding,
    WaitRepaired,
    load_rows,
    read_stored,
    scan_stored_page,
    stored_encoding,
)
from garrison.components.database._cache import ReadCache
from garrison.components.database._commit_loop import CommitLoop
from garrison.components.database._config import DatabaseConfig
from garrison.components.database._facade import Store
from garrison.components.database._fallback import AttachDatabase, RetryState, retry_database
from garrison.components.database._faults import is_fatal
from garrison.components.database._feed import ChangeFeed, Subscription
from garrison.components.database._groups import GROUPED, READ, GroupRunner, mark_failed
from garrison.components.database._listener import CatchUp, ListenerState, follow_changes
from garrison.components.database._loops import open_loop_group
from garrison.components.database._messages import (
    Backup,
    Changes,
    Clear,
    Count,
    Events,
    Find,
    Flush,
    GetAsOf,
    GetStatistics,
    History,
    PutIfVersion,
    Query,
    Restore,
    Revert,
    Scan,
    SetMode,
    Subscribe,
    WatchAttributes,
)
from garrison.components.database._open import StoreStack, open_stack
from garrison.components.database._operator import ReindexKinds, WriteEdnFirst, write_edn_first
from garrison.components.database._pending import PendingWrites
from garrison.components.database._query_cache import QueryCache, Touches, cache_key
from garrison.components.database._statistics import DatabaseStatistics
from garrison.exceptions import QueryError, StoreError
from garrison.runtime import CheckResult, Component, handler
from garrison.stores import (
    MISSING,
    MODE_META,
    SQLITE_FAILURES,
    Audit,
    AuditEvent,
    Mode,
    ModeSwitch,
    PostgresStore,
    Reversion,
    current_audit,
    describe_unwritable,
    running_as,
)
from garrison.telemetry import observe
from garrison.tracing import tracing_active

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from garrison.runtime import Envelope
    from garrison.stores import Change, CompiledQuery, DatabaseStore, ModeRouter

__all__ = ["DatabaseComponent"]

log = logging.getLogger(__name__)

_GROUPED_TYPES = tuple(GROUPED)
#: Messages that run without committing the pending writes first.
_NO_COMMIT_FIRST = frozenset({GetStatistics, Subscribe, WatchAttributes})
# The writes (besides the grouped puts and deletes) refused once another
# instance switched the mode under this one (see _check_recorded_mode).
_WRITES = frozenset({Clear, LoadRows, PutIfVersion, ReindexKinds, Restore, Revert, WriteEdnFirst})


class DatabaseComponent(Component):
    """The built-in ``database`` component (see the module docstring and DatabaseConfig).

    Talk to it through :class:`~garrison.components.database.Store`
    (``rt.get(Store)``) or by sending the messages of
    :mod:`garrison.components.database` with ``ask``.
    """

    name = "database"
    config_class: ClassVar[type[DatabaseConfig]] = DatabaseConfig
    facade: ClassVar[type[Store]] = Store
    # The loop hands over everything queued; groups are cut at batch_limit here.
    max_batch: ClassVar[int] = 1 << 16
    #: Run on the EDN file when SQLite cannot be opened (see ._open); the
    #: operator commands that write run the component without it.
    fallback: ClassVar[bool] = True

    config: DatabaseConfig | None = None
    _router: ModeRouter | None = None
    _stack: StoreStack | None = None

    def __init__(self) -> None:
        self._settings = DatabaseConfig()
        self._cache = ReadCache(0)
        self._feed = ChangeFeed(1)
        self._touches = Touches(QueryCache(0), AttributeFeed(), self._sqlite_behind)
        # Answers read ahead for a run of queries, by id(message) (see _read_queries).
        self._read_ahead: dict[int, tuple[CompiledQuery, list[Any], int]] = {}
        self._broken: BaseException | None = None
        self._groups: GroupRunner | None = None
        self._retry: RetryState | None = None
        self._unobserve: tuple[Callable[[], None], ...] = ()
        self._loops: TaskGroup | None = None
        #: The last history seq read from a shared (PostgreSQL) database (see ._listener).
        self._remote_seq = 0
        #: History reads made to catch up with other instances (statistics).
        self._catch_up_reads = 0
        self._listener: ListenerState | None = None
        self._pending: PendingWrites | None = None
        self._commits: CommitLoop | None = None
        # One commit at a time: the loop's, or one a message or the stop needs.
        self._commit_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def on_start(self) -> None:
        """Take the owner lock, open SQLite, the EDN file and the mode router.

        Their loops run in the actor's task group (see :mod:`._loops`).
        """
        settings = self._settings = self.config or DatabaseConfig()
        self._cache = ReadCache(settings.cache_size)
        self._feed = ChangeFeed(settings.watch_buffer)
        self._touches = Touches(
            QueryCache(settings.query_cache_size), AttributeFeed(), self._sqlite_behind
        )
        self._loops = await open_loop_group(self.spawn)
        self._stack = await open_stack(
            settings, self.data_dir, fallback=self.fallback, task_group=self._loops
        )
        self._router = self._stack.router
        self._pending = self._commits = None
        self._catch_up_reads = 0
        self._mode_changed: str | None = None
        if settings.durability == "debounced":
            self._pending = PendingWrites()
            self._commits = CommitLoop(
                self._pending,
                self._commit_beside,
                quiet_period=settings.flush_quiet_period,
                max_delay=settings.flush_max_delay,
            )
        self._groups = GroupRunner(
            self.name,
            self._router,
            self._cache,
            self._feed,
            self._fatal,
            touches=self._touches,
            pending=self._pending,
            on_pending=self._commits.notify if self._commits is not None else lambda: None,
        )
        if self._commits is not None:
            self._loops.start_soon(self._commits.run, name=f"{self.name}-commits")
        shared = self._stack.sqlite
        if isinstance(shared, PostgresStore):
            # Other instances' changes from here on reach this one's cache and watchers.
            self._remote_seq = await shared.last_seq()
            self._listener = ListenerState()
            self._loops.start_soon(
                follow_changes, shared, self.self_ref, self._listener, name=f"{self.name}-changes"
            )
            await self._listener.tried.wait()  # started = listening (or the reason it is not)
        self._retry = None
        self._unobserve = (
            observe("garrison.edn.writer.lag", self._observe_writer_lag),
            observe("garrison.database.subscriptions", self._observe_subscriptions),
            observe("garrison.database.cache.hits", self._observe_cache_hits),
            observe("garrison.database.cache.misses", self._observe_cache_misses),
            observe("garrison.database.query_cache.lookups", self._observe_query_lookups),
            observe("garrison.database.query_cache.removals", self._observe_query_removals),
        )
        if self._stack.unavailable is not None:
            self._retry = RetryState(self._stack.unavailable)
            self.spawn(
                retry_database(settings, self._stack.sqlite.path, self._retry, self.self_ref),
                name=f"{self.name}-database-retry",
            )

    async def on_stop(self) -> None:
        """Commit pending writes, end the feeds, stop the router, flush the EDN file, close SQLite.

        The mailbox is already drained (every queued write answered). Each
        step runs even if an earlier one failed; the first failure is raised.
        """
        for unobserve in self._unobserve:
            unobserve()
        errors: list[Exception] = []
        if self._pending and self._router is not None:
            count = len(self._pending)
            try:
                await self._commit_pending()
            except Exception as exc:  # noqa: BLE001 - the stores are closed all the same
                log.error("%d acknowledged writes could not be committed at stop: %s", count, exc)
                errors.append(exc)
        final = self._runtime is not None and self.runtime.stopping
        if final:
            self._feed.close()
            self._touches.feed.close()
        else:
            self._feed.lose_all("restart")
            self._touches.feed.lose_all("restart")
        stack, self._stack = self._stack, None
        self._router = None
        if stack is not None:
            try:
                await stack.aclose()
            except Exception as exc:  # noqa: BLE001 - the first failure is raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    # The metric feeds run on the collector's thread: they read attributes only.
    def _observe_writer_lag(self) -> list[tuple[float, dict[str, str]]]:
        router = self._router
        if router is None:
            return []
        edn = router.edn
        return [(edn.writer_lag, {"garrison.edn.file": str(edn.path)})]

    def _observe_subscriptions(self) -> list[tuple[float, dict[str, str]]]:
        return [(self._feed.watchers, {"garrison.component": self.name})]

    def _observe_cache_hits(self) -> list[tuple[float, dict[str, str]]]:
        return [(self._cache.hits, {"garrison.component": self.name})]

    def _observe_cache_misses(self) -> list[tuple[float, dict[str, str]]]:
        return [(self._cache.misses, {"garrison.component": self.name})]

    def _observe_query_lookups(self) -> list[tuple[float, dict[str, str]]]:
        cache = self._touches.cache
        return [
            (cache.hits, {"garrison.component": self.name, "garrison.query_cache.outcome": "hit"}),
            (
                cache.misses,
                {"garrison.component": self.name, "garrison.query_cache.outcome": "miss"},
            ),
        ]

    def _observe_query_removals(self) -> list[tuple[float, dict[str, str]]]:
        cache = self._touches.cache
        return [
            (
                cache.evictions,
                {"garrison.component": self.name, "garrison.query_cache.reason": "eviction"},
            ),
            (
                cache.invalidations,
                {"garrison.component": self.name, "garrison.query_cache.reason": "invalidation"},
            ),
        ]

    def _sqlite_behind(self) -> bool:
        """Whether SQLite may be behind the EDN file (a repair backlog): queries may be stale."""
        router = self._router
        return router is not None and router.needs_repair

    # ------------------------------------------------------------------ access

    @property
    def router(self) -> ModeRouter:
        """The mode router (statistics, fault injection in tests); raises when not running.

        Owned by this actor: other tasks reach the stores by message.
        """
        if self._router is None:
            raise StoreError(f"the {self.name!r} component is not running")
        return self._router

    @property
    def _group_runner(self) -> GroupRunner:
        if self._groups is None:
            raise StoreError(f"the {self.name!r} component is not running")
        return self._groups

    @property
    def commit_loop(self) -> CommitLoop | None:
        """The commit loop of ``durability = "debounced"`` (``None`` with ``commit``)."""
        return self._commits

    def statistics(self) -> DatabaseStatistics:
        """A snapshot of the cache, batching, feed and store counters."""
        router = self.router
        groups = self._group_runner
        stats = router.statistics()
        edn = router.edn
        error = edn.last_flush_error
        cache = self._cache
        queries = self._touches.cache
        return DatabaseStatistics(
            mode=str(stats.mode),
            cache_capacity=cache.capacity,
            cache_entries=len(cache),
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_hit_ratio=cache.hit_ratio,
            query_cache_capacity=queries.capacity,
            query_cache_entries=len(queries),
            query_cache_hits=queries.hits,
            query_cache_misses=queries.misses,
            query_cache_hit_ratio=queries.hit_ratio,
            query_cache_evictions=queries.evictions,
            query_cache_invalidations=queries.invalidations,
            attribute_watches=self._touches.feed.watches,
            attribute_wakeups=self._touches.feed.wakeups,
            write_batches=groups.write_batches,
            read_batches=groups.read_batches,
            batched_writes=groups.batched_writes,
            batched_reads=groups.batched_reads,
            largest_batch=groups.largest_batch,
            watchers=self._feed.watchers,
            changes_published=self._feed.published,
            watch_overflows=self._feed.overflows,
            catch_up_reads=self._catch_up_reads,
            edn_writer_lag=edn.writer_lag,
            edn_last_flush_error=None if error is None else str(error),
            edn_unwritable=tuple(sorted(edn.unwritable)),
            edn_late_flushes=edn.statistics().late_flushes,
            repair_backlog=stats.repair_backlog,
            full_repair_pending=stats.full_repair_pending,
            durability=self._settings.durability,
            uncommitted_writes=len(self._pending) if self._pending is not None else 0,
            commit_lag=commits.lag if (commits := self._commits) is not None else 0.0,
            commits=commits.commits if commits is not None else 0,
            late_commits=commits.late_commits if commits is not None else 0,
            last_commit_error=commits.last_error if commits is not None else None,
            sqlite_path=str(router.sqlite.path),
            edn_path=str(edn.path),
        )

    # ------------------------------------------------------------------ health

    async def check_health(self) -> CheckResult:
        """``SELECT 1`` within ``health_timeout``, EDN writer lag and errors, mode, backlog.

        ``fail`` when SQLite does not answer in time or at all, the EDN
        writer is more than ``max_writer_lag`` seconds behind, or the EDN file
        cannot hold an entry (named in the output; see ``EdnFileStore.unwritable``), or
        (``durability = "debounced"``) the oldest uncommitted write is more than
        ``max_writer_lag`` seconds old; ``warn`` on an EDN flush error, a failing
        commit of acknowledged writes or a repair backlog, and while the component runs on
        the EDN file because the database cannot be opened (naming the cause;
        see :mod:`._fallback`). A broken connection also crashes the actor, so
        the supervisor replaces it.
        """
        router = self._router
        if router is None:
            return CheckResult.failing("the database is not open")
        settings = self._settings
        stats = router.statistics()
        edn = router.edn
        observed: dict[str, Any] = {
            "mode": str(stats.mode),
            "repair_backlog": stats.repair_backlog,
            "edn_writer_lag_s": round(edn.writer_lag, 3),
            "cache_hit_ratio": round(self._cache.hit_ratio, 4),
        }
        failures: list[str] = []
        warnings: list[str] = []
        if (retry := self._retry) is not None:
            # Running on the EDN file: it serves every read and write of the mode.
            warnings.append(
                f"running on the EDN file {edn.path} in {stats.mode} mode: the database "
                f"{router.sqlite.path} cannot be opened ({retry.cause}); retried "
                f"{retry.attempts} times, next in about {retry.next_delay:g}s"
            )
            observed["database_unavailable"] = retry.cause
        else:
            await self._ping(router, settings, observed, failures)
        if (listener := self._listener) is not None:
            observed["change_listener"] = "connected" if listener.connected else "reconnecting"
            if not listener.connected:
                warnings.append(
                    f"the listener for other instances' changes is not connected "
                    f"({listener.error}): watchers and the read cache miss them until it is"
                )
        if edn.writer_lag > settings.max_writer_lag:
            failures.append(
                f"EDN writer is {edn.writer_lag:.1f}s behind (limit {settings.max_writer_lag:g}s)"
            )
        if edn.last_flush_error is not None:
            warnings.append(f"EDN flush failing: {edn.last_flush_error}")
        if unwritable := edn.unwritable:
            failures.append(f"the EDN file {edn.path} lacks {describe_unwritable(unwritable)}")
        if (commits := self._commits) is not None and self._pending:
            observed["uncommitted_writes"] = len(self._pending)
            observed["commit_lag_s"] = round(commits.lag, 3)
            if commits.lag > settings.max_writer_lag:
                failures.append(
                    f"{len(self._pending)} acknowledged writes are not committed, the oldest "
                    f"{commits.lag:.1f}s ago (limit {settings.max_writer_lag:g}s)"
                )
            if commits.last_error is not None:
                warnings.append(f"committing acknowledged writes failing: {commits.last_error}")
        if stats.repair_backlog or stats.full_repair_pending:
            detail = ", full repair pending" if stats.full_repair_pending else ""
            warnings.append(f"SQLite repair backlog of {stats.repair_backlog} keys{detail}")
        if stats.last_sqlite_error is not None:
            observed["last_sqlite_error"] = stats.last_sqlite_error
        if failures:
            return CheckResult.failing("; ".join(failures + warnings), **observed)
        if warnings:
            return CheckResult.warning("; ".join(warnings), **observed)
        return CheckResult.passing(**observed)

    async def _ping(
        self,
        router: ModeRouter,
        settings: DatabaseConfig,
        observed: dict[str, Any],
        failures: list[str],
    ) -> None:
        began = time.perf_counter()
        system = "PostgreSQL" if isinstance(router.sqlite, PostgresStore) else "SQLite"
        try:
            async with asyncio.timeout(settings.health_timeout):
                await router.sqlite.ping()
        except TimeoutError:
            failures.append(f"{system} did not answer SELECT 1 within {settings.health_timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure of the ping is the health answer
            failures.append(f"{system} ping failed: {type(exc).__name__}: {exc}")
            if is_fatal(exc):
                self._break(exc)
        else:
            observed["ping_ms"] = round((time.perf_counter() - began) * 1000, 3)

    def _break(self, exc: BaseException) -> None:
        """The connection or disk is unusable: crash, so the supervisor restarts us."""
        if self._broken is None:
            self._broken = exc
            self.crash(exc)

    def _broken_error(self) -> StoreError:
        error = StoreError(
            f"the database component is restarting after a storage failure: {self._broken}"
        )
        error.__cause__ = self._broken
        return error

    # ------------------------------------------------------------------ batching

    @classmethod
    def accepts(cls, message_type: type) -> bool:
        """Grouped operations have no ``@handler``; every message of this package is accepted.

        So are subclasses of the grouped messages (an application's own kind
        of put): each is handled as a group of one.
        """
        return (
            message_type in GROUPED
            or super().accepts(message_type)
            or issubclass(message_type, _GROUPED_TYPES)
        )

    async def receive_batch(self, batch: list[Envelope]) -> None:
        """Cut ``batch`` into groups (see the module docstring) and run them in order."""
        limit = self._settings.batch_limit
        count = len(batch)
        index = 0
        read_to = 0  # the queries before this index were read ahead, or tried
        while index < count and self._broken is None:
            envelope = batch[index]
            kind = GROUPED.get(type(envelope.message))
            if kind is None:
                if index >= read_to and type(envelope.message) is Query:
                    read_to = await self._read_queries(batch, index)
                await self._handle_one(envelope)
                index += 1
            else:
                # Writes group by audit too: a transaction records one actor and reason.
                audit = getattr(envelope.message, "audit", None)
                end = index + 1
                while end < count and end - index < limit:
                    message = batch[end].message
                    if GROUPED.get(type(message)) is not kind:
                        break
                    if audit is not None and (
                        (other := getattr(message, "audit", None)) is not audit and other != audit
                    ):
                        break
                    end += 1
                group = batch[index:end] if end - index < count else batch
                index = end
                if kind != READ and self._mode_changed is not None:
                    for refused in group:
                        refused.fail(StoreError(self._mode_changed))
                    continue
                if audit is None:
                    await self._group_runner.run(kind, group)
                else:
                    with running_as(audit):
                        await self._group_runner.run(kind, group)
        self._read_ahead.clear()
        if self._broken is not None:
            # We crashed: let the cancellation land here, before the loop takes
            # more from the mailbox, so queued messages wait for the restarted
            # instance. The rest of this batch fails with ActorStoppedError (its
            # callers were never told their operation succeeded).
            await asyncio.sleep(0)
            for envelope in batch[index:]:
                envelope.fail(self._broken_error())

    async def _read_queries(self, batch: list[Envelope], index: int) -> int:
        """Read the answers of a run of queries from ``index`` in one SQLite call.

        Many live queries woken by one commit ask at once: one thread hop for
        the run instead of one per query. Each query's handler then takes its
        rows (and caches them) as if it had read them itself; a query that
        fails to compile is left to its handler, which reports it. Not with
        pending writes (each handler commits them first) nor while tracing (a
        query's store span belongs under its own handler span). Returns the
        index after the run.
        """
        end = index + 1
        while end < len(batch) and type(batch[end].message) is Query:
            end += 1
        router = self._router
        if (
            end - index < 2
            or router is None
            or self._retry is not None
            or router.mode is Mode.EDN_ONLY
            or self._pending
            or tracing_active()
        ):
            return end
        sqlite = router.sqlite
        cache = self._touches.cache
        wanted: dict[Any, tuple[list[int], CompiledQuery]] = {}
        for envelope in batch[index:end]:
            message = cast("Query", envelope.message)
            if message.explain:
                continue
            key = cache_key(message.query, message.inputs) if cache.capacity > 0 else None
            if key is not None and key in cache:
                continue  # its handler finds the answer
            group = key if key is not None else id(message)
            if group in wanted:
                wanted[group][0].append(id(message))
                continue
            try:
                compiled = (cache.compiled(key) if key is not None else None) or (
                    sqlite.compile_query(message.query, message.inputs)
                )
            except QueryError:
                continue
            wanted[group] = ([id(message)], compiled)
        if len(wanted) < 2:
            return end
        generation = cache.generation
        try:
            answers = await sqlite.query_records_many([c for _, c in wanted.values()])
        except Exception:  # noqa: BLE001 - each handler reads on its own and reports
            return end
        for (ids, compiled), rows in zip(wanted.values(), answers, strict=True):
            for ident in ids:
                self._read_ahead[ident] = (compiled, rows, generation)
        return end

    def _fatal(self, exc: Exception) -> BaseException:
        """A group hit a storage failure: crash, and tell its callers why."""
        self._break(exc)
        error = self._broken_error()
        error.__cause__ = exc
        return error

    # ------------------------------------------------------------------ debounced commits

    async def _commit_pending(self) -> None:
        """Commit every pending write, in order; raise (the rest stays pending) on failure.

        Waits for a commit that is already running, then commits what is left.
        """
        pending, commits = self._pending, self._commits
        if pending is None or commits is None:
            return
        async with self._commit_lock:
            first_at = pending.first_at
            if first_at is None:
                return
            loop = asyncio.get_running_loop()
            began = loop.time()
            try:
                await self._group_runner.commit(pending)
            except Exception as exc:
                commits.failed(exc)
                raise
            commits.committed(first_at, loop.time() - began)

    async def _commit_first(self, message: object) -> None:
        """Commit the pending writes before ``message`` runs, or fail it saying why."""
        count = len(self._pending or ())
        try:
            await self._commit_pending()
        except Exception as exc:
            if is_fatal(exc):
                raise
            raise StoreError(
                f"{count} acknowledged writes must be committed before "
                f"{type(message).__qualname__} runs, and the commit failed: "
                f"{type(exc).__name__}: {exc} (they stay pending and readable)"
            ) from exc

    async def _commit_beside(self) -> bool:
        """The commit loop's commit, beside the actor's turns: ``True`` once committed.

        The actor keeps acknowledging and reading meanwhile (reads of keys the
        commit carries answer from the pending writes; SQLite reads wait for
        its transaction). Shielded: a stop that cancels the loop lets the
        commit finish, and the stop's own commit waits for it (the lock).
        ``False``: it failed on a store error that leaves the writes pending; a
        storage failure crashes the actor, and so does any other error (a bug):
        it ends the loop, whose task group crashes the actor, and the stop
        commits what is pending.
        """
        try:
            await asyncio.shield(self._commit_pending())
        except SQLITE_FAILURES as exc:
            if is_fatal(exc):
                self._break(exc)
            else:
                log.warning(
                    "committing %d acknowledged writes failed; retrying: %s",
                    len(self._pending or ()),
                    exc,
                )
            return False
        return True

    # ------------------------------------------------------------------ one by one

    async def _handle_one(self, envelope: Envelope) -> None:
        """Run the ``@handler`` of a message that is not grouped, with its span."""
        message = envelope.message
        fn = type(self).find_handler(type(message))
        if fn is None:
            kind = next((k for t, k in GROUPED.items() if isinstance(message, t)), None)
            if kind is not None:  # a subclass of a grouped message: a group of one
                if kind != READ and self._mode_changed is not None:
                    envelope.fail(StoreError(self._mode_changed))
                    return
                await self._group_runner.run(kind, [envelope])
                return
            envelope.fail(StoreError(f"the database cannot handle {type(message).__qualname__}"))
            return
        if self._broken is not None:
            envelope.fail(self._broken_error())
            return
        if self._mode_changed is not None and type(message) in _WRITES:
            envelope.fail(StoreError(self._mode_changed))
            return
        audit: Audit = getattr(message, "audit", None) or current_audit()
        with envelope.handler_span(self.name) as span, running_as(audit):
            try:
                if self._pending and type(message) not in _NO_COMMIT_FIRST:
                    await self._commit_first(message)
                result = await fn(self, message)
            except Exception as exc:  # noqa: BLE001 - the caller's error; fatal ones crash us
                if is_fatal(exc) and type(message) not in (Backup, Restore):
                    self._break(exc)
                envelope.fail(exc)
                if span.is_recording():
                    mark_failed(span, envelope)
            else:
                envelope.reply(result)

    def _require_database(self, operation: str) -> None:
        """Refuse ``operation`` while the component runs on the EDN file alone."""
        if self._retry is not None:
            raise StoreError(
                f"{operation} needs the database {self.router.sqlite.path}, which cannot be "
                f"opened ({self._retry.cause}); the store runs on the EDN file until it can"
            )

    def _database(self, operation: str) -> DatabaseStore:
        """The database store (SQLite or PostgreSQL), in any mode: the migrator's bulk path."""
        self._require_database(operation)
        return self.router.sqlite

    def _sqlite_side(self, operation: str) -> DatabaseStore:
        router = self.router
        self._require_database(operation)
        if router.mode is Mode.EDN_ONLY:
            raise StoreError(
                f"{operation} reads SQLite, which the store does not use in edn-only mode"
            )
        return router.sqlite

    @handler(Scan)
    async def scan(self, message: Scan) -> list[tuple[str, Any]]:
        """Entries under a prefix, paginated."""
        return await self.router.scan(message.prefix, after=message.after, limit=message.limit)

    @handler(Count)
    async def count(self, message: Count) -> int:
        """How many keys start with a prefix."""
        return await self.router.count(message.prefix)

    @handler(Find)
    async def find(self, message: Find) -> list[tuple[str, Any]]:
        """Entries whose value at a JSON path matches (SQLite side)."""
        store = self._sqlite_side("find")
        m = message
        return await store.find(
            m.path,
            eq=m.eq,
            lt=m.lt,
            le=m.le,
            gt=m.gt,
            ge=m.ge,
            prefix=m.prefix,
            kind=m.kind,
            after=m.after,
            limit=m.limit,
        )

    @handler(Query)
    async def query(self, message: Query) -> Any:
        """A Datalog query, answered from SQLite in every mode that writes it."""
        self._require_database("a query")
        if self.router.mode is Mode.EDN_ONLY:
            raise StoreError(
                "a query needs the database, which the store does not use in edn-only mode: "
                "switch to dual-write (`garrison mode set dual-write`, or "
                "store.set_mode('dual-write')) so the database holds the data"
            )
        sqlite = self.router.sqlite
        if message.explain:
            return await sqlite.query(message.query, *message.inputs, explain=True)
        cache = self._touches.cache
        key = cache_key(message.query, message.inputs) if cache.capacity > 0 else None
        entry = cache.lookup(key) if key is not None else None
        if key is not None and (span := trace.get_current_span()).is_recording():
            span.set_attribute("garrison.cache.hit", entry is not None)
        if entry is not None:
            held, rows = entry
            return held.rows(rows)
        ahead = self._read_ahead.pop(id(message), None)
        if ahead is not None:
            compiled, rows, generation = ahead
        else:
            generation = cache.generation
            known = cache.compiled(key) if key is not None else None
            compiled = known or sqlite.compile_query(message.query, message.inputs)
            rows = await sqlite.query_records(compiled)
        # Not while SQLite is behind: its repair would change the answer unseen.
        if key is not None and not self._sqlite_behind():
            cache.store(key, compiled, rows, generation)
        return compiled.rows(rows)

    @handler(ReindexKinds)
    async def reindex_kinds(self, message: ReindexKinds) -> int:
        """Apply a kind mapping to every stored row (SQLite side; values and history untouched)."""
        self._require_database("a reindex")
        try:
            return await self.router.sqlite.reindex_kinds(message.mapping)
        finally:
            self._touches.everything()

    @handler(History)
    async def history(self, message: History) -> list[Change]:
        """Every recorded change of a key (SQLite side)."""
        store = self._sqlite_side("history")
        return await store.history(message.key, limit=message.limit)

    @handler(Changes)
    async def changes(self, message: Changes) -> list[Change]:
        """The audit trail, narrowed by time, prefix and actor (SQLite side)."""
        store = self._sqlite_side("the audit trail")
        m = message
        return await store.changes(
            m.since, prefix=m.prefix, actor=m.actor, after_seq=m.after_seq, limit=m.limit
        )

    @handler(Events)
    async def events(self, message: Events) -> list[AuditEvent]:
        """The recorded events: mode switches, restores, reverts (SQLite side)."""
        store = self._sqlite_side("the audit trail")
        return await store.events(message.since, actor=message.actor)

    @handler(Revert)
    async def revert(self, message: Revert) -> list[Reversion]:
        """Write back the values keys had at a time, as new changes (see :class:`Revert`)."""
        self._require_database("a revert")
        keys = message.keys
        plan = await self.router.revert(
            keys if isinstance(keys, str) else list(keys), message.to, dry_run=message.dry_run
        )
        if plan and not message.dry_run:
            self._cache.invalidate([r.key for r in plan])
            attributes = self._touches.attributes
            self._touches.write((r.key, attributes(r.current), r.target) for r in plan)
            self._feed.publish(
                (r.key, "delete", MISSING) if r.target is MISSING else (r.key, "put", r.target)
                for r in plan
            )
        return plan

    @handler(GetAsOf)
    async def get_as_of(self, message: GetAsOf) -> Any:
        """The value a key had at a moment (SQLite history)."""
        store = self._sqlite_side("an as-of read")
        return await store.get(message.key, message.default, as_of=message.at)

    @handler(SetMode)
    async def set_mode(self, message: SetMode) -> ModeSwitch:
        """Switch the router's mode; the cache starts empty in the new mode."""
        self._require_database("a mode switch")
        switch = await self.router.switch_mode(
            message.mode, force=message.force, reason=message.reason
        )
        self._mode_changed = None  # this instance's switch is the recorded mode now
        self._cache.clear()
        self._touches.everything()
        return switch

    @handler(PutIfVersion)
    async def put_if_version(self, message: PutIfVersion) -> None:
        """A compare-and-set put on the database alone (sqlite-only), then cache and watchers."""
        self._require_database("a compare-and-set put")
        if self.router.mode is not Mode.SQLITE_ONLY:
            raise StoreError(
                f"a compare-and-set put needs the sqlite-only mode (the database the only store "
                f"written), not {self.router.mode}"
            )
        try:
            await self.router.sqlite.put(message.key, message.value, if_version=message.expected)
        finally:
            # The old value is not read: every cached answer may have changed.
            self._touches.everything()
        self._cache.invalidate([message.key])
        self._feed.publish([(message.key, "put", message.value)])

    @handler(CatchUp)
    async def catch_up(self, message: CatchUp) -> int:
        """Publish the other instances' changes since the last seen seq (see ._listener)."""
        store = self.router.sqlite
        if not isinstance(store, PostgresStore):
            return 0
        self._remote_seq = max(self._remote_seq, message.own_through)
        published = 0
        while True:
            before = self._remote_seq
            self._catch_up_reads += 1
            changes, self._remote_seq = await store.catch_up(before)
            if changes:
                self._cache.invalidate([change.key for change in changes])
                # Another instance's commits: their old values are not known here.
                self._touches.everything()
                self._feed.publish((c.key, c.op, c.value) for c in changes)
                published += len(changes)
            if self._remote_seq == before:
                break
        if message.check_mode:
            await self._check_recorded_mode(store)
        return published

    async def _check_recorded_mode(self, store: PostgresStore) -> None:
        """Refuse writes while the mode recorded in the shared database is not this instance's.

        Another instance switched it: this instance's router would go on
        writing in the old mode (and in a mode that writes the EDN file, the
        file belongs to one instance). Reads go on; writes fail with an error
        saying so until the recorded mode is this instance's again or it
        restarts (in the recorded mode).
        """
        recorded = await store.get_meta(MODE_META)
        mode = self.router.mode
        if recorded is None or recorded == str(mode):
            self._mode_changed = None
            return
        if self._mode_changed is None:
            self._mode_changed = (
                f"{store.path}: another instance switched the mode to {recorded} under this "
                f"instance (running {mode}); it refuses writes until it is restarted, and "
                "starts in the recorded mode (stop the other instances before switching "
                "into a mode that writes the EDN file: the file belongs to one instance)"
            )
            log.error("%s", self._mode_changed)

    @handler(Clear)
    async def clear(self, message: Clear) -> int:
        """Remove the keys under a prefix; the cache and the watchers see each delete."""
        prefix = message.prefix
        router = self.router
        # The keys readers see (and the cache may hold); nothing writes between
        # the two calls, this actor being the stores' only user.
        gone = await router.keys(prefix)
        try:
            await router.clear(prefix)
        finally:
            self._touches.everything()
        self._cache.invalidate(gone)
        self._feed.publish((key, "delete", MISSING) for key in gone)
        return len(gone)

    @handler(Flush)
    async def flush(self, message: Flush) -> None:
        """Wait until the EDN file holds every earlier write (SQLite writes are committed)."""
        del message
        await self.router.edn.flush()

    @handler(Backup)
    async def backup(self, message: Backup) -> Path:
        """Online backup of the SQLite database to a file (its directory is created)."""
        self._require_database("a backup")
        target = Path(message.path)
        await asyncio.to_thread(_make_parent, target)
        return await self.router.sqlite.backup(target, overwrite=message.overwrite)

    @handler(Restore)
    async def restore(self, message: Restore) -> str | None:
        """Replace the SQLite data with a checked backup (the mode stays); watchers must resync."""
        self._require_database("a restore")
        try:
            recorded = await self.router.restore_sqlite(message.path)
        finally:
            self._touches.everything()
        self._cache.clear()
        self._feed.lose_all("restore")
        self._touches.feed.lose_all("restore")
        return recorded

    @handler(WriteEdnFirst)
    async def write_edn_first(self, message: WriteEdnFirst) -> None:
        """Write to the EDN file first, for the operator commands (see ._operator)."""
        try:
            self._cache.invalidate(await write_edn_first(self.router, message))
        finally:
            self._touches.everything()

    @handler(AttachDatabase)
    async def attach_database(self, message: AttachDatabase) -> bool:
        """Attach SQLite after a start on the EDN file; ``False``: not yet (retried)."""
        del message
        stack = self._stack
        retry = self._retry
        if stack is None or retry is None:
            return True
        try:
            await stack.attach_sqlite(self._settings, self._loops)
        except Exception as exc:  # noqa: BLE001 - reported by health; the retry loop goes on
            retry.cause = f"{type(exc).__name__}: {exc}"
            log.warning("cannot attach the database yet: %s", retry.cause)
            return False
        self._router = stack.router
        self._group_runner.router = stack.router
        self._touches.everything()
        self._retry = None
        log.warning("the database %s is open again (%s mode)", stack.sqlite.path, stack.router.mode)
        return True

    # -- bulk loads and stored texts (the migrator; see ._bulk)

    @handler(LoadRows)
    async def load_rows(self, message: LoadRows) -> LoadResult:
        """Write encoded rows to the database; the cache, watchers and repair backlog follow."""
        store = self._database("a bulk load")
        router = self.router
        try:
            result = await load_rows(store, message)
        finally:
            # The rows' old values are not read: every answer may have changed.
            self._touches.everything()
        if result.written and message.rows:
            keys = [row[0] for row in message.rows]
            self._cache.invalidate(keys)
            feed = self._feed
            if feed.listening:
                feed.publish(
                    (key, "put", value) for key, value in zip(keys, message.values, strict=True)
                )
            else:
                feed.skip(len(keys))
        if result.raced:
            # Written by the application between the loader's read and this
            # write: SQLite may now hold the file's older value (see ModeRouter).
            await router.note_sqlite_behind(result.raced)
        return result

    @handler(WaitRepaired)
    async def wait_repaired(self, message: WaitRepaired) -> asyncio.Future[None]:
        """A future done once the repair backlog is empty; the wait runs in the loop group."""
        del message
        router = self.router
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def wait() -> None:
            try:
                await router.wait_repaired()
                done.set_result(None)
            finally:
                if not done.done():
                    done.set_exception(
                        StoreError("the database stopped before its repair backlog was empty")
                    )

        assert self._loops is not None  # set by on_start, before any message
        self._loops.start_soon(wait, name=f"{self.name}-wait-repaired")
        return done

    @handler(ReadStored)
    async def read_stored(self, message: ReadStored) -> tuple[dict[str, str], dict[str, int]]:
        """Stored texts and versions of some keys (SQLite side, any mode)."""
        return await read_stored(self._database("a read of stored texts"), message)

    @handler(ScanStored)
    async def scan_stored(self, message: ScanStored) -> list[tuple[str, bytes]]:
        """A page of stored texts (SQLite side, any mode)."""
        return await scan_stored_page(self._database("a scan of stored texts"), message)

    @handler(StoredEncoding)
    async def stored_encoding(self, message: StoredEncoding) -> str:
        """The codec of the stored texts."""
        del message
        return await stored_encoding(self._database("a read of stored texts"))

    @handler(CountStored)
    async def count_stored(self, message: CountStored) -> int:
        """How many keys the SQLite side holds under a prefix (any mode)."""
        self._require_database("a count of stored keys")
        return await self.router.sqlite.count(message.prefix)

    @handler(ListStored)
    async def list_stored(self, message: ListStored) -> list[str]:
        """The keys the SQLite side holds under a prefix (any mode)."""
        self._require_database("a list of stored keys")
        return await self.router.sqlite.keys(message.prefix)

    @handler(ReadMeta)
    async def read_meta(self, message: ReadMeta) -> Any:
        """A setting of SQLite's meta table."""
        self._require_database("a read of the meta table")
        return await self.router.sqlite.get_meta(message.name, message.default)

    @handler(GetStatistics)
    async def get_statistics(self, message: GetStatistics) -> DatabaseStatistics:
        """The statistics snapshot."""
        del message
        return self.statistics()

    @handler(Subscribe)
    async def subscribe(self, message: Subscribe) -> Subscription:
        """A change-feed subscription from this point in commit order."""
        return self._feed.subscribe(message.prefix, message.buffer)

    @handler(WatchAttributes)
    async def watch_attributes(self, message: WatchAttributes) -> AttributeWatch:
        """An attribute watch (a Datalog or find live query's wake-up) from this point on."""
        return self._touches.feed.watch(message.prefix, message.reads)


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
