"""One owner per database: an advisory lock file next to the SQLite database.

The running ``database`` component holds an exclusive ``flock`` on
``<sqlite_path>.lock`` (which names its process id) from start to stop. Two
reasons: the EDN file store assumes one process owns its file (a second writer
would overwrite the first's changes at its next flush), and the component's
read cache and mode router hold state that writes from another process would
silently make stale. So a second runtime on the same data refuses to start,
and the operator commands that write (``garrison put``, ``mode set``,
``restore``) refuse to run while a runtime owns the database. Reads need no
lock: SQLite's WAL gives other processes consistent snapshots.

The lock is advisory (``fcntl.flock``) and released by the kernel when the
process dies, so a crash never leaves a stale lock behind. A clean release
removes the file too (while still holding the lock); a process that locked
the file just before it was removed sees that the path no longer names its
file, and takes the lock again on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from typing import IO, TYPE_CHECKING

from garrison.exceptions import StoreError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DatabaseLock"]


class DatabaseLock:
    """The exclusive owner lock of the database at ``database_path``."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._file is not None

    async def acquire(self) -> None:
        """Take the lock or raise :class:`StoreError` naming the process that holds it."""
        if self._file is None:
            self._file = await asyncio.to_thread(self._acquire)

    def _acquire(self) -> IO[str]:
        while True:
            handle = self._try_acquire()
            try:
                if os.path.samestat(os.fstat(handle.fileno()), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            handle.close()  # the holder removed the file as we locked it: lock the new one
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _try_acquire(self) -> IO[str]:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"{self.path.with_suffix('')}: the database is in use by a running garrison "
                f"(process {holder}); stop it first"
            ) from None
        except OSError:
            handle.close()
            raise
        return handle

    async def release(self) -> None:
        """Release the lock and remove its file (idempotent)."""
        handle, self._file = self._file, None
        if handle is not None:
            await asyncio.to_thread(_release, handle, self.path)


def _release(handle: IO[str], path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # still holding the lock: nobody else holds this file
    handle.close()  # closing the descriptor drops the flock
