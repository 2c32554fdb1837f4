"""The migration engine on real files and a real SQLite database."""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING, Any

import pytest

from garrison.components.database import _bulk
from garrison.components.migrator import (
    PROGRESS_META,
    KindMapping,
    MigrationProgress,
    migrate,
    normalize_prefixes,
    validate,
)
from garrison.components.migrator._source import clojure_readable_keyword, read_source
from garrison.edn import Keyword, dumps, loads
from garrison.exceptions import EdnEncodeError, EdnSyntaxError, StoreError
from garrison.stores import SqliteStore, _sqlite_bulk

from .conftest import MEMORY_EDN, write_sessions

if TYPE_CHECKING:
    from pathlib import Path


async def _kinds(store: SqliteStore) -> dict[str, str]:
    rows = await store.connection.execute_fetchall("SELECT key, kind FROM entries")
    return {str(key): str(kind) for key, kind in rows}


async def test_every_key_arrives_with_its_kind_and_value(
    store: SqliteStore, memory_edn: Path
) -> None:
    summary = await migrate(store, memory_edn, batch_size=3)

    assert summary.ok
    assert summary.written == summary.total == 11
    assert await _kinds(store) == {
        "presence/s-1": "session",
        "session/abc": "session",
        "collab-session/c1": "session",
        "project/p1": "project",
        "learning/r1": "learning",
        "learning/tag-index": "index",
        "learning/index": "index",
        "embed-token/5fe3": "cache",
        "webhook/w1": "cache",
        "cache/k1": "cache",
        '#edn "plain-string-key"': "cache",
    }
    assert summary.by_kind == {"session": 3, "project": 1, "learning": 1, "cache": 4, "index": 2}
    # The values are the file's, EDN kinds included (ratio, BigInt, list, set, tag...).
    original = loads(MEMORY_EDN)
    project = await store.get("project/p1")
    assert project == original[Keyword("project/p1")]
    assert type(project[Keyword("big")]).__name__ == "BigInt"
    assert (await validate(store, memory_edn)).agree


async def test_sessions_first_then_projects_then_learning_then_the_rest(
    store: SqliteStore, memory_edn: Path
) -> None:
    summary = await migrate(store, memory_edn, batch_size=2)

    changes = await store.changed_since(0)
    kinds = await _kinds(store)
    order = [kinds[change.key] for change in changes]
    assert summary.order == ["session", "project", "learning", "cache", "index"]
    assert order == sorted(order, key=summary.order.index)
    assert summary.batches == 2 + 1 + 1 + 2 + 1  # batches never mix kinds


async def test_a_second_run_changes_nothing(store: SqliteStore, memory_edn: Path) -> None:
    await migrate(store, memory_edn)
    history_before = len(await store.changed_since(0))

    again = await migrate(store, memory_edn)

    assert again.written == 0
    assert again.unchanged == again.total == 11
    assert again.ok
    assert len(await store.changed_since(0)) == history_before


async def test_different_data_in_the_database_is_reported_not_overwritten(
    store: SqliteStore, memory_edn: Path
) -> None:
    await store.put("project/p1", {Keyword("name"): "Basel"})

    summary = await migrate(store, memory_edn)

    assert summary.conflicts == ["project/p1"]
    assert not summary.ok
    assert ':name edn "Zürich" != sqlite "Basel"' in summary.diffs["project/p1"]
    assert await store.get("project/p1") == {Keyword("name"): "Basel"}
    assert "conflict project/p1" in summary.render()
    assert summary.written == 10

    forced = await migrate(store, memory_edn, overwrite=True)

    assert forced.overwritten == 1
    assert forced.ok
    assert (await store.get("project/p1"))[Keyword("name")] == "Zürich"


async def test_dry_run_writes_nothing(store: SqliteStore, memory_edn: Path, tmp_path: Path) -> None:
    await store.put("project/p1", {Keyword("name"): "Basel"})

    summary = await migrate(store, memory_edn, dry_run=True)

    assert summary.dry_run
    assert summary.written == 10
    assert summary.conflicts == ["project/p1"]
    assert await store.count() == 1
    assert await store.get_meta(PROGRESS_META) is None
    assert "DRY RUN" in summary.render()
    # With no database at all there is nothing to open and nothing created.
    nothing = await migrate(None, memory_edn, dry_run=True, database="absent.db")
    assert nothing.written == 11
    assert not (tmp_path / "absent.db").exists()


