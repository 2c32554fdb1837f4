"""Opening the stores of a database: shared by the component and the operator CLI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.components.database._lock import DatabaseLock
from garrison.stores._edn_file import EdnFileStore
from garrison.stores._mode import decide_mode
from garrison.stores._router import ModeRouter
from garrison.stores._sqlite import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path

    from garrison.components.database._config import DatabaseConfig

__all__ = ["StoreStack", "open_stack"]


@dataclass(slots=True)
class StoreStack:
    """The open SQLite store, EDN file store and mode router of one database, and its lock."""

    sqlite: SqliteStore
    edn: EdnFileStore
    router: ModeRouter
    lock: DatabaseLock

    async def aclose(self) -> None:
        """Stop the router, flush and close the EDN file, close SQLite, release the lock.

        Each step runs even if an earlier one failed; the first failure is raised.
        """
        errors: list[Exception] = []
        for close in (self.router.aclose, self.edn.aclose, self.sqlite.aclose, self.lock.release):
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 - every closer must run; the first error is raised
                errors.append(exc)
        if errors:
            raise errors[0]


async def open_stack(settings: DatabaseConfig, data_dir: Path) -> StoreStack:
    """Take the owner lock, open SQLite, the EDN file and the router (undone on failure)."""
    sqlite_path, edn_path = settings.resolve_paths(data_dir)
    legacy = await asyncio.to_thread(_prepare_directories, sqlite_path, edn_path)
    initial = decide_mode(None, configured=settings.mode, edn_file_exists=legacy)
    sqlite = SqliteStore(
        sqlite_path,
        synchronous=settings.synchronous,
        busy_timeout=settings.busy_timeout,
        indexes=settings.indexes,
    )
    edn = EdnFileStore(
        edn_path,
        quiet_period=settings.flush_quiet_period,
        max_delay=settings.flush_max_delay,
        max_digits=settings.edn_max_digits,
    )
    router = ModeRouter(edn, sqlite, default_mode=initial)
    stack = StoreStack(sqlite, edn, router, DatabaseLock(sqlite_path))
    opened = False
    try:
        await stack.lock.acquire()
        await stack.sqlite.open()
        await stack.edn.open()
        await stack.router.open()
        opened = True
    finally:
        if not opened:
            await stack.aclose()
    return stack


def _prepare_directories(sqlite_path: Path, edn_path: Path) -> bool:
    """Create the stores' directories; True when the EDN file exists (a legacy install)."""
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    edn_path.parent.mkdir(parents=True, exist_ok=True)
    return edn_path.exists()
