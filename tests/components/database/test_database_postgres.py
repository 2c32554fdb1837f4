"""The database component on PostgreSQL: the same runtime, facade and messages.

Runs on the real server the suite starts (tests/_postgres.py); skipped without
one unless ``GARRISON_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from garrison import ConfigError, StoreError, VersionConflictError, open_runtime
from garrison.components.database import DatabaseComponent, Store
from garrison.edn import Keyword
from garrison.health import evaluate
from garrison.runtime import HealthStatus
from garrison.stores import MISSING, PostgresStore, acting_as
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from tests._postgres import PostgresServer


async def test_the_component_runs_on_postgresql_through_the_facade(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with database_runtime(
        tmp_path,
        backend="postgresql",
        dsn=postgres_dsn,
        mode="sqlite-only",
        schema={"cache": {"n": {"indexed": True}}},
    ) as rt:
        component = rt.component("database")
        assert isinstance(component, DatabaseComponent)
        assert isinstance(component.router.sqlite, PostgresStore)
        store = rt.get(Store)
        async with store.watch("s/") as changes:
            await store.put("s/1", {"n": 1})
            with acting_as("user:7", reason="edit"):
                await store.put("s/1", {"n": 2}, if_version=1)
            with pytest.raises(VersionConflictError, match="at version 2"):
                await store.put("s/1", {"n": 3}, if_version=1)
            await store.put_many([("s/2", 2), ("s/3", 3)])
            assert await store.delete("s/3") is True
            seen = []
            async for change in changes:
                seen.append((change.op, change.key, change.value))
                if change.op == "delete":
                    break
        assert seen == [
            ("put", "s/1", {"n": 1}),
            ("put", "s/1", {"n": 2}),
            ("put", "s/2", 2),
            ("put", "s/3", 3),
            ("delete", "s/3", MISSING),
        ]
        assert await store.get("s/1") == {"n": 2}
        assert await store.scan("s/") == [("s/1", {"n": 2}), ("s/2", 2)]
        history = await store.history("s/1")
        assert [(c.version, c.actor, c.reason) for c in history] == [
            (1, "app", None),
            (2, "user:7", "edit"),
        ]
        assert await store.get_as_of("s/1", history[0].at) == {"n": 1}
        # Datalog over the attribute index ("n" is declared indexed below).
        assert await store.query('[:find ?e ?v :where [?e "n" ?v]]') == [("s/1", 2)]
        health = await component.check_health()
        assert health.status is HealthStatus.PASS, health
        assert health.observed["ping_ms"] >= 0
        assert health.observed["change_listener"] == "connected"
        assert (await evaluate(rt, "ready")).status is HealthStatus.PASS
        # db-only on PostgreSQL takes no lock (a held lock is a file beside its target).
        assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.lock")))


async def test_instances_share_the_database_in_sqlite_only_mode(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        await first.get(Store).put("shared/k", "from a")
        assert await second.get(Store).get("shared/k") == "from a"
        await second.get(Store).put("shared/k", "from b", if_version=1)
        with pytest.raises(VersionConflictError, match="at version 2"):
            await first.get(Store).put("shared/k", "lost", if_version=1)


async def test_a_second_instance_cannot_write_the_same_edn_file(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "dual-write"}
    async with database_runtime(tmp_path, **options) as rt:
        await rt.get(Store).put("k", 1)
        assert await asyncio.to_thread(lambda: [p.name for p in tmp_path.glob("*.lock")]) == [
            "memory.edn.lock"
        ]
        with pytest.raises(Exception, match="another garrison instance writes this EDN file"):
            async with database_runtime(tmp_path, **options):
                pass


async def test_the_dsn_comes_from_the_environment_and_needs_the_backend(
    tmp_path: Path, postgres_dsn: str
) -> None:
    config = {"runtime": {"data_dir": str(tmp_path)}, "components": {"database": {}}}
    environ = {
        "GARRISON_COMPONENTS__DATABASE__BACKEND": "postgresql",
        "GARRISON_COMPONENTS__DATABASE__DSN": postgres_dsn,
        "GARRISON_COMPONENTS__DATABASE__MODE": "sqlite-only",
    }
    async with open_runtime(config, environ=environ) as rt:
        await rt.get(Store).put("env/k", 1)
        component = rt.component("database")
        assert isinstance(component, DatabaseComponent)
        assert isinstance(component.router.sqlite, PostgresStore)
    with pytest.raises(ConfigError, match='dsn is for backend = "postgresql"'):
        async with open_runtime({"components": {"database": {"dsn": postgres_dsn}}}, environ={}):
            pass


async def _next_changes(watch: Any, count: int) -> list[tuple[str, str, Any]]:
    seen: list[tuple[str, str, Any]] = []
    async with asyncio.timeout(10):
        async for change in watch:
            seen.append((change.op, change.key, change.value))
            if len(seen) == count:
                return seen
    return seen


async def test_changes_of_other_instances_reach_watchers_and_caches_in_commit_order(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", cache_size=100, **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        async with b.watch("x/") as changes:
            await a.put("x/cached", "old")
            assert await _next_changes(changes, 1) == [("put", "x/cached", "old")]
            assert await b.get("x/cached") == "old"  # now in b's read cache
            await a.put("x/cached", "new")
            await a.put_many([("x/1", 1), ("x/2", 2)])
            await b.put("x/own", "b's own")  # published once, by b itself
            await a.delete("x/1")
            seen = await _next_changes(changes, 5)
        assert sorted(seen, key=repr) == sorted(
            [
                ("put", "x/cached", "new"),
                ("put", "x/1", 1),
                ("put", "x/2", 2),
                ("put", "x/own", "b's own"),
                ("delete", "x/1", MISSING),
            ],
            key=repr,
        )
        others = [change for change in seen if change[1] != "x/own"]
        assert others == [
            ("put", "x/cached", "new"),
            ("put", "x/1", 1),
            ("put", "x/2", 2),
            ("delete", "x/1", MISSING),
        ]
        assert await b.get("x/cached") == "new"  # the cache followed the change


async def test_own_commits_cost_no_catch_up_read_and_interleaved_changes_arrive_once(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        async with b.watch("w/") as changes:
            before = (await b.statistics()).catch_up_reads
            for i in range(20):
                await b.put(f"w/own{i}", i)  # 20 commits of b's own
            assert await _next_changes(changes, 20) == [("put", f"w/own{i}", i) for i in range(20)]
            await a.put("w/a0", "a")
            assert await _next_changes(changes, 1) == [("put", "w/a0", "a")]
            # Notifications arrive in commit order: b's listener has passed its
            # own 20 commits without a read, then read once for a's (the read
            # that finds a's change and the one that finds nothing after it).
            assert (await b.statistics()).catch_up_reads - before == 2
            # Interleaved: b publishes its own changes when it writes them, the
            # catch-ups publish a's; each arrives exactly once.
            expected = []
            for i in range(10):
                await a.put(f"w/a{i + 1}", i)
                await b.put(f"w/b{i}", i)
                await a.put_many([(f"w/m{i}", i), (f"w/n{i}", i)])
                await b.delete(f"w/own{i}")
                expected += [
                    ("put", f"w/a{i + 1}", i),
                    ("put", f"w/b{i}", i),
                    ("put", f"w/m{i}", i),
                    ("put", f"w/n{i}", i),
                    ("delete", f"w/own{i}", MISSING),
                ]
            seen = await _next_changes(changes, len(expected))
            await a.put("w/last", "end")  # after it nothing else may arrive
            seen += await _next_changes(changes, 1)
        assert sorted(seen, key=repr) == sorted([*expected, ("put", "w/last", "end")], key=repr)
        others = [change for change in seen if change[1].startswith(("w/a", "w/m", "w/n", "w/l"))]
        assert others == [c for c in expected if c[1].startswith(("w/a", "w/m", "w/n"))] + [
            ("put", "w/last", "end")
        ]
        assert await b.get("w/a10") == 9


async def test_another_instances_mode_switch_makes_this_one_refuse_writes(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        await b.put("m/k", "before")
        await a.set_mode("dual-write", force=True, reason="test")
        refused = None
        async with asyncio.timeout(10):
            while refused is None:  # until b's listener has seen the switch
                try:
                    await b.put("m/other", "in the old mode")
                except StoreError as exc:
                    refused = exc
                await asyncio.sleep(0.01)
        assert "another instance switched the mode to dual-write under this instance" in str(
            refused
        )
        assert "(running sqlite-only)" in str(refused)
        for write in (b.delete("m/k"), b.clear("m/"), b.put_many([("m/x", 1)])):
            with pytest.raises(StoreError, match="refuses writes"):
                await write
        assert await b.get("m/k") == "before"  # reads go on
        async with b.watch("m/") as changes:
            await a.put("m/k", "from a")  # the instance in the recorded mode writes
            assert await _next_changes(changes, 1) == [("put", "m/k", "from a")]
        assert await b.get("m/k") == "from a"


async def test_a_schema_1_database_is_upgraded_to_notifications_naming_their_origin(
    postgres_dsn: str,
) -> None:
    async with PostgresStore(postgres_dsn) as store:
        await store.put("u/k", 1)
    admin = await asyncpg.connect(postgres_dsn)
    try:
        # Back to schema 1: its notifications carried nothing.
        await admin.execute(
            """CREATE OR REPLACE FUNCTION garrison_notify() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('garrison_changes', '');
            RETURN NULL; END $$"""
        )
        await admin.execute("UPDATE garrison_store SET schema_version = 1")
        payloads: asyncio.Queue[str] = asyncio.Queue()
        await admin.add_listener("garrison_changes", lambda *args: payloads.put_nowait(args[3]))
        async with PostgresStore(postgres_dsn) as store:
            assert await admin.fetchval("SELECT schema_version FROM garrison_store") == 2
            await store.put("u/k", 2)
            await store.record_event("an event")
            async with asyncio.timeout(10):
                put, event = await payloads.get(), await payloads.get()
            origin, first_seq = put.split(" ")
            assert origin == store.origin
            assert int(first_seq) == await store.last_seq()
            assert event == f"{store.origin} {int(first_seq) + 1} event"
    finally:
        await admin.close()


async def test_a_lost_listening_connection_loses_no_change_and_repeats_none(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        async with b.watch("y/") as changes:
            await a.put("y/0", 0)
            assert await _next_changes(changes, 1) == [("put", "y/0", 0)]
            admin = await asyncpg.connect(postgres_dsn)
            try:
                # Cut every listening connection (as a server restart does), then
                # write while nobody listens.
                cut = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
                assert len(cut) == 2  # both instances' listeners
            finally:
                await admin.close()
            for i in range(1, 6):
                await a.put(f"y/{i}", i)
            seen = await _next_changes(changes, 5)
        assert seen == [("put", f"y/{i}", i) for i in range(1, 6)]
        component = second.component("database")
        assert isinstance(component, DatabaseComponent)
        health = await component.check_health()
        assert health.observed["change_listener"] == "connected"


async def test_writes_of_another_process_reach_this_instance_in_order(
    tmp_path: Path, postgres_dsn: str
) -> None:
    # `garrison put` runs the database component in a process of its own: a
    # second instance, whose commits this one learns of only through PostgreSQL.
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "other"}"\n\n[components.database]\n'
        f'backend = "postgresql"\ndsn = "{postgres_dsn}"\nmode = "sqlite-only"\n',
        encoding="utf-8",
    )
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with database_runtime(tmp_path / "here", **options) as rt:
        async with rt.get(Store).watch("p/") as changes:
            for i in range(2):
                put = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "garrison.cli",
                    "put",
                    f"p/{i}",
                    str(i),
                    "--config",
                    str(config),
                )
                assert await asyncio.wait_for(put.wait(), 60) == 0
            seen = await _next_changes(changes, 2)
        assert seen == [("put", f"p/{i}", i) for i in range(2)]
        history = await rt.get(Store).changes(prefix="p/")
        assert {change.actor for change in history} == {f"cli:{getpass.getuser()}"}


async def test_debounced_writes_are_committed_to_postgresql_by_a_clean_stop(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {
        "backend": "postgresql",
        "dsn": postgres_dsn,
        "mode": "sqlite-only",
        "durability": "debounced",
        "flush_quiet_period": 60.0,
        "flush_max_delay": 60.0,
    }
    async with database_runtime(tmp_path, **options) as rt:
        await rt.get(Store).put_many([("d/1", 1), ("d/2", 2)])
        await rt.get(Store).delete("d/1")
        async with PostgresStore(postgres_dsn) as outside:
            assert await outside.keys("d/") == []  # acknowledged, not committed yet
    async with PostgresStore(postgres_dsn) as outside:
        assert await outside.scan("d/") == [("d/2", 2)]


async def test_a_server_restart_fails_readiness_then_writes_and_watchers_resume(
    tmp_path: Path, postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    if not postgres_server.restartable:
        pytest.skip("a server named by GARRISON_TEST_POSTGRES_DSN is not restarted by tests")
    options = {"backend": "postgresql", "dsn": postgres_dsn, "mode": "sqlite-only"}
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        component = first.component("database")
        assert isinstance(component, DatabaseComponent)
        async with b.watch("f/") as changes:
            await a.put("f/0", 0)
            assert await _next_changes(changes, 1) == [("put", "f/0", 0)]
            await asyncio.to_thread(postgres_server.pg_ctl, "stop", "-m", "fast")
            try:
                down = await component.check_health()
                assert down.status is HealthStatus.FAIL
                assert "PostgreSQL ping failed" in down.output
                assert (await evaluate(first, "ready")).status is HealthStatus.FAIL
                with pytest.raises(StoreError, match="failed with"):
                    await a.put("f/refused", 1)
            finally:
                await asyncio.to_thread(postgres_server.pg_ctl, "start")
            await a.put("f/1", 1)  # the pool replaced its connections by itself
            await a.put("f/2", 2)
            assert await _next_changes(changes, 2) == [("put", "f/1", 1), ("put", "f/2", 2)]
        # (readiness itself caches a result for its cache_ttl)
        assert (await component.check_health()).status is not HealthStatus.FAIL
        assert await b.get("f/refused") is None


async def test_another_instances_commit_reaches_cached_answers_and_live_queries(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {
        "backend": "postgresql",
        "dsn": postgres_dsn,
        "mode": "sqlite-only",
        "schema": {"cache": {":doc/owner": {"indexed": True}}},
    }
    query = "[:find ?d :in $ ?o :where [?d :doc/owner ?o]]"
    async with (
        database_runtime(tmp_path / "a", **options) as first,
        database_runtime(tmp_path / "b", **options) as second,
    ):
        a, b = first.get(Store), second.get(Store)
        await a.put("doc/1", {Keyword("doc/owner"): "u1"})
        live = b.subscribe(query, "u1")
        assert await anext(live) == [("doc/1",)]
        assert await b.query(query, "u1") == [("doc/1",)]  # now cached in b
        async with b.watch("doc/") as changes:
            await a.put("doc/2", {Keyword("doc/owner"): "u1"})
            await _next_changes(changes, 1)  # the change has arrived in b
        assert sorted(await b.query(query, "u1")) == [("doc/1",), ("doc/2",)]
        assert sorted(await anext(live)) == [("doc/1",), ("doc/2",)]
