"""SqliteStore core: open, durability settings, get/put/delete/scan, meta, spans, close."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from garrison.edn import Keyword
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores import DEFAULT_KIND_MAPPING, KindMapping
from garrison.stores._protocol import MISSING, KeyValueStore
from garrison.stores._sqlite import SqliteStore
from garrison.stores._values import VALUE_FORMAT_VERSION
from tests.stores.value_strategies import same, values

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "garrison.db") as opened:
        yield opened


async def test_is_a_key_value_store(store: SqliteStore) -> None:
    assert isinstance(store, KeyValueStore)


async def test_put_get_delete(store: SqliteStore) -> None:
    assert await store.get("session/a") is None
    assert await store.get("session/a", MISSING) is MISSING
    await store.put("session/a", {"user": 1})
    await store.put("session/a", None)
    assert await store.get("session/a", MISSING) is None  # nil is a value, not absence
    assert await store.delete("session/a") is True
    assert await store.delete("session/a") is False
    assert await store.get("session/a", MISSING) is MISSING


async def test_put_many_get_many_delete_many(store: SqliteStore) -> None:
    await store.put_many((f"k/{i:04}", i) for i in range(2000))
    keys = [f"k/{i:04}" for i in range(0, 2000, 3)] + ["k/none"]
    found = await store.get_many(keys)
    assert found == {f"k/{i:04}": i for i in range(0, 2000, 3)}
    assert await store.delete_many([*keys, "k/none"]) == len(keys) - 1
    assert await store.count("k/") == 2000 - (len(keys) - 1)


async def test_get_many_and_delete_many_beyond_the_bound_variable_limit(
    store: SqliteStore,
) -> None:
    await store.put_many((f"k/{i}", i) for i in range(0, 40_000, 400))
    keys = [f"k/{i}" for i in range(40_000)]  # more than SQLite's 32,766 variables
    assert len(await store.get_many(keys)) == 100
    assert await store.delete_many(keys) == 100
    assert await store.count() == 0


async def test_put_many_is_all_or_nothing(store: SqliteStore) -> None:
    await store.put("a/keep", 1)
    with pytest.raises(EdnEncodeError):
        await store.put_many([("a/new", 1), ("a/bad", object()), ("a/keep", 2)])
    assert await store.scan("a/") == [("a/keep", 1)]


async def test_put_many_is_all_or_nothing_across_chunks(store: SqliteStore) -> None:
    rows: list[tuple[str, object]] = [(f"big/{i:05}", i) for i in range(5000)]
    rows[4500] = ("big/bad", object())  # fails in the third chunk, after two were written
    with pytest.raises(EdnEncodeError):
        await store.put_many(rows)
    assert await store.count("big/") == 0
    assert await store.changed_since(0) == []
    await store.put_many(rows[:10])  # and the store is still usable
    assert await store.count("big/") == 10


async def test_scan_by_prefix_and_namespace_with_pagination(store: SqliteStore) -> None:
    await store.put_many(
        [("user/1", 1), ("user/2", 2), ("user/3", 3), ("users/x", 0), ("usea/x", 0), ("u", 9)]
    )
    assert [k for k, _ in await store.scan("user/")] == ["user/1", "user/2", "user/3"]
    page1 = await store.scan("user/", limit=2)
    page2 = await store.scan("user/", after=page1[-1][0], limit=2)
    assert page1 == [("user/1", 1), ("user/2", 2)]
    assert page2 == [("user/3", 3)]
    assert await store.keys("user") == ["user/1", "user/2", "user/3", "users/x"]
    assert await store.count() == 6
    assert await store.count("user/") == 3


async def test_scan_prefix_at_the_top_of_unicode(store: SqliteStore) -> None:
    top = "\U0010ffff"
    await store.put_many([(f"x{top}", 1), (f"x{top}{top}a", 2), ("y", 3)])
    assert [v for _, v in await store.scan(f"x{top}")] == [1, 2]
    await store.put_many([(top, 4), (top * 5 + "z", 5)])
    assert [v for _, v in await store.scan(top)] == [4, 5]  # no upper bound exists


async def test_scan_uses_the_primary_key_not_a_table_scan(store: SqliteStore) -> None:
    plan = await store.connection.execute_fetchall(
        "EXPLAIN QUERY PLAN SELECT key, value FROM entries "
        "WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
        ("a/", "a0", 10),
    )
    assert "SEARCH entries USING PRIMARY KEY" in " ".join(str(row[3]) for row in plan)


async def test_clear_removes_everything(store: SqliteStore) -> None:
    await store.put_many([("a/1", 1), ("b/2", 2)])
    await store.clear()
    assert await store.count() == 0
    assert [c.op for c in await store.history("a/1")] == ["put", "delete"]


async def test_plain_json_is_queryable_with_sql(store: SqliteStore, tmp_path: Path) -> None:
    await store.put("user/1", {"name": "ada", "tags": ["x"], "role": Keyword("admin")})
    rows = await store.connection.execute_fetchall(
        "SELECT json_extract(value, '$.name'), json_extract(value, '$.tags[0]'), "
        "namespace, kind, version FROM entries"
    )
    # "user" is not in the default kind mapping: its default kind.
    assert [tuple(r) for r in rows] == [("ada", "x", "user", "cache", 1)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=values)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # see test_values.py
async def test_every_value_reads_back_exactly_through_sqlite(
    store: SqliteStore, value: Any
) -> None:
    await store.put("v/x", value)
    assert same(await store.get("v/x"), value)
    ((_key, scanned),) = await store.scan("v/")
    assert same(scanned, value)


async def test_entity_kind_from_mapping_callable_or_override(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "a.db", kinds={"presence": "session"}) as store:
        await store.put_many([("presence/1", 1), ("user/1", 1), ("bare", 1)])
        await store.put("presence/2", 1, kind="special")
        rows = await store.connection.execute_fetchall("SELECT key, kind FROM entries ORDER BY key")
        assert dict(rows) == {  # type: ignore[arg-type]
            "bare": None,
            "presence/1": "session",
            "presence/2": "special",
            "user/1": "user",
        }
    async with SqliteStore(tmp_path / "b.db", kinds=lambda key, ns: key.upper()) as store:
        await store.put("a/b", 1)
        rows = await store.connection.execute_fetchall("SELECT kind FROM entries")
        assert [r[0] for r in rows] == ["A/B"]


async def test_meta_round_trips_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with SqliteStore(path) as store:
        assert await store.get_meta("garrison.mode") is None
        await store.set_meta("garrison.mode", "dual-write")
        await store.set_meta("app/thing", {"a": Keyword("b")})
    async with SqliteStore(path) as store:
        assert await store.get_meta("garrison.mode") == "dual-write"
        assert await store.get_meta("app/thing") == {"a": Keyword("b")}
        assert await store.get_meta("garrison.value_format") == VALUE_FORMAT_VERSION


async def test_set_meta_many_is_one_transaction(store: SqliteStore) -> None:
    await store.set_meta_many({"garrison.mode": "dual-write", "switches": [1]})
    assert await store.get_meta("garrison.mode") == "dual-write"
    with pytest.raises(EdnEncodeError):
        await store.set_meta_many([("garrison.mode", "sqlite-only"), ("switches", object())])
    assert await store.get_meta("garrison.mode") == "dual-write"
    await store.connection.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON meta WHEN NEW.name = 'b' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(StoreError, match="refused"):
        await store.set_meta_many([("a", 1), ("b", 2)])
    assert await store.get_meta("a") is None  # the first was rolled back with the second


async def test_pragmas_wal_synchronous_busy_timeout_foreign_keys(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "p.db", synchronous="FULL", busy_timeout=2.5) as store:
        conn = store.connection

        async def pragma(name: str) -> Any:
            return next(iter(await conn.execute_fetchall(f"PRAGMA {name}")))[0]

        assert await pragma("journal_mode") == "wal"
        assert await pragma("synchronous") == 2  # FULL
        assert await pragma("busy_timeout") == 2500
        assert await pragma("foreign_keys") == 1
    async with SqliteStore(tmp_path / "n.db") as store:
        rows = list(await store.connection.execute_fetchall("PRAGMA synchronous"))
        assert rows[0][0] == 1  # NORMAL


async def test_data_survives_reopen_and_other_connections_see_it(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    async with SqliteStore(path) as store:
        await store.put("a/1", [1, 2])
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM entries").fetchone() == ("[1,2]",)
    raw.close()
    async with SqliteStore(path) as store:
        assert await store.get("a/1") == [1, 2]


async def test_aclose_is_idempotent_and_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    await store.ping()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.get("a/b")
    with pytest.raises(StoreError, match="closed"):
        await store.open()


async def test_every_operation_makes_exactly_one_span(
    store: SqliteStore, span_exporter: InMemorySpanExporter
) -> None:
    await store.put_many([("a/1", 1), ("a/2", 2)])
    await store.get("a/1")
    await store.get_many(["a/1", "a/2", "a/3"])
    await store.scan("a/")
    await store.delete("a/1")
    await store.ping()
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "put_many entries",
        "get entries",
        "get_many entries",
        "scan entries",
        "delete entries",
        "ping entries",
    ]
    attributes = dict(spans[0].attributes or {})
    assert attributes["db.system.name"] == "sqlite"
    assert attributes["db.operation.batch.size"] == 2
    assert "?" in str(attributes["db.query.text"])
    for span in spans:  # never a value in a span
        assert "a/1" not in str(dict(span.attributes or {}))


async def test_the_other_operations_make_one_span_each_too(
    store: SqliteStore, span_exporter: InMemorySpanExporter
) -> None:
    await store.put("a/1", {"n": 1})
    await store.get("a/1", as_of=0)
    await store.find("$.n", eq=1)
    await store.history("a/1")
    await store.changed_since(0)
    await store.keys("a/")
    await store.count()
    await store.delete_many(["a/1", "a/2"])
    await store.clear()
    await store.set_meta("x", 1)
    await store.get_meta("x")
    assert [s.name for s in span_exporter.get_finished_spans()] == [
        "put entries",
        "get history",
        "find entries",
        "history history",
        "changed_since history",
        "keys entries",
        "count entries",
        "delete_many entries",
        "clear entries",
        "set_meta meta",
        "get_meta meta",
    ]


async def test_a_failed_operation_marks_its_span(
    store: SqliteStore, span_exporter: InMemorySpanExporter
) -> None:
    await store.connection.execute("DROP TABLE meta")
    with pytest.raises(StoreError, match="no such table: meta") as info:
        await store.set_meta("x", 1)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert info.value.key == "x"
    assert str(store.path) in str(info.value)
    (span,) = span_exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes["error.type"] == "garrison.exceptions.StoreError"
    assert attributes["db.response.status_code"] == "SQLITE_ERROR"
    with pytest.raises(StoreError, match="no such table: meta"):
        await store.get_meta("x")  # reads too


async def test_non_keyword_keys_stay_distinct_and_lossless(store: SqliteStore) -> None:
    from garrison.stores._keys import StringKey, edn_key, key_text

    await store.put(key_text(StringKey("a/b")), "string key")
    await store.put("a/b", "keyword key")
    await store.put(key_text(42), "number key")
    keys = await store.keys()
    assert len(keys) == 3
    assert {type(edn_key(k)).__name__ for k in keys} == {"Keyword", "str", "int"}
    assert await store.get(key_text(StringKey("a/b"))) == "string key"
    assert await store.get("a/b") == "keyword key"
    rows = await store.connection.execute_fetchall("SELECT key, namespace FROM entries")
    assert {row[0]: row[1] for row in rows}['#edn "a/b"'] is None


async def test_every_write_gets_the_one_kind_mapping(tmp_path: Path) -> None:
    # The live put and the migrator's default mapping agree: presence is a session.
    async with SqliteStore(tmp_path / "k.db") as store:
        await store.put("presence/s1", {Keyword("online?"): True})
        await store.put_many([("learning/tag-index", {}), ("learning/r1", 1), ("bare", 1)])
        rows = await store.connection.execute_fetchall("SELECT key, kind FROM entries")
        assert dict(rows) == {  # type: ignore[arg-type]
            "presence/s1": DEFAULT_KIND_MAPPING.kind_of("presence/s1"),
            "learning/tag-index": "index",
            "learning/r1": "learning",
            "bare": "cache",
        }
        assert DEFAULT_KIND_MAPPING.kind_of("presence/s1") == "session"


async def test_reindex_applies_a_changed_mapping_to_stored_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    async with SqliteStore(path) as store:
        await store.put_many([("presence/s1", 1), ("webhook/w1", 2), ("learning/index", 3)])
        await store.put("presence/s1", 4)
        before = await store.history("presence/s1")
    changed = KindMapping.from_config(namespaces={"webhook": "hook"}, keys={"presence/s1": "p"})
    async with SqliteStore(path, kinds=changed) as store:
        assert await store.reindex_kinds() == 2
        assert await store.reindex_kinds() == 0  # nothing left to change
        rows = await store.connection.execute_fetchall("SELECT key, kind FROM entries")
        assert dict(rows) == {  # type: ignore[arg-type]
            "presence/s1": "p",
            "webhook/w1": "hook",
            "learning/index": "index",
        }
        # A kind is a classification, not a change of the data: no history row.
        assert await store.history("presence/s1") == before
        assert await store.get("presence/s1") == 4
        assert await store.reindex_kinds(DEFAULT_KIND_MAPPING) == 2
    async with SqliteStore(path, kinds=lambda key, ns: ns) as store:
        with pytest.raises(StoreError, match="needs a KindMapping"):
            await store.reindex_kinds()
