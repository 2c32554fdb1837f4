"""EdnFileStore: the legacy single-file EDN memory store.

The whole map lives in memory, as in the legacy system's atom; a writer loop
(in its owner's task group, see :mod:`garrison.stores._loops`) writes it back
to one EDN file (``memory.edn``) with debounced, atomic, durable and
incremental flushes.

Flush timing: the durability bound
    Every write marks the store dirty. The writer flushes after a quiet period
    with no writes (``quiet_period``, 100 ms as in the legacy system), and a
    write is *on disk* (written, fsynced, renamed, folder fsynced) at most
    ``max_delay`` (1 s) after it returned, so a steady stream of writes still
    reaches disk in time. A flush takes time, so the writer starts it early:
    at ``max_delay`` minus :attr:`EdnFileStore.flush_reserve` (twice the recent
    flush duration, a decaying maximum of the measured flushes seeded by how
    long the file took to load, plus a fifth of ``max_delay``; the first flush
    after open starts at the first write, to measure). A write that arrives
    while a flush runs waits for that flush and its own, so the bound holds as
    long as one flush takes at most about half of ``max_delay`` (and the event
    loop is not blocked); a flush that finishes later than the bound is
    counted in :attr:`EdnFileStoreStatistics.late_flushes`.
    :meth:`EdnFileStore.flush` returns once every write made before it is on
    disk; :meth:`EdnFileStore.aclose` flushes a last time.

Incremental serialisation
    Each entry's text (``"<key> <value>"``) is cached. A flush serialises only
    the entries written since the last flush and joins the cached texts of all
    the others, so flushing 100 changed keys of a 100k-key store costs a small
    fraction of a full dump. Entries loaded from the file are serialised at the
    first flush that needs them.

Off the event loop
    Loading (read + parse), serialising and writing run in worker threads. A
    flush takes a snapshot on the loop first (which keys changed, their values,
    the key order) so the map may keep changing while the thread works.
    Values are held by reference, like the legacy atom's immutable values:
    do not mutate a value in place after putting it (put a new one instead),
    because a flush may serialise it at any later moment.

Failures
    A failed flush (disk full, permission denied) never loses data: the
    changes stay in memory and marked dirty, the writer retries with
    exponential backoff (capped at ``max_backoff``), the error is visible as
    :attr:`EdnFileStore.last_flush_error` and :attr:`EdnFileStore.writer_lag`,
    an explicit :meth:`flush` raises :class:`~garrison.exceptions.FlushError`,
    and so does :meth:`aclose` when its final flush fails.

    One entry never holds the rest of the file hostage. The mode router
    refuses what the file cannot hold before it is written, but a value
    mutated after its put, or a caller that bypasses the router, can still
    hand the writer an entry with no EDN form. A flush then writes every other
    entry, keeps that one aside in memory (the file keeps its previous value
    of the key, if it had one) and lists it in :attr:`EdnFileStore.unwritable`,
    which fails the database's health check; :meth:`flush` and :meth:`aclose`
    raise :class:`~garrison.exceptions.FlushError` naming it once the others
    are on disk. Writing or deleting the key again clears it.

Loading
    A missing file is an empty store. A file that does not parse (or whose top
    level is not a map) raises :class:`~garrison.exceptions.StoreLoadError`
    naming the file, line and column; the store never starts, so the file is
    never overwritten. Top-level keys that are not keywords keep their exact
    EDN form through key texts (see :mod:`garrison.stores._keys`).

One process owns a store file: at open, temporary files a crashed writer of
the same file left behind are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from opentelemetry.trace import Link

from garrison.edn import MAX_DIGITS
from garrison.exceptions import EdnError, FlushError, StoreError
from garrison.stores._atomic import replace_file
from garrison.stores._edn_file_format import entry_text, file_pieces, open_file
from garrison.stores._loops import BackgroundLoop
from garrison.stores._protocol import MISSING
from garrison.tracing import DB_SYSTEM_EDN_FILE, store_span

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Sequence
    from types import TracebackType

    from anyio.abc import TaskGroup
    from opentelemetry.trace import Span

__all__ = ["EdnFileStore", "EdnFileStoreStatistics", "describe_unwritable"]

#: Per flush, the estimate of the flush duration shrinks by this factor unless
#: the flush took longer, so one slow outlier is forgotten after a few flushes.
_ESTIMATE_DECAY: Final = 0.8
#: At most this many span links on a flush span (to the writes it saves); the
#: rest are counted in its ``garrison.flush.links_dropped`` attribute.
MAX_FLUSH_LINKS: Final = 64
#: The share of max_delay (and the least seconds) kept in the flush reserve
#: for timer and thread-start latency.
_SLACK_SHARE: Final = 0.2
_MIN_SLACK: Final = 0.01


@dataclass(frozen=True, slots=True)
class EdnFileStoreStatistics:
    """A snapshot of an :class:`EdnFileStore`'s writer, for health checks and tests."""

    #: Number of entries in memory.
    entries: int
    #: Keys written or deleted and not on disk yet (including those a running flush saves).
    dirty_keys: int
    #: Seconds since the oldest write that is not on disk yet (0.0 when clean).
    writer_lag: float
    #: Successful flushes since open.
    flushes: int
    #: Failed flush attempts since open.
    failed_flushes: int
    #: The error of the last flush attempt, or ``None`` when it succeeded.
    last_flush_error: FlushError | None
    #: Seconds the last successful flush took (serialise + write), 0.0 before any.
    last_flush_seconds: float
    #: Bytes written by the last successful flush.
    last_flush_bytes: int
    #: Entries the last successful flush had to serialise (the rest reused cached text).
    last_flush_encoded: int
    #: Entries the file cannot hold, kept in memory only (see :attr:`EdnFileStore.unwritable`).
    unwritable: int
    #: Successful flushes that finished more than ``max_delay`` after the oldest
    #: write they saved: the durability bound was missed (flushes too slow for it).
    late_flushes: int


