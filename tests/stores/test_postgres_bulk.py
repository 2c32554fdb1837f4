"""Bulk loading into PostgreSQL makes exactly the database put_many makes, on a real server."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from garrison.edn import BigInt, Keyword, Tagged, Vector
from garrison.exceptions import SchemaError
from garrison.stores import (
    EntitySchema,
    PostgresStore,
    acting_as,
    encode_rows,
    fetch_stored_versions_pg,
    put_new_rows_pg,
    put_rows_pg,
    scan_stored_pg,
    unexpected_versions_pg,
)

if TYPE_CHECKING:
    from tests._postgres import PostgresServer

K = Keyword
_ITEMS: list[tuple[str, Any]] = [
    ("session/abc", {K("user"): K("user/u1"), K("tags"): frozenset({K("a"), K("b")})}),
    ("presence/s-1", {K("last-seen"): dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)}),
    ("project/p1", {"name": "Zürich 😀", "ratio": Fraction(22, 7), "big": BigInt(12**20)}),
    ("learning/r1", (K("a"), Vector([1, 2.5, None]), Tagged("my/tag", [1]))),
    ("plain", {"#k": "a \x00 nul and \\u0000 its lookalike"}),
    ("session/n", {"n": 1e16, "z": -0.0}),
]
_INDEXED = {"session": [":user", ":tags"]}


async def _dump(dsn: str) -> dict[str, Any]:
    """Everything the two ways of writing must agree on (times as commit ordinals)."""
    conn = await asyncpg.connect(dsn)
    try:
        commits = await conn.fetch("SELECT at, first_seq, actor, reason FROM commits ORDER BY at")
        order = {row["at"]: i for i, row in enumerate(commits)}
        entries = await conn.fetch(
            "SELECT key, namespace, kind, value, created_at, updated_at, version "
            "FROM entries ORDER BY key"
        )
        history = await conn.fetch("SELECT seq, key, op, value, version, at FROM history")
        attributes = await conn.fetch(
            "SELECT attr, value::text, tag, entity FROM attributes ORDER BY 1, 2, 3, 4"
        )
        meta = await conn.fetch("SELECT name, value FROM meta ORDER BY name")
    finally:
        await conn.close()
    return {
        "commits": [(r["first_seq"], r["actor"], r["reason"]) for r in commits],
        "entries": [(*r[:4], order[r[4]], order[r[5]], r[6]) for r in entries],
        "history": sorted((*r[:5], order[r[5]]) for r in history),
        "attributes": [tuple(r) for r in attributes],
        "meta": [tuple(r) for r in meta],
    }


async def test_put_rows_writes_what_put_many_writes(postgres_server: PostgresServer) -> None:
    changed = [(key, ["changed", value]) for key, value in _ITEMS[1:4]]
    dsns = [await postgres_server.create_database() for _ in range(2)]
    try:
        with acting_as("loader", reason="bulk"):
            async with PostgresStore(dsns[0], indexed=_INDEXED) as store:
                await store.put_many(_ITEMS, kind="session")
                await store.put_many(changed, kind="project")
                await store.set_meta("progress", 2)
            async with PostgresStore(dsns[1], indexed=_INDEXED) as store:
                await put_rows_pg(store, encode_rows(_ITEMS, kind="session"))
                await put_rows_pg(store, encode_rows(changed, kind="project"), meta=("progress", 2))
                assert await store.get("project/p1") == ["changed", _ITEMS[2][1]]
                assert [c.version for c in await store.history("project/p1")] == [1, 2]
                assert (await store.history("project/p1"))[0].actor == "loader"
        expected = await _dump(dsns[0])
        found = await _dump(dsns[1])
        # put_many's separate set_meta is one commit more; the rest is the same.
        assert found["commits"] == expected["commits"][:2]
        assert {k: v for k, v in found.items() if k != "commits"} == {
            k: v for k, v in expected.items() if k != "commits"
        }
        assert found["attributes"], "the declared attributes are indexed"
        assert len(found["history"]) == len(_ITEMS) + len(changed)
    finally:
        for dsn in dsns:
            await postgres_server.drop_database(dsn)


async def test_put_new_rows_writes_only_when_no_key_exists(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        rows = encode_rows(_ITEMS[:2], kind="session")
        started: list[int] = []
        written = await put_new_rows_pg(
            store, rows, meta=("m", 1), writing=lambda: started.append(1)
        )
        assert written is None
        assert started == [1]
        assert await store.get_meta("m") == 1
        before = await store.last_seq()
        events = await store.changes()
        again = encode_rows([("fresh/1", 1), _ITEMS[1]], kind="session")
        present = await put_new_rows_pg(store, again, meta=("m", 2))
        assert present is not None
        texts, versions = present
        assert texts == {_ITEMS[1][0]: rows[1][3]}
        assert versions == {_ITEMS[1][0]: 1}
        # Nothing written: no key, no setting, no history, no commit.
        assert await store.get("fresh/1") is None
        assert await store.get_meta("m") == 1
        assert await store.last_seq() == before
        assert await store.changes() == events
        # The reads a bulk load compares and validates with.
        stored = await fetch_stored_versions_pg(store, ["session/abc", "nope"])
        assert stored == ({"session/abc": rows[0][3]}, {"session/abc": 1})
        assert await unexpected_versions_pg(store, {"session/abc": 1, "presence/s-1": 2}) == [
            "presence/s-1"
        ]
        page = await scan_stored_pg(store, "", None, 10)
        assert page == sorted((row[0], row[3].encode()) for row in rows)
        assert await scan_stored_pg(store, "session/", None, 10) == [page[1]]


async def test_a_batch_naming_a_key_twice_is_written_as_put_many_writes_it(
    postgres_dsn: str,
) -> None:
    async with PostgresStore(postgres_dsn) as store:
        await put_rows_pg(store, encode_rows([("a", 1), ("b", 2), ("a", 3)], kind="k"))
        assert [(c.version, c.value) for c in await store.history("a")] == [(1, 1), (2, 3)]
        assert await store.get("a") == 3


async def test_the_schema_refuses_a_breaking_batch_with_nothing_written(
    postgres_dsn: str,
) -> None:
    rules = {
        "session": {
            ":session/id": {"type": "string", "unique": True},
            ":session/user": {"type": "string"},
            ":session/of": {"type": "keyword", "reference": True},
        }
    }
    sid, user = K("session/id"), K("session/user")
    async with PostgresStore(postgres_dsn, schema=EntitySchema.parse(rules)) as store:
        await put_rows_pg(store, encode_rows([("session/s1", {sid: "a"})], kind="session"))
        breaking = [("session/ok", {sid: "b"}), ("session/s2", {user: 7})]
        with pytest.raises(SchemaError, match="session/s2"):
            await put_rows_pg(store, encode_rows(breaking, kind="session"))
        with pytest.raises(SchemaError, match="session/s1 of the same kind has it too"):
            await put_new_rows_pg(
                store, encode_rows([("session/s3", {sid: "a"})], kind="session"), meta=("m", 1)
            )
        assert await store.keys() == ["session/s1"]
        assert await store.get_meta("m") is None
        # A reference to a key the same batch writes holds, whatever that key's value.
        of = K("session/of")
        batch = [("session/s4", {of: K("session/raw")}), ("session/raw", 1)]
        await put_rows_pg(store, encode_rows(batch, kind="session"))
        with pytest.raises(SchemaError, match="no entry has the key session/gone"):
            await put_rows_pg(
                store, encode_rows([("session/s5", {of: K("session/gone")})], kind="session")
            )
        assert await store.keys() == ["session/raw", "session/s1", "session/s4"]
