"""A kind's schema through the runtime: each rule refuses the write that breaks it, names
key, attribute and rule, and leaves the data as it was; a changed schema the stored data
breaks stops the start."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from garrison import ConfigError, SchemaError, StartupError
from garrison.components.database import Store
from garrison.edn import Keyword
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

K = Keyword
SCHEMA: dict[str, Any] = {
    "session": {
        ":session/id": {"type": "string", "required": True, "unique": True},
        ":session/project": {"reference": True},
        ":session/tags": {"type": "keyword", "cardinality": "many"},
        ":session/started": {"type": "instant"},
    },
}
PROJECT = {K("project/name"): "garrison"}
S1 = {K("session/id"): "a", K("session/project"): K("project/p1"), K("session/tags"): [K("x")]}

# (value written to session/s2, the rule, the attribute, words of the message)
BROKEN: list[tuple[Any, str, str, str]] = [
    ({K("session/id"): 42}, "type", ":session/id", "must be a string, got 42"),
    ({K("session/id"): "b", K("session/tags"): [K("x"), "y"]}, "type", ":session/tags", '"y"'),
    ({K("session/id"): "b", K("session/started"): "2024"}, "type", ":session/started", "instant"),
    ({K("session/id"): "b", K("session/tags"): K("x")}, "cardinality", ":session/tags", "many"),
    ({K("session/project"): K("project/p1")}, "required", ":session/id", "has no value"),
    ({K("session/id"): None}, "required", ":session/id", "has no value"),  # nil is absent
    ({K("session/id"): "a"}, "unique", ":session/id", "session/s1 of the same kind has it"),
    (
        {K("session/id"): "b", K("session/project"): "p1"},
        "reference",
        ":session/project",
        "keyword",
    ),
    (
        {K("session/id"): "b", K("session/project"): K("project/nope")},
        "reference",
        ":session/project",
        "no entry has the key project/nope",
    ),
]
CHEAP = {"type", "cardinality", "required"}


async def _seed(store: Store) -> None:
    await store.put("project/p1", PROJECT)
    await store.put("session/s1", S1)
    await store.put("session/s2", {K("session/id"): "old"})


@pytest.mark.parametrize("mode", ["sqlite-only", "dual-write", "edn-only"])
async def test_each_rule_refuses_the_write_and_names_key_attribute_and_rule(
    tmp_path: Path, mode: str
) -> None:
    async with database_runtime(tmp_path, mode=mode, schema=SCHEMA) as rt:
        store = rt.get(Store)
        await _seed(store)
        for value, rule, attribute, words in BROKEN:
            if mode == "edn-only" and rule in {"unique"}:
                continue  # checked only where SQLite is written (docs/queries.md)
            if mode == "edn-only" and "nope" in words:
                continue
            with pytest.raises(SchemaError) as refused:
                await store.put("session/s2", value)
            error = refused.value
            assert (error.key, error.attribute, error.rule) == ("session/s2", attribute, rule)
            assert f"session/s2: {attribute} breaks rule {rule}" in str(error)
            assert words in str(error)
            assert "nothing was written" in str(error)
            assert await store.get("session/s2") == {K("session/id"): "old"}
        # What keeps the rules is written; other kinds and non-maps are not checked.
        await store.put("session/s2", {K("session/id"): "b", K("session/tags"): {K("y")}})
        await store.put("session/s3", "not an entity")
        await store.put("project/p2", {K("project/name"): 42})
        assert await store.get("session/s2") == {K("session/id"): "b", K("session/tags"): {K("y")}}


async def test_a_put_many_with_one_bad_entry_writes_nothing(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, schema=SCHEMA) as rt:
        store = rt.get(Store)
        await _seed(store)
        good = {K("session/id"): "c"}
        for bad in ({K("session/id"): 1}, {K("session/id"): "c"}):  # type; unique in the batch
            with pytest.raises(SchemaError):
                await store.put_many({"session/s3": good, "session/s4": bad})
            assert await store.get_many(["session/s3", "session/s4"]) == {}
        # A reference may name a key the same write creates; a unique value may
        # move from one entity to another in one write.
        await store.put_many({
            "project/p9": PROJECT,
            "session/s5": {K("session/id"): "a", K("session/project"): K("project/p9")},
            "session/s1": {K("session/id"): "z"},
        })  # fmt: skip
        assert (await store.get("session/s5"))[K("session/id")] == "a"


async def test_concurrent_callers_are_answered_each_by_their_own_entries(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, schema=SCHEMA) as rt:
        store = rt.get(Store)
        await _seed(store)
        # Queued together, these become one group: the two that share an id
        # cannot both be written, the others are.
        results = await asyncio.gather(
            store.put("session/s6", {K("session/id"): "dup"}),
            store.put("session/s7", {K("session/id"): "dup"}),
            store.put("session/s8", {K("session/id"): 8}),
            store.put("session/s9", {K("session/id"): "fine"}),
            return_exceptions=True,
        )
        assert results[0] is None
        assert isinstance(results[1], SchemaError)
        assert results[1].rule == "unique"
        assert isinstance(results[2], SchemaError)
        assert results[2].rule == "type"
        assert results[3] is None
        assert set(
            await store.get_many(["session/s6", "session/s7", "session/s8", "session/s9"])
        ) == {
            "session/s6",
            "session/s9",
        }


async def test_a_schema_the_stored_data_breaks_stops_the_start(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("session/s1", {K("session/id"): "a"})
        await store.put("session/s2", {K("session/user"): "u2"})
        await store.put("session/s3", {K("session/id"): "a"})
    with pytest.raises(StartupError) as failed:
        async with database_runtime(tmp_path, schema=SCHEMA):
            pass
    error = failed.value.__cause__
    assert isinstance(error, SchemaError)
    text = str(error)
    assert "breaks the configured schema in 2 places" in text
    assert "session/s2: :session/id breaks rule required" in text
    assert "session/s3: :session/id breaks rule unique" in text
    assert "garrison schema check" in text
    # Nothing was applied: without the schema the database opens as it was.
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("session/s2", {K("session/id"): "b"})
        await store.delete("session/s3")
    async with database_runtime(tmp_path, schema=SCHEMA) as rt:  # now the data keeps it
        with pytest.raises(SchemaError):
            await rt.get(Store).put("session/s4", {K("session/id"): "a"})


def test_unique_and_reference_need_commit_durability(tmp_path: Path) -> None:
    async def start() -> None:
        async with database_runtime(tmp_path, durability="debounced", schema=SCHEMA):
            pass

    with pytest.raises(ConfigError, match='need durability = "commit"'):
        asyncio.run(start())


async def test_a_revert_to_values_the_schema_refuses_writes_nothing(tmp_path: Path) -> None:
    async with database_runtime(tmp_path) as rt:
        store = rt.get(Store)
        await store.put("session/s1", {K("session/id"): 1})
        moment = (await store.history("session/s1"))[-1].at
        await store.put("session/s1", {K("session/id"): "one"})
    async with database_runtime(tmp_path, schema=SCHEMA) as rt:
        store = rt.get(Store)
        with pytest.raises(SchemaError, match="session/s1: :session/id breaks rule type"):
            await store.revert("session/", to=moment)
        assert await store.get("session/s1") == {K("session/id"): "one"}
        assert len(await store.history("session/s1")) == 2


async def test_debounced_writes_are_refused_before_they_are_acknowledged(tmp_path: Path) -> None:
    typed = {"session": {":session/id": {"type": "string", "required": True}}}
    async with database_runtime(tmp_path, durability="debounced", schema=typed) as rt:
        store = rt.get(Store)
        with pytest.raises(SchemaError, match="breaks rule required"):
            await store.put("session/s1", {K("session/user"): "u1"})
        await store.put("session/s2", {K("session/id"): "two"})
        await store.flush()
        assert await store.get_many(["session/s1", "session/s2"]) == {
            "session/s2": {K("session/id"): "two"}
        }
