"""Which store errors mean "this connection or disk is broken" (crash and restart).

A write that fails because the database file became read-only, the disk
failed, or the connection died will fail the same way for every later
operation on this connection: the component crashes so that its supervisor
restarts it with a fresh connection (with backoff, escalating if it keeps
failing). Errors that concern one operation only (a busy lock held by
another process past ``busy_timeout``, an unencodable value, a bad argument)
fail that caller and leave the component running.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = ["is_fatal"]

# SQLite's transient conditions: another process holds the lock.
_TRANSIENT: Final = ("database is locked", "database table is locked", "busy")
# aiosqlite's errors for a connection whose thread is gone.
_DEAD_CONNECTION: Final = ("no active connection", "Connection closed")


def is_fatal(exc: BaseException) -> bool:
    """True when ``exc`` (or the error it wraps) shows the connection or storage is unusable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _fatal_itself(current):
            return True
        current = current.__cause__
    return False


def _fatal_itself(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        return not any(marker in text for marker in _TRANSIENT)
    if isinstance(exc, ValueError):
        return str(exc) in _DEAD_CONNECTION
    return False
