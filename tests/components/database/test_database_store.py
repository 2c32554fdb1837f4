"""The Store facade over a real runtime: every operation, keys, modes, errors."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from garrison import RefusedWriteError, StoreError
from garrison.components.database import DatabaseStatistics, Put, Store
from garrison.edn import Keyword
from garrison.health import evaluate
from garrison.stores import Mode
from garrison.stores._keys import StringKey
from garrison.stores._protocol import MISSING
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from garrison import Runtime


async def test_put_get_delete_through_rt_store(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put("session/abc", {"user": 42, "tags": ["a", "b"]})
    assert await store.get("session/abc") == {"user": 42, "tags": ["a", "b"]}
    assert await store.get("session/none") is None
    assert await store.get("session/none", "fallback") == "fallback"
    await store.put("session/nil", None)
    assert await store.get("session/nil", MISSING) is None
    assert await store.get("session/gone", MISSING) is MISSING
    assert await store.delete("session/abc") is True
    assert await store.delete("session/abc") is False
    assert await store.get("session/abc") is None


async def test_keyword_and_other_edn_keys_name_entries(runtime: Runtime) -> None:
    store = Store(runtime)
    await store.put(Keyword("presence/s-1"), "online")
    assert await store.get("presence/s-1") == "online"  # a str key is that keyword
    await store.put(StringKey("plain"), 1)
    await store.put(42, "int key")
    assert await store.get(StringKey("plain")) == 1
    assert await store.get("plain") is None  # the keyword :plain is another entry
    assert await store.get(42) == "int key"
    with pytest.raises(RefusedWriteError, match="empty"):
        await store.put("", 1)


@pytest.mark.parametrize("mode", ["edn-only", "dual-write", "sqlite-first", "sqlite-only"])
async def test_a_keyword_spelt_with_its_colon_is_the_same_key_everywhere(
    tmp_path: Path, mode: str
) -> None:
    async with database_runtime(tmp_path, mode=mode) as rt:
        store = rt.get(Store)
        await store.put(":session/x", 1)
        assert await store.get("session/x") == 1
        await store.put("session/x", 2)
        assert await store.get(":session/x") == 2
        assert await store.get_many([":session/x"]) == {"session/x": 2}
        assert await store.scan(":session/") == [("session/x", 2)]
        assert await store.count(":session/") == 1
        assert await store.delete(":session/x") is True
        assert await store.count() == 0
        await store.flush()
    if mode != "sqlite-only":
        assert (tmp_path / "memory.edn").read_text() == "{}"


@pytest.mark.parametrize("mode", ["edn-only", "dual-write", "sqlite-first"])
async def test_a_naive_datetime_is_refused_while_the_edn_file_is_written(
    tmp_path: Path, mode: str
) -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    async with database_runtime(tmp_path, mode=mode) as rt:
        with pytest.raises(RefusedWriteError, match=r"EDN file cannot hold.*time zone") as refused:
            await rt.get(Store).put("event/1", {"at": naive})
        assert refused.value.key == "event/1"
        await rt.get(Store).put("event/2", {"at": naive.replace(tzinfo=UTC)})
        await rt.get(Store).flush()
        assert await rt.get(Store).count() == 1
        assert (await evaluate(rt, "ready")).status == "pass"


@pytest.mark.parametrize("mode", ["edn-only", "dual-write", "sqlite-first", "sqlite-only"])
@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("ns/na me", "contains ' ' at position 6"),
        ("::session/x", "starts with '::'"),
        ("a,b", "contains ','"),
        (Keyword("k w"), "contains ' '"),
    ],
)
async def test_a_key_with_no_edn_form_is_refused_and_nothing_is_written(
    tmp_path: Path, mode: str, key: object, reason: str
) -> None:
    async with database_runtime(tmp_path, mode=mode) as rt:
        store = rt.get(Store)
        with pytest.raises(RefusedWriteError, match=reason):
            await store.put(key, 1)
        with pytest.raises(RefusedWriteError, match=reason):
            await store.put_many([("ok/1", 1), (key, 2)])  # all or none
        await store.put("ok/2", 2)
        await store.flush()
        assert await store.scan() == [("ok/2", 2)]
        assert (await evaluate(rt, "ready")).status == "pass"


async def test_many_at_once_scan_count_and_pagination(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put_many({f"user/{i:02}": {"n": i} for i in range(10)})
    await store.put_many([("other/x", 1)])
    found = await store.get_many(["user/01", "user/05", "user/missing"])
    assert found == {"user/01": {"n": 1}, "user/05": {"n": 5}}
    assert await store.count("user/") == 10
    first = await store.scan("user/", limit=4)
    assert [k for k, _ in first] == ["user/00", "user/01", "user/02", "user/03"]
    rest = await store.scan("user/", after=first[-1][0])
    assert len(rest) == 6
    assert await store.delete_many(["user/00", "user/01", "user/none"]) == 2
    assert await store.count("user/") == 8


async def test_find_history_and_as_of(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, indexes=["$.user"]) as rt:
        store = rt.get(Store)
        await store.put("session/a", {"user": 1})
        await store.put("session/b", {"user": 2})
        assert await store.find("$.user", eq=2) == [("session/b", {"user": 2})]
        assert [k for k, _ in await store.find("$.user", ge=1, prefix="session/")] == [
            "session/a",
            "session/b",
        ]
        before = datetime.now(UTC)
        time.sleep(0.002)  # noqa: ASYNC251 - a wall-clock gap between two commits, not sync
        await store.put("session/a", {"user": 3})
        history = await store.history("session/a")
        assert [c.value for c in history] == [{"user": 1}, {"user": 3}]
        assert await store.get_as_of("session/a", before) == {"user": 1}
        assert await store.get_as_of("session/zz", before, "none") == "none"


async def test_a_write_is_committed_when_put_returns(runtime: Runtime) -> None:
    await runtime.get(Store).put("order/1", {"total": 10})
    stats = await runtime.get(Store).statistics()
    # Another connection (another process would do the same) sees it at once.
    other = sqlite3.connect(stats.sqlite_path)
    try:
        rows = other.execute("SELECT value FROM entries WHERE key = 'order/1'").fetchall()
    finally:
        other.close()
    assert rows == [('{"total":10}',)]


async def test_messages_can_be_sent_directly(runtime: Runtime) -> None:
    ref = runtime.ref("database")
    assert await ref.ask(Put("k/1", 1)) is None
    assert await runtime.get(Store).get("k/1") == 1


async def test_mode_switch_and_statistics(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        store = rt.get(Store)
        assert await store.mode() is Mode.DUAL_WRITE
        await store.put("a/1", 1)
        await store.flush()
        assert "a/1" in (tmp_path / "memory.edn").read_text(encoding="utf-8")
        switch = await store.set_mode("sqlite-first", reason="test")
        assert switch.previous is Mode.DUAL_WRITE
        assert await store.mode() is Mode.SQLITE_FIRST
        assert await store.get("a/1") == 1
        stats = await store.statistics()
        assert isinstance(stats, DatabaseStatistics)
        assert stats.mode == "sqlite-first"
    # The mode is recorded in the database: a restart keeps it whatever the config says.
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        assert await rt.get(Store).mode() is Mode.SQLITE_FIRST


async def test_a_legacy_edn_file_starts_in_edn_only(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text('{:presence/s-1 {:status "online"}}', encoding="utf-8")
    async with database_runtime(tmp_path) as rt:
        assert await rt.get(Store).mode() is Mode.EDN_ONLY
        assert await rt.get(Store).get("presence/s-1") == {Keyword("status"): "online"}
        with pytest.raises(StoreError, match="edn-only"):
            await rt.get(Store).find("$.status", eq="online")


async def test_backup_and_restore_through_the_store(runtime: Runtime, tmp_path: Path) -> None:
    store = runtime.get(Store)
    await store.put("a/1", "before")
    target = await store.backup(tmp_path / "backups" / "one.db")
    assert target.is_file()
    await store.put("a/1", "after")
    assert await store.get("a/1") == "after"  # cached now
    await store.restore(target)
    assert await store.get("a/1") == "before"  # the cache was emptied by the restore


async def test_unstorable_values_fail_the_call(runtime: Runtime) -> None:
    with pytest.raises(RefusedWriteError, match="no EDN form") as refused:
        await runtime.get(Store).put("a/bad", object())
    assert refused.value.key == "a/bad"
    assert await runtime.get(Store).get("a/bad", MISSING) is MISSING


async def test_readiness_fails_naming_an_entry_the_edn_file_cannot_hold(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        await rt.get(Store).put("doc/0", 0)
        await rt.get(Store).flush()  # the writer flushes the first write at once; this one is done
        value: dict[str, object] = {"ok": 1}
        await rt.get(Store).put("doc/1", value)
        await rt.get(Store).put("doc/2", 2)
        value["oops"] = object()  # mutated after its put: the writer meets it at the flush
        await rt.get(Store).put("doc/3", 3)
        with pytest.raises(StoreError, match="doc/1"):
            await rt.get(Store).flush()
        ready = await evaluate(rt, "ready")
        assert ready.status == "fail"
        assert "doc/1" in str(ready.to_dict(verbose=True))
        assert (await rt.get(Store).statistics()).edn_unwritable == ("doc/1",)
        await rt.get(Store).put("doc/1", {"ok": 2})  # written again: the file can hold it now
        await rt.get(Store).flush()
        assert (await rt.get(Store).statistics()).edn_unwritable == ()
    async with database_runtime(tmp_path) as rt:
        assert await rt.get(Store).get_many(["doc/0", "doc/1", "doc/2", "doc/3"]) == {
            "doc/0": 0,
            "doc/1": {"ok": 2},
            "doc/2": 2,
            "doc/3": 3,
        }


async def test_a_restore_keeps_the_stores_mode_whatever_the_backup_recorded(
    tmp_path: Path,
) -> None:
    backup = tmp_path / "backups" / "b.db"
    async with database_runtime(tmp_path / "data") as rt:
        await rt.get(Store).put("a/1", "in the backup")
        await rt.get(Store).backup(backup)  # records sqlite-only
        await rt.get(Store).set_mode("dual-write", force=True, reason="test")
        await rt.get(Store).put("a/1", "newer")
        await rt.get(Store).restore(backup)
        assert await rt.get(Store).mode() is Mode.DUAL_WRITE
        assert await rt.get(Store).get("a/1") == "newer"  # the EDN side holds every write
        assert (await rt.get(Store).statistics()).full_repair_pending
    async with database_runtime(tmp_path / "data") as rt:
        assert await rt.get(Store).mode() is Mode.DUAL_WRITE
        assert await rt.get(Store).get("a/1") == "newer"