async def test_a_file_that_does_not_parse_names_file_line_column_and_writes_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    bad = tmp_path / "memory.edn"
    bad.write_text('{:session/a {:x 1},\n :session/b {:y "unterminated}\n', encoding="utf-8")

    with pytest.raises(EdnSyntaxError) as caught:
        await migrate(store, bad)

    assert caught.value.source == str(bad)
    assert caught.value.line == 2
    assert caught.value.column == 17
    assert await store.count() == 0
    assert await store.get_meta(PROGRESS_META) is None


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("{:a 1\n :b}", 1, 1),  # a key without a value
        ("{:a 1}\n{:b 2}", 2, 1),  # two maps
        ("[1 2]", 1, 1),  # not a map
        ("{:a [1 2}", 1, 9),  # mismatched delimiter
    ],
)
async def test_other_bad_shapes_are_located(
    store: SqliteStore, tmp_path: Path, text: str, line: int, column: int
) -> None:
    bad = tmp_path / "memory.edn"
    bad.write_text(text, encoding="utf-8")

    with pytest.raises(EdnSyntaxError) as caught:
        await migrate(store, bad)

    assert (caught.value.line, caught.value.column) == (line, column)
    assert await store.count() == 0


async def test_lenient_only_keys_and_duplicates_are_migrated_and_listed(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "memory.edn"
    path.write_text(
        "{:embed-token/5fe3 1, :cache/ok {:ref :embed-token/9abc}, :cache/fine 2,"
        " :session/dup 1, :session/dup 2}",
        encoding="utf-8",
    )

    summary = await migrate(store, path)

    assert summary.lenient_keys == ["cache/ok", "embed-token/5fe3"]
    assert summary.duplicate_keys == ["session/dup"]
    assert await store.get("session/dup") == 2
    assert await store.get("embed-token/5fe3") == 1
    text = summary.render()
    assert "keywords Clojure cannot read back" in text
    assert "embed-token/5fe3" in text


async def test_prefixes_select_namespaces(store: SqliteStore, memory_edn: Path) -> None:
    prefixes = normalize_prefixes(["session", "presence"])

    summary = await migrate(store, memory_edn, prefixes=prefixes)

    assert prefixes == ("session/", "presence/")
    assert sorted(await store.keys()) == ["presence/s-1", "session/abc"]
    assert summary.filtered_out == 9
    assert "9 outside the --prefix filter" in summary.render()
    assert (await validate(store, memory_edn, prefixes=prefixes)).agree
    assert not (await validate(store, memory_edn)).agree


async def test_the_kind_mapping_is_configurable(store: SqliteStore, memory_edn: Path) -> None:
    mapping = KindMapping.from_config(namespaces={"webhook": "integration"}, default="misc")

    summary = await migrate(store, memory_edn, kinds=mapping, order=["integration"])

    kinds = await _kinds(store)
    assert kinds["webhook/w1"] == "integration"
    assert kinds["cache/k1"] == "misc"
    assert kinds["presence/s-1"] == "session"
    assert summary.order[0] == "integration"


class _InterruptedError(Exception):
    pass


async def test_resume_continues_after_the_last_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    write_sessions(path, 50)
    db = tmp_path / "garrison.db"

    def stop_after_two_batches(progress: MigrationProgress) -> None:
        if progress.phase == "migrate" and progress.done >= 20:
            raise _InterruptedError

    async with SqliteStore(db) as store:
        with pytest.raises(_InterruptedError):
            await migrate(store, path, batch_size=10, listener=stop_after_two_batches)
        record: Any = await store.get_meta(PROGRESS_META)
        assert record["done"] == 20
        assert not record["finished"]
        assert await store.count() == 20

    async with SqliteStore(db) as store:
        resumed = await migrate(store, path, batch_size=10, resume=True)

        assert resumed.resumed
        assert resumed.resumed_from == 20
        assert resumed.written == 30
        assert "resumed after 20 keys" in resumed.render()
        assert (await validate(store, path)).agree
        assert (await store.get_meta(PROGRESS_META))["finished"]


async def test_resume_refuses_a_changed_file(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "memory.edn"
    write_sessions(path, 30)

    def stop(progress: MigrationProgress) -> None:
        if progress.phase == "migrate" and progress.done >= 10:
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        await migrate(store, path, batch_size=10, listener=stop)
    write_sessions(path, 31)

    with pytest.raises(StoreError, match="cannot resume: the interrupted run had a different"):
        await migrate(store, path, batch_size=10, resume=True)
    # Without --resume it starts again; what the first run wrote is unchanged.
    again = await migrate(store, path, batch_size=10)
    assert again.unchanged == 10
    assert again.written == 21


async def test_progress_reaches_the_listener(store: SqliteStore, memory_edn: Path) -> None:
    seen: list[tuple[str, int, int]] = []

    await migrate(
        store, memory_edn, batch_size=4, listener=lambda p: seen.append((p.phase, p.done, p.total))
    )

    size = (await asyncio.to_thread(memory_edn.stat)).st_size
    assert seen[:2] == [("read", 0, size), ("read", size, size)]  # the file's bytes
    migrating = [(done, total) for phase, done, total in seen if phase == "migrate"]
    assert migrating[0] == (0, 11)
    assert migrating[-1] == (11, 11)
    assert seen[-1] == ("done", 11, 11)


@pytest.mark.parametrize(
    "text",
    ["a/5b", "embed-token/5fe3", "a/b", "5a/b", "a/b/5", "a/5b/c", "x:", "a:/b", "a/", "/a", "a"],
)
def test_the_readable_keyword_check_agrees_with_the_strict_writer(text: str) -> None:
    try:
        dumps(Keyword(text), strict=True)
    except EdnEncodeError:
        readable = False
    else:
        readable = True

    assert clojure_readable_keyword(text) is readable


async def test_conflicts_found_before_an_interruption_are_still_reported_after_resume(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "memory.edn"
    write_sessions(path, 40)
    await store.put("session/k000001", "someone else's data")

    def stop(progress: MigrationProgress) -> None:
        if progress.phase == "migrate" and progress.done >= 10:
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        await migrate(store, path, batch_size=10, listener=stop)
    record: Any = await store.get_meta(PROGRESS_META)
    assert record["conflict_keys"] == ["session/k000001"]  # found in the first batch

    resumed = await migrate(store, path, batch_size=10, resume=True)

    assert resumed.resumed_from == 10
    assert resumed.conflicts == ["session/k000001"]
    assert not resumed.ok
    assert "conflicts 1" in resumed.render()
    assert await store.get("session/k000001") == "someone else's data"


def _application_writes_before(monkeypatch: pytest.MonkeyPatch, writer: str, key: str) -> None:
    """Make "the application" put ``key`` just before the migrator's ``writer`` writes it.

    ``writer`` is the bulk write the migrator calls (``put_rows`` or
    ``put_new_rows``); the application's value is "the application's newer value".
    """
    original = getattr(_sqlite_bulk, writer)

    async def application_writes_first(store: SqliteStore, rows: Any, **options: Any) -> Any:
        if any(row[0] == key for row in rows):
            await store.put(key, "the application's newer value")
        return await original(store, rows, **options)

    monkeypatch.setattr(_bulk, writer, application_writes_first)


async def test_a_write_between_the_check_and_the_batch_is_reported_as_raced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "The application" writes a key on the real store just before the write
    # transaction of the batch holding it (after the migrator's check). That
    # window exists for a batch some of whose keys the database holds already
    # (compared first, then written): here session/k000006, with the file's value.
    raced_key = "session/k000011"
    _application_writes_before(monkeypatch, "put_rows", raced_key)
    path = tmp_path / "memory.edn"
    write_sessions(path, 20)
    async with SqliteStore(tmp_path / "garrison.db") as store:
        await store.put("session/k000006", {Keyword("id"): 6, Keyword("pad"): ""})
        summary = await migrate(store, path, batch_size=5)
        assert summary.unchanged == 1

        assert summary.raced == [raced_key]
        assert not summary.ok
        assert "changed while they were migrated" in summary.render()
        report = await validate(store, path)
        assert report.agree  # here the file's value won; validation is the judge


async def test_a_write_just_before_a_new_batch_is_a_conflict_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch of keys the database does not hold yet is checked and written in
    # one transaction: a key the application writes just before that
    # transaction is found there (a conflict, left as it is), and none written
    # after the check can be overwritten (nothing is raced).
    written_first = "session/k000001"
    _application_writes_before(monkeypatch, "put_new_rows", written_first)
    path = tmp_path / "memory.edn"
    write_sessions(path, 20)
    async with SqliteStore(tmp_path / "garrison.db") as store:
        summary = await migrate(store, path, batch_size=5)

        assert summary.conflicts == [written_first]
        assert summary.raced == []
        assert summary.written == 19
        assert await store.get(written_first) == "the application's newer value"
        assert [c.version for c in await store.history(written_first)] == [1]
        record: Any = await store.get_meta(PROGRESS_META)
        assert (record["written"], record["conflicts"], record["finished"]) == (19, 1, True)


async def test_overwritten_and_deleted_keys_touched_around_the_write_are_raced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys that existed before (versions above 1) and a key deleted right
    # after the batch's write are reported too; untouched keys are not.
    path = tmp_path / "memory.edn"
    write_sessions(path, 20)
    put_rows = _sqlite_bulk.put_rows

    async def application_writes_after(store: SqliteStore, rows: Any, **options: Any) -> None:
        await put_rows(store, rows, **options)
        if any(row[0] == "cache/k000000" for row in rows):
            await store.put("cache/k000000", "newer")
            await store.delete("cache/k000005")

    async with SqliteStore(tmp_path / "garrison.db") as store:
        for key in ("cache/k000000", "cache/k000005", "cache/k000010"):
            await store.put(key, "older")
            await store.put(key, "older still")  # version 2
        monkeypatch.setattr(_bulk, "put_rows", application_writes_after)
        summary = await migrate(store, path, batch_size=50, overwrite=True)

        assert summary.overwritten == 3
        assert sorted(summary.raced) == ["cache/k000000", "cache/k000005"]


async def test_keys_of_a_kind_are_written_in_key_order(store: SqliteStore, tmp_path: Path) -> None:
    # Key order appends to the database's key index (fast for big files);
    # sessions still come first, whatever order the file lists them in.
    path = tmp_path / "memory.edn"
    path.write_text(
        "{:project/b 1, :session/z 2, :presence/a 3, :project/a 4, :session/b 5}",
        encoding="utf-8",
    )
    await migrate(store, path, batch_size=2)
    changes = await store.changed_since(0)
    assert [change.key for change in changes] == [
        "presence/a",
        "session/b",
        "session/z",
        "project/a",
        "project/b",
    ]


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_big_file_leaves_the_garbage_collector_as_it_was(
    tmp_path: Path, enabled: bool
) -> None:
    # The parse pauses the collector (see read_source); the application's
    # choice of on or off must survive it, also when the file does not parse.
    good = tmp_path / "memory.edn"
    write_sessions(good, 2000, padding=40)
    bad = tmp_path / "bad.edn"
    bad.write_text(good.read_text(encoding="utf-8")[:-3] + "[}", encoding="utf-8")
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert len(read_source(good).entries) == 2000
        assert gc.isenabled() is enabled
        with pytest.raises(EdnSyntaxError):
            read_source(bad)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


async def test_a_value_that_cannot_be_stored_stops_after_the_batches_before_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    # Batches are encoded one ahead of their write; the error still surfaces
    # only when its own batch comes, after every earlier batch is committed
    # and recorded, so --resume starts at the batch that holds it.
    path = tmp_path / "memory.edn"
    parts = [f":cache/k{i:03d} {{:id {i}}}" for i in range(30)]
    parts[17] = ':cache/k017 "lone \\ud800 surrogate"'
    path.write_text("{" + ", ".join(parts) + "}", encoding="utf-8")

    with pytest.raises(EdnEncodeError, match="surrogates"):
        await migrate(store, path, batch_size=5)

    assert await store.count() == 15
    record = await store.get_meta(PROGRESS_META)
    assert record["done"] == 15
    assert not record["finished"]