class EdnFileStore:
    """The legacy EDN memory store: the whole map in memory, flushed to one file.

    Use it as an async context manager, or ``await store.open()`` and
    ``await store.aclose()``; keys are key texts (``"presence/s-1"`` for
    ``:presence/s-1``; see :mod:`garrison.stores._keys`), normalised by the caller.

    >>> async def main(path):
    ...     async with EdnFileStore(path) as store:
    ...         await store.put("presence/s-1", {"status": "online"})
    ...         await store.flush()  # on disk now
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        quiet_period: float = 0.1,
        max_delay: float = 1.0,
        max_backoff: float = 30.0,
        max_digits: int = MAX_DIGITS,
    ) -> None:
        if quiet_period < 0 or max_delay < 0:
            raise ValueError("quiet_period and max_delay must not be negative")
        self.path = Path(path)
        self.quiet_period = quiet_period
        self.max_delay = max_delay
        self.max_backoff = max_backoff
        self.max_digits = max_digits
        self._collection = self.path.name
        self._data: dict[str, Any] = {}
        # Only the running flush reads and writes _texts, in its worker thread.
        self._texts: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        self._generation = 0  # bumped by every write
        self._flushed_generation = 0  # the generation the file holds
        self._first_unflushed: float | None = None  # loop time of the oldest unsaved write
        self._inflight_first: float | None = None  # ditto for writes a running flush carries
        self._last_write = 0.0
        self._inflight: set[str] = set()  # keys the running flush is saving
        self._uncached: set[str] = set()  # loaded entries whose text is not cached yet
        self._flush_task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()  # set (and replaced) after each flush attempt
        self._wakeup = asyncio.Event()
        self._writer: BackgroundLoop | None = None
        self._opened = False
        self._closed = False
        self._flushes = 0
        self._failed_flushes = 0
        self._last_error: FlushError | None = None
        self._last_flush_seconds = 0.0
        self._last_flush_bytes = 0
        self._last_flush_encoded = 0
        # Key text -> why the file cannot hold its entry (kept in memory only).
        self._unwritable: dict[str, str] = {}
        # A decaying maximum of recent flush durations (seconds): the writer
        # starts a flush this long, twice over, before the bound runs out.
        self._flush_estimate = 0.0
        self._late_flushes = 0
        # Links to the spans of the writes the next flush saves (bounded).
        self._write_links: list[Link] = []
        self._links_dropped = 0

    # ------------------------------------------------------------------ lifecycle

    async def open(self, *, task_group: TaskGroup | None = None) -> Self:
        """Load the file (a missing file is an empty store), start the writer; return self.

        The writer runs in ``task_group``, the owner's (an unexpected error in
        it is the owner's failure); without one, in a task of the store's own
        (an unexpected error then fails every later write, :meth:`flush` and
        :meth:`aclose`; see :mod:`garrison.stores._loops`).

        Raises :class:`~garrison.exceptions.StoreLoadError` when the file cannot
        be read or parsed; the file is left exactly as it was. Opening an open
        store does nothing; a closed store cannot be opened again.
        """
        if self._opened and not self._closed:
            return self
        if self._closed:
            raise StoreError(f"{self.path}: the store was closed; make a new EdnFileStore")
        started = time.perf_counter()
        with store_span(DB_SYSTEM_EDN_FILE, "load", self._collection):
            self._data = await asyncio.to_thread(open_file, self.path, max_digits=self.max_digits)
        # The first flush serialises every loaded entry: about as long as parsing them.
        self._flush_estimate = time.perf_counter() - started
        self._uncached = set(self._data)
        self._opened = True
        self._writer = BackgroundLoop(f"the EDN writer of {self.path}", self._write_loop)
        await self._writer.start(task_group)
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the writer and flush a last time. Idempotent.

        Raises :class:`~garrison.exceptions.FlushError` when the final flush
        fails; the store is closed anyway and the unsaved data is lost only if
        the caller drops it (it is still readable through :meth:`snapshot`).
        A writer of the store's own task that failed raises its error here,
        after the final flush.
        """
        if self._closed:
            return
        self._closed = True
        writer, self._writer = self._writer, None
        failed: StoreError | None = None
        if writer is not None:
            try:
                await writer.stop()
            except StoreError as exc:
                failed = exc  # raised after the final flush: the data comes first
        if self._opened:
            try:
                await self._flush_to(self._generation)
                self._raise_unwritable()
            finally:
                self._signal_progress()
        if failed is not None:
            raise failed

    # ------------------------------------------------------------------ health

    @property
    def writer_lag(self) -> float:
        """Seconds since the oldest write not yet on disk; ``0.0`` when all is saved."""
        oldest = [t for t in (self._first_unflushed, self._inflight_first) if t is not None]
        if not oldest:
            return 0.0
        return max(0.0, time.monotonic() - min(oldest))

    @property
    def unwritable(self) -> dict[str, str]:
        """Entries the file cannot hold, kept in memory only: ``{key text: reason}``."""
        return dict(self._unwritable)

    def _raise_unwritable(self) -> None:
        if self._unwritable:
            detail = describe_unwritable(self._unwritable)
            raise FlushError(
                f"could not write {str(self.path)!r} entirely: {detail}; "
                "every other entry is on disk"
            )

    @property
    def last_flush_error(self) -> FlushError | None:
        """The error of the most recent flush attempt, ``None`` once a flush succeeds."""
        return self._last_error

    def statistics(self) -> EdnFileStoreStatistics:
        """Counters of the writer and the map, for health checks."""
        return EdnFileStoreStatistics(
            entries=len(self._data),
            dirty_keys=len(self._dirty | self._inflight),
            writer_lag=self.writer_lag,
            flushes=self._flushes,
            failed_flushes=self._failed_flushes,
            last_flush_error=self._last_error,
            last_flush_seconds=self._last_flush_seconds,
            last_flush_bytes=self._last_flush_bytes,
            last_flush_encoded=self._last_flush_encoded,
            unwritable=len(self._unwritable),
            late_flushes=self._late_flushes,
        )

    def snapshot(self) -> dict[str, Any]:
        """A shallow copy of the whole map, keyed by key text (works even when closed)."""
        return dict(self._data)

    # ------------------------------------------------------------------ reads

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (pass :data:`MISSING` to tell nil from absent)."""
        with store_span(DB_SYSTEM_EDN_FILE, "get", self._collection):
            return self._data.get(key, default)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those ``keys`` that exist, keyed by key text."""
        texts = keys
        with store_span(DB_SYSTEM_EDN_FILE, "get_many", self._collection, batch_size=len(texts)):
            data = self._data
            return {t: data[t] for t in texts if t in data}

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """Entries whose key text starts with ``prefix``, in key order, paginated.

        ``prefix="presence/"`` scans one key namespace. Costs a pass over the
        keys and a sort of the matches.
        """
        with store_span(DB_SYSTEM_EDN_FILE, "scan", self._collection):
            data = self._data
            return [(k, data[k]) for k in self._matching(prefix, after, limit)]

    async def keys(self, prefix: str = "") -> list[str]:
        """All key texts starting with ``prefix``, in key order."""
        with store_span(DB_SYSTEM_EDN_FILE, "keys", self._collection):
            return self._matching(prefix, None, None)

    async def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        with store_span(DB_SYSTEM_EDN_FILE, "count", self._collection):
            if not prefix:
                return len(self._data)
            return sum(1 for k in self._data if k.startswith(prefix))

    def _matching(self, prefix: str, after: str | None, limit: int | None) -> list[str]:
        found = sorted(
            k for k in self._data if k.startswith(prefix) and (after is None or k > after)
        )
        return found if limit is None else found[:limit]

    # ------------------------------------------------------------------ writes

    async def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` in memory; the writer saves it shortly."""
        text = key
        with store_span(DB_SYSTEM_EDN_FILE, "put", self._collection) as span:
            self._check_open()
            self._data[text] = value
            self._mark_dirty((text,), span)

    async def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Set many keys at once (all in memory before any flush can see them)."""
        pairs = list(items)
        with store_span(
            DB_SYSTEM_EDN_FILE, "put_many", self._collection, batch_size=len(pairs)
        ) as span:
            self._check_open()
            self._data.update(pairs)
            self._mark_dirty((t for t, _ in pairs), span)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        text = key
        with store_span(DB_SYSTEM_EDN_FILE, "delete", self._collection) as span:
            self._check_open()
            if self._data.pop(text, MISSING) is MISSING:
                return False
            self._mark_dirty((text,), span)
            return True

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove many keys; the number that existed."""
        texts = list(keys)
        with store_span(
            DB_SYSTEM_EDN_FILE, "delete_many", self._collection, batch_size=len(texts)
        ) as span:
            self._check_open()
            data = self._data
            gone = [t for t in texts if data.pop(t, MISSING) is not MISSING]
            self._mark_dirty(gone, span)
            return len(gone)

    async def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key text starts with ``prefix``; return how many.

        The file loses them at the next flush (all of them: ``{}``).
        """
        with store_span(DB_SYSTEM_EDN_FILE, "clear", self._collection) as span:
            self._check_open()
            data = self._data
            if prefix:
                gone = [k for k in data if k.startswith(prefix)]
                for key in gone:
                    del data[key]
            else:
                gone = list(data)
                data.clear()
            self._mark_dirty(gone, span)
            return len(gone)

    def _check_open(self) -> None:
        if self._closed or not self._opened:
            state = "closed" if self._closed else "not open yet"
            raise StoreError(f"{self.path}: the store is {state}")
        if self._writer is not None:
            self._writer.check()  # a write nobody would save is refused

    def _mark_dirty(self, texts: Iterable[str], span: Span) -> None:
        """Note ``texts`` as unsaved; ``span`` is the write's (the next flush links to it)."""
        before = len(self._dirty)
        self._dirty.update(texts)
        if len(self._dirty) == before and self._flushed_generation == self._generation:
            return  # nothing changed (e.g. deleting absent keys)
        if span.is_recording():
            if len(self._write_links) < MAX_FLUSH_LINKS:
                self._write_links.append(Link(span.get_span_context()))
            else:
                self._links_dropped += 1
        now = time.monotonic()
        self._generation += 1
        self._last_write = now
        if self._first_unflushed is None:
            self._first_unflushed = now
        self._wakeup.set()

    # ------------------------------------------------------------------ flushing

    async def flush(self) -> None:
        """Return once every write made before this call is on disk.

        Raises :class:`~garrison.exceptions.FlushError` if writing fails (the
        data stays in memory and the writer keeps retrying).
        """
        self._check_open()
        await self._flush_to(self._generation)
        self._raise_unwritable()

    async def _flush_to(self, target: int) -> None:
        """Make sure generation ``target`` is on disk, starting a flush if needed.

        The flush itself runs as its own task that callers await through
        :func:`asyncio.shield`: a worker thread cannot be interrupted, so a
        cancelled caller must not release the store to a second, overlapping
        flush while the first thread still writes.
        """
        while self._flushed_generation < target:
            running = self._flush_task
            if running is not None and not running.done():
                with contextlib.suppress(FlushError):
                    await asyncio.shield(running)
                continue  # someone else's flush may have covered our target
            task = asyncio.get_running_loop().create_task(self._flush_once())
            task.add_done_callback(_retrieve_result)
            self._flush_task = task
            await asyncio.shield(task)

    async def _flush_once(self) -> None:
        """One flush of everything written so far; raises FlushError on failure."""
        generation = self._generation
        dirty, self._dirty = self._dirty, set()
        self._inflight = dirty
        self._inflight_first, self._first_unflushed = self._first_unflushed, None
        data = self._data
        changed = [(k, data[k]) for k in dirty | self._uncached if k in data]
        deleted = [k for k in dirty if k not in data]
        order = list(data)
        started = time.perf_counter()
        links, self._write_links = self._write_links, []
        dropped, self._links_dropped = self._links_dropped, 0
        try:
            with store_span(
                DB_SYSTEM_EDN_FILE,
                "flush",
                self._collection,
                batch_size=len(dirty),
                links=links,
                root=True,
            ) as span:
                if dropped:
                    span.set_attribute("garrison.flush.links_dropped", dropped)
                size, rejected = await asyncio.to_thread(
                    self._write_snapshot, changed, deleted, order
                )
        except Exception as exc:
            self._restore_dirty(dirty)
            self._failed_flushes += 1
            error = _flush_error(self.path, exc)
            self._last_error = error
            self._signal_progress()
            raise error from exc
        except asyncio.CancelledError:
            # Only at loop teardown (callers are shielded); keep the keys dirty anyway.
            self._restore_dirty(dirty)
            raise
        self._uncached.clear()
        unwritable = self._unwritable
        for text in dirty:
            unwritable.pop(text, None)  # written or deleted since: judged afresh below
        unwritable.update(rejected)
        self._inflight = set()
        finished = time.monotonic()
        if self._inflight_first is not None and finished - self._inflight_first > self.max_delay:
            self._late_flushes += 1
        self._inflight_first = None
        self._flushed_generation = max(self._flushed_generation, generation)
        self._flushes += 1
        self._last_error = None
        self._last_flush_seconds = time.perf_counter() - started
        self._flush_estimate = max(self._last_flush_seconds, self._flush_estimate * _ESTIMATE_DECAY)
        self._last_flush_bytes = size
        self._last_flush_encoded = len(changed)
        self._signal_progress()

    def _signal_progress(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def wait_flushed(self) -> None:
        """Wait until the writer has saved every write made before this call.

        Unlike :meth:`flush` it does not hurry the writer: it returns when the
        debounced flush happens. Raises :class:`~garrison.exceptions.FlushError`
        if the store closes before those writes could be saved.
        """
        target = self._generation
        while self._flushed_generation < target:
            if self._closed and (self._flush_task is None or self._flush_task.done()):
                raise self._last_error or FlushError(f"{str(self.path)!r} closed unsaved")
            await self._progress.wait()

    def _restore_dirty(self, dirty: set[str]) -> None:
        # Writes made during the failed flush are already in self._dirty; only
        # the oldest unsaved timestamp must be carried back.
        self._dirty |= dirty
        self._inflight = set()
        inflight, self._inflight_first = self._inflight_first, None
        if inflight is not None and (
            self._first_unflushed is None or inflight < self._first_unflushed
        ):
            self._first_unflushed = inflight

    def _write_snapshot(
        self, changed: list[tuple[str, Any]], deleted: list[str], order: list[str]
    ) -> tuple[int, dict[str, str]]:
        """Serialise what changed, join every entry's text and replace the file.

        Runs in a worker thread, one at a time; it alone touches ``_texts``.
        ``changed`` holds the values of the snapshot, so later writes on the
        loop do not matter here.
        """
        texts = self._texts
        for text in deleted:
            texts.pop(text, None)
        fresh: dict[str, bytes] = {}
        rejected: dict[str, str] = {}
        for text, value in changed:
            try:
                fresh[text] = entry_text(text, value)
            except Exception as exc:  # noqa: BLE001 - one entry must not stop the others
                # Kept aside: the cache (and so the file) keeps its previous text, if any.
                rejected[text] = f"{type(exc).__name__}: {exc}"
        texts.update(fresh)
        payload = b"".join(file_pieces([texts[t] for t in order if t in texts]))
        replace_file(self.path, payload)
        return len(payload), rejected

    async def _write_loop(self) -> None:
        """The writer loop: debounce, flush, back off after a failed flush.

        A :class:`FlushError` (the disk, a value with no EDN form) is retried
        with the data kept in memory; any other error ends the loop and fails
        its owner (see :mod:`garrison.stores._loops`).
        """
        backoff = 0.0
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._flushed_generation >= self._generation:
                continue
            if backoff:
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            else:
                await self._debounce()
            try:
                await self._flush_to(self._generation)
            except FlushError:
                backoff = min(self.max_backoff, max(self.quiet_period, 0.05, backoff * 2))
                self._wakeup.set()  # retry even if no new write arrives
            else:
                backoff = 0.0
                if self._flushed_generation < self._generation:
                    self._wakeup.set()

    @property
    def flush_reserve(self) -> float:
        """Seconds before the bound at which the writer starts a flush at the latest.

        Twice the recent flush duration (the flush that saves a write may first
        have to wait for one already running) plus a fifth of ``max_delay``
        (at least 10 ms) for timer and thread-start latency on a busy machine.
        Until a flush has been measured, all of ``max_delay``: the first flush
        after open starts at the first write, since it also serialises every
        loaded entry and its cost is not known yet.
        """
        if not self._flushes:
            return self.max_delay
        slack = max(_MIN_SLACK, self.max_delay * _SLACK_SHARE)
        return min(self.max_delay, 2 * self._flush_estimate + slack)

    async def _debounce(self) -> None:
        """Wait for a quiet period after the last write, and no later than the
        moment that lets the flush finish within max_delay of the first."""
        while True:
            first = self._first_unflushed
            if first is None:
                return
            latest = first + self.max_delay - self.flush_reserve
            due = min(self._last_write + self.quiet_period, latest)
            remaining = due - time.monotonic()
            if remaining <= 0:
                return
            # A timer, not synchronisation: the quiet period is the point.
            await asyncio.sleep(remaining)


def describe_unwritable(unwritable: dict[str, str], shown: int = 3) -> str:
    """``"2 entries have no EDN form and are kept in memory only: a/1 (reason), …"``."""
    items = sorted(unwritable.items())
    listed = ", ".join(f"{key} ({reason})" for key, reason in items[:shown])
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    if len(items) == 1:
        return f"1 entry has no EDN form and is kept in memory only: {listed}"
    return f"{len(items)} entries have no EDN form and are kept in memory only: {listed}{more}"


def _retrieve_result(task: asyncio.Task[None]) -> None:
    # A flush whose awaiting caller was cancelled still has its error recorded
    # in last_flush_error; retrieving it here keeps asyncio from logging it.
    if not task.cancelled():
        task.exception()


def _flush_error(path: Path, exc: Exception) -> FlushError:
    if isinstance(exc, EdnError):
        reason = f"a value has no EDN form: {exc}"
    elif isinstance(exc, OSError):
        reason = f"{exc.strerror or exc} (errno {exc.errno})"
    else:
        reason = repr(exc)
    return FlushError(f"could not write {str(path)!r}: {reason}; the data is kept in memory")
