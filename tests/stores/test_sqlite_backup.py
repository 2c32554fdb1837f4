"""SqliteStore backup while in use, and restore only from a backup that checks out."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword
from garrison.exceptions import SchemaVersionError, StoreLoadError
from garrison.stores import SqliteStore
from garrison.stores._schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


async def test_backup_while_writing_then_restore(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "live.db") as store:
        await store.put_many((f"a/{i}", {"i": i, "k": Keyword("x")}) for i in range(500))
        writer_done = asyncio.Event()

        async def keep_writing() -> None:
            for i in range(200):
                await store.put(f"w/{i}", i)
            writer_done.set()

        writer = asyncio.create_task(keep_writing())
        (tmp_path / "backups").mkdir()
        backup_path = await store.backup(tmp_path / "backups" / "b1.db")
        await writer
        assert writer_done.is_set()
        assert backup_path == (tmp_path / "backups" / "b1.db").resolve()
        assert list((tmp_path / "backups").iterdir()) == [backup_path]  # no temp file left
        copied = sqlite3.connect(backup_path)
        try:
            assert copied.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert copied.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            in_backup = copied.execute("SELECT count(*) FROM entries WHERE key LIKE 'w/%'")
            written_then = in_backup.fetchone()[0]
        finally:
            copied.close()
        assert 0 <= written_then <= 200

        await store.put("a/0", "changed after the backup")
        await store.delete("a/1")
        await store.restore(backup_path)
        assert await store.get("a/0") == {"i": 0, "k": Keyword("x")}
        assert await store.get("a/1") == {"i": 1, "k": Keyword("x")}
        assert await store.count("w/") == written_then
        await store.put("a/after", 1)  # the store keeps working after a restore
        assert await store.get("a/after") == 1


async def test_a_corrupt_backup_is_refused_and_the_live_data_kept(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "live.db") as store:
        await store.put_many((f"a/{i}", "x" * 200) for i in range(300))
        backup_path = await store.backup(tmp_path / "b.db")
        data = bytearray(backup_path.read_bytes())
        page = 4096
        for offset in range(2 * page, len(data) - page, page):  # scribble over every page but one
            data[offset + 8 : offset + 64] = b"\xff" * 56
        backup_path.write_bytes(bytes(data))
        await store.put("a/0", "current")
        with pytest.raises(StoreLoadError, match=r"b\.db"):
            await store.restore(backup_path)
        assert await store.get("a/0") == "current"
        assert await store.count("a/") == 300


async def test_restore_refuses_missing_foreign_and_newer_files(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "live.db") as store:
        await store.put("a/1", 1)
        with pytest.raises(StoreLoadError, match="no backup file"):
            await store.restore(tmp_path / "nothing.db")
        foreign = tmp_path / "foreign.db"
        conn = sqlite3.connect(foreign)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
        with pytest.raises(StoreLoadError, match="not a garrison store backup"):
            await store.restore(foreign)
        newer = await store.backup(tmp_path / "newer.db")
        conn = sqlite3.connect(newer)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
        with pytest.raises(SchemaVersionError):
            await store.restore(newer)
        assert await store.get("a/1") == 1


async def test_backup_and_restore_make_spans(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    async with SqliteStore(tmp_path / "live.db") as store:
        path = await store.backup(tmp_path / "b.db")
        await store.restore(path)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["backup main", "restore main"]
