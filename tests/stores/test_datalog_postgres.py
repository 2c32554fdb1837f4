"""Datalog on PostgreSQL: the same answers as SQLite, query by query.

Both stores hold tests/stores/test_datalog.py's data with every attribute
indexed; each query runs on both and the answers must be equal (SQLite's are
checked against Datomic's semantics in test_datalog.py). What PostgreSQL
does not do yet raises a :class:`QueryError` saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from garrison.edn import Keyword, Symbol, loads
from garrison.exceptions import QueryError
from garrison.stores import PostgresStore, SqliteStore
from tests.stores.test_datalog import ALL_ATTRIBUTES, DATA

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

INDEXED = {"any": ALL_ATTRIBUTES}

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
]


@pytest.fixture
async def stores(
    tmp_path: Path, postgres_dsn: str
) -> AsyncIterator[tuple[SqliteStore, PostgresStore]]:
    rows = [(key, loads(text)) for key, text in DATA.items()]
    extra = [("t/1", {Keyword("n"): 1}), ("t/2", {Keyword("n"): 1.0})]
    extra += [("t/3", {Keyword("n"): True}), ("t/4", {Keyword("n"): "1"})]
    async with (
        SqliteStore(tmp_path / "q.db", indexed=INDEXED) as sqlite,
        PostgresStore(postgres_dsn, indexed=INDEXED) as postgres,
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


async def test_postgresql_says_what_it_does_not_answer_yet(
    stores: tuple[SqliteStore, PostgresStore],
) -> None:
    _, postgres = stores
    with pytest.raises(QueryError, match="needs an attribute the store indexes"):
        await postgres.query("[:find ?e :where [?e :not/declared 1]]")
    with pytest.raises(QueryError, match="a variable attribute"):
        await postgres.query('[:find ?a :where [_ ?a "u1"]]')
    with pytest.raises(QueryError, match=r"\(sum \.\.\.\) is not supported on PostgreSQL yet"):
        await postgres.query("[:find (sum ?s) :where [_ :learning/score ?s]]")
    plan = await postgres.query('[:find ?s :where [?s :session/user-id "u1"]]', explain=True)
    assert plan["sql"].count("SELECT") == 1
    assert plan["params"] == [":session/user-id", '"u1"', "s"]
    assert plan["plan"]
    find, where, e = Keyword("find"), Keyword("where"), Symbol("?e")
    assert await postgres.query([find, e, where, [e, Keyword("project/owner"), "u2"]]) == [
        ("project/p3",)
    ]
