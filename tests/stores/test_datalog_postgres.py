"""Datalog on PostgreSQL: the same answers as SQLite, query by query.

Both stores hold tests/stores/test_datalog.py's data with every attribute
indexed; each query runs on both and the answers must be equal (SQLite's are
checked against Datomic's semantics in test_datalog.py). What PostgreSQL
does not do yet raises a :class:`QueryError` saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from garrison.edn import BigInt, Keyword, Symbol, loads
from garrison.exceptions import QueryError
from garrison.stores import PostgresStore, SqliteStore
from tests.stores.test_datalog import ALL_ATTRIBUTES, DATA

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

INDEXED = {"any": ALL_ATTRIBUTES}
_UUID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

QUERIES: list[tuple[str, tuple[Any, ...]]] = [
    (
        (
            "[:find ?s ?user :in $ ?tag :where [?l :learning/tags ?tag] [?l :learning/session ?s] "
            "[?l :learning/score ?score] [(> ?score 0.5)] [?s :session/user-id ?user]]"
        ),
        (Keyword("clojure"),),
    ),
    ('[:find ?s :where [?s :session/user-id "u1"]]', ()),
    ("[:find ?owner (count ?p) :where [?p :project/owner ?owner]]", ()),
    ("[:find (count ?l) :where [?l :learning/tags ?t] [?l :learning/score ?s]]", ()),
    ("[:find (count-distinct ?o) :where [_ :project/owner ?o]]", ()),
    ("[:find (max ?s) (min ?s) :where [_ :learning/score ?s]]", ()),
    (
        (
            "[:find ?p :in $ [?owner ...] :where [?p :project/owner ?owner] "
            "(not [?p :project/status :archived])]"
        ),
        (["u1", "u2"],),
    ),
    ("[:find ?p :in $ [?owner ...] :where [?p :project/owner ?owner]]", ([],)),
    (
        (
            "[:find ?name :where [?p :project/name ?name] "
            '(or [?p :project/status :archived] [?p :project/owner "u2"])]'
        ),
        (),
    ),
    ('[:find ?name :where [?p :project/name ?name] [(starts-with? ?name "gar")]]', ()),
    ('[:find ?name :where [?p :project/name ?name] [(< ?name "h")]]', ()),
    ("[:find ?e :in $ ?v :where [?e :n ?v]]", (1,)),
    ("[:find ?e :in $ ?v :where [?e :n ?v]]", (1.0,)),
    ("[:find ?e :in $ ?v :where [?e :n ?v]]", (True,)),
    ("[:find ?e :in $ ?v :where [?e :n ?v]]", ("1",)),
    ("[:find ?v :where [_ :n ?v]]", ()),
    # a reference: a keyword value joined to an entity position
    ("[:find ?u :where [?x :presence/session ?s] [?s :session/user-id ?u]]", ()),
    ("[:find ?x ?s :where [?x :presence/session ?s] [(= ?s :session/s1)]]", ()),
    ("[:find ?s :in $ ?s :where [?s :session/id _]]", (Keyword("session/s2"),)),
    ('[:find (pull ?e [*]) :where [?e :project/owner "u2"]]', ()),
    ("[:find (pull ?e [:project/name]) :where [?e :project/status :active]]", ()),
    ("[:find ?t :where [_ :learning/tags ?t]]", ()),
    # variable attributes, sum and avg
    ('[:find ?a :where [_ ?a "u1"]]', ()),
    ("[:find ?a :in $ [?a ...] :where [_ ?a :archived]]", ([Keyword("project/status")],)),
    ('[:find ?e ?a ?v :where [?e ?a ?v] [?e :project/owner "u2"]]', ()),
    ("[:find (sum ?s) (avg ?s) :where [_ :learning/score ?s]]", ()),
    ("[:find ?owner (sum ?n) :where [?p :project/owner ?owner] [?p :project/rank ?n]]", ()),
    ("[:find (sum ?v) (avg ?v) :where [_ :n ?v] [(< ?v 2)]]", ()),
    ("[:find (sum ?v) :where [_ :n ?v] [(< ?v 0)]]", ()),
    ("[:find (max ?v) (min ?v) :where [_ :n ?v] [(> ?v -10)]]", ()),
    ("[:find (min ?p) (max ?p) :where [?p :project/owner _]]", ()),
    # tagged scalars, a nested map, a set of mixed members, a string key
    ("[:find ?a ?v :where [:t/7 ?a ?v]]", ()),
    ("[:find ?e :in $ ?v :where [?e :n ?v]]", (BigInt(1),)),
    ("[:find ?e :in $ ?v :where [?e :big ?v]]", (123456789012345678901234567890,)),
    ("[:find ?e :in $ ?v :where [?e :u ?v]]", (loads(f'#uuid "{_UUID}"'),)),
]


@pytest.fixture(params=["indexed", "json"])
async def stores(
    tmp_path: Path, postgres_dsn: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[SqliteStore, PostgresStore]]:
    """SQLite with every attribute indexed; PostgreSQL the same, or with nothing indexed
    (every pattern then reads the stored JSON)."""
    rows = [(key, loads(text)) for key, text in DATA.items()]
    extra = [("t/1", {Keyword("n"): 1}), ("t/2", {Keyword("n"): 1.0})]
    extra += [("t/3", {Keyword("n"): True}), ("t/4", {Keyword("n"): "1"})]
    extra += [("t/5", {Keyword("n"): 1e16}), ("t/6", {Keyword("n"): -7})]
    extra += [("t/8", {Keyword("n"): BigInt(1)}), ("t/9", {Keyword("big"): BigInt(2**70)})]
    extra += [("project/p1", {**loads(DATA["project/p1"]), Keyword("project/rank"): 2})]
    extra += [("project/p2", {**loads(DATA["project/p2"]), Keyword("project/rank"): 2.5})]
    extra += [
        (
            "t/7",
            loads(
                f'{{:u #uuid "{_UUID}" :at #inst "2024-01-02T03:04:05Z" '
                ':m {:a 1} :s #{1 "a" :k [1] 2.5 false} :d 1.50M '
                ":big 123456789012345678901234567890}"
            )
            | {"plain": "x"},
        )
    ]
    indexed = INDEXED if request.param == "indexed" else {}
    async with (
        SqliteStore(tmp_path / "q.db", indexed=INDEXED) as sqlite,
        PostgresStore(postgres_dsn, indexed=indexed) as postgres,
    ):
        for store in (sqlite, postgres):
            await store.put_many(rows + extra)
        yield sqlite, postgres


async def test_postgresql_answers_every_query_as_sqlite_does(
    stores: tuple[SqliteStore, PostgresStore],
) -> None:
    sqlite, postgres = stores
    for query, inputs in QUERIES:
        expected = await sqlite.query(query, *inputs)
        assert expected or "[]" in repr(inputs), query  # every query finds something
        got = await postgres.query(query, *inputs)
        assert sorted(map(repr, got)) == sorted(map(repr, expected)), query


async def test_postgresql_explains_its_plan_and_what_it_reads_from_the_json(
    stores: tuple[SqliteStore, PostgresStore],
) -> None:
    _, postgres = stores
    unindexed = await postgres.query("[:find ?e :where [?e :not/declared 1]]", explain=True)
    assert unindexed["unindexed"] == [":not/declared"]
    assert unindexed["scans"]  # every stored entry is read
    with pytest.raises(QueryError, match=r"\(sum \.\.\.\) adds numbers; \?p is an entity"):
        await postgres.query("[:find (sum ?p) :where [?p :project/owner _]]")
    if postgres.indexed:
        assert not (await postgres.query('[:find ?s :where [?s :session/id "s1"]]', explain=True))[
            "unindexed"
        ]
    else:
        return
    plan = await postgres.query('[:find ?s :where [?s :session/user-id "u1"]]', explain=True)
    assert plan["sql"].count("SELECT") == 1
    assert plan["params"] == [":session/user-id", '"u1"', "s"]
    assert plan["plan"]
    find, where, e = Keyword("find"), Keyword("where"), Symbol("?e")
    assert await postgres.query([find, e, where, [e, Keyword("project/owner"), "u2"]]) == [
        ("project/p3",)
    ]
