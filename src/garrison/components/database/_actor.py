"""The ``database`` component: one actor owning the SQLite connection and the EDN file.

Every read and write reaches the stores through this actor's mailbox, so one
task owns the aiosqlite connection and the EDN writer (see DESIGN.md).

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

    A put whose value cannot be stored fails that caller alone: in modes that
    write the EDN file values are checked before the group is written; in
    ``sqlite-only`` the group is written optimistically and, if a value turns
    out unencodable (nothing was written, encoding precedes ``BEGIN``), the
    bad callers are failed and the rest written again.

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
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from opentelemetry import trace

from garrison.components.database._cache import ReadCache
from garrison.components.database._config import DatabaseConfig
from garrison.components.database._faults import is_fatal
from garrison.components.database._feed import ChangeFeed, Subscription
from garrison.components.database._messages import (
    Backup,
    Count,
    Delete,
    DeleteMany,
    Find,
    Flush,
    Get,
    GetAsOf,
    GetMany,
    GetStatistics,
    History,
    Put,
    PutMany,
    Restore,
    Scan,
    SetMode,
    Subscribe,
)
from garrison.components.database._open import StoreStack, open_stack
from garrison.components.database._statistics import DatabaseStatistics
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.runtime._actor import handler
from garrison.runtime._component import Component
from garrison.runtime._health import CheckResult
from garrison.runtime._tracing import tracer, tracing_active
from garrison.stores._keys import key_text
from garrison.stores._mode import Mode, ModeSwitch
from garrison.stores._protocol import MISSING
from garrison.stores._values import encode_value

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from opentelemetry.trace import Span

    from garrison.runtime._envelope import Envelope
    from garrison.stores._edn_file import EdnFileStore
    from garrison.stores._router import ModeRouter
    from garrison.stores._sqlite import SqliteStore
    from garrison.stores._sqlite_types import Change

__all__ = ["DatabaseComponent"]

_PUT: Final = "put"
_DELETE: Final = "delete"
_READ: Final = "read"
_GROUPED: Final[dict[type, str]] = {
    Put: _PUT,
    PutMany: _PUT,
    Delete: _DELETE,
    DeleteMany: _DELETE,
    Get: _READ,
    GetMany: _READ,
}


def _text(key: Any) -> str:
    return key if type(key) is str and key else key_text(key)


class DatabaseComponent(Component):
    """The built-in ``database`` component (see the module docstring and DatabaseConfig).

    Talk to it through :class:`~garrison.components.database.Store`
    (``rt.store``) or by sending the messages of
    :mod:`garrison.components.database` with ``ask``.
    """

    name = "database"
    config_class: ClassVar[type[DatabaseConfig]] = DatabaseConfig
    # The loop hands over everything queued; groups are cut at batch_limit here.
    max_batch: ClassVar[int] = 1 << 16

    config: DatabaseConfig | None = None
    _router: ModeRouter | None = None
    _stack: StoreStack | None = None

    def __init__(self) -> None:
        self._settings = DatabaseConfig()
        self._cache = ReadCache(0)
        self._feed = ChangeFeed(1)
        self._broken: BaseException | None = None
        self._write_batches = 0
        self._read_batches = 0
        self._batched_writes = 0
        self._batched_reads = 0
        self._largest_batch = 0

    # ------------------------------------------------------------------ lifecycle

    async def on_start(self) -> None:
        """Take the owner lock, open SQLite, the EDN file and the mode router."""
        settings = self._settings = self.config or DatabaseConfig()
        self._cache = ReadCache(settings.cache_size)
        self._feed = ChangeFeed(settings.watch_buffer)
        self._stack = await open_stack(settings, self.data_dir)
        self._router = self._stack.router

    async def on_stop(self) -> None:
        """End the feeds, stop the router, flush the EDN file a last time, close SQLite.

        The mailbox is already drained (every queued write committed). Each
        step runs even if an earlier one failed; the first failure is raised.
        """
        final = self._runtime is not None and self.runtime.stopping
        if final:
            self._feed.close()
        else:
            self._feed.lose_all("restart")
        stack, self._stack = self._stack, None
        self._router = None
        if stack is not None:
            await stack.aclose()

    # ------------------------------------------------------------------ access

    @property
    def router(self) -> ModeRouter:
        """The mode router (for the migrator and tests); raises when not running."""
        if self._router is None:
            raise StoreError(f"the {self.name!r} component is not running")
        return self._router

    @property
    def sqlite(self) -> SqliteStore:
        """The SQLite store (owned by this actor: do not use it from other tasks)."""
        return self.router.sqlite

    @property
    def edn(self) -> EdnFileStore:
        """The EDN file store (owned by this actor: do not use it from other tasks)."""
        return self.router.edn

    def statistics(self) -> DatabaseStatistics:
        """A snapshot of the cache, batching, feed and store counters."""
        router = self.router
        stats = router.statistics()
        edn = router.edn
        error = edn.last_flush_error
        cache = self._cache
        return DatabaseStatistics(
            mode=str(stats.mode),
            cache_capacity=cache.capacity,
            cache_entries=len(cache),
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_hit_ratio=cache.hit_ratio,
            write_batches=self._write_batches,
            read_batches=self._read_batches,
            batched_writes=self._batched_writes,
            batched_reads=self._batched_reads,
            largest_batch=self._largest_batch,
            watchers=self._feed.watchers,
            changes_published=self._feed.published,
            watch_overflows=self._feed.overflows,
            edn_writer_lag=edn.writer_lag,
            edn_last_flush_error=None if error is None else str(error),
            repair_backlog=stats.repair_backlog,
            full_repair_pending=stats.full_repair_pending,
            sqlite_path=str(router.sqlite.path),
            edn_path=str(edn.path),
        )

    # ------------------------------------------------------------------ health

    async def check_health(self) -> CheckResult:
        """``SELECT 1`` within ``health_timeout``, EDN writer lag and errors, mode, backlog.

        ``fail`` when SQLite does not answer in time or at all, or the EDN
        writer is more than ``max_writer_lag`` seconds behind; ``warn`` on an
        EDN flush error or a repair backlog. A broken connection also crashes
        the actor, so the supervisor replaces it.
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
        began = time.perf_counter()
        try:
            async with asyncio.timeout(settings.health_timeout):
                await router.sqlite.ping()
        except TimeoutError:
            failures.append(f"SQLite did not answer SELECT 1 within {settings.health_timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure of the ping is the health answer
            failures.append(f"SQLite ping failed: {type(exc).__name__}: {exc}")
            if is_fatal(exc):
                self._break(exc)
        else:
            observed["ping_ms"] = round((time.perf_counter() - began) * 1000, 3)
        if edn.writer_lag > settings.max_writer_lag:
            failures.append(
                f"EDN writer is {edn.writer_lag:.1f}s behind (limit {settings.max_writer_lag:g}s)"
            )
        if edn.last_flush_error is not None:
            warnings.append(f"EDN flush failing: {edn.last_flush_error}")
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
        """Grouped operations have no ``@handler``; every message of this package is accepted."""
        return message_type in _GROUPED or super().accepts(message_type)

    async def receive_batch(self, batch: list[Envelope]) -> None:
        """Cut ``batch`` into groups (see the module docstring) and run them in order."""
        limit = self._settings.batch_limit
        count = len(batch)
        index = 0
        while index < count and self._broken is None:
            envelope = batch[index]
            kind = _GROUPED.get(type(envelope.message))
            if kind is None:
                await self._handle_one(envelope)
                index += 1
            else:
                end = index + 1
                while end < count and end - index < limit:
                    if _GROUPED.get(type(batch[end].message)) is not kind:
                        break
                    end += 1
                group = batch[index:end] if end - index < count else batch
                index = end
                self._largest_batch = max(self._largest_batch, len(group))
                if tracing_active():
                    await self._traced_group(kind, group)
                else:
                    await self._run_group(kind, group)
        if self._broken is not None:
            # We crashed: let the cancellation land here, before the loop takes
            # more from the mailbox, so queued messages wait for the restarted
            # instance. The rest of this batch fails with ActorStoppedError (its
            # callers were never told their operation succeeded).
            await asyncio.sleep(0)
            for envelope in batch[index:]:
                envelope.fail(self._broken_error())

    async def _run_group(self, kind: str, group: list[Envelope]) -> None:
        if kind == _PUT:
            await self._put_group(group)
        elif kind == _READ:
            await self._read_group(group)
        else:
            await self._delete_group(group)

    async def _traced_group(self, kind: str, group: list[Envelope]) -> None:
        with contextlib.ExitStack() as stack:
            spans = [stack.enter_context(e.handler_span(self.name)) for e in group]
            first = spans[0]
            parent = trace.set_span_in_context(first) if first is not None else None
            links = [trace.Link(s.get_span_context()) for s in spans[1:] if s is not None]
            with tracer().start_as_current_span(
                f"{self.name} {kind} batch",
                context=parent,
                links=links,
                attributes={"garrison.batch.size": len(group), "garrison.batch.kind": kind},
            ):
                await self._run_group(kind, group)
            for envelope, span in zip(group, spans, strict=True):
                if span is not None and envelope.failed:
                    _mark_failed(span, envelope)

    def _group_failed(self, envelopes: Sequence[Envelope], exc: Exception) -> None:
        """A store operation for ``envelopes`` failed: none was committed or read."""
        if is_fatal(exc):
            self._break(exc)
            error: BaseException = self._broken_error()
            error.__cause__ = exc
        else:
            error = exc
        for envelope in envelopes:
            envelope.fail(error)

    # -- puts

    async def _put_group(self, group: list[Envelope]) -> None:
        router = self.router
        check_values = router.mode.writes_edn
        accepted: list[tuple[Envelope, list[tuple[str, Any]]]] = []
        for envelope in group:
            message = envelope.message
            try:
                if type(message) is Put:
                    pairs = [(_text(message.key), message.value)]
                else:
                    pairs = [(_text(k), v) for k, v in cast("PutMany", message).items]
                if check_values:
                    for _, value in pairs:
                        encode_value(value)
            except Exception as exc:  # noqa: BLE001 - a bad key or value fails its own caller only
                envelope.fail(exc)
                continue
            accepted.append((envelope, pairs))
        if not accepted:
            return
        items = [pair for _, pairs in accepted for pair in pairs]
        try:
            await router.put_many(items)
        except EdnEncodeError:
            # sqlite-only: nothing was written (values are encoded before BEGIN).
            accepted = _drop_unencodable(accepted)
            items = [pair for _, pairs in accepted for pair in pairs]
            if not items:
                return
            try:
                await router.put_many(items)
            except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
                self._group_failed([e for e, _ in accepted], exc)
                return
        except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
            self._group_failed([e for e, _ in accepted], exc)
            return
        self._write_batches += 1
        self._batched_writes += len(accepted)
        self._cache.invalidate(key for key, _ in items)
        self._feed.publish((key, "put", value) for key, value in items)
        for envelope, _ in accepted:
            envelope.reply(None)

    # -- deletes

    async def _delete_group(self, group: list[Envelope]) -> None:
        router = self.router
        accepted: list[tuple[Envelope, list[str]]] = []
        for envelope in group:
            message = envelope.message
            try:
                if type(message) is Delete:
                    texts = [_text(message.key)]
                else:
                    texts = list(dict.fromkeys(_text(k) for k in cast("DeleteMany", message).keys))
            except Exception as exc:  # noqa: BLE001 - a bad key or value fails its own caller only
                envelope.fail(exc)
                continue
            accepted.append((envelope, texts))
        if not accepted:
            return
        every = list(dict.fromkeys(t for _, texts in accepted for t in texts))
        try:
            existing = await router.get_many(every) if every else {}
            if every:
                await router.delete_many(every)
        except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
            self._group_failed([e for e, _ in accepted], exc)
            return
        self._write_batches += 1
        self._batched_writes += len(accepted)
        self._cache.invalidate(every)
        self._feed.publish((key, "delete", MISSING) for key in every if key in existing)
        removed: set[str] = set()
        for envelope, texts in accepted:
            # Within a group, a key existed for the first delete that names it only.
            gone = [t for t in texts if t in existing and t not in removed]
            removed.update(gone)
            if type(envelope.message) is Delete:
                envelope.reply(bool(gone))
            else:
                envelope.reply(len(gone))

    # -- point reads

    async def _read_group(self, group: list[Envelope]) -> None:
        router = self.router
        cache = self._cache
        accepted: list[tuple[Envelope, list[str]]] = []
        for envelope in group:
            message = envelope.message
            try:
                if type(message) is Get:
                    texts = [_text(message.key)]
                else:
                    texts = [_text(k) for k in cast("GetMany", message).keys]
            except Exception as exc:  # noqa: BLE001 - a bad key or value fails its own caller only
                envelope.fail(exc)
                continue
            accepted.append((envelope, texts))
        if not accepted:
            return
        values: dict[str, Any] = {}
        misses: list[str] = []
        if cache.enabled:
            # Counted per requested key, so many readers of one hot key count as hits.
            uncached = ReadCache.UNCACHED
            missed: set[str] = set()
            for _, texts in accepted:
                for text in texts:
                    if text in values:
                        cache.hits += 1
                    elif text in missed:
                        cache.misses += 1
                    elif (value := cache.lookup(text)) is uncached:
                        misses.append(text)
                        missed.add(text)
                    else:
                        values[text] = value
        else:
            misses = list(dict.fromkeys(t for _, texts in accepted for t in texts))
        if misses:
            try:
                if len(misses) == 1:
                    value = await router.get(misses[0], MISSING)
                    found = {} if value is MISSING else {misses[0]: value}
                else:
                    found = await router.get_many(misses)
            except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
                self._group_failed([e for e, _ in accepted], exc)
                return
            for text in misses:
                values[text] = found.get(text, MISSING)
            cache.store_found(misses, found)
            self._read_batches += 1
        self._batched_reads += len(accepted)
        for envelope, texts in accepted:
            message = envelope.message
            if type(message) is Get:
                value = values[texts[0]]
                envelope.reply(message.default if value is MISSING else value)
            else:
                envelope.reply({t: values[t] for t in texts if values[t] is not MISSING})

    # ------------------------------------------------------------------ one by one

    async def _handle_one(self, envelope: Envelope) -> None:
        """Run the ``@handler`` of a message that is not grouped, with its span."""
        message = envelope.message
        fn = type(self).find_handler(type(message))
        if fn is None:
            kind = next((k for t, k in _GROUPED.items() if isinstance(message, t)), None)
            if kind is not None:  # a subclass of a grouped message: a group of one
                await self._run_group(kind, [envelope])
                return
            envelope.fail(StoreError(f"the database cannot handle {type(message).__qualname__}"))
            return
        if self._broken is not None:
            envelope.fail(self._broken_error())
            return
        with envelope.handler_span(self.name) if tracing_active() else _no_span() as span:
            try:
                result = await fn(self, message)
            except Exception as exc:  # noqa: BLE001 - the caller's error; fatal ones crash us
                if is_fatal(exc) and type(message) not in (Backup, Restore):
                    self._break(exc)
                envelope.fail(exc)
                if span is not None:
                    _mark_failed(span, envelope)
            else:
                envelope.reply(result)

    def _sqlite_side(self, operation: str) -> SqliteStore:
        router = self.router
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

    @handler(History)
    async def history(self, message: History) -> list[Change]:
        """Every recorded change of a key (SQLite side)."""
        store = self._sqlite_side("history")
        return await store.history(_text(message.key), limit=message.limit)

    @handler(GetAsOf)
    async def get_as_of(self, message: GetAsOf) -> Any:
        """The value a key had at a moment (SQLite history)."""
        store = self._sqlite_side("an as-of read")
        return await store.get(_text(message.key), message.default, as_of=message.at)

    @handler(SetMode)
    async def set_mode(self, message: SetMode) -> ModeSwitch:
        """Switch the router's mode; the cache starts empty in the new mode."""
        switch = await self.router.switch_mode(
            message.mode, force=message.force, reason=message.reason
        )
        self._cache.clear()
        return switch

    @handler(Flush)
    async def flush(self, message: Flush) -> None:
        """Wait until the EDN file holds every earlier write (SQLite writes are committed)."""
        del message
        await self.router.edn.flush()

    @handler(Backup)
    async def backup(self, message: Backup) -> Path:
        """Online backup of the SQLite database to a file (its directory is created)."""
        target = Path(message.path)
        await asyncio.to_thread(_make_parent, target)
        return await self.router.sqlite.backup(target)

    @handler(Restore)
    async def restore(self, message: Restore) -> None:
        """Replace the SQLite data with a checked backup; watchers must resync."""
        await self.router.sqlite.restore(message.path)
        self._cache.clear()
        self._feed.lose_all("restore")

    @handler(GetStatistics)
    async def get_statistics(self, message: GetStatistics) -> DatabaseStatistics:
        """The statistics snapshot."""
        del message
        return self.statistics()

    @handler(Subscribe)
    async def subscribe(self, message: Subscribe) -> Subscription:
        """A change-feed subscription from this point in commit order."""
        return self._feed.subscribe(message.prefix, message.buffer)


def _drop_unencodable(
    accepted: list[tuple[Envelope, list[tuple[str, Any]]]],
) -> list[tuple[Envelope, list[tuple[str, Any]]]]:
    """Fail the callers whose values cannot be stored; return the others."""
    kept: list[tuple[Envelope, list[tuple[str, Any]]]] = []
    for envelope, pairs in accepted:
        try:
            for _, value in pairs:
                encode_value(value)
        except Exception as exc:  # noqa: BLE001 - a bad value fails its own caller only
            envelope.fail(exc)
            continue
        kept.append((envelope, pairs))
    return kept


def _mark_failed(span: Span, envelope: Envelope) -> None:
    future = envelope.future
    if future is not None and future.done() and not future.cancelled():
        exc = future.exception()
        if exc is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(trace.Status(trace.StatusCode.ERROR))


@contextlib.contextmanager
def _no_span() -> Iterator[None]:
    yield None


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
