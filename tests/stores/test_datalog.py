"""Datalog: the issue's query forms, as a Datomic user writes them.

Every test runs twice: on a store that indexes every attribute the data has
(patterns read the attribute table) and on one that indexes none (patterns
read the stored JSON): the answers must be the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword, Symbol, loads
from garrison.exceptions import QueryError
from garrison.stores import SqliteStore, compile_query

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

DATA = {
    "session/s1": '{:session/user-id "u1" :session/id "s1"}',
    "session/s2": '{:session/user-id "u2" :session/id "s2"}',
    "session/s3": '{:session/user-id "u1" :session/id "s3"}',
    "learning/l1": "{:learning/tags #{:clojure :datalog} :learning/session :session/s1 "
    ":learning/score 0.9}",
    "learning/l2": "{:learning/tags [:clojure] :learning/session :session/s2 :learning/score 0.7}",
    "learning/l3": "{:learning/tags (:datalog) :learning/session :session/s3 :learning/score 0.2}",
    "project/p1": '{:project/owner "u1" :project/status :active :project/name "garrison"}',
    "project/p2": '{:project/owner "u1" :project/status :archived :project/name "old"}',
    "project/p3": '{:project/owner "u2" :project/status :active :project/name "other"}',
    "presence/x1": '{:presence/session :session/s1 :presence/user "u1" :presence/online? true}',
}


# Every attribute DATA and the tests write ("n" is test_values_keep_clojures_equality's).
ALL_ATTRIBUTES = {":" + key.text for text in DATA.values() for key in loads(text)} | {":n"}


@pytest.fixture(params=["indexed", "json"])
async def store(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SqliteStore]:
    indexed = {"any": ALL_ATTRIBUTES} if request.param == "indexed" else None
    async with SqliteStore(tmp_path / "q.db", indexed=indexed) as opened:
        await opened.put_many([(key, loads(text)) for key, text in DATA.items()])
        yield opened


async def test_the_issues_join_with_a_predicate(store: SqliteStore) -> None:
    query = """[:find ?s ?user
                :in $ ?tag
                :where [?l :learning/tags ?tag]
                       [?l :learning/session ?s]
                       [?l :learning/score ?score]
                       [(> ?score 0.5)]
                       [?s :session/user-id ?user]]"""
    rows = await store.query(query, Keyword("datalog"))
    assert sorted(rows) == [("session/s1", "u1")]  # an entity comes back as its key
    rows = await store.query(query, Keyword("clojure"))
    assert sorted(rows) == [("session/s1", "u1"), ("session/s2", "u2")]


async def test_sessions_of_a_user_and_entity_results(store: SqliteStore) -> None:
    rows = await store.query('[:find ?s :where [?s :session/user-id "u1"]]')
    assert sorted(rows) == [("session/s1",), ("session/s3",)]


async def test_pull_and_python_data_queries(store: SqliteStore) -> None:
    find, where = Keyword("find"), Keyword("where")
    e = Symbol("?e")
    query = [find, (Symbol("pull"), e, [Symbol("*")]), where, [e, Keyword("project/owner"), "u2"]]
    assert await store.query(query) == [(loads(DATA["project/p3"]),)]
    names = await store.query(
        {
            find: [(Symbol("pull"), e, [Keyword("project/name")])],
            where: [
                [e, Keyword("project/status"), Keyword("active")],
                [e, Keyword("project/owner"), "u1"],
            ],
        }
    )
    assert names == [({Keyword("project/name"): "garrison"},)]


async def test_aggregates_count_each_binding_once(store: SqliteStore) -> None:
    rows = await store.query("[:find ?owner (count ?p) :where [?p :project/owner ?owner]]")
    assert sorted(rows) == [("u1", 2), ("u2", 1)]
    # l1 has two tags: a join on tags must not count it twice.
    assert await store.query(
        "[:find (count ?l) :where [?l :learning/tags ?t] [?l :learning/score ?s]]"
    ) == [(3,)]
    assert await store.query("[:find (max ?s) (min ?s) :where [_ :learning/score ?s]]") == [
        (0.9, 0.2)
    ]


async def test_collection_inputs_not_or_and_starts_with(store: SqliteStore) -> None:
    rows = await store.query(
        "[:find ?p :in $ [?owner ...] :where [?p :project/owner ?owner] "
        "(not [?p :project/status :archived])]",
        ["u1", "u2"],
    )
    assert sorted(rows) == [("project/p1",), ("project/p3",)]
    rows = await store.query(
        "[:find ?name :where [?p :project/name ?name] "
        '(or [?p :project/status :archived] [?p :project/owner "u2"])]'
    )
    assert sorted(rows) == [("old",), ("other",)]
    rows = await store.query(
        '[:find ?name :where [?p :project/name ?name] [(starts-with? ?name "gar")]]'
    )
    assert rows == [("garrison",)]


async def test_values_keep_clojures_equality(store: SqliteStore) -> None:
    await store.put("t/1", {Keyword("n"): 1})
    await store.put("t/2", {Keyword("n"): 1.0})
    await store.put("t/3", {Keyword("n"): True})
    await store.put("t/4", {Keyword("n"): "1"})
    for value, key in ((1, "t/1"), (1.0, "t/2"), (True, "t/3"), ("1", "t/4")):
        assert await store.query("[:find ?e :in $ ?v :where [?e :n ?v]]", value) == [(key,)]


async def test_a_query_run_again_answers_for_its_new_inputs(store: SqliteStore) -> None:
    # The statement of a query text is compiled once per kind of input and reused.
    query = "[:find ?s :in $ ?u :where [?s :session/user-id ?u]]"
    for user, sessions in (("u1", ["session/s1", "session/s3"]), ("u2", ["session/s2"]),
                           ("u9", []), ("u1", ["session/s1", "session/s3"])):  # fmt: skip
        assert sorted(await store.query(query, user)) == [(key,) for key in sessions]
    # An input in an entity position: a key as a string or a keyword, or no key at all.
    by_session = "[:find ?u :in $ ?s :where [?s :session/user-id ?u]]"
    cases = [
        ("session/s2", [("u2",)]),
        (Keyword("session/s1"), [("u1",)]),
        ("session/s3", [("u1",)]),
        (1, []),
        (Keyword("session/s2"), [("u2",)]),
    ]
    for given, users in cases:
        assert await store.query(by_session, given) == users, given


async def test_explain_shows_the_one_statement_and_whether_it_scans(store: SqliteStore) -> None:
    plan = await store.query('[:find ?s :where [?s :session/user-id "u1"]]', explain=True)
    if store.indexed:
        assert plan["sql"].count("SELECT") == 1
        assert plan["scans"] is False
        assert plan["unindexed"] == []
    else:  # read from the stored JSON: said so
        assert plan["scans"] is True
        assert plan["unindexed"] == [":session/user-id"]
    plan = await store.query('[:find ?a :where [_ ?a "u1"]]', explain=True)
    assert plan["scans"] is True


async def test_unindexed_attributes_give_the_rows_the_index_would(tmp_path: Path) -> None:
    # Tagged scalars, nested collections and maps, NaN, big integers, markers as
    # values, an entity that is a marker: the JSON reading and the index agree.
    import datetime as dt
    import uuid

    values = {
        "e/1": {Keyword("v"): [1, [2], {Keyword("x"): 3}, uuid.UUID(int=5), None, True]},
        "e/2": {Keyword("v"): frozenset({Keyword("a"), 2**70, float("nan"), dt.date(2024, 5, 1)})},
        "e/3": {Keyword("v"): {"#k": "not a keyword"}, "#k": 1},
        "e/4": {Keyword("v"): (Keyword("b"), 1.5, "s", False)},
        "e/5": Keyword("v"),
        "e/6": {Keyword("v"): {Keyword("nested"): 1}, Keyword("w"): Keyword("v")},
    }
    query = "[:find ?e ?x :where [?e :v ?x]]"
    answers = []
    for indexed in ({"e": {":v"}}, None):
        async with SqliteStore(tmp_path / f"{bool(indexed)}.db", indexed=indexed) as opened:
            await opened.put_many(list(values.items()))
            found = await opened.query(query)
            answers.append(sorted(found, key=repr))
    assert answers[0] == answers[1]
    assert len(answers[0]) == 11


@pytest.mark.parametrize(
    ("query", "clause", "reason"),
    [
        ("[:find ?x :where [?e :a ?v]]", ":find", "not bound"),
        ("[:find ?e :where [?e :a ?v] [(frob ?v 1)]]", "[(frob ?v 1)]", "unknown predicate"),
        ("[:find ?e :where [?e]]", "[?e]", "data pattern"),
        ("[:where [?e :a]]", ":find", "no :find"),
        ("[:find ?e :where (nand [?e :a])]", "(nand [?e :a])", "unknown clause"),
        ("[:find ?e :where [?e :a", "query", "not EDN"),
    ],
)
async def test_errors_name_the_clause_and_the_reason(
    store: SqliteStore, query: str, clause: str, reason: str
) -> None:
    with pytest.raises(QueryError, match=reason) as caught:
        await store.query(query)
    assert caught.value.clause == clause
    assert clause in str(caught.value)


async def test_inputs_must_match_in(store: SqliteStore) -> None:
    with pytest.raises(QueryError, match="takes 1 inputs"):
        await store.query("[:find ?e :in $ ?v :where [?e :a ?v]]")


@pytest.mark.parametrize(
    ("query", "inputs", "reads"),
    [
        (
            '[:find ?s :in $ ?u :where [?s :session/user-id ?u] (not [?s :session/id "x"])]',
            ("u1",),
            {":session/user-id", ":session/id"},
        ),
        ('[:find ?e :where [?e ?a "u1"]]', (), {"*"}),
        ("[:find (pull ?s [*]) :where [?s :session/id _]]", (), {":session/id", "*"}),
        ("[:find (pull ?e [*]) :in $ ?e]", ("session/s1",), None),
    ],
    ids=["patterns", "any-attribute", "pull-of-a-pattern", "pull-of-an-input"],
)
def test_a_compiled_query_knows_the_attributes_it_reads(
    query: str, inputs: tuple[str, ...], reads: set[str] | None
) -> None:
    # What the query cache and the live queries follow: a commit touching none
    # of them cannot change the answer; None: any commit may.
    compiled = compile_query(query, inputs)
    assert compiled.reads == (None if reads is None else frozenset(reads))
