"""Running one group of grouped messages: puts, deletes or point reads, in one store call.

:class:`DatabaseComponent` cuts each mailbox drain into groups (see its module
docstring) and hands each to :meth:`GroupRunner.run`, which answers every
envelope of the group: a put after its transaction committed, a read with its
value, a caller whose key or value is unusable with its own error.

With ``durability = "debounced"`` (in the modes that write SQLite) a write
group is admitted and recorded in :class:`PendingWrites` instead, and answered
at once; point reads see the pending writes first, and :meth:`GroupRunner.commit`
replays them into the router later (see :mod:`._commit_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final, cast

from opentelemetry import trace

from garrison.components.database._cache import ReadCache
from garrison.components.database._faults import is_fatal
from garrison.components.database._messages import (
    Delete,
    DeleteMany,
    Get,
    GetMany,
    Put,
    PutMany,
)
from garrison.components.database._pending import DELETED, PendingWrites
from garrison.components.database._pending import PUT as PENDING_PUT
from garrison.exceptions import RefusedWriteError, SchemaError
from garrison.stores import MISSING, current_audit, running_as
from garrison.tracing import trace_roots, tracer, tracing_active

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from opentelemetry.trace import Span

    from garrison.components.database._feed import ChangeFeed
    from garrison.runtime import Envelope
    from garrison.stores import ModeRouter

__all__ = ["GROUPED", "GroupRunner", "mark_failed"]

PUT: Final = "put"
DELETE: Final = "delete"
READ: Final = "read"
#: Message type -> the kind of group it joins (consecutive messages of one kind group).
GROUPED: Final[dict[type, str]] = {
    Put: PUT,
    PutMany: PUT,
    Delete: DELETE,
    DeleteMany: DELETE,
    Get: READ,
    GetMany: READ,
}


class GroupRunner:
    """Runs groups against the mode router, with the read cache and the change feed.

    ``on_fatal(exc)`` is called when the store failed in a way that breaks the
    connection (see :mod:`._faults`); it returns the error to give the callers.
    ``pending`` (``durability = "debounced"``) receives the writes of the modes
    that write SQLite, and ``on_pending()`` is called after each group it took.
    """

    def __init__(
        self,
        actor_name: str,
        router: ModeRouter,
        cache: ReadCache,
        feed: ChangeFeed,
        on_fatal: Callable[[Exception], BaseException],
        *,
        pending: PendingWrites | None = None,
        on_pending: Callable[[], None] = lambda: None,
    ) -> None:
        self.actor_name = actor_name
        self.pending = pending
        self._on_pending = on_pending
        self.router = router
        self.cache = cache
        self.feed = feed
        self._on_fatal = on_fatal
        self.write_batches = 0
        self.read_batches = 0
        self.batched_writes = 0
        self.batched_reads = 0
        self.largest_batch = 0

    async def run(self, kind: str, group: list[Envelope]) -> None:
        """Run ``group`` (messages of ``kind``) and answer each of its envelopes."""
        self.largest_batch = max(self.largest_batch, len(group))
        if tracing_active() and (
            trace_roots() or any(envelope.sender_span is not None for envelope in group)
        ):
            await self._traced_group(kind, group)
        else:
            await self._run_group(kind, group)

    async def _run_group(
        self, kind: str, group: list[Envelope], spans: Sequence[Span] | None = None
    ) -> None:
        if kind == READ:
            await self._read_group(group, spans)
        elif self.pending is not None and self.router.mode.writes_sqlite:
            if kind == PUT:
                self._defer_puts(group, self.pending)
            else:
                await self._defer_deletes(group, self.pending)
        elif kind == PUT:
            await self._put_group(group)
        else:
            await self._delete_group(group)

    async def _traced_group(self, kind: str, group: list[Envelope]) -> None:
        name = self.actor_name
        if len(group) == 1:
            # A group of one needs no batch span: the store span goes straight
            # under the message's handler span (one SDK span less per lone op).
            (envelope,) = group
            with envelope.handler_span(name) as span:
                await self._run_group(kind, group, (span,))
            if envelope.failed and span.is_recording():
                mark_failed(span, envelope)
            return
        with contextlib.ExitStack() as stack:
            spans = [stack.enter_context(e.handler_span(name)) for e in group]
            # The first message that has a span is the batch's parent: the
            # others may have none (no application span, see trace_roots).
            first = next((s for s in spans if s.get_span_context().is_valid), spans[0])
            parent = trace.set_span_in_context(first)
            # Links only to spans that are recorded: at a 1% sampling ratio the
            # others are nearly all of them, and a link to them leads nowhere.
            links = [
                trace.Link(context)
                for s in spans[1:]
                if (context := s.get_span_context()).trace_flags.sampled
            ]
            with tracer().start_as_current_span(
                f"{name} {kind} batch",
                context=parent,
                links=links,
                attributes={"garrison.batch.size": len(group), "garrison.batch.kind": kind},
                root=False,
            ):
                await self._run_group(kind, group, spans)
            for envelope, span in zip(group, spans, strict=True):
                if envelope.failed and span.is_recording():
                    mark_failed(span, envelope)

    def _group_failed(self, envelopes: Sequence[Envelope], exc: Exception) -> None:
        """A store operation for ``envelopes`` failed: none was committed or read."""
        error: BaseException = self._on_fatal(exc) if is_fatal(exc) else exc
        for envelope in envelopes:
            envelope.fail(error)

    # -- puts

    async def _put_group(self, group: list[Envelope]) -> None:
        router = self.router
        # The hot path of every write: the group's (key, value) pairs in one
        # list, built without a list per message. The router admits them all
        # (see ModeRouter.admit) before it writes any: a refused entry fails
        # the whole call with nothing written, and then each caller is
        # admitted on its own (below), so a bad entry fails its caller only.
        accepted: list[Envelope] = []
        items: list[tuple[Any, Any]] = []
        append = items.append
        for envelope in group:
            message = envelope.message
            if type(message) is Put:
                append((message.key, message.value))
            else:
                try:
                    items.extend(_put_pairs(message))
                except Exception as exc:  # noqa: BLE001 - a malformed message fails its own caller
                    envelope.fail(exc)
                    continue
            accepted.append(envelope)
        if not accepted:
            return
        try:
            written = await router.write_many(items)
        except RefusedWriteError:
            accepted, items = _drop_refused(router, accepted)
            try:
                written = await router.write_many(items)
            except SchemaError:
                # A unique or reference rule, which admit() cannot see: the
                # callers one by one, so that each answer is its own.
                await self._put_each(accepted)
                return
            except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
                self._group_failed(accepted, exc)
                return
        except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
            self._group_failed(accepted, exc)
            return
        self.write_batches += 1
        self._puts_done(accepted, written)

    async def _put_each(self, accepted: list[Envelope]) -> None:
        """Write each caller's entries in a transaction of its own; answer each."""
        done: list[Envelope] = []
        written: list[tuple[str, Any]] = []
        for envelope in accepted:
            try:
                written.extend(await self.router.write_many(_put_pairs(envelope.message)))
            except Exception as exc:  # noqa: BLE001 - answered to the caller; fatal ones crash us
                self._group_failed([envelope], exc)
                continue
            done.append(envelope)
        if done:
            self.write_batches += 1
            self._puts_done(done, written)

    def _puts_done(self, accepted: list[Envelope], written: list[tuple[str, Any]]) -> None:
        """After a write (or its acknowledgement): cache, watchers, and every caller's answer."""
        self.batched_writes += len(accepted)
        self.cache.invalidate(key for key, _ in written)
        feed = self.feed
        if feed.listening:
            feed.publish((key, "put", value) for key, value in written)
        else:
            feed.skip(len(written))
        # Envelope.reply, inlined: once per write.
        for envelope in accepted:
            future = envelope.future
            if future is not None and not future.done():
                future.set_result(None)

    # -- deletes

    async def _delete_group(self, group: list[Envelope]) -> None:
        router = self.router
        accepted = self._delete_texts(group)
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
        self.write_batches += 1
        self.batched_writes += len(accepted)
        self.cache.invalidate(every)
        self.feed.publish((key, "delete", MISSING) for key in every if key in existing)
        self._answer_deletes(accepted, existing)

    @staticmethod
    def _delete_texts(group: list[Envelope]) -> list[tuple[Envelope, list[str]]]:
        """Each caller with the key texts it deletes (made when its message was built)."""
        accepted: list[tuple[Envelope, list[str]]] = []
        for envelope in group:
            message = envelope.message
            if isinstance(message, Delete):  # a subclass too (it comes as a group of one)
                texts = [message.key]
            else:
                texts = list(dict.fromkeys(cast("DeleteMany", message).keys))
            accepted.append((envelope, texts))
        return accepted

    @staticmethod
    def _answer_deletes(
        accepted: list[tuple[Envelope, list[str]]], existing: Collection[str]
    ) -> None:
        removed: set[str] = set()
        for envelope, texts in accepted:
            # Within a group, a key existed for the first delete that names it only.
            gone = [t for t in texts if t in existing and t not in removed]
            removed.update(gone)
            if isinstance(envelope.message, Delete):
                envelope.reply(bool(gone))
            else:
                envelope.reply(len(gone))

    # -- debounced writes

    def _defer_puts(self, group: list[Envelope], pending: PendingWrites) -> None:
        """Admit each caller's entries, record them as pending, and answer at once."""
        admit = self.router.admit
        accepted: list[Envelope] = []
        pairs: list[tuple[str, Any]] = []
        append = pairs.append
        for envelope in group:
            message = envelope.message
            try:
                if type(message) is Put:
                    admit(message.key, message.value)
                    append((message.key, message.value))
                else:
                    # A caller's entries are admitted together: all of them or none.
                    entries = _put_pairs(message)
                    for key, value in entries:
                        admit(key, value)
                    pairs.extend(entries)
            except Exception as exc:  # noqa: BLE001 - a refused or malformed write fails its caller
                envelope.fail(exc)
                continue
            accepted.append(envelope)
        if not accepted:
            return
        pending.add_puts(pairs, asyncio.get_running_loop().time(), current_audit())
        self._on_pending()
        self._puts_done(accepted, pairs)

    async def _defer_deletes(self, group: list[Envelope], pending: PendingWrites) -> None:
        """Record the deletes as pending; answer with what existed, as readers saw it."""
        accepted = self._delete_texts(group)
        if not accepted:
            return
        every = list(dict.fromkeys(t for _, texts in accepted for t in texts))
        latest = pending.latest
        existing = {
            t for t in every if (v := latest.get(t, MISSING)) is not MISSING and v is not DELETED
        }
        stored = [t for t in every if t not in latest]
        if stored:
            try:
                existing.update(await self.router.get_many(stored))
            except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
                self._group_failed([e for e, _ in accepted], exc)
                return
        pending.add_deletes(every, asyncio.get_running_loop().time(), current_audit())
        self._on_pending()
        self.batched_writes += len(accepted)
        self.cache.invalidate(every)
        self.feed.publish((key, "delete", MISSING) for key in every if key in existing)
        self._answer_deletes(accepted, existing)

    async def commit(self, pending: PendingWrites) -> None:
        """Commit the writes ``pending`` holds now, oldest segment first, one transaction each.

        Writes acknowledged meanwhile stay pending. On an error the segments
        not committed are pending again (and still readable), and the error
        is raised.
        """
        router = self.router
        try:
            for segment in list(pending.detach()):
                with running_as(segment.audit):
                    if segment.kind is PENDING_PUT:
                        await router.write_many(segment.entries, admitted=True)
                    else:
                        await router.delete_many(segment.entries)
                pending.committed_first()
                self.write_batches += 1
        finally:
            pending.commit_done()

    # -- point reads

    async def _read_group(self, group: list[Envelope], spans: Sequence[Span] | None) -> None:
        """Answer the point reads of ``group``; ``spans`` are their handler spans when traced."""
        cache = self.cache
        # Per accepted envelope: the key text of a Get, or the key texts of a GetMany.
        accepted: list[tuple[Envelope, str | list[str]]] = []
        wanted: list[str] = []
        for envelope in group:
            message = envelope.message
            if isinstance(message, Get):
                text: str = message.key
                wanted.append(text)
                accepted.append((envelope, text))
            else:
                texts = list(cast("GetMany", message).keys)
                wanted.extend(texts)
                accepted.append((envelope, texts))
        values: dict[str, Any] = {}
        pending = self.pending
        if pending:
            # Read-your-writes: a pending write is the newest value of its key.
            latest = pending.latest
            for text in wanted:
                value = latest.get(text, MISSING)
                if value is not MISSING and value is not DELETED:
                    values[text] = value
            wanted = [text for text in wanted if text not in latest]
        misses = self._cached(wanted, values) if cache.enabled else list(dict.fromkeys(wanted))
        if misses:
            try:
                if len(misses) == 1:
                    value = await self.router.get(misses[0], MISSING)
                    found = {} if value is MISSING else {misses[0]: value}
                else:
                    found = await self.router.get_many(misses)
            except Exception as exc:  # noqa: BLE001 - answered to the callers; fatal ones crash us
                self._group_failed([e for e, _ in accepted], exc)
                return
            cache.store_found(misses, found)
            self.read_batches += 1
            if values:
                values.update(found)
            else:
                values = found
        self.batched_reads += len(accepted)
        if spans is not None:
            _mark_cache_hits(accepted, spans, misses)
        get = values.get
        for envelope, wanted_texts in accepted:
            if type(wanted_texts) is str:
                value = get(wanted_texts, MISSING)
                if value is MISSING:
                    value = cast("Get", envelope.message).default
                # Envelope.reply, inlined: once per read.
                future = envelope.future
                if future is not None and not future.done():
                    future.set_result(value)
            else:
                envelope.reply(
                    {t: v for t in wanted_texts if (v := get(t, MISSING)) is not MISSING}
                )

    def _cached(self, wanted: list[str], values: dict[str, Any]) -> list[str]:
        """Fill ``values`` from the cache; return the keys to read, each once, in order.

        Counted per requested key, so many readers of one hot key count as hits.
        """
        cache = self.cache
        uncached = ReadCache.UNCACHED
        misses: list[str] = []
        missed: set[str] = set()
        for text in wanted:
            if text in values:
                cache.hits += 1
            elif text in missed:
                cache.misses += 1
            elif (value := cache.lookup(text)) is uncached:
                misses.append(text)
                missed.add(text)
            else:
                values[text] = value
        return misses


