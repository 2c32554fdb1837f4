"""ModeRouter: each mode's reads and writes, switching, validation, repair, persistence."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword, loads
from garrison.exceptions import StoreError, ValidationError
from garrison.stores import EdnFileStore, Mode, ModeRouter, SqliteStore, compare_stores
from garrison.stores._protocol import MISSING, KeyValueStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


async def break_sqlite_writes(db: Path) -> None:
    """Make every write to the entries table fail, from another connection (a real failure).

    Run in a thread: the store's own thread may hold the write lock and needs
    the event loop to finish its transaction.
    """
    await asyncio.to_thread(_run_ddl, db, _BREAK)


async def heal_sqlite_writes(db: Path) -> None:
    """Drop the failing triggers again."""
    await asyncio.to_thread(_run_ddl, db, _HEAL)


_BREAK = [
    f"CREATE TRIGGER IF NOT EXISTS inject_{op.lower()} BEFORE {op} ON entries "
    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    for op in ("INSERT", "UPDATE", "DELETE")
]
_HEAL = [f"DROP TRIGGER IF EXISTS inject_{op}" for op in ("insert", "update", "delete")]


def _run_ddl(db: Path, statements: list[str]) -> None:
    with sqlite3.connect(db, timeout=30) as con:
        for sql in statements:
            con.execute(sql)
    con.close()


class Sides:
    """Both stores and a router over them, reopened on demand like a restart."""

    def __init__(self, folder: Path, *, repair_interval: float = 0.01) -> None:
        self.edn_path = folder / "memory.edn"
        self.db_path = folder / "garrison.db"
        self.repair_interval = repair_interval
        self.edn = EdnFileStore(self.edn_path)
        self.sqlite = SqliteStore(self.db_path)
        self.router = ModeRouter(self.edn, self.sqlite, repair_interval=repair_interval)

    async def open(self) -> ModeRouter:
        await self.edn.open()
        await self.sqlite.open()
        return await self.router.open()

    async def close(self) -> None:
        await self.router.aclose()
        await self.edn.aclose()
        await self.sqlite.aclose()

    async def restart(self) -> ModeRouter:
        await self.close()
        self.edn = EdnFileStore(self.edn_path)
        self.sqlite = SqliteStore(self.db_path)
        self.router = ModeRouter(self.edn, self.sqlite, repair_interval=self.repair_interval)
        return await self.open()


@pytest.fixture
async def sides(tmp_path: Path) -> AsyncIterator[Sides]:
    sides = Sides(tmp_path)
    await sides.open()
    yield sides
    await sides.close()


async def test_starts_in_edn_only_and_keeps_a_switched_mode_across_restarts(sides: Sides) -> None:
    router = sides.router
    assert isinstance(router, KeyValueStore)
    assert router.mode is Mode.EDN_ONLY
    switch = await router.switch_mode("dual-write", reason="start the migration")
    assert (switch.previous, switch.mode, switch.forced) == (Mode.EDN_ONLY, Mode.DUAL_WRITE, False)
    router = await sides.restart()
    assert router.mode is Mode.DUAL_WRITE
    history = await router.history()
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [
        ("edn-only", "dual-write", "start the migration")
    ]


async def test_edn_only_touches_only_the_edn_side(sides: Sides) -> None:
    await sides.router.put("a/1", 1)
    assert await sides.router.get("a/1") == 1
    assert await sides.sqlite.count() == 0
    await sides.edn.flush()
    assert loads(sides.edn_path.read_text()) == {Keyword("a/1"): 1}


async def test_dual_write_writes_both_and_reads_edn(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.put_many([("a/1", 1), ("a/2", [2])])
    assert await sides.sqlite.get_many(["a/1", "a/2"]) == {"a/1": 1, "a/2": [2]}
    await sides.sqlite.put("a/1", "planted in sqlite")
    assert await router.get("a/1") == 1  # reads come from EDN
    assert await router.delete("a/2") is True
    assert await sides.sqlite.get("a/2", MISSING) is MISSING


async def test_dual_write_survives_a_failing_sqlite_and_repairs_it(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await router.put("a/1", 1)
    await break_sqlite_writes(sides.db_path)
    await router.put("a/1", 2)  # the write succeeds: EDN has it
    await router.put("a/2", 3)
    assert await router.delete("a/1") is True
    assert await router.get("a/2") == 3
    assert router.repair_backlog == {"a/1", "a/2"}
    stats = router.statistics()
    assert stats.repair_backlog == 2
    assert stats.last_sqlite_error is not None
    assert "injected failure" in stats.last_sqlite_error
    assert await sides.sqlite.get("a/1") == 1  # SQLite is behind...
    await heal_sqlite_writes(sides.db_path)
    await router.wait_repaired()  # ...until the background repair pass levels it
    assert await sides.sqlite.get("a/1", MISSING) is MISSING
    assert await sides.sqlite.get("a/2") == 3
    assert (await router.validate()).clean
    assert router.statistics().last_sqlite_error is None


async def test_the_repair_backlog_survives_a_restart(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await break_sqlite_writes(sides.db_path)
    await router.put("a/1", "only on edn")
    router = await sides.restart()
    assert router.repair_backlog == {"a/1"}
    await heal_sqlite_writes(sides.db_path)
    await router.wait_repaired()
    assert await sides.sqlite.get("a/1") == "only on edn"
    assert not sides.router.backlog_path.exists()


async def test_sqlite_first_reads_sqlite_and_falls_back_to_edn(sides: Sides) -> None:
    router = sides.router
    await router.put("old/1", "written in edn-only")  # never reached SQLite
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.switch_mode(Mode.SQLITE_FIRST)
    await router.repair()
    await router.put("a/1", 1)
    await sides.sqlite.put("a/1", "from sqlite")
    assert await router.get("a/1") == "from sqlite"  # SQLite answers first
    await sides.sqlite.delete("old/1")
    assert await router.get("old/1") == "written in edn-only"  # a miss falls back...
    assert await sides.sqlite.get("old/1") == "written in edn-only"  # ...and is written back
    assert router.statistics().fallback_reads == 1
    assert await router.get_many(["a/1", "old/1", "none"]) == {
        "a/1": "from sqlite",
        "old/1": "written in edn-only",
    }
    assert await router.keys() == ["a/1", "old/1"]
    assert await router.scan(limit=1) == [("a/1", "from sqlite")]


async def test_sqlite_first_answers_from_edn_when_sqlite_is_gone(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.switch_mode(Mode.SQLITE_FIRST)
    await router.put_many([("a/1", 1), ("a/2", 2)])
    # Entering dual-write queued a full repair: let it finish first, so that the
    # backlog below holds only what the dead connection refuses.
    await router.repair()
    await sides.sqlite.connection.close()  # the connection dies under the store
    assert await router.get("a/1") == 1
    assert await router.scan("a/") == [("a/1", 1), ("a/2", 2)]
    assert await router.count() == 2
    await router.put("a/3", 3)  # still accepted: EDN has it, SQLite is queued for repair
    # a/1 too: the read that fell back to EDN tried to copy it back, and failed.
    assert router.repair_backlog == {"a/1", "a/3"}
    assert await router.get("a/3") == 3
    with pytest.raises(StoreError):
        await router.switch_mode(Mode.EDN_ONLY)  # cannot be recorded: nothing changes
    assert router.mode is Mode.SQLITE_FIRST


async def test_sqlite_first_never_serves_a_value_sqlite_missed(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.switch_mode(Mode.SQLITE_FIRST)
    await router.put("a/1", "old")
    await break_sqlite_writes(sides.db_path)
    await router.put("a/1", "new")
    assert await sides.sqlite.get("a/1") == "old"
    assert await router.get("a/1") == "new"  # the backlog routes this key to EDN
    assert await router.scan() == [("a/1", "new")]


async def test_sqlite_only_needs_a_clean_validation(sides: Sides) -> None:
    router = sides.router
    await router.put_many([("a/1", 1), ("a/2", True)])
    with pytest.raises(ValidationError, match="2 only in edn"):
        await router.switch_mode(Mode.SQLITE_ONLY)
    assert router.mode is Mode.EDN_ONLY
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.repair()
    await sides.sqlite.put("a/2", 1)  # 1 == True in Python, but not in EDN
    with pytest.raises(ValidationError, match="1 with different values"):
        await router.switch_mode(Mode.SQLITE_ONLY)
    await sides.sqlite.put("a/2", True)
    switch = await router.switch_mode(Mode.SQLITE_ONLY)
    assert switch.validation is not None
    assert "agree on all 2 keys" in switch.validation
    await router.put("b/1", "sqlite only")
    assert await router.get("b/1") == "sqlite only"
    assert await sides.edn.get("b/1", MISSING) is MISSING  # EDN is left as it was


async def test_leaving_sqlite_only_needs_edn_restored_first(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.SQLITE_ONLY, force=True, reason="fresh install")
    await router.put("a/1", 1)
    with pytest.raises(ValidationError, match="only in sqlite"):
        await router.switch_mode(Mode.SQLITE_FIRST)
    assert await router.restore_edn_from_sqlite() == 1
    await router.switch_mode(Mode.SQLITE_FIRST, reason="rollback")
    assert await router.get("a/1") == 1
    assert loads(sides.edn_path.read_text()) == {Keyword("a/1"): 1}
    history = await router.history()
    assert [h["forced"] for h in history] == [True, False]


async def test_a_failed_clear_on_sqlite_triggers_a_full_repair(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.put_many([("a/1", 1), ("a/2", 2)])
    await break_sqlite_writes(sides.db_path)
    await router.clear()
    assert router.statistics().full_repair_pending
    await heal_sqlite_writes(sides.db_path)
    await router.wait_repaired()
    assert await sides.sqlite.count() == 0


async def test_a_switch_is_recorded_as_a_span_event(
    sides: Sides, span_exporter: InMemorySpanExporter
) -> None:
    await sides.router.switch_mode(Mode.DUAL_WRITE, reason="go")
    spans = [s for s in span_exporter.get_finished_spans() if s.name.startswith("switch_mode")]
    assert len(spans) == 1
    event = spans[0].events[0]
    assert event.name == "garrison.store.mode_switch"
    assert dict(event.attributes or {})["to"] == "dual-write"


async def test_compare_stores_reports_each_kind_of_difference(sides: Sides) -> None:
    await sides.edn.put_many([("a/1", 1), ("a/2", [1, 2]), ("a/3", "same")])
    await sides.sqlite.put_many([("a/2", (1, 2)), ("a/3", "same"), ("b/1", None)])
    comparison = await compare_stores(sides.edn, sides.sqlite, left_name="edn", right_name="db")
    assert comparison.only_left == ("a/1",)
    assert comparison.only_right == ("b/1",)
    assert comparison.different == ("a/2",)  # a vector is not a list in EDN
    assert comparison.common == 2
    assert not comparison.clean
    assert comparison.mismatched_keys == ("a/1", "a/2", "b/1")
    assert comparison.summary() == (
        "1 only in edn (a/1); 1 only in db (b/1); 1 with different values (a/2); "
        "2 keys on both sides"
    )
    assert (await compare_stores(sides.edn, sides.edn)).clean


async def test_a_router_that_cannot_read_its_mode_refuses_to_open(tmp_path: Path) -> None:
    sides = Sides(tmp_path)
    await sides.edn.open()
    await sides.sqlite.open()
    await sides.sqlite.connection.close()
    with pytest.raises(StoreError, match="cannot read the store mode"):
        await sides.router.open()
    await sides.close()


@pytest.mark.parametrize("mode", [Mode.DUAL_WRITE, Mode.SQLITE_FIRST])
async def test_a_restart_gives_the_edn_file_what_sqlite_committed_after_it(
    sides: Sides, mode: Mode
) -> None:
    router = sides.router
    await router.switch_mode(mode)
    await router.put_many([("a/1", 1), ("a/2", 2), ("a/3", 3)])
    await sides.close()
    # What a kill between SQLite's commit and the EDN file's flush leaves:
    # SQLite has changes the file never received.
    async with SqliteStore(sides.db_path) as sqlite:
        await sqlite.put("a/1", "newer")
        await sqlite.delete("a/2")
        await sqlite.put("a/4", 4)
    router = await sides.restart()
    expected = {"a/1": "newer", "a/3": 3, "a/4": 4}
    assert dict(await router.edn.scan("a/")) == expected
    assert {k.text: v for k, v in loads(sides.edn_path.read_text()).items()} == expected
    assert (await router.validate()).clean


async def test_a_restart_keeps_edn_values_sqlite_is_known_to_lack(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await router.put("a/1", 1)
    await break_sqlite_writes(sides.db_path)
    await router.put("a/1", "only in edn")  # SQLite fails: the key joins the backlog
    await heal_sqlite_writes(sides.db_path)
    # A crash: the stores end without the router recording the EDN level, so
    # SQLite's a/1 = 1 counts as a change the file may have missed.
    await sides.edn.aclose()
    await sides.sqlite.aclose()
    await router.aclose()
    router = await sides.restart()
    assert await router.get("a/1") == "only in edn"
    await router.wait_repaired()
    assert await sides.sqlite.get("a/1") == "only in edn"


async def test_a_first_open_in_dual_write_never_empties_an_edn_file_sqlite_lacks(
    tmp_path: Path,
) -> None:
    edn_path = tmp_path / "memory.edn"
    edn_path.write_text("{:a/1 1, :a/2 2}", encoding="utf-8")
    edn, sqlite = EdnFileStore(edn_path), SqliteStore(tmp_path / "garrison.db")
    async with edn, sqlite, ModeRouter(edn, sqlite, default_mode=Mode.DUAL_WRITE) as router:
        assert dict(await router.scan()) == {"a/1": 1, "a/2": 2}


async def test_switching_back_to_dual_write_refuses_a_stale_edn_side(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await router.switch_mode(Mode.SQLITE_FIRST)
    await router.put_many([(f"a/{i}", i) for i in range(8)])
    await sides.close()
    # The file loses keys behind garrison's back (an operator's edit, a restored copy).
    sides.edn_path.write_text("{:a/0 0, :a/1 -1}", encoding="utf-8")
    router = await sides.restart()
    assert await router.get("a/5") == 5  # sqlite-first reads SQLite
    with pytest.raises(ValidationError, match=r"differ on 7 keys .*\(a/1, a/2, a/3, a/4, a/5, …\)"):
        await router.switch_mode(Mode.DUAL_WRITE)
    assert router.mode is Mode.SQLITE_FIRST
    forced = await router.switch_mode(Mode.DUAL_WRITE, force=True)
    assert forced.forced
    assert forced.validation is not None
    assert "6 only in sqlite" in forced.validation


async def test_a_restored_backup_never_levels_the_edn_file_back_after_a_crash(
    sides: Sides, tmp_path: Path
) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await router.put("a/1", "old")
    backup = await sides.sqlite.backup(tmp_path / "backup.db")
    await router.put("a/1", "new")
    await router.restore_sqlite(backup)  # what the database's Restore message does
    # A crash: the stores end without the router recording the EDN level.
    await sides.edn.aclose()
    await sides.sqlite.aclose()
    await router.aclose()
    router = await sides.restart()
    assert await router.get("a/1") == "new"


async def test_a_clear_sqlite_missed_is_not_undone_by_a_crash(sides: Sides) -> None:
    router = sides.router
    await router.switch_mode(Mode.DUAL_WRITE)
    await router.wait_repaired()
    await router.put_many([("a/1", 1), ("a/2", 2)])
    await break_sqlite_writes(sides.db_path)
    await router.clear()  # EDN is cleared; SQLite fails and keeps both keys
    await sides.edn.flush()
    # A crash before any repair: the stores end without the router recording
    # the EDN level, and SQLite still refuses writes when the router reopens.
    await sides.edn.aclose()
    await sides.sqlite.aclose()
    await router.aclose()
    router = await sides.restart()
    assert await router.count() == 0  # SQLite's two keys are older than the clear
    await heal_sqlite_writes(sides.db_path)
    await router.wait_repaired()
    assert await sides.sqlite.count() == 0
