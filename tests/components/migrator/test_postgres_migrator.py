"""The migrator into PostgreSQL, on a real server: by message in a runtime, from the
command line, resumable, and judged by Clojure on a file Clojure wrote."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from garrison import open_runtime
from garrison.cli import main
from garrison.components.database import Store, open_sqlite_owner
from garrison.components.migrator import (
    PROGRESS_META,
    Export,
    Migrate,
    MigrationProgress,
    MigratorComponent,
    Validate,
)
from garrison.edn import Keyword, loads
from garrison.health import evaluate
from garrison.stores import PostgresStore
from tests._clojure import require_clojure, run_clojure

from .conftest import MEMORY_EDN, write_sessions
from .test_clojure_round_trip import COMPARE, WRITE

if TYPE_CHECKING:
    from pathlib import Path


class _InterruptedError(Exception):
    pass


async def test_resume_conflicts_and_overwrite_on_postgresql(
    postgres_dsn: str, tmp_path: Path
) -> None:
    from garrison.components.migrator import migrate, validate

    path = tmp_path / "memory.edn"
    write_sessions(path, 50)

    def stop_after_two_batches(progress: MigrationProgress) -> None:
        if progress.phase == "migrate" and progress.done >= 20:
            raise _InterruptedError

    async with PostgresStore(postgres_dsn) as store, open_sqlite_owner(store) as link:
        with pytest.raises(_InterruptedError):
            await migrate(link, path, batch_size=10, listener=stop_after_two_batches)
        record: Any = await store.get_meta(PROGRESS_META)
        assert (record["done"], record["finished"]) == (20, False)
        assert await store.count() == 20

    async with PostgresStore(postgres_dsn) as store, open_sqlite_owner(store) as link:
        resumed = await migrate(link, path, batch_size=10, resume=True)
        assert (resumed.resumed_from, resumed.written) == (20, 30)
        assert (await validate(link, path)).agree
        assert (await store.get_meta(PROGRESS_META))["finished"]
        # The application changed a key: a conflict, left alone, until --overwrite.
        changed = "session/k000001"
        await store.put(changed, {Keyword("id"): -1})
        again = await migrate(link, path, batch_size=10)
        assert again.conflicts == [changed]
        assert again.unchanged == 49
        assert not (await validate(link, path)).agree
        overwritten = await migrate(link, path, batch_size=10, overwrite=True)
        assert overwritten.written == 1
        assert (await validate(link, path)).agree
        assert [c.version for c in await store.history(changed)] == [1, 2, 3]
        assert (await store.history(changed))[0].actor is not None


async def test_the_migrator_component_migrates_into_postgresql(
    postgres_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "memory.edn").write_text(MEMORY_EDN, encoding="utf-8")
    config = {
        "runtime": {"data_dir": str(tmp_path), "stop_timeout": 10.0},
        "components": {
            "database": {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"},
            "migrator": {"auto": "blocking"},
        },
    }
    async with open_runtime(config, environ={}) as rt:
        component = rt.component("migrator")
        assert isinstance(component, MigratorComponent)
        job = component.current_job
        assert job is not None  # the automatic run: migrate, then validate
        await job.result()
        assert (await evaluate(rt, "startup")).status == "pass"
        assert (await rt.get(Store).get("presence/s-1"))[Keyword("online?")] is True
        migrator = rt.ref("migrator")
        assert (await (await migrator.ask(Validate())).result()).agree
        rerun = await (await migrator.ask(Migrate())).result()
        assert (rerun.written, rerun.unchanged) == (0, 11)
        # An overwriting run reaches the read cache and the watchers.
        store = rt.get(Store)
        await store.put("project/p1", "the database's older value")
        assert await store.get("project/p1") == "the database's older value"  # cached now
        async with store.watch("project/") as changes:
            job = await migrator.ask(Migrate(prefixes=("project",), overwrite=True))
            assert (await job.result()).overwritten == 1
            fresh = await store.get("project/p1")
            assert fresh[Keyword("name")] == "Zürich"
            seen = await anext(aiter(changes))
            assert (seen.key, seen.op, seen.value) == ("project/p1", "put", fresh)
        exported = await (await migrator.ask(Export(path="rollback.edn"))).result()
        assert exported.keys == 11
    assert loads((tmp_path / "rollback.edn").read_text("utf-8")).keys() == (
        loads(MEMORY_EDN).keys()
    )
    async with PostgresStore(postgres_dsn) as database:
        assert await database.count() == 11
        assert not (tmp_path / "garrison.db").exists()


def test_the_commands_take_a_postgresql_dsn_or_the_configs_backend(
    postgres_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edn = tmp_path / "memory.edn"
    edn.write_text(MEMORY_EDN, encoding="utf-8")
    assert main(["migrate", "--edn", str(edn), "--db", postgres_dsn, "--validate"]) == 0
    out = capsys.readouterr().out
    assert "written 11" in out
    assert "backup of the database: none (PostgreSQL: back it up with pg_dump)" in out
    assert (tmp_path / "garrison.db").exists() is False
    # From the config: backend and dsn, --db left out.
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path}"\n\n[components.database]\n'
        f'backend = "postgresql"\ndsn = "{postgres_dsn}"\nmode = "sqlite-only"\n\n'
        '[components.database.schema.session]\n":user" = { indexed = true }\n',
        encoding="utf-8",
    )
    assert main(["migrate", "--config", str(config), "--json"]) == 0
    assert '"unchanged": 11' in capsys.readouterr().out
    # The configured schema's declared attribute is indexed: Datalog reads it.
    query = "[:find ?s :where [?s :user :user/u1]]"
    assert main(["query", query, "--config", str(config)]) == 0
    assert capsys.readouterr().out == '["session/abc"]\n'
    assert main(["validate", "--config", str(config)]) == 0
    exported = tmp_path / "exported.edn"
    assert main(["export", "--config", str(config), "--edn", str(exported)]) == 0
    assert loads(exported.read_text("utf-8")) == loads(MEMORY_EDN)
    # A key changed in the database: validate says so (exit 1).
    assert main(["put", "cache/k1", "1", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["validate", "--config", str(config)]) == 1
    assert "cache/k1" in capsys.readouterr().out


@pytest.mark.clojure
def test_a_clojure_written_file_migrated_into_postgresql_reads_back_the_same_in_clojure(
    postgres_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_clojure()
    original = tmp_path / "memory.edn"
    exported = tmp_path / "exported.edn"
    assert run_clojure(WRITE, original) == "written\n"
    args = ["--edn", str(original), "--db", postgres_dsn]
    assert main(["migrate", *args, "--batch-size", "3", "--no-backup"]) == 0
    assert "written 12" in capsys.readouterr().out
    assert main(["validate", *args]) == 0
    assert main(["export", "--db", postgres_dsn, "--edn", str(exported)]) == 0
    capsys.readouterr()
    assert run_clojure(COMPARE, original, exported) == "same 12\n"
    assert main(["migrate", "--edn", str(exported), "--db", postgres_dsn, "--no-backup"]) == 0
    assert "written 0, unchanged 12" in capsys.readouterr().out


async def test_a_command_line_migration_reaches_a_running_instances_watchers(
    postgres_dsn: str, tmp_path: Path
) -> None:
    edn = tmp_path / "memory.edn"
    edn.write_text(MEMORY_EDN, encoding="utf-8")
    config = {
        "runtime": {"data_dir": str(tmp_path / "instance"), "stop_timeout": 10.0},
        "components": {
            "database": {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
        },
    }
    async with open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        assert await store.get("project/p1") is None  # read (and cached) before the migration
        async with store.watch("project/") as changes:
            command = ["migrate", "--edn", str(edn), "--db", postgres_dsn, "--quiet"]
            assert await asyncio.to_thread(main, [*command, "--no-backup"]) == 0
            seen = await asyncio.wait_for(anext(aiter(changes)), 30)
            assert (seen.key, seen.op) == ("project/p1", "put")
        assert (await store.get("project/p1"))[Keyword("name")] == "Zürich"
