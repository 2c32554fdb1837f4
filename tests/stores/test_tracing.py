"""Store spans: names, kind, database attributes, errors, and the free no-SDK path."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from garrison.exceptions import StoreError
from garrison.tracing import (
    DB_SYSTEM_EDN_FILE,
    DB_SYSTEM_SQLITE,
    store_span,
    tracing_enabled,
)


def test_one_client_span_with_the_database_attributes(
    span_exporter: InMemorySpanExporter,
) -> None:
    with store_span(
        DB_SYSTEM_SQLITE,
        "put_many",
        "entries",
        query="INSERT INTO entries VALUES (?)",
        batch_size=3,
    ):
        pass
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "put_many entries"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.operation.name": "put_many",
        "db.collection.name": "entries",
        "db.query.text": "INSERT INTO entries VALUES (?)",
        "db.operation.batch.size": 3,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "garrison.stores"


def test_batch_size_of_one_is_not_a_batch(span_exporter: InMemorySpanExporter) -> None:
    with store_span(DB_SYSTEM_EDN_FILE, "put", "memory.edn", batch_size=1):
        pass
    (span,) = span_exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert "db.operation.batch.size" not in attributes
    assert "db.query.text" not in attributes
    assert attributes["db.system.name"] == "garrison.edn"


def test_failure_sets_error_type_and_status(span_exporter: InMemorySpanExporter) -> None:
    with pytest.raises(StoreError), store_span(DB_SYSTEM_SQLITE, "get", "entries"):
        raise StoreError("disk I/O error", key="a/b")
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "garrison.exceptions.StoreError"
    assert [event.name for event in span.events] == ["exception"]


async def test_cancellation_is_not_an_error(span_exporter: InMemorySpanExporter) -> None:
    started = asyncio.Event()

    async def operation() -> None:
        with store_span(DB_SYSTEM_SQLITE, "get", "entries"):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(operation())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


async def test_span_is_current_around_an_await_and_parented_to_the_caller(
    span_exporter: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        with store_span(DB_SYSTEM_SQLITE, "get", "entries") as span:
            await asyncio.sleep(0)  # a real await on the loop side, as the stores do
            assert trace.get_current_span() is span
        assert trace.get_current_span() is caller
    store, _ = span_exporter.get_finished_spans()
    assert store.parent is not None
    assert store.parent.span_id == caller.get_span_context().span_id


def test_without_an_sdk_nothing_is_recorded() -> None:
    assert not tracing_enabled()
    with store_span(DB_SYSTEM_SQLITE, "get", "entries", query="SELECT 1") as span:
        assert not span.is_recording()
        span.set_attribute("db.response.returned_rows", 1)  # harmless on the no-op span
    assert trace.get_current_span() is trace.INVALID_SPAN
