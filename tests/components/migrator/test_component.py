"""MigratorComponent in a real runtime on the database component's store."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from garrison import open_runtime
from garrison.components.database import DatabaseLink, Store
from garrison.components.migrator import (
    Export,
    Migrate,
    MigrationJob,
    MigrationSummary,
    MigratorComponent,
    Status,
    Validate,
    ValidationReport,
)
from garrison.edn import Keyword, loads
from garrison.exceptions import EdnSyntaxError, StoreError
from garrison.health import evaluate

from .conftest import MEMORY_EDN, write_sessions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from garrison import Runtime


@contextlib.asynccontextmanager
async def migrator_runtime(data_dir: Path, **migrator: Any) -> AsyncIterator[Runtime]:
    """database (sqlite-only, its EDN file is memory.edn in data_dir) + migrator."""
    config = {
        "runtime": {"data_dir": str(data_dir), "stop_timeout": 10.0},
        "components": {"database": {"mode": "sqlite-only"}, "migrator": migrator},
    }
    async with open_runtime(config, environ={}) as rt:
        yield rt


def _job(rt: Runtime) -> MigrationJob | None:
    migrator = rt.component("migrator")
    assert isinstance(migrator, MigratorComponent)
    return migrator.current_job


async def test_migrate_validate_export_by_message(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    async with migrator_runtime(tmp_path) as rt:
        migrator = rt.ref("migrator")

        job = await migrator.ask(Migrate(prefixes=("session", "presence"), validate=True))
        assert isinstance(job, MigrationJob)
        summary, report = await job.result()

        assert isinstance(summary, MigrationSummary)
        assert summary.written == 2
        assert isinstance(report, ValidationReport)
        assert report.agree
        # The data is in the database component's store, readable through its facade.
        assert (await rt.get(Store).get("presence/s-1"))[Keyword("online?")] is True

        everything = await (await migrator.ask(Migrate())).result()
        assert everything.written == 9
        assert everything.unchanged == 2
        assert (await (await migrator.ask(Validate())).result()).agree

        exported = await (await migrator.ask(Export(path="rollback.edn"))).result()
        assert exported.keys == 11
        assert loads((tmp_path / "rollback.edn").read_text("utf-8")).keys() == (
            loads(MEMORY_EDN).keys()
        )
        status = await migrator.ask(Status())
        assert status["running"] is False
        assert status["last"]["operation"] == "export"
        assert status["progress"]["phase"] == "done"


async def test_a_failed_job_is_reported_not_a_crash(tmp_path: Path) -> None:
    # Not the database component's own EDN file: that one must parse for it to start.
    (tmp_path / "legacy.edn").write_text("{:session/a [1 2}", encoding="utf-8")
    async with migrator_runtime(tmp_path, edn_path="legacy.edn") as rt:
        job = await rt.ref("migrator").ask(Migrate())

        with pytest.raises(EdnSyntaxError, match=r"legacy\.edn:1:17"):
            await job.result()

        report = await evaluate(rt, "ready")
        migrator_health = report.check("migrator")
        assert migrator_health.status == "warn"
        assert "last migrate failed" in migrator_health.output
        assert rt.state("migrator") == "running"


async def test_one_job_at_a_time_and_status_answers_while_it_runs(tmp_path: Path) -> None:
    write_sessions(tmp_path / "memory.edn", 5_000)
    async with migrator_runtime(tmp_path) as rt:
        migrator = rt.ref("migrator")
        job = await migrator.ask(Migrate(batch_size=50))

        with pytest.raises(StoreError, match="busy with a migrate"):
            await migrator.ask(Validate())
        status = await migrator.ask(Status())
        assert status["running"] is True
        assert status["progress"]["operation"] == "migrate"

        summary = await job.result()
        assert summary.written == 5_000


async def test_auto_background_is_ready_at_once_and_shows_progress_in_health(
    tmp_path: Path,
) -> None:
    write_sessions(tmp_path / "memory.edn", 5_000)
    async with migrator_runtime(tmp_path, auto="background", batch_size=50) as rt:
        ready = await evaluate(rt, "ready")
        assert ready.status != "fail"
        assert (await evaluate(rt, "startup")).status == "pass"
        observed = (await evaluate(rt, "ready")).check("migrator").observed
        assert observed["migration_operation"] == "migrate"

        job = _job(rt)  # the automatic job
        assert job is not None
        summary, report = await job.result()

        assert summary.written == 5_000
        assert report.agree
        health = (await evaluate(rt, "ready")).check("migrator")
        assert health.status == "pass"
        assert job.progress.phase == "done"


async def test_auto_blocking_holds_startup_until_migrated_and_validated(tmp_path: Path) -> None:
    write_sessions(tmp_path / "memory.edn", 5_000)
    async with migrator_runtime(tmp_path, auto="blocking", batch_size=50) as rt:
        assert (await evaluate(rt, "startup")).status == "fail"
        job = _job(rt)
        assert job is not None
        await job.result()

        assert (await evaluate(rt, "startup")).status == "pass"
        assert await rt.get(Store).count() == 5_000


async def test_auto_blocking_with_conflicts_never_completes_startup(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    async with migrator_runtime(tmp_path) as rt:
        await rt.get(Store).put("project/p1", "different")
    async with migrator_runtime(tmp_path, auto="blocking") as rt:
        job = _job(rt)
        assert job is not None
        with pytest.raises(Exception, match="hold different data"):
            await job.result()

        assert (await evaluate(rt, "startup")).status == "fail"
        health = (await evaluate(rt, "ready")).check("migrator")
        assert health.status == "fail"
        assert "automatic migrate failed" in health.output
        assert await rt.get(Store).get("project/p1") == "different"


async def test_export_over_the_database_components_own_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    async with migrator_runtime(tmp_path) as rt:
        with pytest.raises(StoreError, match="the database component's own EDN file"):
            await rt.ref("migrator").ask(Export())
        with pytest.raises(StoreError, match="own EDN file"):
            await rt.ref("migrator").ask(Export(path="memory.edn"))

    assert (tmp_path / "memory.edn").read_text(encoding="utf-8") == MEMORY_EDN


async def test_auto_blocking_without_a_legacy_file_completes_startup(tmp_path: Path) -> None:
    async with migrator_runtime(tmp_path, auto="blocking") as rt:
        job = _job(rt)
        assert job is not None
        assert await job.result() == (None, None)

        assert (await evaluate(rt, "startup")).status == "pass"
        assert (await evaluate(rt, "ready")).check("migrator").status == "pass"


async def test_online_migration_in_dual_write_while_the_application_writes(
    tmp_path: Path,
) -> None:
    keys = write_sessions(tmp_path / "memory.edn", 3_000)
    config = {
        "runtime": {"data_dir": str(tmp_path), "stop_timeout": 10.0},
        "components": {
            "database": {"mode": "dual-write", "flush_quiet_period": 0.01},
            "migrator": {"batch_size": 100},
        },
    }
    async with open_runtime(config, environ={}) as rt:
        job = await rt.ref("migrator").ask(Migrate())
        # The application keeps writing (to both sides) while the copy runs.
        changed = list(keys)[::50]
        for key in changed:
            await rt.get(Store).put(key, {Keyword("id"): -1, Keyword("pad"): "changed"})
        summary = await job.result()
        await rt.get(Store).flush()

        assert summary.written + summary.unchanged + len(summary.conflicts) == 3_000
        # Conflicts and races are only ever keys the application changed meanwhile.
        assert set(summary.conflicts) <= set(changed)
        assert set(summary.raced) <= set(changed)
        # A key written between the migrator's read and its write is reported as
        # raced and queued for the router's repair, which gives SQLite EDN's
        # (newer) value: once it ran, both sides agree with nothing to settle.
        await DatabaseLink(rt.ref("database"), "garrison.db").wait_repaired()
        report = await (await rt.ref("migrator").ask(Validate())).result()
        assert report.agree, report.render()
        assert (await rt.get(Store).get(changed[0]))[Keyword("pad")] == "changed"


async def test_an_overwriting_migration_is_read_fresh_and_seen_by_watchers(
    tmp_path: Path,
) -> None:
    # The database reads SQLite (sqlite-only) and caches what it read: a
    # migration that overwrites a key must reach the cache and the watchers,
    # since it writes through the database actor like any other writer.
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    async with migrator_runtime(tmp_path, overwrite=True) as rt:
        await rt.get(Store).put("project/p1", "the database's older value")
        assert await rt.get(Store).get("project/p1") == "the database's older value"  # cached now
        async with rt.get(Store).watch("project/") as changes:
            job = await rt.ref("migrator").ask(Migrate(prefixes=("project",)))
            summary = await job.result()
            assert summary.overwritten == 1

            fresh = await rt.get(Store).get("project/p1")
            assert isinstance(fresh, dict)
            assert fresh[Keyword("name")] == "Zürich"
            seen = await anext(aiter(changes))
            assert (seen.key, seen.op) == ("project/p1", "put")
            assert seen.value == fresh


async def test_migrated_and_live_writes_take_the_databases_one_kind_mapping(
    tmp_path: Path,
) -> None:
    import sqlite3

    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    kinds = {"namespaces": {"presence": "presence"}, "default": "misc"}
    config = {
        "runtime": {"data_dir": str(tmp_path), "stop_timeout": 10.0},
        "components": {"database": {"mode": "sqlite-only", "kinds": kinds}, "migrator": {}},
    }
    async with open_runtime(config, environ={}) as rt:
        summary = await (await rt.ref("migrator").ask(Migrate())).result()
        assert summary.by_kind["presence"] == 1
        store = rt.get(Store)
        await store.put("presence/s-1", {Keyword("online?"): False})  # a live rewrite
        await store.put("presence/s-2", {Keyword("online?"): True})
        await store.put("other/x", 1)
    with contextlib.closing(sqlite3.connect(tmp_path / "garrison.db")) as conn:
        stored = dict(conn.execute("SELECT key, kind FROM entries"))
    assert stored["presence/s-1"] == stored["presence/s-2"] == "presence"
    assert stored["other/x"] == "misc"
    assert stored["session/abc"] == "session"  # the legacy plan's, merged under the change


async def test_a_bad_kind_mapping_stops_the_start_naming_it(tmp_path: Path) -> None:
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"database": {"kinds": {"namespaces": {"presence": ""}}}},
    }
    with pytest.raises(Exception, match="kind") as info:
        async with open_runtime(config, environ={}):
            pass
    assert "components.database.kinds" in str(info.value)


async def test_auto_blocking_drops_the_hand_kept_index_keys_when_configured(
    tmp_path: Path,
) -> None:
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    async with migrator_runtime(tmp_path, auto="blocking", index_keys="drop") as rt:
        job = _job(rt)
        assert job is not None
        summary, report = await job.result()
        assert summary.dropped_index_keys == ["learning/index", "learning/tag-index"]
        assert report is not None
        assert report.agree  # the dropped keys are expected missing
        assert (await evaluate(rt, "startup")).status == "pass"
        store = rt.get(Store)
        assert await store.get("learning/tag-index", None) is None
        assert await store.get("learning/r1") is not None
