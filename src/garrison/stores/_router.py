"""ModeRouter: the four migration modes between the EDN file and SQLite.

========================  ===================================  =====================
mode                      reads                                writes
========================  ===================================  =====================
``edn-only``              EDN                                  EDN
``dual-write``            EDN                                  EDN, then SQLite
``sqlite-first``          SQLite; EDN on a miss or an error    EDN, then SQLite
``sqlite-only``           SQLite                               SQLite
========================  ===================================  =====================

Writes in the two middle modes always succeed on EDN (the in-memory map, saved
by its writer). When the SQLite side of a write fails, the write still
succeeds, its keys join the *repair backlog*, and a repair pass copies their
EDN values (or their absence) to SQLite once it works again. A write is never
lost, and because every write reaches EDN first, switching back (a rollback)
loses nothing either.

How the router keeps that promise:

- **The backlog survives a restart.** It is kept in a small JSON file next to
  the EDN file (``memory.edn.sqlite-backlog.json``), written atomically
  before the failed write returns: SQLite cannot hold it, since SQLite is what
  failed. Besides keys it holds a *full* flag, set when SQLite may be behind on
  keys nobody recorded: after ``clear()`` failed on SQLite, and on entering
  ``dual-write`` or ``sqlite-first`` from ``edn-only`` (whose writes never
  reached SQLite). A full repair compares both sides and fixes every difference.
- **sqlite-first reads around the backlog.** A key in the backlog is read from
  EDN, SQLite being known to be stale for it; while the full flag is set, every
  read goes to EDN. Scans merge both sides (SQLite wins, EDN fills what SQLite
  lacks), since a range read from SQLite cannot tell which keys it misses. A
  fallback hit of ``get``/``get_many`` is written back to SQLite.
- **sqlite-only is guarded both ways.** Entering it requires an empty backlog
  and a clean :meth:`ModeRouter.validate`; leaving it does too (its writes never
  reached EDN), unless forced. :meth:`ModeRouter.restore_edn_from_sqlite` levels
  EDN for a rollback.
- **The mode lives in SQLite's meta table** (``garrison.router.mode``), each
  switch is appended to ``garrison.router.mode_history`` and recorded as a span
  event. A switch whose record cannot be written does not happen.
- **The older side never answers.** In the modes that write both sides, a
  write is acknowledged once SQLite committed it, while the EDN file receives
  it at its next flush: after a crash SQLite is the newer side, except for
  the keys in the backlog (where SQLite failed and EDN is newer). The meta
  table keeps the *EDN level* (``garrison.router.edn_level``): a history
  ``seq`` through which the EDN file is at least as new as SQLite. It is
  recorded after the EDN file was flushed: at a clean close, on entering a
  mode that writes both sides from ``edn-only`` (or from ``sqlite-only``
  with a clean validation), and after every levelling. At open in
  ``dual-write`` or ``sqlite-first`` the router gives the EDN file SQLite's
  state (value or absence) for every key SQLite changed after the level,
  except the backlog's keys, flushes it, and only then serves (see
  :mod:`garrison.stores._edn_level`). A database with no level yet (new, or
  from a garrison that kept none) gets one at its first open in such a mode,
  with the file taken as it is: nothing says SQLite is newer than it then.
- **A switch toward EDN reads checks the EDN side.** From ``sqlite-first``
  to ``dual-write`` or ``edn-only``, the EDN side is levelled first, then
  compared with SQLite; any difference outside the backlog refuses the
  switch with :class:`~garrison.exceptions.ValidationError` naming the first
  keys, unless forced.
- The router does not own the two stores: closing them is the caller's job,
  after :meth:`ModeRouter.aclose`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Self

from opentelemetry import trace

from garrison.edn import dumps as edn_dumps
from garrison.exceptions import (
    EdnEncodeError,
    EdnError,
    FlushError,
    RefusedWriteError,
    SchemaError,
    StoreError,
    ValidationError,
)
from garrison.stores._audit import Audit, current_audit, running_as
from garrison.stores._backlog import RepairBacklog
from garrison.stores._compare import Comparison, compare_stores
from garrison.stores._edn_level import EDN_LEVEL_META, level_edn, record_edn_level
from garrison.stores._loops import BackgroundLoop
from garrison.stores._mode import Mode, ModeSwitch, RouterStatistics, decide_mode
from garrison.stores._mode_file import write_mode_file
from garrison.stores._protocol import MISSING
from garrison.stores._sqlite_types import Reversion, to_micros
from garrison.stores._values import encode_value
from garrison.tracing import STORES_SCOPE, tracer

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path
    from types import TracebackType

    from anyio.abc import TaskGroup

    from garrison.stores._edn_file import EdnFileStore
    from garrison.stores._postgres import PostgresStore
    from garrison.stores._sqlite import SqliteStore

__all__ = ["SQLITE_FAILURES", "ModeRouter"]

log = logging.getLogger(__name__)

MODE_META: Final = "garrison.router.mode"
HISTORY_META: Final = "garrison.router.mode_history"
_REPAIR_PAGE: Final = 500

#: What a failing SQLite side raises: SQLite's own errors, garrison's store
#: errors (undecodable values), OSError (disk, permissions) and ValueError
#: (aiosqlite's "connection closed"). Anything else is a bug and propagates.
SQLITE_FAILURES: Final = (sqlite3.Error, StoreError, OSError, ValueError)


class ModeRouter:
    """A :class:`KeyValueStore` routing each operation to EDN, SQLite or both by mode.

    ::

        async with EdnFileStore("memory.edn") as edn, SqliteStore("garrison.db") as db:
            async with ModeRouter(edn, db) as store:      # mode read from db's meta table
                await store.switch_mode(Mode.DUAL_WRITE, reason="start migration")
                await store.put("session/abc", {"user": 42})

    ``default_mode`` applies only when the database has no mode yet.
    ``repair_interval`` is the first retry delay of the background repair
    pass (doubling up to ``max_repair_interval`` while SQLite keeps failing).
    """

    def __init__(
        self,
        edn: EdnFileStore,
        sqlite: SqliteStore | PostgresStore,
        *,
        default_mode: Mode | str = Mode.EDN_ONLY,
        repair_interval: float = 0.5,
        max_repair_interval: float = 30.0,
        backlog_path: Path | None = None,
    ) -> None:
        self.edn = edn
        self.sqlite = sqlite
        self.default_mode = Mode(default_mode)
        self.repair_interval = repair_interval
        self.max_repair_interval = max_repair_interval
        self.backlog_path = backlog_path or edn.path.with_name(
            edn.path.name + ".sqlite-backlog.json"
        )
        self._mode = self.default_mode
        self._backlog = RepairBacklog(self.backlog_path)
        self._lock = asyncio.Lock()  # orders writes against repairs and switches
        self._repair_wakeup = asyncio.Event()
        self._repairer: BackgroundLoop | None = None
        self._last_error: str | None = None
        self._repaired = 0
        self._fallback_reads = 0
        self._opened = False
        self._without_sqlite = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def open(self, *, task_group: TaskGroup | None = None) -> Self:
        """Read the persisted mode and backlog, and start the repair loop; return self.

        The repair loop runs in ``task_group``, the owner's; without one, in a
        task of the router's own (see :mod:`garrison.stores._loops`).
        """
        if self._opened:
            return self
        try:
            stored = await self.sqlite.get_meta(MODE_META)
            if stored is None:
                await self.sqlite.set_meta(MODE_META, str(self.default_mode))
        except SQLITE_FAILURES as exc:
            # Without the persisted mode the router cannot know where the data is.
            raise StoreError(
                f"cannot read the store mode from {self.sqlite.path}: {_describe(exc)}"
            ) from exc
        # The configured default stands in for the rest of the decision (open_stack
        # made it with the same function).
        self._mode = decide_mode(stored, configured=self.default_mode, edn_file_exists=False)
        await self._mirror_mode(self._mode, required=False)
        await self._backlog.load()
        if self._mode.writes_sqlite and self._mode.writes_edn:
            await self._level_edn_at_open()
        self._opened = True
        await self._start_repairs(task_group)
        if self.needs_repair:
            self._repair_wakeup.set()
        return self

    async def _start_repairs(self, task_group: TaskGroup | None) -> None:
        self._repairer = BackgroundLoop(f"the repair loop of {self.sqlite.path}", self._repair_loop)
        await self._repairer.start(task_group)

    async def open_without_sqlite(self, mode: Mode, *, task_group: TaskGroup | None = None) -> Self:
        """Open in ``mode`` (``edn-only`` or ``dual-write``) while SQLite cannot be opened.

        Reads and writes are served by the EDN file. In ``dual-write`` the SQLite
        side of every write fails into the repair backlog, and a full repair is
        marked pending: SQLite may be behind on anything once it is back.
        """
        if mode not in (Mode.EDN_ONLY, Mode.DUAL_WRITE):
            raise StoreError(f"the store cannot run without SQLite in {mode} mode")
        self._mode = mode
        self._without_sqlite = True
        await self._backlog.load()
        if mode is Mode.DUAL_WRITE:
            await self._backlog.add((), full=True)
        self._opened = True
        await self._start_repairs(task_group)
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
        """Stop the repair loop (the backlog stays on disk for the next open). Idempotent.

        The two stores stay open: their owner closes them. A repair loop of
        the router's own task that failed raises its error here, after the
        EDN level is recorded.
        """
        if self._closed:
            return
        self._closed = True
        repairer, self._repairer = self._repairer, None
        failed: StoreError | None = None
        if repairer is not None:
            try:
                await repairer.stop()
            except StoreError as exc:
                failed = exc
        both = self._mode.writes_sqlite and self._mode.writes_edn
        # Without SQLite (never opened) there is no level to record.
        if self._opened and both and not self._without_sqlite:
            async with self._lock:
                try:
                    await record_edn_level(self.edn, self.sqlite)
                except (FlushError, *SQLITE_FAILURES) as exc:
                    # The next open levels the EDN side from the last recorded level.
                    log.warning("could not record the EDN level at close: %s", _describe(exc))
        if failed is not None:
            raise failed

    # ------------------------------------------------------------------ mode

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def repair_backlog(self) -> frozenset[str]:
        """Keys whose SQLite side is known to be behind EDN."""
        return frozenset(self._backlog.keys)

    def statistics(self) -> RouterStatistics:
        """Mode, backlog and fallback counters, for health checks."""
        return RouterStatistics(
            mode=self._mode,
            repair_backlog=len(self._backlog),
            full_repair_pending=self._backlog.full,
            last_sqlite_error=self._last_error,
            repaired=self._repaired,
            fallback_reads=self._fallback_reads,
        )

    async def history(self) -> list[dict[str, Any]]:
        """Every recorded mode switch, oldest first (from the meta table)."""
        return list(await self.sqlite.get_meta(HISTORY_META, []))

    async def validate(self, prefix: str = "") -> Comparison:
        """Compare the EDN and SQLite sides key by key (see :func:`compare_stores`)."""
        return await compare_stores(
            self.edn, self.sqlite, prefix=prefix, left_name="edn", right_name="sqlite"
        )

    async def switch_mode(
        self, mode: Mode | str, *, force: bool = False, reason: str = ""
    ) -> ModeSwitch:
        """Switch to ``mode``, persist it and record the switch.

        Entering or leaving ``sqlite-only`` requires an empty repair backlog and
        a clean validation; otherwise :class:`~garrison.exceptions.ValidationError`
        is raised and the mode is unchanged, unless ``force`` is true. Raises
        :class:`~garrison.exceptions.StoreError` (mode unchanged) when SQLite
        cannot record the switch.
        """
        target = Mode(mode)
        with tracer(STORES_SCOPE).start_as_current_span(
            "switch_mode garrison.router", root=False
        ) as span:
            async with self._lock:
                previous = self._mode
                validation: str | None = None
                clean = False
                if Mode.SQLITE_ONLY in (previous, target) and previous is not target:
                    comparison = await self.validate()
                    validation = comparison.summary()
                    pending = len(self._backlog) + self._backlog.full
                    clean = not pending and comparison.clean
                    if not clean and not force:
                        hint = (
                            "export the database to the EDN file first (garrison export --force)"
                            if previous is Mode.SQLITE_ONLY
                            else "repair first"
                        )
                        raise ValidationError(
                            f"cannot switch from {previous} to {target}: {validation}; "
                            f"repair backlog {len(self._backlog)} keys"
                            + (", full repair pending" if self._backlog.full else "")
                            + f" ({hint}, or force the switch)"
                        )
                elif previous is Mode.SQLITE_FIRST and target in (Mode.DUAL_WRITE, Mode.EDN_ONLY):
                    validation = await self._check_edn_side(previous, target, force=force)
                records: dict[str, Any] = {MODE_META: str(target)}
                both = target.writes_sqlite and target.writes_edn
                level = both and (previous is Mode.EDN_ONLY or clean)
                # Entering edn-only from a mode that commits to SQLite: writes
                # acknowledged before the switch must be in the file first, or
                # a crash would lose them with nothing left to level from.
                saved = target is Mode.EDN_ONLY and previous.writes_sqlite
                if level or saved:
                    try:
                        await self.edn.flush()
                        if level:
                            # From here on SQLite's changes are newer than the
                            # file's only if they come later.
                            records[EDN_LEVEL_META] = await self.sqlite.last_seq()
                    except (FlushError, *SQLITE_FAILURES) as exc:
                        raise StoreError(
                            f"cannot switch from {previous} to {target}: the EDN file could "
                            f"not be saved first ({_describe(exc)}); the mode is unchanged"
                        ) from exc
                switch = ModeSwitch(previous, target, datetime.now(UTC), force, reason, validation)
                if target is Mode.SQLITE_ONLY:
                    # Before the record: the mirror must never name a mode whose
                    # EDN file is complete while the database is in sqlite-only.
                    await self._mirror_mode(target, required=True)
                try:
                    history = await self.history()
                    # One transaction: the record of a switch never exists
                    # without the switch, nor the switch without its record.
                    # The event's reason is the switch's, else the audit context's.
                    audit = current_audit()
                    with running_as(Audit(audit.actor, reason or audit.reason)):
                        await self.sqlite.set_meta_many(
                            {HISTORY_META: [*history, switch.to_record()], **records},
                            event=f"mode {previous} -> {target}" + (" (forced)" if force else ""),
                        )
                except SQLITE_FAILURES as exc:
                    raise StoreError(
                        f"cannot switch from {previous} to {target}: SQLite could not record "
                        f"the switch ({_describe(exc)}); the mode is unchanged"
                    ) from exc
                self._mode = target
                if target is not Mode.SQLITE_ONLY:
                    await self._mirror_mode(target, required=False)
                if previous is Mode.EDN_ONLY and target.writes_sqlite and target.writes_edn:
                    # edn-only writes never reached SQLite: compare and repair all.
                    await self._backlog.add((), full=True)
                attributes = {k: v for k, v in switch.to_record().items() if v is not None}
                span.add_event("garrison.store.mode_switch", attributes)
                log.info("store mode switched from %s to %s (%s)", previous, target, reason)
                if target.writes_sqlite and target.writes_edn and self.needs_repair:
                    self._repair_wakeup.set()
                return switch

    async def restore_sqlite(self, backup: Path) -> str | None:
        """Replace SQLite's data with the backup at ``backup``, keeping the current mode.

        A backup carries the mode recorded when it was made; the installation's
        mode stays what it is (switch afterwards with :meth:`switch_mode`), and
        a differing one is recorded as a switch back in the mode history. In
        the modes that write both sides the EDN file stays the complete side, so
        a full repair levels SQLite with it. The restore is recorded in the
        restored audit trail as an event. Returns the mode the backup had
        recorded (``None``: none).
        """
        async with self._lock:
            await self.sqlite.restore(backup)
            # The backup's trail is the trail now; the restore is its newest event.
            await self.sqlite.record_event(f"restore {backup}")
            recorded = await self.sqlite.get_meta(MODE_META)
            mode = self._mode
            if recorded != str(mode):
                restored = decide_mode(recorded, configured=mode, edn_file_exists=False)
                switch = ModeSwitch(
                    restored,
                    mode,
                    datetime.now(UTC),
                    forced=False,
                    reason="restore keeps the current mode",
                )
                try:
                    history = await self.history()
                    await self.sqlite.set_meta_many(
                        {HISTORY_META: [*history, switch.to_record()], MODE_META: str(mode)}
                    )
                except SQLITE_FAILURES as exc:
                    raise StoreError(
                        f"restored {backup}, but SQLite could not record the mode {mode} "
                        f"({_describe(exc)}); the database now records {recorded}"
                    ) from exc
            if mode.writes_sqlite and mode.writes_edn:
                # The backup carries the EDN level it was taken with, and changes
                # after it that the EDN file has long overtaken: record the level
                # afresh so a crash never gives the file the backup's older values.
                await record_edn_level(self.edn, self.sqlite)
                await self._backlog.add((), full=True)
                self._repair_wakeup.set()
            return None if recorded is None else str(recorded)

    async def _mirror_mode(self, mode: Mode, *, required: bool) -> None:
        """Mirror ``mode`` beside the EDN file (see :mod:`garrison.stores._mode_file`)."""
        try:
            await asyncio.to_thread(write_mode_file, self.edn.path, mode)
        except OSError as exc:
            if required:
                raise StoreError(
                    f"cannot switch to {mode}: the mode cannot be mirrored beside "
                    f"{self.edn.path} ({_describe(exc)}); the mode is unchanged"
                ) from exc
            log.warning("cannot mirror the store mode beside %s: %s", self.edn.path, exc)

    # ------------------------------------------------------------------ EDN level

    async def _level_edn_at_open(self) -> None:
        """Before serving in a mode that writes both sides: level the EDN file with SQLite."""
        try:
            level = await self.sqlite.get_meta(EDN_LEVEL_META)
            last = await self.sqlite.last_seq()
        except SQLITE_FAILURES as exc:
            raise StoreError(
                f"cannot read the EDN level from {self.sqlite.path}: {_describe(exc)}"
            ) from exc
        if level is None:
            # The first open in this mode (a new database, or one from a garrison
            # that kept no level): nothing says SQLite is newer, and an EDN file
            # SQLite has not received yet must not be emptied. Level from now on.
            try:
                await record_edn_level(self.edn, self.sqlite)
            except (FlushError, *SQLITE_FAILURES) as exc:
                raise StoreError(f"cannot record the EDN level: {_describe(exc)}") from exc
            return
        if level >= last:
            return  # a clean stop: the file holds every change
        levelled = await level_edn(self.edn, self.sqlite, self._backlog, after=level)
        if levelled:
            log.warning(
                "gave the EDN file SQLite's state for %d keys it missed (an unclean stop "
                "before its last flush): %s",
                len(levelled),
                ", ".join(levelled[:5]) + (", …" if len(levelled) > 5 else ""),
            )

    async def _check_edn_side(self, previous: Mode, target: Mode, *, force: bool) -> str:
        """Level the EDN side and compare it with SQLite before EDN answers reads again."""
        # Recorded when this mode was entered or opened, so always there.
        level = await self.sqlite.get_meta(EDN_LEVEL_META, 0)
        await level_edn(self.edn, self.sqlite, self._backlog, after=level)
        comparison = await self.validate()
        summary = comparison.summary()
        if self._backlog.full:
            return summary  # SQLite is the side behind: EDN already answers every read
        stale = [k for k in comparison.mismatched_keys if k not in self._backlog]
        if stale and not force:
            shown = ", ".join(stale[:5]) + (", …" if len(stale) > 5 else "")
            raise ValidationError(
                f"cannot switch from {previous} to {target}: the EDN file and SQLite differ "
                f"on {len(stale)} keys outside the repair backlog ({shown}): {summary}. "
                "The EDN side would answer with stale values; find out why (garrison "
                "validate), or force the switch"
            )
        return summary

    # ------------------------------------------------------------------ repair

    async def note_sqlite_behind(self, keys: Iterable[str]) -> None:
        """Record that SQLite may hold older values than EDN for ``keys``.

        For a writer that reaches SQLite around the router: the migrator, when
        the application wrote a key between the migrator's check and its
        batch's commit, leaves the file's older value in SQLite. Such keys are
        read from EDN, kept by the EDN levelling after a crash, and repaired
        (EDN's value copied to SQLite). Nothing happens in the modes that do
        not write both sides.
        """
        texts = list(keys)
        async with self._lock:
            if not texts or not (self._mode.writes_sqlite and self._mode.writes_edn):
                return
            await self._backlog.add(texts)
        self._repair_wakeup.set()

    @property
    def needs_repair(self) -> bool:
        """Whether SQLite is (or may be) behind EDN."""
        return self._backlog.pending

    async def wait_repaired(self) -> None:
        """Wait until the repair backlog is empty and no full repair is pending.

        The background repair pass gets there once SQLite works again (in the
        dual modes); this only waits for it.
        """
        await self._backlog.wait_empty()

    async def repair(self) -> int:
        """Bring SQLite level with EDN for the backlog (or everything, if a full
        repair is pending); return how many keys were written or deleted.

        Raises the SQLite error when it still fails; what was repaired so far
        stays repaired.
        """
        async with self._lock:
            return await self._repair_locked()

    async def _repair_locked(self) -> int:
        repaired = 0
        if self._backlog.full:
            comparison = await self.validate()
            if comparison.clean and not self._backlog.keys:
                self._last_error = None  # before reset() wakes wait_repaired()
            await self._backlog.reset(
                {*self._backlog.keys, *comparison.mismatched_keys}, full=False
            )
        pending = sorted(self._backlog.keys)
        for start in range(0, len(pending), _REPAIR_PAGE):
            page = pending[start : start + _REPAIR_PAGE]
            values = await self.edn.get_many(page)
            gone = [key for key in page if key not in values]
            try:
                if values:
                    # What the file holds was admitted already: copied as it is.
                    await self.sqlite.put_many(list(values.items()), enforce=False)
                if gone:
                    await self.sqlite.delete_many(gone)
            except SQLITE_FAILURES as exc:
                self._last_error = _describe(exc)
                raise
            # SQLite works again; cleared before discard() wakes wait_repaired().
            self._last_error = None
            self._repaired += len(page)
            await self._backlog.discard(page)
            repaired += len(page)
        return repaired

    async def restore_edn_from_sqlite(self) -> int:
        """Make EDN an exact copy of SQLite (a rollback out of sqlite-only); return the count.

        Waits until the copy is on disk.
        """
        async with self._lock:
            entries: list[tuple[str, Any]] = []
            after: str | None = None
            while page := await self.sqlite.scan(after=after, limit=_REPAIR_PAGE * 4):
                entries.extend(page)
                after = page[-1][0]
            await self.edn.clear()
            await self.edn.put_many(entries)
            await self.edn.flush()
            await self._backlog.reset()
            return len(entries)

    async def _repair_loop(self) -> None:
        """Repair whenever the backlog fills, backing off while SQLite fails.

        A failing SQLite side (:data:`SQLITE_FAILURES`) is retried; any other
        error ends the loop and fails its owner (see :mod:`garrison.stores._loops`).
        """
        delay = self.repair_interval
        while True:
            await self._repair_wakeup.wait()
            self._repair_wakeup.clear()
            # A timer, not synchronisation: give a failing SQLite time to recover.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            if not (self.needs_repair and self._mode.writes_sqlite and self._mode.writes_edn):
                delay = self.repair_interval
                continue
            try:
                await self.repair()
            except SQLITE_FAILURES:
                log.warning("store repair pass failed; retrying in %.1fs", delay, exc_info=True)
                delay = min(self.max_repair_interval, delay * 2)
                self._repair_wakeup.set()
            else:
                delay = self.repair_interval
                if self.needs_repair:
                    self._repair_wakeup.set()

    async def _sqlite_failed(
        self, keys: Iterable[str], exc: Exception, *, full: bool = False
    ) -> None:
        self._last_error = _describe(exc)
        log.warning("SQLite side of a write failed; queued for repair: %s", self._last_error)
        trace.get_current_span().add_event(
            "garrison.store.repair_queued", {"error.type": type(exc).__qualname__}
        )
        await self._backlog.add(keys, full=full)
        self._repair_wakeup.set()

    async def _repaired_by_write(self, keys: Iterable[str]) -> None:
        # A write that reached both sides levels its keys: SQLite now has EDN's value.
        await self._backlog.discard(keys)

    # ------------------------------------------------------------------ reads

    def _edn_reads(self, keys: Iterable[str] = ()) -> bool:
        """Whether a read of ``keys`` must come from EDN in the current mode."""
        mode = self._mode
        if mode in (Mode.EDN_ONLY, Mode.DUAL_WRITE):
            return True
        if mode is Mode.SQLITE_ONLY:
            return False
        return self._backlog.full or any(k in self._backlog for k in keys)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` from the side the mode reads, or ``default``."""
        text = key
        if self._edn_reads((text,)):
            return await self.edn.get(text, default)
        if self._mode is Mode.SQLITE_ONLY:
            return await self.sqlite.get(text, default)
        try:
            value = await self.sqlite.get(text, MISSING)
        except SQLITE_FAILURES as exc:
            self._note_read_error(exc)
            value = MISSING
        if value is MISSING:
            value = await self.edn.get(text, MISSING)
            if value is MISSING:
                return default
            self._fallback_reads += 1
            await self._write_back({text: value})
        return value

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those ``keys`` that exist, by key text."""
        texts = keys
        if self._mode is Mode.SQLITE_ONLY:
            return await self.sqlite.get_many(texts)
        if self._mode is not Mode.SQLITE_FIRST or self._backlog.full:
            return await self.edn.get_many(texts)
        from_edn = [t for t in texts if t in self._backlog]
        asked = [t for t in texts if t not in self._backlog]
        try:
            found = await self.sqlite.get_many(asked)
        except SQLITE_FAILURES as exc:
            self._note_read_error(exc)
            found = {}
        missing = [t for t in asked if t not in found]
        fallback = await self.edn.get_many(missing)
        if fallback:
            self._fallback_reads += len(fallback)
            await self._write_back(fallback)
        found.update(fallback)
        found.update(await self.edn.get_many(from_edn))
        return {t: found[t] for t in texts if t in found}

    async def _write_back(self, values: dict[str, Any]) -> None:
        """Copy EDN values found by a sqlite-first fallback into SQLite (best effort)."""
        async with self._lock:
            if self._mode is not Mode.SQLITE_FIRST:
                return
            current = await self.edn.get_many(list(values))
            # Only values still current: a write that raced us already went to both.
            items = [(k, v) for k, v in values.items() if k in current and current[k] is v]
            items = [(k, v) for k, v in items if k not in self._backlog]
            if not items:
                return
            try:
                await self.sqlite.put_many(items)
            except SQLITE_FAILURES as exc:
                await self._sqlite_failed([k for k, _ in items], exc)

    def _note_read_error(self, exc: Exception) -> None:
        log.warning("SQLite read failed; answering from EDN: %s", _describe(exc))
        trace.get_current_span().add_event(
            "garrison.store.read_fallback", {"error.type": type(exc).__qualname__}
        )

    async def _merged_keys(self, prefix: str) -> tuple[list[str], set[str]]:
        """sqlite-first: the union of both sides' keys and the ones SQLite answers."""
        edn_keys = await self.edn.keys(prefix)
        try:
            sqlite_keys = set(await self.sqlite.keys(prefix))
        except SQLITE_FAILURES as exc:
            self._note_read_error(exc)
            return edn_keys, set()
        sqlite_keys -= self._backlog.keys
        merged = set(edn_keys) | sqlite_keys
        return sorted(merged), sqlite_keys

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """Entries under ``prefix`` in key order, paginated, from the side(s) the mode reads."""
        if self._mode is Mode.SQLITE_ONLY:
            return await self.sqlite.scan(prefix, after=after, limit=limit)
        if self._edn_reads():
            return await self.edn.scan(prefix, after=after, limit=limit)
        keys, from_sqlite = await self._merged_keys(prefix)
        if after is not None:
            keys = [k for k in keys if k > after]
        if limit is not None:
            keys = keys[:limit]
        values: dict[str, Any] = {}
        sqlite_part = [k for k in keys if k in from_sqlite]
        if sqlite_part:
            try:
                values = await self.sqlite.get_many(sqlite_part)
            except SQLITE_FAILURES as exc:
                self._note_read_error(exc)
        values.update(await self.edn.get_many([k for k in keys if k not in values]))
        return [(k, values[k]) for k in keys if k in values]

    async def keys(self, prefix: str = "") -> list[str]:
        """All key texts under ``prefix``, in key order."""
        if self._mode is Mode.SQLITE_ONLY:
            return await self.sqlite.keys(prefix)
        if self._edn_reads():
            return await self.edn.keys(prefix)
        return (await self._merged_keys(prefix))[0]

    async def count(self, prefix: str = "") -> int:
        """How many keys are under ``prefix``."""
        if self._mode is Mode.SQLITE_ONLY:
            return await self.sqlite.count(prefix)
        if self._edn_reads():
            return await self.edn.count(prefix)
        return len((await self._merged_keys(prefix))[0])

    # ------------------------------------------------------------------ writes

    def admit(self, key: str, value: Any) -> None:
        """Check that every store the current mode writes can hold the entry ``key``, ``value``.

        ``key`` is a key text, checked where it entered (a message, the CLI).
        Raises :class:`~garrison.exceptions.RefusedWriteError` naming the key
        and the reason otherwise: a value the EDN
        writer refuses (a naive ``datetime``, ``bytes``, …) in the modes that
        write the EDN file, a value SQLite's value format refuses in the modes
        that write SQLite. An entity that breaks a rule of its kind's schema
        that needs no stored data (``type``, ``cardinality``, ``required``)
        raises :class:`~garrison.exceptions.SchemaError` in every mode.
        :meth:`put_many` admits every entry before it writes any, so a
        refused write leaves both sides untouched.
        """
        mode = self._mode
        if mode.writes_edn:
            try:
                # The file writes the value exactly so (the message checked the key).
                edn_dumps(value)
            except EdnError as exc:
                raise RefusedWriteError(
                    f"refused in {mode} mode: the EDN file cannot hold the value: {exc}", key=key
                ) from exc
        if mode.writes_sqlite:
            try:
                encode_value(value)
            except (EdnError, StoreError) as exc:
                raise RefusedWriteError(
                    f"refused in {mode} mode: SQLite cannot hold the value: {exc}", key=key
                ) from exc
        self.sqlite.check_entry(key, value)

    async def put(self, key: str, value: Any) -> None:
        """Set ``key`` on the side(s) the mode writes (admitted first: see :meth:`admit`)."""
        await self.put_many([(key, value)])

    async def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Set many keys: all or none (see :meth:`write_many`)."""
        await self.write_many(items)

    async def write_many(
        self, items: Iterable[tuple[str, Any]], *, admitted: bool = False
    ) -> list[tuple[str, Any]]:
        """Set many keys; returns the ``(key text, value)`` pairs written.

        All or none: every entry is admitted (:meth:`admit`) before any is
        written, and a refused one raises
        :class:`~garrison.exceptions.RefusedWriteError`. The schema's
        ``unique`` and ``reference`` rules read SQLite: in ``sqlite-only``
        inside the write's transaction, in the dual modes before the EDN file
        is written (skipped while SQLite fails); ``edn-only`` does not check
        them. In the dual modes EDN
        always succeeds and SQLite is repaired later. ``admitted``: the items
        are ``(key text, value)`` pairs :meth:`admit` accepted in the current
        mode already (a debounced commit), and are written as they are.
        """
        batch = items if isinstance(items, list | tuple) else list(items)
        if not batch:
            return []
        async with self._lock:
            mode = self._mode
            if admitted:
                pairs = list(batch)
            elif mode is Mode.SQLITE_ONLY:
                # The hot path: SQLite encodes every value in its transaction
                # anyway (and rolls it back when one has no form), so nothing
                # is checked here, and admit() names a refused value.
                pairs = list(batch)
                try:
                    await self.sqlite.put_many(pairs)
                except EdnEncodeError:
                    for key, value in pairs:
                        self.admit(key, value)
                    raise
                return pairs
            else:
                for key, value in batch:
                    self.admit(key, value)
                pairs = list(batch)
                if mode.writes_sqlite:
                    await self._check_lookups(pairs)
            if mode is Mode.SQLITE_ONLY:
                await self.sqlite.put_many(pairs)
                return pairs
            await self.edn.put_many(pairs)
            if mode is Mode.EDN_ONLY:
                return pairs
            try:
                await self.sqlite.put_many(pairs, enforce=False)
            except SQLITE_FAILURES as exc:
                await self._sqlite_failed([k for k, _ in pairs], exc)
            else:
                await self._repaired_by_write(k for k, _ in pairs)
            return pairs

    async def _check_lookups(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """The dual modes: check ``unique`` and ``reference`` against SQLite before writing EDN.

        A SQLite that fails cannot be asked: the write goes ahead, as every
        write of these modes does (``garrison schema check`` finds what it let through).
        """
        try:
            await self.sqlite.check_lookups(pairs)
        except SchemaError:
            raise
        except SQLITE_FAILURES as exc:
            log.warning("schema rules not checked, SQLite failed: %s", _describe(exc))

    async def revert(
        self, keys: str | Sequence[str], to: Any, *, dry_run: bool = False
    ) -> list[Reversion]:
        """Give ``keys`` (a key prefix, or key texts) the values they had at ``to``.

        The plan comes from SQLite's history (:meth:`SqliteStore.revert_plan`)
        and is written with :meth:`apply` as new changes, recorded with an
        event naming the revert. Returns the plan (``dry_run``: only that).
        Raises :class:`~garrison.exceptions.StoreError` in ``edn-only`` mode,
        whose writes SQLite's history does not hold.
        """
        mode = self._mode
        if not mode.writes_sqlite:
            raise StoreError(
                f"a revert needs SQLite's history, which the store does not keep in {mode} "
                "mode; switch to dual-write first (garrison mode set dual-write)"
            )
        plan = await self.sqlite.revert_plan(keys, to)
        if dry_run or not plan:
            return plan
        puts = [(r.key, r.target) for r in plan if r.target is not MISSING]
        deletes = [r.key for r in plan if r.target is MISSING]
        scope = f"prefix {keys!r}" if isinstance(keys, str) else f"{len(keys)} keys"
        moment = _EPOCH + timedelta(microseconds=to_micros(to))
        await self.apply(puts, deletes, event=f"revert {scope} to {moment.isoformat()}")
        return plan

    async def apply(
        self, puts: Sequence[tuple[str, Any]], deletes: Sequence[str], *, event: str
    ) -> None:
        """Set ``puts`` and remove ``deletes`` together (a revert), recording ``event``.

        Every put is admitted first (nothing is written when one is refused).
        SQLite's part is one transaction; in the dual modes the EDN file is
        written first and SQLite is repaired later if it fails, as for
        :meth:`write_many`. Needs a mode that writes SQLite.
        """
        async with self._lock:
            mode = self._mode
            if not mode.writes_sqlite:
                raise StoreError(f"{event} needs SQLite, which {mode} mode does not write")
            for key, value in puts:
                self.admit(key, value)
            if mode is Mode.SQLITE_ONLY:
                await self.sqlite.apply(puts, deletes, event=event)
                return
            await self._check_lookups(puts)
            await self.edn.put_many(puts)
            await self.edn.delete_many(deletes)
            texts = [key for key, _ in puts] + list(deletes)
            try:
                await self.sqlite.apply(puts, deletes, event=event, enforce=False)
            except SQLITE_FAILURES as exc:
                await self._sqlite_failed(texts, exc)
            else:
                await self._repaired_by_write(texts)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed (on the side the mode reads)."""
        return await self.delete_many([key]) > 0

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove many keys; the number that existed."""
        texts = list(dict.fromkeys(keys))
        if not texts:
            return 0
        async with self._lock:
            mode = self._mode
            if mode is Mode.SQLITE_ONLY:
                return await self.sqlite.delete_many(texts)
            existed = await self.edn.delete_many(texts)
            if mode is Mode.EDN_ONLY:
                return existed
            try:
                in_sqlite = await self.sqlite.delete_many(texts)
            except SQLITE_FAILURES as exc:
                await self._sqlite_failed(texts, exc)
                return existed
            await self._repaired_by_write(texts)
            # In sqlite-first a key may exist on the SQLite side only (forced switch).
            return max(existed, in_sqlite) if mode is Mode.SQLITE_FIRST else existed

    async def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key text starts with ``prefix`` on the side(s) the mode writes.

        Returns how many existed (on the side the mode reads, as :meth:`delete_many`).
        SQLite's part is one transaction, recorded in its history as a delete
        per key; the EDN file loses them at its next flush.
        """
        async with self._lock:
            mode = self._mode
            if mode is Mode.SQLITE_ONLY:
                return await self.sqlite.clear(prefix)
            gone = await self.edn.keys(prefix) if mode.writes_sqlite else []
            existed = await self.edn.clear(prefix)
            if mode is Mode.EDN_ONLY:
                return existed
            try:
                in_sqlite = await self.sqlite.clear(prefix)
            except SQLITE_FAILURES as exc:
                # Which keys SQLite still holds is unknown here: repair them all.
                # The cleared keys are named too, so that no crash can let
                # SQLite's stale values count as newer than EDN's deletion.
                await self._sqlite_failed(gone, exc, full=True)
                return existed
            if prefix:
                levelled = [k for k in self._backlog.keys if k.startswith(prefix)]
                await self._repaired_by_write(levelled)
            else:
                await self._backlog.reset()
            # In sqlite-first a key may exist on the SQLite side only (forced switch).
            return max(existed, in_sqlite) if mode is Mode.SQLITE_FIRST else existed


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
