"""SqliteStore schema versions: ordered upgrades at open, newer and foreign files refused."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import sqlite3
import threading
from typing import TYPE_CHECKING, Final

import aiosqlite
import pytest

from garrison.exceptions import SchemaVersionError, StoreLoadError
from garrison.stores import SqliteStore
from garrison.stores._protocol import MISSING
from garrison.stores._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, ensure_schema
from garrison.stores._values import VALUE_FORMAT_VERSION, decode_value, encode_value
from tests.stores import _format1 as format1
from tests.stores.value_strategies import same

if TYPE_CHECKING:
    from pathlib import Path

FORMAT_1_DB: Final = pathlib.Path(__file__).parent / "data" / "format1.db"


def _raw(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


async def test_a_new_file_gets_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    async with SqliteStore(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        assert {"entries", "history", "meta"} <= tables
    finally:
        conn.close()


async def test_a_database_from_a_newer_garrison_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    async with SqliteStore(path) as store:
        await store.put("a/1", 1)
    _raw(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = _bytes(path)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}") as info:
        await SqliteStore(path).open()
    assert str(path) in str(info.value)
    assert _bytes(path) == before


async def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _raw(path, "CREATE TABLE things (x)")
    before = _bytes(path)
    with pytest.raises(StoreLoadError, match="not a garrison store"):
        await SqliteStore(path).open()
    assert _bytes(path) == before


async def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database, just some bytes" * 200)
    before = _bytes(path)
    with pytest.raises(StoreLoadError, match=r"junk\.db"):
        await SqliteStore(path).open()
    assert _bytes(path) == before


async def test_upgrades_run_in_order_each_with_its_version(tmp_path: Path) -> None:
    path = tmp_path / "up.db"
    v2 = ("CREATE TABLE step2 (x)", "INSERT INTO step2 VALUES ((SELECT count(*) FROM meta))")
    v3 = ("CREATE TABLE step3 AS SELECT * FROM step2",)
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await ensure_schema(conn, str(path), MIGRATIONS) == 0
        assert await ensure_schema(conn, str(path), (*MIGRATIONS, v2, v3)) == len(MIGRATIONS)
        rows = list(await conn.execute_fetchall("SELECT x FROM step3"))
        assert rows == [(0,)]
        version = list(await conn.execute_fetchall("PRAGMA user_version"))
        assert version == [(len(MIGRATIONS) + 2,)]
        assert await ensure_schema(conn, str(path), (*MIGRATIONS, v2, v3)) == len(MIGRATIONS) + 2


async def test_a_failing_upgrade_leaves_the_last_complete_version(tmp_path: Path) -> None:
    path = tmp_path / "fail.db"
    bad = ("CREATE TABLE half (x)", "THIS IS NOT SQL")
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await ensure_schema(conn, str(path))
        with pytest.raises(sqlite3.OperationalError):
            await ensure_schema(conn, str(path), (*MIGRATIONS, bad))
        assert list(await conn.execute_fetchall("PRAGMA user_version")) == [(len(MIGRATIONS),)]
        tables = list(await conn.execute_fetchall("SELECT name FROM sqlite_schema"))
        assert ("half",) not in tables


async def test_aclose_completes_even_when_the_caller_is_cancelled(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    conn = store.connection
    closing = asyncio.create_task(store.aclose())
    await asyncio.sleep(0)  # let aclose start, then cancel it mid-way
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    # The worker thread must still stop (a live one would keep the process alive).
    await asyncio.to_thread(conn._thread.join, 10)
    assert not conn._thread.is_alive()


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


async def test_a_failed_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = _worker_threads()
    with pytest.raises(StoreLoadError, match="cannot open"):
        await SqliteStore(tmp_path / "missing-dir" / "x.db").open()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 500)
    with pytest.raises(StoreLoadError):
        await SqliteStore(junk).open()
    for thread in _worker_threads() - before:
        await asyncio.to_thread(thread.join, 10)
    assert not {t for t in _worker_threads() - before if t.is_alive()}


async def test_a_format_1_database_is_upgraded_with_the_same_values(tmp_path: Path) -> None:
    # data/format1.db was written by value format 1 (tests/stores/_format1.py):
    # keyword-keyed maps as #map pairs, ":"-led string keys as plain object keys.
    path = tmp_path / "format1.db"
    shutil.copyfile(FORMAT_1_DB, path)
    for _ in range(2):  # the upgrade once, then an ordinary open
        async with SqliteStore(path) as store:
            assert await store.get_meta("garrison.value_format") == VALUE_FORMAT_VERSION
            for key, (first, current) in format1.VALUES.items():
                changes = await store.history(key)
                assert same(changes[0].value, first)
                if current is None:
                    assert await store.get(key, MISSING) is MISSING
                    assert changes[-1].op == "delete"
                else:
                    assert same(await store.get(key), current)
                    assert same(changes[-1].value, current)
            for name, value in format1.META.items():
                assert same(await store.get_meta(name), value)
            # Every stored text is in this version's spelling (a set's members may
            # come in another order), and JSON functions reach keyword-keyed attributes.
            rows = await store.connection.execute_fetchall("SELECT key, value FROM entries")
            for key, text in rows:
                assert same(decode_value(text), format1.VALUES[key][1])
                if "#set" not in text:
                    assert text == encode_value(format1.VALUES[key][1])
                if key in ("session/s1", "learning/l1"):
                    assert text.startswith('{":')
            rows = await store.connection.execute_fetchall(
                "SELECT key FROM entries "
                """WHERE json_extract(value, '$.":session/user-id"') = 'u1'"""
            )
            assert list(rows) == [("session/s1",)]
            found = await store.find("$.:session/user-id", eq="u1")
            assert found == [("session/s1", format1.VALUES["session/s1"][1])]
