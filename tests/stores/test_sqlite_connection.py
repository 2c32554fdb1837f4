"""The aiosqlite internals garrison relies on, all reached from stores/_sqlite_connection.py.

If one of these fails, an aiosqlite release changed what that module reaches
into: update the module and the version range of aiosqlite in pyproject.toml.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

import aiosqlite
import pytest

from garrison.stores._sqlite_connection import raw_connection, run_in_thread

if TYPE_CHECKING:
    from pathlib import Path


async def test_run_in_thread_runs_on_the_connection_thread_in_queue_order(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "t.db") as conn:
        # aiosqlite's private attributes, by name: the loud failure this file is for.
        assert callable(getattr(conn, "_execute", None)), "aiosqlite.Connection._execute is gone"
        assert hasattr(conn, "_connection"), "aiosqlite.Connection._connection is gone"
        assert isinstance(getattr(conn, "_thread", None), threading.Thread)
        await conn.execute("CREATE TABLE t (x)")
        thread = await run_in_thread(conn, threading.get_ident)
        assert thread != threading.get_ident()

        def insert(db: sqlite3.Connection, value: int) -> int:
            assert threading.get_ident() == thread
            return db.execute("INSERT INTO t VALUES (?)", (value,)).rowcount

        db = raw_connection(conn)
        assert isinstance(db, sqlite3.Connection)
        assert await run_in_thread(conn, insert, db, 7) == 1
        assert list(await conn.execute_fetchall("SELECT x FROM t")) == [(7,)]
    with pytest.raises(ValueError, match="no active connection"):
        raw_connection(conn)
    with pytest.raises(ValueError, match="closed"):
        await run_in_thread(conn, threading.get_ident)
