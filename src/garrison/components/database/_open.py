"""Opening the stores of a database: the ``database`` component's start.

The component opens with ``fallback=True`` (the operator commands that
write run it without): when SQLite cannot be opened
(a corrupt file, a lock held by another process, a directory that cannot be
made) and the mode mirrored beside the EDN file (see
:mod:`garrison.stores._mode_file`) is ``edn-only`` or ``dual-write``, the
stack opens on the EDN file alone (:attr:`StoreStack.unavailable` says why)
and :meth:`StoreStack.attach_sqlite` brings the database in later. With no
mirror, only a database that does not exist at all falls back (in the mode
it would start in). Every other failure fails the open.

With ``backend = "postgresql"`` the database side is a :class:`PostgresStore`
(no fallback: a server that cannot be reached fails the open). Many instances
may share it; the owner lock then guards the EDN file instead, taken only
when the recorded mode writes that file (every mode but ``sqlite-only``), so
two instances can never both write it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from garrison.components.database._lock import DatabaseLock
from garrison.exceptions import SchemaError, StoreError
from garrison.stores import (
    MODE_META,
    SQLITE_FAILURES,
    DatabaseStore,
    EdnFileStore,
    Mode,
    ModeRouter,
    PostgresStore,
    SqliteStore,
    decide_mode,
    read_mode_file,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from garrison.components.database._config import DatabaseConfig

__all__ = ["StoreStack", "open_stack"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StoreStack:
    """The open database store, EDN file store and mode router of one database, and its lock."""

    sqlite: DatabaseStore
    edn: EdnFileStore
    router: ModeRouter
    lock: DatabaseLock
    #: Why SQLite could not be opened, while the stack runs on the EDN file alone.
    unavailable: str | None = None
    #: Locks held besides ``lock`` (the EDN-side lock of a fallback).
    extra_locks: list[DatabaseLock] = field(default_factory=list)

    async def attach_sqlite(
        self, settings: DatabaseConfig, task_group: TaskGroup | None = None
    ) -> None:
        """Open SQLite again and put it under a new router, after a fallback start.

        Their loops run in ``task_group`` (see :func:`open_stack`).

        Raises (and leaves the stack on the EDN file) when SQLite still cannot
        be opened, or records a mode other than the one the stack ran in.
        """
        mode = self.router.mode
        if not self.lock.held:
            await self.lock.acquire()
        sqlite = _sqlite_store(settings, Path(self.sqlite.path))
        router = ModeRouter(self.edn, sqlite, default_mode=mode)
        try:
            await sqlite.open(task_group=task_group)
            await router.open(task_group=task_group)
            if router.mode is not mode:
                raise StoreError(
                    f"{sqlite.path} records the mode {router.mode}, but the store ran in {mode} "
                    "on the EDN file while the database was unavailable; stop it and reconcile "
                    "(garrison validate, then garrison mode set)"
                )
        except BaseException:
            await router.aclose()
            await sqlite.aclose()
            raise
        await self.router.aclose()
        self.sqlite, self.router, self.unavailable = sqlite, router, None

    async def aclose(self) -> None:
        """Stop the router, flush and close the EDN file, close SQLite, release the lock(s).

        Each step runs even if an earlier one failed; the first failure is raised.
        """
        errors: list[Exception] = []
        closers = [self.router.aclose, self.edn.aclose, self.sqlite.aclose, self.lock.release]
        closers.extend(lock.release for lock in self.extra_locks)
        for close in closers:
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 - every closer must run; the first error is raised
                errors.append(exc)
        if errors:
            raise errors[0]


async def open_stack(
    settings: DatabaseConfig,
    data_dir: Path,
    *,
    fallback: bool = False,
    task_group: TaskGroup | None = None,
) -> StoreStack:
    """Take the owner lock, open SQLite, the EDN file and the router (undone on failure).

    ``fallback``: run on the EDN file when SQLite cannot be opened (see the
    module docstring). The stores' loops (EDN writer, repairs, checkpoints)
    run in ``task_group``, the owner's (see :mod:`garrison.stores._loops`).
    """
    if settings.backend == "postgresql":
        return await _open_on_postgres(settings, data_dir, task_group)
    sqlite_path, edn_path = settings.resolve_paths(data_dir)
    try:
        legacy = await asyncio.to_thread(_prepare_directories, sqlite_path, edn_path)
    except OSError as exc:
        if not fallback:
            raise
        return await _open_on_edn(settings, sqlite_path, edn_path, exc, task_group)
    initial = decide_mode(None, configured=settings.mode, edn_file_exists=legacy)
    sqlite = _sqlite_store(settings, sqlite_path)
    edn = _edn_store(settings, edn_path)
    router = ModeRouter(edn, sqlite, default_mode=initial)
    stack = StoreStack(sqlite, edn, router, DatabaseLock(sqlite_path))
    opened = False
    unopenable: Exception | None = None
    try:
        try:
            # An OSError only: a StoreError here is another runtime owning the database.
            await stack.lock.acquire()
            await stack.sqlite.open(task_group=task_group)
        except OSError as exc:
            if not fallback:
                raise
            unopenable = exc
        except SchemaError:
            raise  # the database opens; its data breaks the configured schema
        except SQLITE_FAILURES as exc:
            if not fallback or not stack.lock.held:
                raise
            unopenable = exc
        else:
            await stack.edn.open(task_group=task_group)
            await stack.router.open(task_group=task_group)
            opened = True
    finally:
        if not opened:
            await stack.aclose()
    if unopenable is not None:
        return await _open_on_edn(settings, sqlite_path, edn_path, unopenable, task_group)
    return stack


async def _open_on_edn(
    settings: DatabaseConfig,
    sqlite_path: Path,
    edn_path: Path,
    cause: Exception,
    task_group: TaskGroup | None,
) -> StoreStack:
    """The stack on the EDN file alone, if the mirrored mode allows; else raise ``cause``."""
    mirrored, db_exists, legacy = await asyncio.to_thread(
        lambda: (read_mode_file(edn_path), sqlite_path.exists(), edn_path.exists())
    )
    if mirrored is None and not db_exists:
        mirrored = decide_mode(None, configured=settings.mode, edn_file_exists=legacy)
    described = f"{type(cause).__name__}: {cause}"
    if mirrored not in (Mode.EDN_ONLY, Mode.DUAL_WRITE):
        why = (
            f"its mode is {mirrored}" if mirrored is not None else "its mode is unknown (no mirror)"
        )
        raise StoreError(
            f"cannot open the database {sqlite_path} ({described}), and the store cannot run "
            f"on the EDN file alone: {why}"
        ) from cause
    sqlite_lock = DatabaseLock(sqlite_path)
    extra: list[DatabaseLock] = []
    edn = _edn_store(settings, edn_path)
    sqlite = _sqlite_store(settings, sqlite_path)
    router = ModeRouter(edn, sqlite, default_mode=mirrored)
    stack = StoreStack(sqlite, edn, router, sqlite_lock, described, extra)
    opened = False
    try:
        try:
            await sqlite_lock.acquire()
        except OSError:
            # No lock file can be made beside the database: one beside the EDN
            # file keeps a second runtime off it (the lock beside the database
            # is still taken before SQLite is attached).
            edn_lock = DatabaseLock(edn_path)
            await edn_lock.acquire()
            extra.append(edn_lock)
        await edn.open(task_group=task_group)
        await router.open_without_sqlite(mirrored, task_group=task_group)
        opened = True
    finally:
        if not opened:
            await stack.aclose()
    log.warning(
        "the database %s cannot be opened (%s): running on the EDN file %s in %s mode",
        sqlite_path,
        described,
        edn_path,
        mirrored,
    )
    return stack


async def _open_on_postgres(
    settings: DatabaseConfig, data_dir: Path, task_group: TaskGroup | None
) -> StoreStack:
    """The stack on a PostgreSQL database; the EDN file's lock only if the mode writes it."""
    _, edn_path = settings.resolve_paths(data_dir)
    legacy = await asyncio.to_thread(_prepare_directories, edn_path, edn_path)
    initial = decide_mode(None, configured=settings.mode, edn_file_exists=legacy)
    database = PostgresStore(settings.dsn, indexes=settings.indexes, schema=settings.entity_schema)
    edn = _edn_store(settings, edn_path)
    router = ModeRouter(edn, database, default_mode=initial)
    stack = StoreStack(database, edn, router, DatabaseLock(edn_path))
    opened = False
    try:
        await database.open(task_group=task_group)
        recorded = await database.get_meta(MODE_META)
        mode = initial if recorded is None else Mode(recorded)
        if mode is not Mode.SQLITE_ONLY:
            try:
                await stack.lock.acquire()
            except StoreError as exc:
                raise StoreError(
                    f"{edn_path}: another garrison instance writes this EDN file ({exc}); "
                    f"in {mode} mode one instance writes it: stop that one, or move the data "
                    "to sqlite-only mode, where any number of instances share the database"
                ) from exc
        await edn.open(task_group=task_group)
        await router.open(task_group=task_group)
        opened = True
    finally:
        if not opened:
            await stack.aclose()
    return stack


def _sqlite_store(settings: DatabaseConfig, path: Path) -> SqliteStore:
    return SqliteStore(
        path,
        synchronous=settings.synchronous,
        busy_timeout=settings.busy_timeout,
        indexes=settings.indexes,
        kinds=settings.kind_mapping,
        schema=settings.entity_schema,
    )


def _edn_store(settings: DatabaseConfig, path: Path) -> EdnFileStore:
    return EdnFileStore(
        path,
        quiet_period=settings.flush_quiet_period,
        max_delay=settings.flush_max_delay,
        max_digits=settings.edn_max_digits,
    )


def _prepare_directories(sqlite_path: Path, edn_path: Path) -> bool:
    """Create the stores' directories; True when the EDN file exists (a legacy install)."""
    edn_path.parent.mkdir(parents=True, exist_ok=True)
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return edn_path.exists()
