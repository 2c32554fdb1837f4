"""SqliteStore.find: JSON-path equality and ranges, with declared expression indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison.edn import Keyword
from garrison.exceptions import StoreError
from garrison.stores import KindMapping, SqliteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

USERS = [
    ("user/1", {"name": "ada", "age": 36, "role": Keyword("admin"), "ok": True}),
    ("user/2", {"name": "bob", "age": 25, "role": Keyword("dev"), "ok": False}),
    ("user/3", {"name": "cy", "age": 41, "role": Keyword("admin"), "ok": True, "x": None}),
    ("team/1", {"name": "core", "age": 3}),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    kinds = KindMapping.from_config(namespaces={"team": "team", "user": "user"})
    async with SqliteStore(tmp_path / "f.db", indexes=["$.age"], kinds=kinds) as opened:
        await opened.put_many(USERS)
        yield opened


async def keys(found: list[tuple[str, object]]) -> list[str]:
    return [key for key, _ in found]


async def test_equality(store: SqliteStore) -> None:
    assert await keys(await store.find("$.name", eq="bob")) == ["user/2"]
    assert await keys(await store.find("$.ok", eq=True)) == ["user/1", "user/3"]
    assert await keys(await store.find("$.role", eq=Keyword("admin"))) == ["user/1", "user/3"]
    assert await keys(await store.find("$.x", eq=None, prefix="user/")) == [
        "user/1",
        "user/2",
        "user/3",
    ]


async def test_ranges_prefix_kind_and_pagination(store: SqliteStore) -> None:
    assert await keys(await store.find("$.age", ge=25, lt=41)) == ["user/1", "user/2"]
    assert await keys(await store.find("$.age", gt=2, prefix="user/")) == [
        "user/1",
        "user/2",
        "user/3",
    ]
    assert await keys(await store.find("$.age", le=3)) == ["team/1"]
    assert await keys(await store.find("$.age", gt=0, kind="team")) == ["team/1"]
    page = await store.find("$.age", gt=0, limit=2)
    rest = await store.find("$.age", gt=0, after=page[-1][0])
    assert await keys(page + rest) == ["team/1", "user/1", "user/2", "user/3"]
    assert page[0][1] == {"name": "core", "age": 3}


async def _plan_of_last_query(store: SqliteStore, exporter: InMemorySpanExporter) -> str:
    sql = str((exporter.get_finished_spans()[-1].attributes or {})["db.query.text"])
    plan = await store.connection.execute_fetchall(
        f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?")
    )
    return " ".join(str(row[3]) for row in plan)


async def test_declared_expression_index_is_used(
    store: SqliteStore, span_exporter: InMemorySpanExporter
) -> None:
    await store.put_many((f"user/n{i}", {"age": i % 90}) for i in range(1000))
    found = await store.find("$.age", eq=36, prefix="user/")
    assert len(found) == 12  # 11 generated users and ada
    assert "USING INDEX entries_by_age" in await _plan_of_last_query(store, span_exporter)
    await store.find("$.age", gt=30, lt=32)
    assert "USING INDEX entries_by_age" in await _plan_of_last_query(store, span_exporter)
    await store.find("$.name", eq="ada")  # not declared: a scan
    assert "USING INDEX" not in await _plan_of_last_query(store, span_exporter)


async def test_an_undeclared_path_still_works_by_scanning(store: SqliteStore) -> None:
    assert await keys(await store.find("$.name", gt="b", lt="c")) == ["user/2"]


@pytest.mark.parametrize("path", ["name", "$.a'; DROP TABLE entries; --", "$", "$.a b"])
async def test_unsafe_or_malformed_paths_are_refused(store: SqliteStore, path: str) -> None:
    with pytest.raises(StoreError, match="unsupported JSON path"):
        await store.find(path, eq=1)
    assert await store.count() == 4


async def test_a_bad_index_path_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported JSON path"):
        SqliteStore(tmp_path / "x.db", indexes=["$.a-b"])
