"""Opening and closing the SQLite store's one connection, reliably.

:func:`connect` makes the aiosqlite connection (its own thread), identifies the
file before anything writes to it, sets the pragmas and brings the schema up
to date; when any step fails it releases the connection *and its thread*
before raising. :func:`close` finishes even when its caller is cancelled.
Both matter because aiosqlite's worker thread is not a daemon: a connection
left open keeps the process alive, and a thread that outlives its event loop
dies with "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import aiosqlite
import anyio

from garrison._log import get_logger
from garrison.exceptions import StoreError, StoreLoadError
from garrison.stores._attributes import SQL_FUNCTIONS
from garrison.stores._loops import BackgroundLoop
from garrison.stores._schema import check_database, ensure_schema
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup

__all__ = [
    "CHECKPOINT_FAILURES",
    "Checkpointer",
    "close",
    "connect",
    "raw_connection",
    "run_in_thread",
]

T = TypeVar("T")

# Close tasks in flight (see close()): strong references while they may outlive
# a cancelled caller.
_closing: set[asyncio.Future[None]] = set()
_ANALYSIS_LIMIT: Final = 400
#: What a failing checkpoint raises: SQLite's errors, the disk's, and
#: aiosqlite's ValueError for a connection that died. Anything else is a bug.
CHECKPOINT_FAILURES: Final = (sqlite3.Error, OSError, ValueError)
log = get_logger("garrison.stores")


async def _configure(
    conn: aiosqlite.Connection, path: str, *, synchronous: str, busy_timeout: float
) -> None:
    timeout_ms = max(0, int(busy_timeout * 1000))
    await conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
    rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
    if path != ":memory:" and str(rows[0][0]).lower() != "wal":
        raise StoreLoadError(f"{path}: could not switch the database to WAL mode")
    await conn.execute(f"PRAGMA synchronous = {synchronous}")
    await conn.execute("PRAGMA foreign_keys = ON")
    for name, function in SQL_FUNCTIONS:
        await conn.create_function(name, 1, function, deterministic=True)


async def connect(path: str, *, synchronous: str, busy_timeout: float) -> aiosqlite.Connection:
    """An open, configured connection to the garrison store at ``path``, schema current.

    ``synchronous`` must already be one of SQLite's level names (it is put
    into the pragma as is). Raises :class:`SchemaVersionError` or
    :class:`StoreLoadError` with the file left untouched when it is not a
    garrison store this version can use.
    """
    # isolation_level=None: no implicit transactions; the store issues its own.
    # timeout: the busy timeout holds from the first statement (check_database) on.
    conn = aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
    connected = False
    try:
        await conn
        connected = True
        # Identify the file before anything (such as the switch to WAL) writes to it.
        await check_database(conn, path)
        await _configure(conn, path, synchronous=synchronous, busy_timeout=busy_timeout)
        await ensure_schema(conn, path)
    except aiosqlite.DatabaseError as exc:
        await _abandon(conn, connected=connected)
        raise StoreLoadError(f"{path}: cannot open the database: {exc}") from exc
    except BaseException:
        await _abandon(conn, connected=connected)
        raise
    return conn


def raw_connection(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection inside ``conn``; raises ``ValueError`` once it is closed.

    Use it only in functions run by :func:`run_in_thread` (``interrupt()``
    excepted, which SQLite allows from any thread).
    """
    # aiosqlite's own methods read this same property on the event loop and
    # hand the bound method to the thread; it is how a closed connection is noticed.
    return conn._conn


