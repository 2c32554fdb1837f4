"""The store contract, run against both database stores: SQLite and PostgreSQL.

Every test takes ``store`` (or ``open_store``), parametrised over the two
backends; PostgreSQL runs on the real server the suite starts
(``tests/_postgres.py``; skipped without one unless
``GARRISON_REQUIRE_POSTGRES=1``). What only one backend has (SQLite's file
backups and pragmas, PostgreSQL's total order across instances) is tested
beside it, in the backend's own test module or at the end here.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from garrison.edn import EdnMap, EdnSet, Keyword, loads
from garrison.exceptions import SchemaError, StoreError, VersionConflictError
from garrison.stores import (
    MISSING,
    DatabaseStore,
    EntitySchema,
    KindMapping,
    PostgresStore,
    SqliteStore,
    acting_as,
    encode_value,
)
from tests._postgres import find_binaries
from tests.stores.value_strategies import same, values

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests._postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Coroutine[Any, Any, DatabaseStore]]]:
    """Opens stores of the parametrised backend on one database (``**options`` as the
    stores take them); each open is a new store on the same data, as after a restart."""
    opened: list[DatabaseStore] = []
    server: PostgresServer | None = None
    dsn = ""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        dsn = await server.create_database()

    async def open_one(**options: Any) -> DatabaseStore:
        store: DatabaseStore
        if request.param == "postgresql":
            store = PostgresStore(dsn, **options)
        else:
            store = SqliteStore(tmp_path / "contract.db", **options)
        opened.append(store)
        return await store.open()

    try:
        yield open_one
    finally:
        for store in reversed(opened):
            await store.aclose()
        if server is not None:
            await server.drop_database(dsn)


@pytest.fixture
async def store(open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]]) -> DatabaseStore:
    """An open store of the parametrised backend, on an empty database."""
    return await open_store()


async def _rows(store: DatabaseStore, sql: str) -> list[tuple[Any, ...]]:
    """Rows of plain SQL (the same text on both backends), for what the API does not show."""
    if isinstance(store, SqliteStore):
        return [tuple(row) for row in await store.connection.execute_fetchall(sql)]
    return [tuple(row) for row in await store.pool.fetch(sql)]


# -- values ---------------------------------------------------------------------

# Values whose stored text a lossy column type would change: jsonb respells
# numbers (1e16 becomes an integer, -0.0 becomes 0.0), drops duplicate keys,
# refuses U+0000; Python's == merges 1, 1.0 and true, Clojure's = does not.
EDGE_VALUES: list[Any] = [
    1e16,
    -0.0,
    1.5e-7,
    2**63,
    -(2**63) - 1,
    math.inf,
    "nul \x00 inside",
    {"b": 1, "a": 2.0, "c": [None, True, -0.0]},
    {Keyword("session/user-id"): "u1", "title": "x"},
    {"#k": "looks like a marker"},
    *(
        loads(text)
        for text in (
            "#{1 true 1.0 1M 1/2}",
            "{0 :a false :b 0.0 :c 0M :d nil :e}",
            "[#{[1] [true]} {#{0 false} 1, #{0} 2} #{{0 [1] false [2]} 3}]",
            "{:k #{-0.0 false 0N}}",
            '#inst "2024-05-01T12:00:00.250+02:00"',
            '#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"',
            "#my/tag [1 2]",
        )
    ),
    EdnSet([1, True, 1.0]),
    EdnMap([(0, "a"), (False, "b")]),
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=lambda value: repr(value)[:40])
async def test_edge_values_read_back_exactly_everywhere(store: DatabaseStore, value: Any) -> None:
    await store.put("v/one", value)
    await store.put_many([("v/two", value)])
    assert same(await store.get("v/one"), value)
    assert all(same(got, value) for got in (await store.get_many(["v/one", "v/two"])).values())
    assert all(same(got, value) for _, got in await store.scan("v/"))
    (change,) = await store.history("v/one")
    assert same(change.value, value)
    assert same(await store.get("v/one", as_of=change.at), value)
    # Both backends store the very same text: a database moves between them as is.
    (stored,) = await _rows(store, "SELECT value FROM entries WHERE key = 'v/one'")
    assert stored[0] == encode_value(value)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=values)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # see test_values.py
async def test_every_value_reads_back_exactly(store: DatabaseStore, value: Any) -> None:
    await store.put("v/x", value)
    assert same(await store.get("v/x"), value)


# -- the key-value contract -----------------------------------------------------


async def test_put_get_delete_scan_count_and_pages(store: DatabaseStore) -> None:
    await store.put_many([(f"s/{i:02}", i) for i in range(10)] + [("t/1", None), ("u", "x")])
    assert await store.get("t/1", "default") is None
    assert await store.get("missing", MISSING) is MISSING
    assert await store.count() == 12
    assert await store.count("s/") == 10
    first = await store.scan("s/", limit=4)
    assert [key for key, _ in first] == ["s/00", "s/01", "s/02", "s/03"]
    rest = await store.scan("s/", after=first[-1][0])
    assert [value for _, value in rest] == list(range(4, 10))
    assert await store.keys("t/") == ["t/1"]
    assert await store.delete("s/00") is True
    assert await store.delete("s/00") is False
    assert await store.delete_many(["s/01", "s/02", "nope"]) == 2
    assert await store.clear("s/") == 7
    assert await store.keys() == ["t/1", "u"]
    assert await store.get_many(["t/1", "u", "zz"]) == {"t/1": None, "u": "x"}


async def test_keys_sort_by_code_point_and_prefixes_reach_the_top_of_unicode(
    store: DatabaseStore,
) -> None:
    keys = ["a/B", "a/a", "a/é", "a/\U0010ffff", "a/\U0010ffffz", "a/Z", "b"]
    await store.put_many([(key, key) for key in keys])
    assert await store.keys("a/") == sorted(k for k in keys if k.startswith("a/"))
    assert await store.keys("a/\U0010ffff") == ["a/\U0010ffff", "a/\U0010ffffz"]


async def test_put_many_is_all_or_nothing(store: DatabaseStore) -> None:
    await store.put("kept", 1)
    with pytest.raises(Exception, match=r"no EDN form|cannot"):
        await store.put_many([("new/1", 1), ("new/2", object())])
    assert await store.keys() == ["kept"]
    assert await store.last_seq() == 1


# -- history, as-of, the change feed ----------------------------------------------


async def test_put_many_records_every_put_in_order_even_of_one_key_twice(
    store: DatabaseStore,
) -> None:
    # A group of puts in one transaction: each put is a history row, in the
    # order given, and a key set twice ends at its last value.
    await store.put_many([("z", 1), ("a", 2)])
    await store.put_many([("a", 3), ("b", 4), ("a", 5)])
    changes = await store.changed_since(0)
    assert [(c.key, c.value, c.version) for c in changes] == [
        ("z", 1, 1),
        ("a", 2, 1),
        ("a", 3, 2),
        ("b", 4, 1),
        ("a", 5, 3),
    ]
    assert await store.get("a") == 5


async def test_history_versions_and_as_of_reads(store: DatabaseStore) -> None:
    await store.put("h/k", "one")
    await store.put("h/k", "two")
    await store.delete("h/k")
    await store.put("h/k", "again")
    changes = await store.history("h/k")
    assert [(c.op, c.version) for c in changes] == [
        ("put", 1),
        ("put", 2),
        ("delete", 3),
        ("put", 1),
    ]
    assert [c.value for c in changes] == ["one", "two", MISSING, "again"]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert [await store.get("h/k", as_of=c.at) for c in changes] == ["one", "two", None, "again"]
    before = changes[0].at_micros - 1
    assert await store.get("h/k", "absent", as_of=before / 1_000_000) == "absent"
    assert [c.value for c in await store.history("h/k", limit=2)] == [MISSING, "again"]


async def test_the_change_feed_pages_in_commit_order(store: DatabaseStore) -> None:
    for i in range(5):
        await store.put(f"f/{i}", i)
    first = await store.changed_since(0, limit=2)
    rest = await store.changed_since(0, after_seq=first[-1].seq)
    assert [c.key for c in first + rest] == [f"f/{i}" for i in range(5)]
    later = await store.changed_since(first[-1].at)
    assert [c.key for c in later] == ["f/2", "f/3", "f/4"]
    assert await store.keys_changed_after(first[-1].seq) == ["f/2", "f/3", "f/4"]
    assert await store.last_seq() == rest[-1].seq


async def test_history_cannot_be_edited(store: DatabaseStore) -> None:
    await store.put("a", 1)
    with pytest.raises(Exception, match="append-only"):
        await _rows(store, "UPDATE history SET value = '2'")
    with pytest.raises(Exception, match="append-only"):
        await _rows(store, "DELETE FROM commits")


# -- audit --------------------------------------------------------------------------


async def test_every_change_names_its_actor_and_reason(store: DatabaseStore) -> None:
    await store.put("doc/1", 1)
    with acting_as("user:42", reason="gdpr request"):
        await store.put_many([("doc/2", 2), ("doc/3", 3)])
        await store.delete("doc/1")
        await store.set_meta_many({"x": 1}, event="mode a -> b")
    changes = await store.changes()
    assert [(c.key, c.op, c.actor, c.reason) for c in changes] == [
        ("doc/1", "put", "app", None),
        ("doc/2", "put", "user:42", "gdpr request"),
        ("doc/3", "put", "user:42", "gdpr request"),
        ("doc/1", "delete", "user:42", "gdpr request"),
    ]
    assert [c.key for c in await store.changes(actor="app")] == ["doc/1"]
    assert [c.key for c in await store.changes(prefix="doc/3")] == ["doc/3"]
    (event,) = await store.events()
    assert (event.event, event.actor, event.reason) == ("mode a -> b", "user:42", "gdpr request")
    await store.record_event("restore x")
    assert [e.event for e in await store.events(actor="app")] == ["restore x"]


async def test_a_revert_writes_back_the_old_values_as_new_changes(store: DatabaseStore) -> None:
    await store.put_many([("r/1", "old"), ("r/2", "old")])
    (mark,) = (await store.history("r/2"))[-1:]
    await store.put("r/1", "new")
    await store.delete("r/2")
    await store.put("r/3", "born")
    plan = await store.revert_plan("r/", mark.at)
    assert [(p.key, p.current, p.target) for p in plan] == [
        ("r/1", "new", "old"),
        ("r/2", MISSING, "old"),
        ("r/3", "born", MISSING),
    ]
    assert [p.key for p in await store.revert_plan(["r/3", "r/3"], mark.at)] == ["r/3"]
    with acting_as("ops", reason="undo"):
        await store.apply(
            [(p.key, p.target) for p in plan if p.target is not MISSING],
            [p.key for p in plan if p.target is MISSING],
            event="revert r/",
        )
    assert await store.scan("r/") == [("r/1", "old"), ("r/2", "old")]
    assert await store.revert_plan("r/", mark.at) == []
    assert [e.event for e in await store.events()] == ["revert r/"]


# -- compare-and-set ------------------------------------------------------------------


async def test_a_compare_and_set_put_writes_only_at_the_expected_version(
    store: DatabaseStore,
) -> None:
    await store.put("c/1", "first", if_version=0)  # 0: only if absent
    await store.put("c/1", "second", if_version=1)
    with pytest.raises(VersionConflictError, match="expected version 1, but it is at version 2"):
        await store.put("c/1", "lost update", if_version=1)
    with pytest.raises(VersionConflictError) as caught:
        await store.put("c/1", "lost update", if_version=0)
    assert (caught.value.key, caught.value.expected, caught.value.current) == ("c/1", 0, 2)
    with pytest.raises(VersionConflictError, match="the key does not exist"):
        await store.put("c/none", 1, if_version=3)
    assert await store.get("c/1") == "second"
    assert [c.value for c in await store.history("c/1")] == ["first", "second"]
    assert await store.keys() == ["c/1"]


# -- kinds and the attribute index ---------------------------------------------------


async def test_every_write_gets_the_kind_mapping_and_a_reindex_changes_only_kinds(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    store = await open_store()
    await store.put("presence/s-1", 1)
    await store.put_many([("learning/tag-index", 2), ("weird", 3), ("project/p", 4)])
    kinds = dict(await _rows(store, "SELECT key, kind FROM entries"))
    assert kinds == {
        "presence/s-1": "session",
        "learning/tag-index": "index",
        "weird": "cache",
        "project/p": "project",
    }
    seq = await store.last_seq()
    mapping = KindMapping.from_config(namespaces={"project": "work"}, default="misc")
    assert await store.reindex_kinds(mapping) == 2
    kinds = dict(await _rows(store, "SELECT key, kind FROM entries"))
    assert (kinds["project/p"], kinds["weird"], kinds["presence/s-1"]) == (
        "work",
        "misc",
        "session",
    )
    assert await store.last_seq() == seq  # a kind is no change of the data


def _attribute_rows(rows: list[tuple[Any, ...]], json_values: bool) -> set[tuple[Any, ...]]:
    """(attr, value, tag, entity) rows with the value as Python (PostgreSQL keeps jsonb)."""
    return {
        (attr, orjson.loads(value) if json_values else value, tag, entity)
        for attr, value, tag, entity in rows
    }


async def test_declared_attributes_are_indexed_in_the_write_and_rebuilt_on_a_change(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    user = Keyword("session/user-id")
    store = await open_store(indexed={"session": [":session/user-id", "tags"]})
    json_values = isinstance(store, PostgresStore)
    sql = "SELECT attr, value, tag, entity FROM attributes"
    await store.put("session/s1", {user: "u1", "tags": [1, 1.0, True, Keyword("t/a")], "n": 5})
    await store.put_many([("session/s2", {user: Keyword("user/u2")}), ("other", [1])])
    assert _attribute_rows(await _rows(store, sql), json_values) == {
        (":session/user-id", "u1", "s", "session/s1"),
        ("tags", 1, "i", "session/s1"),
        ("tags", 1.0, "f", "session/s1"),
        ("tags", 1, "b", "session/s1"),
        ("tags", "t/a", "k", "session/s1"),
        (":session/user-id", "user/u2", "k", "session/s2"),
    }
    await store.put("session/s1", {user: "u9"})
    await store.delete("session/s2")
    assert _attribute_rows(await _rows(store, sql), json_values) == {
        (":session/user-id", "u9", "s", "session/s1")
    }
    await store.aclose()
    # Opened without declarations: the recorded ones are kept and maintained.
    store = await open_store()
    assert store.indexed == frozenset({":session/user-id", "tags"})
    await store.put("session/s3", {"tags": ["x"]})
    assert len(await _rows(store, sql)) == 2
    await store.aclose()
    # Other declarations: the table is rebuilt for them from the stored entries.
    store = await open_store(indexed={"session": ["tags"]})
    assert _attribute_rows(await _rows(store, sql), json_values) == {
        ("tags", "x", "s", "session/s3")
    }


# -- find and meta -------------------------------------------------------------------


async def test_find_matches_json_paths_by_value_and_range(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    store = await open_store(indexes=["$.user.id", "$.:session/user-id"])
    await store.put_many(
        [
            ("a", {"user": {"id": 1}, "name": "ann"}),
            ("b", {"user": {"id": 2.5}, "name": "bob"}),
            ("c", {"user": {"id": "7"}, "name": "cid"}),
            ("d", {"user": {"id": None}}),
            ("e", {Keyword("session/user-id"): Keyword("user/u1")}),
            ("f", [1, 2]),
        ]
    )

    def keys(found: list[tuple[str, Any]]) -> list[str]:
        return [key for key, _ in found]

    assert keys(await store.find("$.user.id", eq=1)) == ["a"]
    assert keys(await store.find("$.user.id", eq=1.0)) == ["a"]
    assert keys(await store.find("$.user.id", eq="7")) == ["c"]
    # A range with both bounds of one JSON type: SQLite orders every string
    # after every number, PostgreSQL compares values of the bound's type only.
    assert keys(await store.find("$.user.id", gt=1, lt=100)) == ["b"]
    assert keys(await store.find("$.user.id", ge=1, lt=3)) == ["a", "b"]
    assert keys(await store.find("$.name", gt="b")) == ["b", "c"]
    assert keys(await store.find("$.user.id", eq=None)) == ["d", "e", "f"]
    assert keys(await store.find("$.:session/user-id", eq=Keyword("user/u1"))) == ["e"]
    assert keys(await store.find("$.user.id", gt=0, limit=1)) == ["a"]
    assert keys(await store.find("$.user.id", gt=0, lt=100, after="a")) == ["b"]
    with pytest.raises(StoreError, match="unsupported JSON path"):
        await store.find("$.user'; DROP TABLE entries; --", eq=1)


async def test_meta_round_trips_and_survives_reopen(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    store = await open_store()
    await store.set_meta("app.setting", {"a": [1, Keyword("b")]})
    await store.set_meta_many([("x", 1), ("y", 2)])
    await store.aclose()
    store = await open_store()
    assert await store.get_meta("app.setting") == {"a": [1, Keyword("b")]}
    assert (await store.get_meta("x"), await store.get_meta("y")) == (1, 2)
    assert await store.get_meta("absent", "default") == "default"
    await store.ping()


# -- PostgreSQL alone ----------------------------------------------------------------


async def test_postgresql_refuses_a_schema_that_is_not_garrisons(postgres_dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("CREATE TABLE entries (id int)")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="not a garrison store; it was left untouched"):
        await PostgresStore(postgres_dsn).open()


async def test_postgresql_instances_writing_at_once_keep_one_total_order(
    postgres_dsn: str,
) -> None:
    # Four stores stand for four instances (each its own pool): their writes
    # interleave, yet seq and commit time increase together, and a
    # compare-and-set from each lets exactly one win every round.
    stores = [await PostgresStore(postgres_dsn, pool_size=2).open() for _ in range(4)]
    try:

        async def writer(n: int, store: PostgresStore) -> None:
            for i in range(25):
                await store.put_many([(f"w/{n}/{i}", i), (f"w/{n}/{i}b", i)])

        await asyncio.gather(*(writer(n, store) for n, store in enumerate(stores)))
        changes = await stores[0].changed_since(0)
        assert len(changes) == 200
        assert [c.seq for c in changes] == sorted(c.seq for c in changes)
        assert [c.at_micros for c in changes] == sorted(c.at_micros for c in changes)

        async def claim(store: PostgresStore, n: int, version: int) -> bool:
            try:
                await store.put("lock", n, if_version=version)
            except VersionConflictError:
                return False
            return True

        for version in range(3):
            won = await asyncio.gather(*(claim(s, n, version) for n, s in enumerate(stores)))
            assert won.count(True) == 1
        assert len(await stores[0].history("lock")) == 3
    finally:
        for store in stores:
            await store.aclose()


async def test_postgresql_a_write_cancelled_while_it_waits_for_the_lock_writes_nothing(
    postgres_dsn: str,
) -> None:
    # Another session holds the write lock; the put waits for it, its caller
    # gives up, and nothing of it is committed once the lock is free.
    async with PostgresStore(postgres_dsn, pool_size=1) as store:
        await store.put("k", 1)
        holder = await asyncpg.connect(postgres_dsn)
        try:
            locked = holder.transaction()
            await locked.start()
            await holder.execute(_WRITE_LOCK)
            waiting = asyncio.create_task(store.put_many([("k", 2), ("other", 3)]))
            async with asyncio.timeout(10):
                # The server's lock table is polled: no event says a session waits.
                while not await holder.fetchval(_WAITING_FOR_LOCK):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await locked.rollback()
        finally:
            await holder.close()
        # The store's one connection works, and only the first put is there.
        await store.put("after", 4)
        assert await store.get_many(["k", "other", "after"]) == {"k": 1, "after": 4}
        assert [c.value for c in await store.history("k")] == [1]


# The store's write lock ("GARR"); if it changed, the wait for a waiter times out.
_WRITE_LOCK = "SELECT pg_advisory_xact_lock(1195463250)"
_WAITING_FOR_LOCK = "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


async def test_postgresql_spans_name_the_server_and_database(
    postgres_dsn: str, span_exporter: InMemorySpanExporter
) -> None:
    async with PostgresStore(postgres_dsn) as store:
        span_exporter.clear()
        await store.put("k", 1)
        await store.get("k")
    put, get = span_exporter.get_finished_spans()
    for span in (put, get):
        attributes = span.attributes or {}
        assert attributes["db.system.name"] == "postgresql"
        assert attributes["db.namespace"] == urllib.parse.urlsplit(postgres_dsn).path[1:]
        assert (
            attributes["server.address"]
            == urllib.parse.parse_qs(urllib.parse.urlsplit(postgres_dsn).query)["host"][0]
        )
    assert (put.name, get.name) == ("put entries", "get entries")


async def test_postgresql_reports_an_unreachable_server_naming_it_without_the_password(
    tmp_path: Path,
) -> None:
    dsn = f"postgresql://someone:secret@/nodb?host={tmp_path}"
    with pytest.raises(StoreError, match=r"someone:\*\*\*@.*cannot connect") as caught:
        await PostgresStore(dsn, connect_timeout=2).open()
    assert "secret" not in str(caught.value)


async def test_postgresql_without_a_dsn_connects_where_the_pg_variables_say(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = urllib.parse.urlsplit(postgres_dsn)
    monkeypatch.setenv("PGHOST", urllib.parse.parse_qs(parts.query)["host"][0])
    monkeypatch.setenv("PGDATABASE", parts.path[1:])
    monkeypatch.setenv("PGUSER", "postgres")
    async with PostgresStore() as store:
        await store.put("env/k", 1)
        assert store.server["db.namespace"] == parts.path[1:]
    async with PostgresStore(postgres_dsn) as store:
        assert await store.get("env/k") == 1


async def test_postgresql_an_instance_killed_mid_write_leaves_no_partial_transaction(
    postgres_dsn: str,
) -> None:
    from tests.stores._pg_writer import BATCH

    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.stores._pg_writer",
        postgres_dsn,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdout is not None
    try:
        async with asyncio.timeout(60):
            for _ in range(20):  # twenty batches committed: it is writing steadily
                await writer.stdout.readline()
    finally:
        writer.send_signal(signal.SIGKILL)
        await writer.wait()
    async with PostgresStore(postgres_dsn) as store:
        # The killed session's transaction (and its write lock) is gone: this
        # instance writes at once, and every batch is there whole or not at all.
        async with asyncio.timeout(10):
            await store.put("after", "the kill")
        counts: dict[str, int] = {}
        for key in await store.keys("k/"):
            batch = key.split("/")[1]
            counts[batch] = counts.get(batch, 0) + 1
        assert len(counts) >= 20
        assert set(counts.values()) == {BATCH}
        assert len(await store.changed_since(0)) == BATCH * len(counts) + 1


async def test_postgresql_keeps_its_tables_in_the_schema_the_dsn_names(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("CREATE SCHEMA garrison; CREATE TABLE public.entries (id int)")
        async with PostgresStore(f"{postgres_dsn}&search_path=garrison") as store:
            await store.put("k", 1)
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name IN ('entries', 'history') ORDER BY 1, 2"
        )
        assert [tuple(row) for row in tables] == [
            ("garrison", "entries"),
            ("garrison", "history"),
            ("public", "entries"),
        ]
    finally:
        await conn.close()


async def test_a_bulk_put_many_is_one_commit_with_its_attribute_rows(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    store = await open_store(indexed={"cache": ["n"]})
    await store.put_many([(f"bulk/{i:05}", {"n": i}) for i in range(3000)])
    changes = await store.changed_since(0)
    assert len(changes) == 3000
    assert len({change.at_micros for change in changes}) == 1  # one transaction
    (count,) = await _rows(store, "SELECT count(*) FROM attributes")
    assert count[0] == 3000
    assert await store.get("bulk/02999") == {"n": 2999}


async def test_postgresql_pg_dump_and_pg_restore_keep_values_history_and_order(
    postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    # The documented backup: pg_dump --format=custom, pg_restore into an empty database.
    tools = _client_tools()
    if tools is None:
        pytest.skip("pg_dump / pg_restore are not installed")
    pg_dump, pg_restore = tools
    values = [("b/1", {"n": 1e16}), ("b/2", -0.0), ("b/3", "\x00")]
    async with PostgresStore(postgres_dsn, indexed={"cache": ["n"]}) as store:
        await store.put_many(values)
        with acting_as("ops", reason="before backup"):
            await store.put("b/1", {"n": 2})
        history = await store.changed_since(0)
    dump = tmp_path / "garrison.dump"
    await _run(pg_dump, "--format=custom", f"--file={dump}", postgres_dsn)
    restored = await postgres_server.create_database()
    try:
        await _run(pg_restore, f"--dbname={restored}", "--single-transaction", str(dump))
        async with PostgresStore(restored) as store:
            assert same(await store.get("b/2"), -0.0)
            assert await store.get("b/3") == "\x00"
            assert await store.changed_since(0) == history  # no change doubled or lost
            await store.put("b/4", 4)  # the sequence goes on after the restored rows
            (last,) = await store.history("b/4")
            assert last.seq > history[-1].seq
            assert [c.actor for c in await store.changes(actor="ops")] == ["ops"]
            (rows,) = await _rows(store, "SELECT count(*) FROM attributes")
            assert rows[0] == 1
    finally:
        await postgres_server.drop_database(restored)


def _client_tools() -> tuple[str, str] | None:
    """pg_dump and pg_restore: on PATH, or beside the server binaries (Debian)."""
    binaries = find_binaries()
    found = []
    for name in ("pg_dump", "pg_restore"):
        path = shutil.which(name) or (str(binaries / name) if binaries is not None else "")
        if not path or not os.path.exists(path):
            return None
        found.append(path)
    return found[0], found[1]


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()


async def test_a_schema_refuses_a_breaking_write_and_a_breaking_start(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    rules = {"session": {":session/user-id": {"type": "string", "required": True}}}
    store = await open_store(schema=EntitySchema.parse(rules))
    user = Keyword("session/user-id")
    await store.put("session/s1", {user: "u1"})
    with pytest.raises(SchemaError, match="session/s2"):
        await store.put_many([("session/ok", {user: "u2"}), ("session/s2", {user: 7})])
    with pytest.raises(SchemaError, match="required"):
        await store.put("session/s3", {"other": 1})
    assert await store.keys() == ["session/s1"]
    await store.put("session/s3", {"other": 1}, enforce=False)  # the router's own path
    await store.aclose()
    # A start with a changed schema checks the stored data first: refused, untouched.
    changed = {"session": {**rules["session"], ":session/title": {"type": "string"}}}
    with pytest.raises(SchemaError, match="breaks the configured schema"):
        await open_store(schema=EntitySchema.parse(changed))


async def test_unique_and_reference_rules_read_the_stored_data_in_the_write(
    open_store: Callable[..., Coroutine[Any, Any, DatabaseStore]],
) -> None:
    rules = {
        "session": {":session/id": {"type": "string", "unique": True}},
        "learning": {":learning/session": {"type": "keyword", "reference": True}},
    }
    store = await open_store(schema=EntitySchema.parse(rules))
    sid, ref = Keyword("session/id"), Keyword("learning/session")
    await store.put("session/s1", {sid: "a"})
    await store.put("session/s1", {sid: "a"})  # its own value again: no conflict
    with pytest.raises(SchemaError, match="session/s1 of the same kind has it too"):
        await store.put("session/s2", {sid: "a"})
    with pytest.raises(SchemaError, match="no entry has the key session/nope"):
        await store.put("learning/l1", {ref: Keyword("session/nope")})
    # A reference to a key the same write creates holds.
    await store.put_many(
        [("session/s3", {sid: "c"}), ("learning/l2", {ref: Keyword("session/s3")})]
    )
    with pytest.raises(SchemaError, match="of the same kind has it too"):
        await store.put_many([("session/s4", {sid: "d"}), ("session/s5", {sid: "d"})])
    assert await store.keys() == ["learning/l2", "session/s1", "session/s3"]
    await store.check_lookups([("session/s9", {sid: "z"})])  # the dual modes' read-only check
    with pytest.raises(SchemaError, match="has it too"):
        await store.check_lookups([("session/s9", {sid: "a"})])


async def test_postgresql_instances_racing_for_a_unique_value_let_one_win(
    postgres_dsn: str,
) -> None:
    schema = EntitySchema.parse({"session": {":session/id": {"type": "string", "unique": True}}})
    stores = [await PostgresStore(postgres_dsn, schema=schema).open() for _ in range(4)]
    try:

        async def claim(n: int, store: PostgresStore) -> bool:
            try:
                await store.put(f"session/s{n}", {Keyword("session/id"): "the one"})
            except SchemaError:
                return False
            return True

        won = await asyncio.gather(*(claim(n, store) for n, store in enumerate(stores)))
        assert won.count(True) == 1
        assert len(await stores[0].keys("session/")) == 1
    finally:
        for store in stores:
            await store.aclose()