def _put_pairs(message: Any) -> list[tuple[str, Any]]:
    """The (key, value) pairs a :class:`Put` or :class:`PutMany` writes."""
    if isinstance(message, Put):  # a subclass too (it comes as a group of one)
        return [(message.key, message.value)]
    return [(k, v) for k, v in cast("PutMany", message).items]


def _drop_refused(
    router: ModeRouter, accepted: list[Envelope]
) -> tuple[list[Envelope], list[tuple[Any, Any]]]:
    """Fail the callers with an entry the router refuses; return the others and their pairs."""
    kept: list[Envelope] = []
    items: list[tuple[Any, Any]] = []
    for envelope in accepted:
        pairs = _put_pairs(envelope.message)
        try:
            for key, value in pairs:
                router.admit(key, value)
        except RefusedWriteError as exc:
            envelope.fail(exc)
            continue
        kept.append(envelope)
        items.extend(pairs)
    return kept, items


def _mark_cache_hits(
    accepted: list[tuple[Envelope, str | list[str]]], spans: Sequence[Span], misses: list[str]
) -> None:
    """Say on each read's span whether it was answered without reading the store.

    ``garrison.cache.hit`` is true when none of the read's keys had to be read
    from the store (the read cache, or a write not committed yet, held them).
    """
    read = set(misses)
    for (_, texts), span in zip(accepted, spans, strict=True):
        if span.is_recording():
            hit = texts not in read if type(texts) is str else read.isdisjoint(texts)
            span.set_attribute("garrison.cache.hit", hit)


def mark_failed(span: Span, envelope: Envelope) -> None:
    """Record on ``span`` the error ``envelope`` was failed with."""
    future = envelope.future
    if future is not None and future.done() and not future.cancelled():
        exc = future.exception()
        if exc is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(trace.Status(trace.StatusCode.ERROR))
