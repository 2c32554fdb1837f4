"""Online backup and checked restore of a :class:`SqliteStore`.

Backup uses SQLite's online backup API on the store's own connection while the
store stays in use: the copy is made under the store's write lock (so it never
holds half of one of the store's own transactions) and other processes may
keep reading and writing. The copy is written to a temporary file next to the
target, switched to a single-file journal mode, fsynced and renamed into
place, so the backup path only ever holds a complete backup. An existing file
at the target is replaced only when asked (``overwrite=True``): otherwise the
backup refuses before copying, and links the finished copy into place, which
fails rather than replace a file that appeared meanwhile.

Restore first opens the backup read-only and runs ``PRAGMA integrity_check``,
and checks that it is a garrison store of a schema version this garrison can
read. Only then is it copied over the live database, again with the backup
API, which replaces the destination in one transaction: a backup that fails
any check, or a copy that fails midway, leaves the current database exactly as
it was.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiosqlite

from garrison.exceptions import SchemaVersionError, StoreError, StoreLoadError
from garrison.stores._atomic import place_file
from garrison.stores._schema import APPLICATION_ID, SCHEMA_VERSION
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from os import PathLike


__all__ = ["backup_closed_file", "backup_store", "check_backup", "restore_store"]

_DATABASE: Final = "main"
_EXISTS: Final = "{target!r} exists; a backup replaces an existing file only when asked (--force)"
# How many integrity problems to name in an error before summarising.
_PROBLEMS_SHOWN: Final = 3


def _finish_backup(dest: sqlite3.Connection, temp: Path, target: Path, overwrite: bool) -> None:
    """Make the copy one self-contained file, put it on disk, and move it into place."""
    try:
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
    with temp.open("rb+") as handle:
        os.fsync(handle.fileno())
    place_file(temp, target, overwrite=overwrite, exists=_EXISTS)


async def backup_store(
    conn: aiosqlite.Connection,
    write_lock: asyncio.Lock,
    target: str | PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Copy the database of a store's ``conn`` to ``target`` while it stays in use.

    Returns the path. ``write_lock`` is the store's: the copy never holds half
    of one of its transactions. Raises :class:`StoreError` when ``target``
    exists, unless ``overwrite``.
    """
    target_path = await asyncio.to_thread(Path(target).resolve)
    if not overwrite and await asyncio.to_thread(target_path.exists):
        raise StoreError(_EXISTS.format(target=str(target_path)))
    temp = target_path.with_name(f".{target_path.name}.{uuid.uuid4().hex}.tmp")
    with store_span(DB_SYSTEM_SQLITE, "backup", _DATABASE):
        dest = await asyncio.to_thread(sqlite3.connect, temp, check_same_thread=False)
        try:
            async with write_lock:
                await conn.backup(dest)
            await asyncio.to_thread(_finish_backup, dest, temp, target_path, overwrite)
        except BaseException:
            dest.close()
            await asyncio.to_thread(temp.unlink, missing_ok=True)
            raise
    return target_path


def backup_closed_file(source: Path, target: Path) -> Path:
    """Copy the database file ``source``, which no store of this process has open, to ``target``.

    The online backup API on a connection of its own (other processes may use
    the database meanwhile), then the same temporary file, fsync and link into
    place as :func:`backup_store`: an existing ``target`` raises
    :class:`StoreError` and is left as it is. Blocking: run it in a worker thread.
    """
    target = target.resolve()
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    src = sqlite3.connect(source)
    try:
        dest = sqlite3.connect(temp)
        try:
            src.backup(dest)
            _finish_backup(dest, temp, target, overwrite=False)
        except BaseException:
            dest.close()
            temp.unlink(missing_ok=True)
            raise
    finally:
        src.close()
    return target


def check_backup(source: str | PathLike[str]) -> str:
    """Check that ``source`` is a sound garrison backup; return its read-only URI.

    Raises :class:`StoreLoadError` for a missing, unreadable, corrupt or
    foreign file, :class:`SchemaVersionError` for one of a newer schema. Blocking:
    run it off the event loop (:meth:`SqliteStore.restore` does).
    """
    path = Path(source)
    if not path.is_file():
        raise StoreLoadError(f"{path}: no backup file there")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StoreLoadError(f"{path}: cannot open the backup: {exc}") from exc
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreLoadError(f"{path}: the backup is not a readable database: {exc}") from exc
    finally:
        conn.close()
    if problems != ["ok"]:
        shown = "; ".join(problems[:_PROBLEMS_SHOWN])
        more = (
            f" (and {len(problems) - _PROBLEMS_SHOWN} more)"
            if len(problems) > _PROBLEMS_SHOWN
            else ""
        )
        raise StoreLoadError(f"{path}: the backup fails PRAGMA integrity_check: {shown}{more}")
    if app_id != APPLICATION_ID:
        raise StoreLoadError(f"{path}: not a garrison store backup (application_id {app_id:#x})")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: the backup has schema version {version}, written by a newer garrison; "
            f"this version knows up to {SCHEMA_VERSION}"
        )
    return uri


async def restore_store(
    conn: aiosqlite.Connection,
    path: str,
    write_lock: asyncio.Lock,
    source: str | PathLike[str],
    *,
    after: Callable[[], Awaitable[None]],
) -> None:
    """Replace the data of a store's ``conn`` (its file ``path``) with the backup ``source``.

    The backup is checked first. ``write_lock`` is the store's: no transaction
    of the store may straddle the copy. ``after`` runs once the copy is in
    (the store's schema upgrades, indexes and clock).
    """
    with store_span(DB_SYSTEM_SQLITE, "restore", _DATABASE):
        uri = await asyncio.to_thread(check_backup, source)
        async with aiosqlite.connect(uri, uri=True) as backup, write_lock:
            try:
                await backup.backup(conn)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{path}: restoring from {source} failed; "
                    f"the database was left as it was: {exc}"
                ) from exc
        await after()
