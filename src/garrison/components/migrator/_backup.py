"""The safety backup ``garrison migrate`` takes of both sides before its first write.

The database is copied with SQLite's online backup API (see
:mod:`garrison.stores._sqlite_backup`) and the EDN file byte for byte, both
next to their originals, named ``<name>.before-migrate-<UTC time>``. The
migration holds the database's owner lock from before the backup to after
its last write, so no garrison process writes either side in between: the
two copies are one moment's state, the one to roll back to. The EDN copy is
checked against the SHA-256 of the bytes the migration parsed, so the backup
is of exactly the file that was migrated.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from garrison.exceptions import StoreError
from garrison.stores import backup_closed_file, fsync_directory

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MigrationBackup", "backup_before_migration"]

SUFFIX = ".before-migrate-"


@dataclass(frozen=True, slots=True)
class MigrationBackup:
    """The files a migration's safety backup wrote.

    ``database`` is ``None`` when the database was new, or is on PostgreSQL
    (``postgresql``: back it up with ``pg_dump``, docs/postgresql.md).
    """

    database: Path | None
    edn: Path
    postgresql: bool = False

    def as_dict(self) -> dict[str, Any]:
        """``{"database": path or None, "edn": path}`` for ``--json``."""
        return {
            "database": None if self.database is None else str(self.database),
            "edn": str(self.edn),
        }

    def render(self) -> str:
        """The lines ``garrison migrate`` prints before its summary."""
        if self.database is not None:
            database = f"backup of the database: {self.database}"
        elif self.postgresql:
            database = "backup of the database: none (PostgreSQL: back it up with pg_dump)"
        else:
            database = "backup of the database: none (the database was new)"
        return f"{database}\nbackup of the EDN file: {self.edn}"


async def backup_before_migration(
    database: Path | None, edn: Path, *, sha256: str, at: datetime | None = None
) -> MigrationBackup:
    """Copy the database file (if there is one) and the EDN file ``edn``; return the paths.

    ``database`` is ``None`` for a PostgreSQL database: only the EDN file is
    copied (``pg_dump`` backs up PostgreSQL).

    Call it before the database is opened for the migration (opening may
    upgrade its schema). ``sha256`` is the digest of the EDN bytes the
    migration read; a file that changed since raises :class:`StoreError`
    (and nothing is migrated). Neither copy ever replaces an existing file.
    """
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return await asyncio.to_thread(_backup, database, edn, sha256, stamp)


def _backup(database: Path | None, edn: Path, sha256: str, stamp: str) -> MigrationBackup:
    existing = database if database is not None and database.is_file() else None
    edn_copy, db_copy = _free_names(edn, existing, stamp)
    _copy_edn(edn, edn_copy, sha256)
    if existing is None or db_copy is None:
        return MigrationBackup(None, edn_copy, postgresql=database is None)
    try:
        return MigrationBackup(backup_closed_file(existing, db_copy), edn_copy)
    except sqlite3.Error as exc:
        edn_copy.unlink(missing_ok=True)  # one backup is both files or none
        raise StoreError(
            f"cannot back up {existing} before migrating: {exc}; nothing was migrated"
        ) from exc
    except BaseException:
        edn_copy.unlink(missing_ok=True)
        raise


def _free_names(edn: Path, db: Path | None, stamp: str) -> tuple[Path, Path | None]:
    """Backup names for this moment that no file has yet (``-2``, ``-3``… on a clash)."""
    for attempt in range(1, 1000):
        tail = SUFFIX + stamp + ("" if attempt == 1 else f"-{attempt}")
        edn_copy = edn.with_name(edn.name + tail)
        db_copy = None if db is None else db.with_name(db.name + tail)
        if not edn_copy.exists() and (db_copy is None or not db_copy.exists()):
            return edn_copy, db_copy
    raise StoreError(f"no free backup name next to {edn} for {stamp}")


def _copy_edn(source: Path, target: Path, sha256: str) -> None:
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise StoreError(
            f"{source} changed after it was read; nothing was migrated (run migrate again)"
        )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        target.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_directory(target.parent)
