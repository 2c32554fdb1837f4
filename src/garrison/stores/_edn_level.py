"""The EDN level: which side is newer after a crash in the modes that write both.

In ``dual-write`` and ``sqlite-first`` a write is acknowledged once SQLite
committed it; the EDN file receives it at its writer's next flush. So after
a kill SQLite may hold changes the file never got. The *EDN level*, kept in
SQLite's meta table (``garrison.router.edn_level``), is a history ``seq``
through which the EDN file is known to be at least as new as SQLite: every
change SQLite made up to it is in the file, or older than what the file holds.

:func:`record_edn_level` flushes the file and then records SQLite's newest
``seq``; the router calls it at a clean close and when a mode that writes both
sides begins. :func:`level_edn` gives the EDN side SQLite's state (value, or
absence) for every key SQLite changed after a level, except the keys of the
repair backlog (their SQLite write failed: EDN holds the newer value), then
flushes and records the new level. The router runs it at open, before it
serves, and before a switch toward EDN reads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from garrison.exceptions import StoreError
from garrison.stores._compare import same_value

if TYPE_CHECKING:
    from garrison.stores._backlog import RepairBacklog
    from garrison.stores._edn_file import EdnFileStore
    from garrison.stores._postgres import PostgresStore
    from garrison.stores._sqlite import SqliteStore

__all__ = ["EDN_LEVEL_META", "level_edn", "levelled_view", "record_edn_level"]

#: The meta name of the history seq through which the EDN file is at least as new as SQLite.
EDN_LEVEL_META: Final = "garrison.router.edn_level"
_PAGE: Final = 500


async def record_edn_level(edn: EdnFileStore, sqlite: SqliteStore | PostgresStore) -> None:
    """Flush the EDN file, then record that it is level with every change SQLite has."""
    await edn.flush()
    await sqlite.set_meta(EDN_LEVEL_META, await sqlite.last_seq())


async def level_edn(
    edn: EdnFileStore, sqlite: SqliteStore | PostgresStore, backlog: RepairBacklog, *, after: int
) -> list[str]:
    """Give EDN SQLite's state for the keys SQLite changed after seq ``after``.

    Keys in ``backlog`` keep their EDN value. Writes the differing keys to EDN
    (a put, or a delete where SQLite has no entry), flushes the file and
    records the new level. Returns the keys it changed, sorted. The caller
    owns both stores for the duration (the router holds its lock, or has not
    started serving). Raises :class:`StoreError` when either side fails; what
    was levelled so far stays levelled, and the level is not advanced.
    """
    try:
        last = await sqlite.last_seq()
        keys = [k for k in await sqlite.keys_changed_after(after) if k not in backlog]
        changed: list[str] = []
        for start in range(0, len(keys), _PAGE):
            page = keys[start : start + _PAGE]
            theirs = await sqlite.get_many(page)
            ours = await edn.get_many(page)
            differ = await asyncio.to_thread(_differing, page, ours, theirs)
            puts = [(k, theirs[k]) for k in differ if k in theirs]
            gone = [k for k in differ if k not in theirs]
            if puts:
                await edn.put_many(puts)
            if gone:
                await edn.delete_many(gone)
            changed.extend(differ)
        await edn.flush()
        await sqlite.set_meta(EDN_LEVEL_META, last)
    except (StoreError, OSError, ValueError, sqlite3.Error) as exc:  # the router's SQLITE_FAILURES
        raise StoreError(
            f"cannot level the EDN file {str(edn.path)!r} with SQLite {str(sqlite.path)!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return changed


async def levelled_view(
    data: dict[str, Any], sqlite: SqliteStore | PostgresStore, backlog: RepairBacklog
) -> dict[str, Any]:
    """``data`` (the EDN file's map) as :func:`level_edn` would leave it, without writing.

    For readers that must not write, such as the operator's ``get`` and
    ``scan`` while a runtime may own the stores: SQLite's state for every key
    it changed after the recorded level (except backlog keys) replaces the
    file's. Updates and returns ``data``.
    """
    level = await sqlite.get_meta(EDN_LEVEL_META)
    if level is None:
        return data
    keys = [k for k in await sqlite.keys_changed_after(level) if k not in backlog]
    for start in range(0, len(keys), _PAGE):
        page = keys[start : start + _PAGE]
        theirs = await sqlite.get_many(page)
        for key in page:
            if key in theirs:
                data[key] = theirs[key]
            else:
                data.pop(key, None)
    return data


def _differing(keys: list[str], ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The keys whose EDN state (``ours``) is not SQLite's (``theirs``); in a worker thread."""
    return [
        k
        for k in keys
        if (k in ours) != (k in theirs) or (k in ours and not same_value(ours[k], theirs[k]))
    ]
