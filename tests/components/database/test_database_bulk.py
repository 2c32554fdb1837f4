"""LoadRows: a bulk load written by the database actor, like any other write."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.components.database import DatabaseLink, LoadRows, Store
from garrison.stores._sqlite_bulk import encode_rows
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


async def test_a_bulk_load_is_read_fresh_watched_and_traced(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    async with database_runtime(tmp_path, mode="sqlite-first") as rt:
        await rt.get(Store).put("k/1", "old")
        assert await rt.get(Store).get("k/1") == "old"  # now in the read cache
        database = DatabaseLink(rt.ref("database"), "garrison.db")
        items = [("k/1", "loaded"), ("k/2", {"n": 2})]
        async with rt.get(Store).watch("k/") as changes:
            with trace.get_tracer("test").start_as_current_span("loader"):
                result = await database.load(
                    LoadRows(encode_rows(items, kind="k"), [value for _, value in items])
                )
            assert result.written
            assert await rt.get(Store).get_many(["k/1", "k/2"]) == dict(items)
            seen = [await anext(aiter(changes)) for _ in items]
        assert [(event.key, event.op, event.value) for event in seen] == [
            (key, "put", value) for key, value in items
        ]
        assert await database.read_stored(["k/1"]) == ({"k/1": '"loaded"'}, {"k/1": 2})

    spans = span_exporter.get_finished_spans()
    (loader,) = [s for s in spans if s.name == "loader"]
    (handling,) = [s for s in spans if s.name == "database handle LoadRows"]
    (write,) = [
        s for s in spans if s.parent is not None and s.parent.span_id == handling.context.span_id
    ]
    assert handling.parent is not None
    assert handling.parent.span_id == loader.context.span_id
    assert write.name == "put_many entries"


async def test_only_new_rows_are_refused_when_a_key_exists(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, mode="sqlite-only") as rt:
        await rt.get(Store).put("k/1", "there first")
        database = DatabaseLink(rt.ref("database"), "garrison.db")
        items = [("k/1", "file"), ("k/2", "file")]
        result = await database.load(
            LoadRows(encode_rows(items, kind="k"), ["file", "file"], only_new=True)
        )
        assert not result.written
        assert result.stored == {"k/1": '"there first"'}
        assert await rt.get(Store).get_many(["k/1", "k/2"]) == {"k/1": "there first"}
