"""Group commit and grouped reads: fewer transactions, order kept, one bad caller fails alone."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from garrison import RefusedWriteError
from garrison.components.database import Get, Put, Store
from garrison.stores._protocol import MISSING
from tests.components.database.conftest import database_runtime

if TYPE_CHECKING:
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from garrison import Runtime


async def test_concurrent_writers_share_transactions(runtime: Runtime) -> None:
    store = runtime.get(Store)

    async def writer(n: int) -> None:
        for i in range(20):
            await store.put(f"w{n}/{i}", {"n": n, "i": i})

    await asyncio.gather(*(writer(n) for n in range(32)))
    stats = await store.statistics()
    assert stats.batched_writes == 640
    assert stats.write_batches < 640 / 4  # group commit: many writes per transaction
    assert stats.largest_batch > 1
    assert await store.count() == 640
    assert await store.get("w31/19") == {"n": 31, "i": 19}


async def test_batch_limit_caps_a_transaction(tmp_path: Path) -> None:
    async with database_runtime(tmp_path, batch_limit=8) as rt:
        await asyncio.gather(*(rt.get(Store).put(f"k/{i}", i) for i in range(100)))
        stats = await rt.get(Store).statistics()
        assert stats.largest_batch <= 8
        assert stats.write_batches >= 100 // 8
        assert await rt.get(Store).count("k/") == 100


async def test_reads_see_earlier_writes_in_mailbox_order(runtime: Runtime) -> None:
    ref = runtime.ref("database")
    # gather starts the asks in order and each queues its message at its first
    # step, so the mailbox holds put, get, put, get, put: one drain, five groups.
    results = await asyncio.gather(
        ref.ask(Put("k/1", "first")),
        ref.ask(Get("k/1")),
        ref.ask(Put("k/1", "second")),
        ref.ask(Get("k/1")),
        ref.ask(Put("k/1", "third")),
    )
    assert list(results) == [None, "first", None, "second", None]
    assert await runtime.get(Store).get("k/1") == "third"


async def test_interleaved_callers_read_their_own_writes(runtime: Runtime) -> None:
    store = runtime.get(Store)

    async def session(n: int) -> list[int]:
        seen = []
        for i in range(10):
            await store.put(f"s/{n}", i)
            seen.append(await store.get(f"s/{n}"))
        return seen

    results = await asyncio.gather(*(session(n) for n in range(16)))
    assert all(seen == list(range(10)) for seen in results)


@pytest.mark.parametrize("mode", ["sqlite-only", "dual-write", "edn-only"])
async def test_one_unstorable_value_fails_only_its_caller(tmp_path: Path, mode: str) -> None:
    async with database_runtime(tmp_path, mode=mode) as rt:
        store = rt.get(Store)
        results = await asyncio.gather(
            store.put("a/1", 1),
            store.put("a/2", object()),
            store.put_many([("a/3", 3), ("a/4", b"bytes")]),
            store.put("a/5", 5),
            return_exceptions=True,
        )
        assert results[0] is None
        assert isinstance(results[1], RefusedWriteError)
        assert results[1].key == "a/2"
        assert isinstance(results[2], RefusedWriteError)
        assert results[2].key == "a/4"
        assert results[3] is None
        assert await store.get_many(["a/1", "a/2", "a/3", "a/4", "a/5"]) == {"a/1": 1, "a/5": 5}
        assert await store.get("a/3", MISSING) is MISSING  # put_many is all or nothing
        await store.flush()  # and the EDN writer is not stuck on a bad value


async def test_deletes_in_one_group_report_what_existed(runtime: Runtime) -> None:
    store = runtime.get(Store)
    await store.put_many([("d/1", 1), ("d/2", 2)])
    results = await asyncio.gather(
        store.delete("d/1"),
        store.delete("d/1"),
        store.delete_many(["d/1", "d/2", "d/3"]),
        store.delete("d/9"),
    )
    assert list(results) == [True, False, 1, False]
    assert await store.count("d/") == 0


async def test_batched_ops_get_handler_spans_linked_to_one_batch_span(
    runtime: Runtime, span_exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    tracer = trace.get_tracer("test")
    store = runtime.get(Store)

    async def request(i: int) -> None:
        with tracer.start_as_current_span(f"request {i}"):
            await store.put(f"t/{i}", i)

    await asyncio.gather(*(request(i) for i in range(5)))
    spans = span_exporter.get_finished_spans()
    handlers = [s for s in spans if s.name == "database handle Put"]
    requests = {s.name: s for s in spans if s.name.startswith("request")}
    assert len(handlers) == 5
    # Each handler span is a child of its own caller's span.
    for handler in handlers:
        assert handler.parent is not None
        parents = [r for r in requests.values() if r.context.span_id == handler.parent.span_id]
        assert len(parents) == 1
        assert parents[0].context.trace_id == handler.context.trace_id
    batches = [s for s in spans if s.name == "database put batch"]
    assert batches
    by_id = {h.context.span_id: h for h in handlers}
    covered: set[int] = set()
    for batch in batches:
        assert batch.parent is not None
        assert batch.parent.span_id in by_id
        covered.add(batch.parent.span_id)
        covered.update(link.context.span_id for link in batch.links)
        sql = [
            s for s in spans if s.parent is not None and s.parent.span_id == batch.context.span_id
        ]
        assert [s.name for s in sql] == ["put_many entries"]  # one store span per batch
    assert covered == set(by_id)  # every message reaches its batch by parent or link


async def test_a_batch_span_links_only_to_recorded_handler_spans(
    runtime: Runtime, span_exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    tracer = trace.get_tracer("test")
    store = runtime.get(Store)

    async def sampled(i: int) -> None:
        with tracer.start_as_current_span(f"request {i}"):
            await store.put(f"s/{i}", i)

    async def unsampled(i: int) -> None:
        # A caller inside a trace its own sampler dropped (e.g. at a 1% ratio).
        dropped = SpanContext(0x1234 + i, 0x5678 + i, False, TraceFlags(TraceFlags.DEFAULT))
        with trace.use_span(NonRecordingSpan(dropped)):
            await store.put(f"u/{i}", i)

    await asyncio.gather(sampled(0), *(unsampled(i) for i in range(4)), sampled(1))
    spans = span_exporter.get_finished_spans()
    exported = {s.context.span_id for s in spans}
    batches = [s for s in spans if s.name == "database put batch"]
    assert batches
    assert all(link.context.span_id in exported for b in batches for link in b.links)
    assert len([s for s in spans if s.name == "database handle Put"]) == 2
    assert await store.count() == 6
