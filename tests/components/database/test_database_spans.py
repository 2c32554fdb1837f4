"""Every Store facade operation is traced down to its store spans, under the caller's span."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from garrison.components.database import Store
from garrison.stores import SqliteStore
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def _under(spans: tuple[ReadableSpan, ...], root: ReadableSpan) -> list[ReadableSpan]:
    """The spans descending from ``root`` (by parent ids, within its trace)."""
    assert root.context is not None
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    found = []
    for span in spans:
        parent = span.parent
        while parent is not None and parent.span_id != root.context.span_id:
            above = by_id.get(parent.span_id)
            parent = above.parent if above is not None else None
        if parent is not None:
            found.append(span)
    return found


async def test_every_facade_operation_makes_its_store_spans_under_the_callers_span(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("app")
    async with database_runtime(tmp_path, mode="dual-write") as rt:
        store = rt.get(Store)
        await store.put("user/0", {"name": "zero"})
        operations: dict[str, Callable[[], Awaitable[Any]]] = {
            "put": lambda: store.put("user/1", {"name": "ada"}),
            "put_many": lambda: store.put_many({"user/2": {"name": "bo"}, "user/3": {"n": 3}}),
            "get": lambda: store.get("user/4"),
            "get_many": lambda: store.get_many(["user/5", "user/6"]),
            "scan": lambda: store.scan("user/"),
            "count": lambda: store.count("user/"),
            "find": lambda: store.find("$.name", eq="ada"),
            "history": lambda: store.history("user/1"),
            "get_as_of": lambda: store.get_as_of("user/1", 1),
            "delete": lambda: store.delete("user/1"),
            "delete_many": lambda: store.delete_many(["user/2", "user/3"]),
            "flush": store.flush,
            "backup": lambda: store.backup(tmp_path / "backup.sqlite3"),
            "restore": lambda: store.restore(tmp_path / "backup.sqlite3"),
            "set_mode": lambda: store.set_mode("sqlite-first"),
            "clear": lambda: store.clear("user/"),
            "statistics": store.statistics,
        }
        span_exporter.clear()
        for name, operation in operations.items():
            with tracer.start_as_current_span(f"request {name}"):
                await operation()
        await store.flush()  # the background flush of the last writes ends before we look
    spans = span_exporter.get_finished_spans()
    without: list[str] = []
    for name in operations:
        (request,) = [s for s in spans if s.name == f"request {name}"]
        below = _under(spans, request)
        stored = [
            s
            for s in below
            if s.instrumentation_scope is not None
            and s.instrumentation_scope.name == "garrison.stores"
        ]
        if not stored:
            without.append(name)
            continue
        assert {s.context.trace_id for s in below} == {request.context.trace_id}
        client = [s for s in stored if s.kind is SpanKind.CLIENT]
        for span in client:
            assert dict(span.attributes or {})["db.system.name"] in {"sqlite", "garrison.edn"}
    # statistics reads the counters the actor keeps: no store is hit.
    assert without == ["statistics"]


async def test_a_read_from_the_cache_says_so_on_its_span(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("app")
    async with database_runtime(tmp_path, mode="sqlite-only", cache_size=16) as rt:
        store = rt.get(Store)
        await store.put("user/1", {"name": "ada"})
        span_exporter.clear()
        with tracer.start_as_current_span("request"):
            assert await store.get("user/1") == {"name": "ada"}
            assert await store.get("user/1") == {"name": "ada"}
    handled = [s for s in span_exporter.get_finished_spans() if s.name == "database handle Get"]
    assert [dict(s.attributes or {})["garrison.cache.hit"] for s in handled] == [False, True]
    reads = [s for s in span_exporter.get_finished_spans() if s.name == "get entries"]
    assert len(reads) == 1  # the second read never reached SQLite


async def test_a_flush_links_to_the_writes_it_saves_and_is_a_trace_of_its_own(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("app")
    async with database_runtime(tmp_path, mode="edn-only", flush_quiet_period=0.2) as rt:
        store = rt.get(Store)
        span_exporter.clear()
        with tracer.start_as_current_span("request"):
            await store.put("user/1", {"name": "ada"})
            await store.put("user/2", {"name": "bo"})
        # Waits for the writer's own (debounced) flush, not one of ours.
        router = rt.component("database").router  # type: ignore[attr-defined]
        await router.edn.wait_flushed()
    spans = span_exporter.get_finished_spans()
    puts = [s for s in spans if s.name in {"put_many memory.edn", "put memory.edn"}]
    assert len(puts) == 2
    # The writer's flushes: traces of their own, not under the long-finished
    # component start, linked to the writes they saved.
    flushes = [s for s in spans if s.name.startswith("flush ") and s.links]
    assert flushes
    assert all(flush.parent is None for flush in flushes)
    linked = {link.context.span_id for flush in flushes for link in flush.links}
    assert linked == {p.context.span_id for p in puts if p.context is not None}


@pytest.mark.parametrize("count", [70])
async def test_a_flush_keeps_at_most_64_links(
    span_exporter: InMemorySpanExporter, tmp_path: Path, count: int
) -> None:
    from garrison.stores import EdnFileStore

    tracer = trace.get_tracer("app")
    async with EdnFileStore(tmp_path / "memory.edn", quiet_period=60, max_delay=60) as edn:
        with tracer.start_as_current_span("request"):
            for i in range(count):
                await edn.put(f"k/{i}", i)
        await edn.flush()
    (flush,) = [s for s in span_exporter.get_finished_spans() if s.name.startswith("flush ")]
    assert len(flush.links) == 64
    assert dict(flush.attributes or {})["garrison.flush.links_dropped"] == count - 64


async def test_a_wal_checkpoint_is_a_trace_of_its_own(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("app")
    async with SqliteStore(tmp_path / "garrison.db", checkpoint_every=2) as store:
        with tracer.start_as_current_span("request"):
            await store.put("user/1", {"name": "ada"})
            await store.put("user/2", {"name": "bo"})
        checkpointer = store._checkpointer  # the store's own loop, to wait for it
        assert checkpointer is not None
        await checkpointer.wait_idle()
        assert checkpointer.checkpoints == 1
    (checkpoint,) = [s for s in span_exporter.get_finished_spans() if s.name == "checkpoint wal"]
    assert checkpoint.parent is None  # not under the request whose commit asked for it
    assert checkpoint.kind is SpanKind.CLIENT
    assert dict(checkpoint.attributes or {})["db.query.text"] == "PRAGMA wal_checkpoint(PASSIVE)"
