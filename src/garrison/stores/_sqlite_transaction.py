"""One write transaction of :class:`SqliteStore`, run start to finish in one thread hop.

aiosqlite runs each statement as one call on the connection's thread; every
call is a hop (a queue put, a thread wake-up, then a wake-up of the event
loop with the result), tens of microseconds on a busy machine. A write used
to pay three (``BEGIN``, the statements, ``COMMIT``); :class:`Transaction`
runs them all in one function on that thread (see
:func:`~garrison.stores._sqlite_connection.run_in_thread`), so a group commit
of 64 puts pays one hop, and a transaction can never interleave with another
statement on the connection.

The statements are built on the thread too: the values of a big ``put_many``
are encoded there, lazily, while SQLite writes, instead of blocking the event
loop for the whole batch first.

Cancellation: the caller's await can end (cancelled) while the function runs
on. :meth:`Transaction.cancel` makes it roll back instead of committing:
SQLite is interrupted if it is mid-statement, and an ``executemany`` stops
at its next row. Only a ``COMMIT`` that has already begun stands (as with any
database whose client gave up waiting for the answer).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from garrison.stores._sqlite_sql import RECORD_COMMIT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["BEGIN", "Statement", "Transaction"]

#: One statement of a write transaction: (sql, parameters, executemany?). For
#: executemany the parameters may be a generator; it is consumed on the thread.
Statement: TypeAlias = tuple[str, Any, bool]
BEGIN: Final = "BEGIN IMMEDIATE"
_COMMIT: Final = "COMMIT"
_CANCELLED: Final = "the caller was cancelled; the transaction was rolled back"


class _Cancelled(Exception):  # noqa: N818 - private; nobody ever catches it by name
    """Raised on the thread to roll back a transaction whose caller is gone."""


class Transaction:
    """``BEGIN IMMEDIATE``, the statements ``build(now)`` yields, ``COMMIT``, as one call.

    ``db`` is the raw ``sqlite3`` connection (used only on its own thread,
    except :meth:`cancel`). ``record`` (actor, reason, event) first inserts
    the transaction's row into ``commits`` at ``now`` (every write of entries
    does; its history rows take their actor and reason from it). :meth:`run`
    returns the row count of the last statement (triggers not included);
    any failure rolls the whole transaction back and is raised unchanged,
    with :attr:`sql` naming the statement that failed (``None`` if
    :meth:`run` never started).
    """

    __slots__ = ("_build", "_cancelled", "_db", "_lock", "_now", "_record", "_running", "sql")

    def __init__(
        self,
        db: sqlite3.Connection,
        build: Callable[[int], Iterable[Statement]],
        now: int,
        *,
        record: tuple[str, str | None, str | None] | None,
    ) -> None:
        self._db = db
        self._build = build
        self._now = now
        self._record = record
        self._lock = threading.Lock()
        self._running = False
        self._cancelled = False
        self.sql: str | None = None

    def run(self) -> int:
        """Run the whole transaction. Call it on the connection's thread only."""
        with self._lock:
            if self._cancelled:
                raise _Cancelled(_CANCELLED)
            self._running = True
        try:
            return self._run()
        finally:
            with self._lock:
                self._running = False

    def _run(self) -> int:
        db = self._db
        now = self._now
        self.sql = BEGIN
        db.execute(BEGIN)
        try:
            if self._record is not None:
                self.sql = RECORD_COMMIT
                db.execute(RECORD_COMMIT, (now, *self._record))
            rowcount = 0
            for sql, params, many in self._build(now):
                self.sql = sql
                if many:
                    cursor = db.executemany(sql, self._until_cancelled(params))
                else:
                    cursor = db.execute(sql, params)
                rowcount = cursor.rowcount
            if self._cancelled:
                raise _Cancelled(_CANCELLED)
            self.sql = _COMMIT
            db.execute(_COMMIT)
        except BaseException:
            # An error here (no transaction left: SQLite already rolled back after
            # an interrupt or a full disk) must not hide the one that got us here.
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return rowcount

    def _until_cancelled(self, rows: Iterable[Any]) -> Iterator[Any]:
        # Between two rows no statement is running, and an interrupt then is lost.
        for row in rows:
            if self._cancelled:
                raise _Cancelled(_CANCELLED)
            yield row

    def cancel(self) -> None:
        """The caller is gone: roll back rather than commit (called on the event loop).

        ``sqlite3_interrupt`` is the one call SQLite allows from another thread;
        it is made only while :meth:`run` is inside this transaction (under the
        lock), so it can never stop a later statement of another caller.
        """
        with self._lock:
            self._cancelled = True
            if self._running:
                self._db.interrupt()
