"""garrison.tracing: store spans (names, kind, database attributes, errors), the free
no-SDK path, and the one OpenTelemetry internal it relies on."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import opentelemetry.metrics._internal as metrics_api
import opentelemetry.trace as trace_api
import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from garrison.exceptions import StoreError
from garrison.tracing import (
    DB_SYSTEM_EDN_FILE,
    DB_SYSTEM_SQLITE,
    NO_SPAN,
    metrics_active,
    set_trace_roots,
    store_span,
    tracer,
    tracing_active,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


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
    assert not tracing_active()
    with store_span(DB_SYSTEM_SQLITE, "get", "entries", query="SELECT 1") as span:
        assert not span.is_recording()
        span.set_attribute("db.response.returned_rows", 1)  # harmless on the no-op span
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_the_opentelemetry_provider_global_is_where_garrison_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # garrison.tracing reads opentelemetry.trace._TRACER_PROVIDER on every
    # message instead of calling get_tracer_provider() (which reads os.environ
    # each time while no provider is set). If this fails, an OpenTelemetry
    # release moved the global: update garrison.tracing and the version bound
    # of opentelemetry-api in pyproject.toml.
    from opentelemetry.sdk.trace import TracerProvider

    assert hasattr(trace_api, "_TRACER_PROVIDER"), "opentelemetry.trace._TRACER_PROVIDER is gone"
    assert trace_api._TRACER_PROVIDER is None
    assert not tracing_active()
    provider = TracerProvider()
    # What trace.set_tracer_provider does, minus its set-once guard (a test
    # process may set the provider only once through it).
    monkeypatch.setattr(trace_api, "_TRACER_PROVIDER", provider)
    assert trace.get_tracer_provider() is provider
    assert tracing_active()
    with tracer().start_as_current_span("probe") as span:
        assert span.is_recording()
    provider.shutdown()


def test_no_span_is_one_shared_no_op() -> None:
    with NO_SPAN as span, NO_SPAN as nested:
        assert span is nested is trace.INVALID_SPAN
        assert not span.is_recording()


def test_library_code_imports_the_opentelemetry_sdk_only_where_export_is_set_up() -> None:
    # Applications choose the SDK and exporters; garrison.telemetry sets them up.
    import ast
    from pathlib import Path

    import garrison

    root = Path(garrison.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "telemetry":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.relative_to(root)}:{node.lineno} {name}"
                for name in names
                if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
            ]
    assert not offenders, offenders


@pytest.fixture
def metric_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    """An SDK meter provider in the metrics API's global, for this test only.

    Set the way set_meter_provider sets it, minus its set-once guard; if this
    fails, an OpenTelemetry release moved the global garrison.tracing reads
    (update it and the version bound of opentelemetry-api in pyproject.toml).
    """
    assert hasattr(metrics_api, "_METER_PROVIDER"), "the metrics API's _METER_PROVIDER is gone"
    assert metrics_api._METER_PROVIDER is None
    assert not metrics_active()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    monkeypatch.setattr(metrics_api, "_METER_PROVIDER", provider)
    assert otel_metrics.get_meter_provider() is provider
    assert metrics_active()
    yield reader
    provider.shutdown()


def _durations(reader: InMemoryMetricReader) -> dict[tuple[str, ...], int]:
    """Records of db.client.operation.duration: (system, operation, error type) -> count."""
    data = reader.get_metrics_data()
    found: dict[tuple[str, ...], int] = {}
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "db.client.operation.duration":
                    continue
                assert metric.unit == "s"
                for point in metric.data.data_points:
                    assert isinstance(point, HistogramDataPoint)
                    attrs = dict(point.attributes or {})
                    key = tuple(
                        str(attrs[k])
                        for k in ("db.system.name", "db.operation.name", "error.type")
                        if k in attrs
                    )
                    found[key] = point.count
    return found


def test_a_store_operation_is_measured_with_or_without_a_span(
    metric_reader: InMemoryMetricReader,
) -> None:
    # No tracer provider: no span, but the duration is recorded.
    with store_span(DB_SYSTEM_SQLITE, "get", "entries") as span:
        assert not span.is_recording()
    with pytest.raises(StoreError), store_span(DB_SYSTEM_EDN_FILE, "put", "memory.edn"):
        raise StoreError("disk full")
    assert _durations(metric_reader) == {
        ("sqlite", "get"): 1,
        ("garrison.edn", "put", "garrison.exceptions.StoreError"): 1,
    }


def test_a_parentless_operation_makes_a_span_only_as_a_root_or_with_trace_roots(
    span_exporter: InMemorySpanExporter,
) -> None:
    set_trace_roots(False)  # the fixture turned them on, and puts its setting back
    with store_span(DB_SYSTEM_SQLITE, "get", "entries") as span:
        assert not span.is_recording()
    with store_span(DB_SYSTEM_SQLITE, "checkpoint", "wal", root=True) as span:
        assert span.is_recording()
    with (
        trace.get_tracer("app").start_as_current_span("request"),
        store_span(DB_SYSTEM_SQLITE, "put", "entries") as span,
    ):
        assert span.is_recording()
    assert [s.name for s in span_exporter.get_finished_spans()] == [
        "checkpoint wal",
        "put entries",
        "request",
    ]
