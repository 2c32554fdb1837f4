"""The attribute index: after any writes, exactly the rows of the declared attributes."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.edn import BigInt, EdnMap, EdnSet, FrozenMap, Keyword, Vector, loads
from garrison.edn._equality import clojure_key
from garrison.stores import SqliteStore, declared_index
from garrison.stores._datalog import _JSON_ROWS
from garrison.stores._schema import MIGRATIONS, ensure_schema
from garrison.stores._values import decode_value, encode_value
from tests.stores.test_sqlite_schema import FORMAT_1_DB
from tests.stores.value_strategies import object_key_lookalikes, values

if TYPE_CHECKING:
    from collections.abc import Iterable

_INT64 = range(-(2**63), 2**63)
_COLLECTIONS = (list, Vector, tuple, frozenset, set, EdnSet)
_MAPS = (dict, FrozenMap, EdnMap, Mapping)

Row = tuple[str, Any, str, str]

# What the stores below declare indexed: kind -> attribute spellings. An attribute
# declared by any kind is indexed on every entity.
DECLARED = {
    "session": {":session/user-id", ":a", ":learning/tags"},
    "learning": {":learning/tags", ":learning/session"},
    "cache": {":a", ":t"},
}


def _scalar(value: Any) -> tuple[Any, str] | None:
    """The (value, tag) row part of an indexable scalar, or ``None``."""
    kind = type(value)
    if kind is str:
        return (value, "s")
    if kind is bool:
        return (int(value), "b")
    if kind in (int, BigInt) and int(value) in _INT64:
        return (int(value), "i")  # 1N = 1 in Clojure
    if kind is float and math.isfinite(value):
        return (value, "f")
    if kind is Keyword:
        return (value.text, "k")
    if value is None or isinstance(value, (*_COLLECTIONS, *_MAPS)):
        return None
    return (value, "x")  # any other value: compared by Clojure's = (see _typed)


def expected_rows(key: str, value: Any, declared: frozenset[str]) -> set[Row]:
    """The rows an entity gives of the ``declared`` attributes, from its Python value."""
    if type(value) is not dict:
        return set()
    if not all(type(k) is Keyword or (type(k) is str and not k.startswith(":")) for k in value):
        return set()  # stored as #map pairs: not an entity
    if len(value) == 1 and type(k := next(iter(value))) is str and k.startswith("#"):
        return set()  # stored escaped (#esc): not an entity
    rows: set[Row] = set()
    for attr_key, item in value.items():
        attr = ":" + attr_key.text if type(attr_key) is Keyword else attr_key
        if attr not in declared:
            continue
        members: Iterable[Any] = item if isinstance(item, _COLLECTIONS) else (item,)
        for member in members:
            if isinstance(item, _COLLECTIONS) and isinstance(member, _COLLECTIONS):
                continue
            part = _scalar(member)
            if part is not None:
                rows.add((attr, *part, key))
    return rows


async def rows_of(store: SqliteStore) -> set[Row]:
    found = await store.connection.execute_fetchall(
        "SELECT attr, value, tag, entity FROM attributes"
    )
    return {(row[0], row[1], row[2], row[3]) for row in found}


def _typed(rows: set[Row]) -> set[tuple[Any, ...]]:
    # 1 and 1.0 are equal in Python and SQLite alike; the tag keeps them apart. A
    # value of tag x is compared by Clojure's = (the index holds a text for it, the
    # expected rows the value itself).
    return {
        (
            attr,
            "x" if tag == "x" else type(value).__name__,
            clojure_key(decode_value(value) if type(value) is str else value)
            if tag == "x"
            else value,
            tag,
            entity,
        )
        for attr, value, tag, entity in rows
    }


async def assert_index_exact(store: SqliteStore) -> None:
    everything = dict(await store.scan(""))
    expected: set[Row] = set()
    for key, value in everything.items():
        expected |= expected_rows(key, value, store.indexed)
    assert _typed(await rows_of(store)) == _typed(expected)


KEYS = ["session/s1", "session/s2", "learning/l1", "app/x"]
entity_values = st.dictionaries(
    st.sampled_from([Keyword("session/user-id"), Keyword("learning/tags"), Keyword("a")])
    | object_key_lookalikes,
    # Repeated and Python-equal members (1, 1.0, true) in collections, besides every value.
    values | st.lists(st.sampled_from([1, 1.0, True, Keyword("x"), "s"]), max_size=4),
    max_size=4,
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(KEYS), entity_values | values),
        st.tuples(st.just("put_many"), st.dictionaries(st.sampled_from(KEYS), entity_values)),
        st.tuples(st.just("delete"), st.sampled_from(KEYS)),
        st.tuples(st.just("clear"), st.sampled_from(["", "session/", "app/"])),
    ),
    max_size=8,
)


async def _apply(store: SqliteStore, steps: list[tuple[Any, ...]]) -> None:
    for step in steps:
        if step[0] == "put":
            await store.put(step[1], step[2])
        elif step[0] == "put_many":
            await store.put_many(list(step[1].items()))
        elif step[0] == "delete":
            await store.delete(step[1])
        else:
            await store.clear(step[1])
        await assert_index_exact(store)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_after_any_writes_the_index_is_what_the_values_give(steps: list[tuple[Any, ...]]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="garrison-attributes-"))
    try:

        async def run() -> None:
            async with SqliteStore(folder / "a.db", indexed=DECLARED) as store:
                await _apply(store, steps)

        asyncio.run(run())
    finally:
        shutil.rmtree(folder)


async def test_references_join_to_the_entity_they_name(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "r.db", indexed=DECLARED) as store:
        await store.put("session/s1", loads('{:session/user-id "u1"}'))
        await store.put(
            "learning/l1", loads("{:learning/session :session/s1 :learning/tags #{:x :y}}")
        )
        rows = await store.connection.execute_fetchall(
            "SELECT l.entity, s.value FROM attributes AS l JOIN attributes AS s "
            "ON s.entity = l.value AND l.tag = 'k' "
            "WHERE l.attr = ':learning/session' AND s.attr = ':session/user-id'"
        )
        assert list(rows) == [("learning/l1", "u1")]
        tagged = await store.connection.execute_fetchall(
            "SELECT entity FROM attributes WHERE attr = ':learning/tags' AND value = 'y' "
            "AND tag = 'k'"
        )
        assert list(tagged) == [("learning/l1",)]


# Pairs of values Clojure's = calls equal whose stored texts differ: a set's members
# in another order (0 and 8 share a hash slot, so the order read is kept), a
# decimal's scale, 1 and 1N, an instant at another offset.
EQUAL_VALUES = [
    ("#my/tag #{0 8}", "#my/tag #{8 0}"),
    ("#my/tag {:a #{0 8} :b 1}", "#my/tag {:b 1 :a #{8 0}}"),
    ("1.0M", "1.00M"),
    ("1", "1N"),
    ('#inst "2024-05-01T12:00:00.000+02:00"', '#inst "2024-05-01T10:00:00.000-00:00"'),
]


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "JSON read"])
async def test_a_query_by_value_finds_every_value_clojure_calls_equal(
    tmp_path: Path, indexed: bool
) -> None:
    declared = {"doc": {":doc/label"}} if indexed else {}
    async with SqliteStore(tmp_path / "eq.db", indexed=declared) as store:
        for n, (one, other) in enumerate(EQUAL_VALUES):
            await store.put(f"doc/a{n}", {Keyword("doc/label"): loads(one)})
            await store.put(f"doc/b{n}", {Keyword("doc/label"): loads(other)})
        query = "[:find ?e :in $ ?v :where [?e :doc/label ?v]]"
        for n, (one, other) in enumerate(EQUAL_VALUES):
            for given in (one, other):
                found = await store.query(query, loads(given))
                assert sorted(found) == [(f"doc/a{n}",), (f"doc/b{n}",)], given


async def test_a_format_1_database_gets_its_index_when_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "format1.db"
    shutil.copyfile(FORMAT_1_DB, path)
    async with SqliteStore(path, indexed=DECLARED) as store:
        rows = await rows_of(store)
        assert (":session/user-id", "u1", "s", "session/s1") in rows
        await assert_index_exact(store)


async def test_a_restored_backup_brings_its_own_exact_index(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "live.db", indexed=DECLARED) as live:
        await live.put("session/s1", {Keyword("session/user-id"): "u1"})
        await live.backup(tmp_path / "backup.db")
        await live.put("session/s1", {Keyword("session/user-id"): "u2"})
        await live.put("session/s2", {Keyword("at"): dt.date(2024, 5, 1)})
        await live.restore(tmp_path / "backup.db")
        assert await rows_of(live) == {(":session/user-id", "u1", "s", "session/s1")}
        await assert_index_exact(live)


async def test_a_value_held_twice_is_one_row_on_every_write_path(tmp_path: Path) -> None:
    # The rows are a set; a put's upsert must not trip over a repeated member.
    twice = {Keyword("a"): [1, 1], Keyword("t"): Vector([Keyword("x"), Keyword("x")])}
    async with SqliteStore(tmp_path / "d.db", indexed=DECLARED) as store:
        await store.put("k/1", twice)
        await store.put("k/1", twice)
        await store.put_many([("k/2", twice), ("k/2", twice)])
        await store.put_many([("k/2", twice)])
        assert await rows_of(store) == {
            (":a", 1, "i", "k/1"),
            (":t", "x", "k", "k/1"),
            (":a", 1, "i", "k/2"),
            (":t", "x", "k", "k/2"),
        }


async def test_only_declared_attributes_are_indexed_and_a_change_rebuilds(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    session = loads('{:session/user-id "u1" :session/status :open}')
    async with SqliteStore(path) as store:  # nothing declared: writes keep no rows
        await store.put("session/s1", session)
        await store.put_many([("session/s2", session)])
        assert await rows_of(store) == set()
    declared = {"session": {":session/status"}}
    async with SqliteStore(path, indexed=declared) as store:  # declared: rebuilt at open
        assert await rows_of(store) == {
            (":session/status", "open", "k", "session/s1"),
            (":session/status", "open", "k", "session/s2"),
        }
        await store.put("session/s3", session)
        await store.put("project/p1", session)  # another kind: indexed all the same
        assert len(await rows_of(store)) == 4
    async with SqliteStore(path) as store:  # indexed not given: the recorded ones, kept
        assert store.indexed == {":session/status"}
        await store.put("session/s1", loads("{:session/status :closed}"))
        await assert_index_exact(store)
    async with SqliteStore(path, indexed={}) as store:  # the declaration dropped: rows go
        assert await rows_of(store) == set()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"session": {":session/user-id": {"fulltext": True}}},
            "schema.session.':session/user-id': unknown rule 'fulltext'",
        ),
        ({"session": {":session/user-id": {"indexed": "yes"}}}, "rule 'indexed' is true or false"),
        (
            {"session": {":session/user-id": True}},
            "schema.session.':session/user-id': a table of rules",
        ),
        ({"session": ["x"]}, "schema.session: a table of attributes"),
    ],
)
def test_schema_errors_name_kind_attribute_and_rule(schema: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        declared_index(schema)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), entity_values | values, max_size=4))
def test_the_json_reading_of_an_attribute_gives_the_index_rows(entries: dict[str, Any]) -> None:
    # What a query reads for an attribute that is not indexed (the stored JSON, through
    # json_each) is exactly what the index holds for one that is.
    folder = Path(tempfile.mkdtemp(prefix="garrison-json-rows-"))
    try:

        async def run() -> None:
            async with SqliteStore(folder / "j.db", indexed=DECLARED) as store:
                await store.put_many(list(entries.items()))
                for attr in (":session/user-id", ":learning/tags", ":a"):
                    source = _JSON_ROWS.format(attr_check="t.key = ?1")
                    read = await store.connection.execute_fetchall(
                        f"SELECT attr, value, tag, entity FROM {source}", (attr,)
                    )
                    indexed = {row for row in await rows_of(store) if row[0] == attr}
                    assert _typed({(r[0], r[1], r[2], r[3]) for r in read}) == _typed(indexed)

        asyncio.run(run())
    finally:
        shutil.rmtree(folder)


async def test_a_schema_4_index_is_rewritten_to_one_text_per_value(tmp_path: Path) -> None:
    # A schema-4 garrison kept a tagged value's row as its stored text: the set's
    # members in the order they were read, and 1N apart from 1.
    path = tmp_path / "schema4.db"
    labels = {
        "doc/a": loads("#my/tag #{0 8}"),
        "doc/b": loads("#my/tag #{8 0}"),
        "doc/c": loads("1N"),
        "doc/d": loads("#my/tag :plain"),
    }
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await ensure_schema(conn, str(path), MIGRATIONS[:4])
        await conn.execute("BEGIN")
        for key, label in labels.items():
            value = encode_value({Keyword("doc/label"): label})
            await conn.execute(
                "INSERT INTO entries VALUES (?, 'doc', 'doc', ?, 1, 1, 1)", (key, value)
            )
            await conn.execute(
                "INSERT INTO attributes VALUES (':doc/label', ?, 'x', ?)",
                (encode_value(label), key),
            )
        await conn.execute(
            "INSERT INTO meta VALUES ('garrison.indexed_attributes', ?)",
            (encode_value([":doc/label"]),),
        )
        await conn.execute("COMMIT")
    async with SqliteStore(path) as store:  # adopts the recorded index: no rebuild
        assert store.indexed == {":doc/label"}
        assert await rows_of(store) == {
            (":doc/label", '{"#tag":["my/tag",{"#set":[0,8]}]}', "x", "doc/a"),
            (":doc/label", '{"#tag":["my/tag",{"#set":[0,8]}]}', "x", "doc/b"),
            (":doc/label", 1, "i", "doc/c"),
            (":doc/label", '{"#tag":["my/tag",{"#k":"plain"}]}', "x", "doc/d"),
        }
        query = "[:find ?e :in $ ?v :where [?e :doc/label ?v]]"
        assert sorted(await store.query(query, loads("#my/tag #{8 0}"))) == [
            ("doc/a",),
            ("doc/b",),
        ]
        assert await store.query(query, 1) == [("doc/c",)]
