"""Validation and export against real files and a real SQLite database."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.components.migrator import export, migrate, validate
from garrison.components.migrator._source import read_source
from garrison.edn import Keyword, loads
from garrison.exceptions import StoreError
from garrison.stores import SqliteStore
from garrison.stores._compare import same_value
from garrison.stores._schema import APPLICATION_ID, MIGRATIONS

from .conftest import MEMORY_EDN, write_sessions

if TYPE_CHECKING:
    from pathlib import Path


async def test_validate_reports_missing_keys_on_each_side_and_short_diffs(
    store: SqliteStore, memory_edn: Path
) -> None:
    await migrate(store, memory_edn)
    await store.delete("webhook/w1")
    await store.put("session/extra", 1)
    await store.put("presence/s-1", {Keyword("online?"): False, Keyword("last-seen"): None})
    await store.put("learning/index", {Keyword("count"): 2.0})  # 2 and 2.0 are different EDN

    report = await validate(store, memory_edn)

    assert not report.agree
    assert report.comparison.only_left == ("webhook/w1",)
    assert report.comparison.only_right == ("session/extra",)
    assert report.comparison.different == ("learning/index", "presence/s-1")
    assert report.diffs["learning/index"] == ":count edn 2 != sqlite 2.0"
    assert report.diffs["presence/s-1"] == (
        ":online? edn true != sqlite false; "
        ':last-seen edn #inst "2024-05-01T10:00:00.000-00:00" != sqlite nil'
    )
    text = report.render()
    assert text.startswith("DISAGREE")
    assert "missing in the database (only in the EDN file): 1\n  webhook/w1" in text
    assert "missing in the EDN file (only in the database): 1\n  session/extra" in text
    assert report.as_dict()["only_in_sqlite"] == ["session/extra"]


async def test_validate_agrees_when_map_order_differs(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    path.write_text("{:session/a {:x 1, :y [1 2], :z #{:a :b}}}", encoding="utf-8")
    await store.put("session/a", {Keyword("z"): frozenset({Keyword("b"), Keyword("a")}),
                                  Keyword("y"): [1, 2], Keyword("x"): 1})  # fmt: skip

    report = await validate(store, path)

    assert report.agree, report.render()
    assert report.render().startswith("AGREE")


async def test_export_writes_the_same_data_back_atomically(
    store: SqliteStore, memory_edn: Path, tmp_path: Path
) -> None:
    await migrate(store, memory_edn)
    target = tmp_path / "rollback" / "memory.edn"
    target.parent.mkdir()
    target.write_text("{:old/data 1}", encoding="utf-8")

    with pytest.raises(StoreError, match="exists; the export replaces an existing file only"):
        await export(store, target)
    assert target.read_text(encoding="utf-8") == "{:old/data 1}"
    summary = await export(store, target, overwrite=True)

    assert summary.keys == 11
    assert summary.bytes_written == target.stat().st_size
    exported = loads(target.read_text(encoding="utf-8"))
    original = loads(MEMORY_EDN)
    assert exported.keys() == original.keys()
    for key, value in original.items():
        assert same_value(exported[key], value), key
    assert sorted(p.name for p in target.parent.iterdir()) == ["memory.edn"]  # no temp left
    # The exported file migrates back into a fresh database as the same data.
    assert (await validate(store, target)).agree


async def test_export_of_an_empty_database_is_an_empty_map(
    store: SqliteStore, tmp_path: Path
) -> None:
    target = tmp_path / "memory.edn"

    summary = await export(store, target)

    assert summary.keys == 0
    assert target.read_text(encoding="utf-8") == "{}"


async def test_export_into_a_folder_is_refused_and_leaves_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="it is a folder"):
        await export(store, tmp_path)
    # A blocking listing of a tiny folder is fine in a test.
    assert not [p.name for p in tmp_path.iterdir() if "garrison-tmp" in p.name]  # noqa: ASYNC240


async def test_validate_reuses_a_parse_only_while_the_file_is_unchanged(
    store: SqliteStore, memory_edn: Path
) -> None:
    source = read_source(memory_edn)
    await migrate(store, memory_edn, source=source)
    assert (await validate(store, memory_edn, source=source)).agree

    changed = MEMORY_EDN.replace(":cache/k1 nil", ":cache/k1 1")
    memory_edn.write_text(changed, encoding="utf-8")  # noqa: ASYNC240 - a tiny test fixture file

    report = await validate(store, memory_edn, source=source)
    assert report.comparison.different == ("cache/k1",)


async def test_a_byte_order_mark_is_skipped(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    path.write_bytes(b"\xef\xbb\xbf" + MEMORY_EDN.encode())

    summary = await migrate(store, path)

    assert summary.written == 11
    assert (await validate(store, path)).agree


async def test_validate_after_a_migration_still_sees_later_changes_to_the_database(
    store: SqliteStore, memory_edn: Path
) -> None:
    # The migration leaves digests of what it wrote for the validation to
    # compare with; a value changed afterwards must still be found, and one
    # re-written as an equal value with another text must still agree.
    source = read_source(memory_edn)
    await migrate(store, memory_edn, source=source)
    assert len(source.stored_digests) == len(source.entries)
    await store.put("project/p1", {Keyword("name"): "Geneva"})
    collab = source.entries["collab-session/c1"]
    await store.put("collab-session/c1", dict(reversed(list(collab.items()))))

    report = await validate(store, memory_edn, source=source)

    assert report.comparison.different == ("project/p1",)
    assert ':name edn "Zürich" != sqlite "Geneva"' in report.diffs["project/p1"]
    assert report.comparison.common == len(source.entries)


async def test_validate_walks_many_pages_and_overlapping_prefixes_once(
    store: SqliteStore, tmp_path: Path
) -> None:
    # More keys than one page of the walk, prefixes that cover each other,
    # and differences on both sides of a page boundary.
    path = tmp_path / "memory.edn"
    keys = write_sessions(path, 12000)
    await migrate(store, path)
    await store.delete("session/k000006")
    await store.put("session/k000011", {Keyword("id"): -1})
    await store.put("session/k011996", {Keyword("id"): -1})
    await store.put("session/zz-extra", 1)
    await store.put("cache/k999999", 1)  # outside the prefixes: not compared

    report = await validate(store, path, prefixes=["session/", "session/k00", "session/"])

    sessions = sum(1 for key in keys if key.startswith("session/"))
    assert report.edn_keys == sessions == 2400
    assert report.comparison.common == sessions - 1
    assert report.comparison.only_left == ("session/k000006",)
    assert report.comparison.only_right == ("session/zz-extra",)
    assert report.comparison.different == ("session/k000011", "session/k011996")
    assert report.sqlite_keys == sessions


async def test_a_stored_text_that_is_not_utf8_is_reported_with_its_key(
    store: SqliteStore, memory_edn: Path
) -> None:
    # Stored texts are read as SQLite holds them and decoded only when their
    # digest does not match; bytes that are no UTF-8 text name their key.
    await migrate(store, memory_edn)
    await store.connection.execute(
        "UPDATE entries SET value = CAST(X'22FF22' AS TEXT) WHERE key = 'project/p1'"
    )
    with pytest.raises(StoreError, match="cannot decode the stored value") as caught:
        await validate(store, memory_edn)
    assert caught.value.key == "project/p1"


async def test_a_utf16_database_is_compared_by_its_texts(tmp_path: Path) -> None:
    # SQLite may hold texts as UTF-16 (a garrison database made by hand with
    # another tool): the stored bytes are then decoded as such, never hashed
    # against the migration's digests of UTF-8 texts.
    db = tmp_path / "utf16.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")  # the store upgrades it at open
    conn.commit()
    conn.close()
    path = tmp_path / "memory.edn"
    path.write_text(MEMORY_EDN, encoding="utf-8")
    async with SqliteStore(db) as utf16:
        rows = list(await utf16.connection.execute_fetchall("PRAGMA encoding"))
        assert rows == [("UTF-16le",)]
        source = read_source(path)
        await migrate(utf16, path, source=source)
        assert (await validate(utf16, path, source=source)).agree
        await utf16.put("project/p1", {Keyword("name"): "Genève"})
        report = await validate(utf16, path, source=source)
        assert report.comparison.different == ("project/p1",)
        assert 'sqlite "Genève"' in report.diffs["project/p1"]