def run_in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run ``fn(*args)`` on ``conn``'s own thread, in its queue order: one thread hop.

    aiosqlite runs every statement as one such call; this runs several
    statements (a whole write transaction) as one, so their hop (a queue put,
    a thread wake-up and a wake-up of the event loop, tens of microseconds) is
    paid once. ``_execute`` is aiosqlite's only way in (0.20 to 0.22 have it;
    tests/stores/test_sqlite_connection.py fails loudly if it goes away). Raises
    ``ValueError`` when the connection is closed, as aiosqlite's methods do.
    """
    execute = cast("Callable[..., Awaitable[T]]", conn._execute)
    return execute(fn, *args)


async def _abandon(conn: aiosqlite.Connection, *, connected: bool) -> None:
    """Release the connection of a failed open, thread included."""
    if connected:
        await close(conn)
        return
    # aiosqlite has already told its thread to stop when the connect failed, but
    # does not wait; wait here, so the thread never outlives the loop it reports to.
    thread = getattr(conn, "_thread", None)
    if thread is not None and thread.is_alive():
        await asyncio.to_thread(thread.join, 10)


async def close(conn: aiosqlite.Connection, *, optimize: bool = False) -> None:
    """Close ``conn`` and stop its thread; completes even if the caller is cancelled.

    ``optimize`` first runs ``PRAGMA optimize`` (SQLite's advice for
    long-lived connections: refresh the planner's statistics at close),
    bounded so that a big database still closes quickly.
    """

    async def shutdown() -> None:
        try:
            if optimize:
                await conn.execute(f"PRAGMA analysis_limit = {_ANALYSIS_LIMIT}")
                await conn.execute("PRAGMA optimize")
        except (sqlite3.Error, ValueError):
            # Only an optimisation; closing is what matters. (ValueError: aiosqlite's
            # connection was already closed underneath.)
            pass
        finally:
            await conn.close()

    task = asyncio.ensure_future(shutdown())
    _closing.add(task)
    task.add_done_callback(_closing.discard)
    await asyncio.shield(task)


#: What a checkpoint runs: copy what the log holds, without waiting on readers or writers.
_CHECKPOINT: Final = "PRAGMA wal_checkpoint(PASSIVE)"


class Checkpointer:
    """Moves the WAL into the database file from a second connection, off the writer's path.

    In WAL mode SQLite copies the log back into the database file (a
    *checkpoint*) inside the ``COMMIT`` that takes the log past
    ``wal_autocheckpoint`` pages, so every thousandth page or so one writer's
    commit also copies and fsyncs megabytes: about as much time per row as
    the write itself (see docs/performance.md). Here the writer's own
    automatic checkpoint is only a safety net (:data:`SAFETY_NET_PAGES`),
    and this object runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own
    connection, with its own thread, after every ``every`` committed write
    transactions: the copy and the fsyncs happen while the writer goes on
    (SQLite lets a passive checkpoint run beside one writer), and a
    checkpoint that copies a bigger log at once copies each page it holds
    once, however often it changed. Durability is unchanged: a commit is in
    the log exactly as before; the checkpoint only moves it.

    The log file is reused from its start once a checkpoint has copied all
    of it; under writes that never pause, that happens when the safety net
    makes the writer copy the little the last background checkpoint left,
    so the file stays under about 40 MiB. A failing checkpoint (SQLite's
    error, the disk, a connection that died) is logged and counted
    (:attr:`failures`), never raised into a write: the safety net still
    bounds the log; a connection that died is opened again at the next
    checkpoint. Any other error ends the checkpoint loop and fails its owner
    (see :mod:`garrison.stores._loops`). ``every`` is how many write
    transactions trigger one; ``checkpoints`` counts those run.

    The checkpoints run in :meth:`run`, a loop its store starts in the
    owner's task group (:meth:`start`); requests made while none runs are
    kept until it does.
    """

    #: The writer's own automatic checkpoint threshold, in pages, once a
    #: Checkpointer runs (SQLite's default is 1000): it only acts if this
    #: object falls far behind.
    SAFETY_NET_PAGES: Final = 10_000

    def __init__(self, path: str, *, busy_timeout: float, every: int = 256) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.every = every
        self.checkpoints = 0
        #: The log's size in pages, and how many of them are in the database
        #: file, as the last checkpoint left them.
        self.log_pages = 0
        self.copied_pages = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._writes = 0
        self._closed = False
        self._conn: aiosqlite.Connection | None = None
        self._requested = asyncio.Event()
        self._busy = False  # a checkpoint is requested or running
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: BackgroundLoop | None = None

    def note_commit(self) -> None:
        """A write transaction committed: start a checkpoint every ``every`` of them.

        Called on the event loop after each commit; never waits, never raises.
        The connection is opened by the first checkpoint, so a store that
        writes little never starts its thread.
        """
        self._writes += 1
        if self._writes >= self.every:
            self.request()

    def request(self) -> None:
        """Start a checkpoint now, unless one is running (then this does nothing).

        Called on the event loop; never waits, never raises. A bulk load calls
        it after its big transactions, whose log would otherwise wait for
        ``every`` of them (or for the writer's safety net, inside a commit).
        """
        if self._closed or self._busy:
            return  # (while one is due or runs) the next commit will ask again
        self._writes = 0
        self._busy = True
        self._idle.clear()
        self._requested.set()

    async def start(self, task_group: TaskGroup | None) -> None:
        """Start :meth:`run` in ``task_group`` (``None``: a task of its own)."""
        self._loop = BackgroundLoop(f"the WAL checkpointer of {self.path}", self.run)
        await self._loop.start(task_group)

    async def run(self) -> None:
        """Run a checkpoint whenever one is requested, until cancelled.

        Each checkpoint runs shielded (it is bounded by the busy timeout):
        its connection's thread cannot be interrupted, and a cancelled one
        would leave that thread to race the close.
        """
        while True:
            await self._requested.wait()
            self._requested.clear()
            try:
                with anyio.CancelScope(shield=True):
                    await self._checkpoint()
            finally:
                self._busy = False
                self._idle.set()

    async def _connect(self) -> aiosqlite.Connection:
        conn = aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn
            timeout_ms = max(0, int(self.busy_timeout * 1000))
            await conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            # It never writes, so it never checkpoints by itself at commit either.
            await conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            await _abandon(conn, connected=conn._connection is not None)
            raise
        return conn

    async def _checkpoint(self) -> None:
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = await self._connect()
            # Fetched to the end: a statement left open would keep a read lock,
            # and with it the writer from starting the log over.
            with store_span(DB_SYSTEM_SQLITE, "checkpoint", "wal", query=_CHECKPOINT, root=True):
                rows = list(await conn.execute_fetchall(_CHECKPOINT))
        except CHECKPOINT_FAILURES as exc:  # not raised: the writer's safety net bounds the log
            self.failures += 1
            self.last_error = exc
            log.warning("sqlite.checkpoint_failed", path=self.path, exc_info=exc)
            if isinstance(exc, ValueError):  # aiosqlite: the connection is gone; reopen next time
                self._conn = None
        else:
            self.checkpoints += 1
            if rows:
                _busy, self.log_pages, self.copied_pages = rows[0]

    async def wait_idle(self) -> None:
        """Wait until no checkpoint is running (one started before has finished)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop checkpointing; close the connection and its thread. Idempotent.

        Completes even if the caller is cancelled meanwhile (see :func:`close`):
        a running checkpoint is waited for, so no thread is left behind. A
        loop of its own task that failed raises its error here, after the close.
        """
        self._closed = True
        loop, self._loop = self._loop, None

        async def shutdown() -> None:
            failed: StoreError | None = None
            if loop is not None:
                try:
                    await loop.stop()  # waits for a running (shielded) checkpoint
                except StoreError as exc:
                    failed = exc
            conn, self._conn = self._conn, None
            if conn is not None:
                await close(conn)
            if failed is not None:
                raise failed

        task = asyncio.ensure_future(shutdown())
        _closing.add(task)
        task.add_done_callback(_closing.discard)
        await asyncio.shield(task)
