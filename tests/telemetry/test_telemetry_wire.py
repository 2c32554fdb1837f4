"""The wire test: spans and metrics reach a real OTLP/HTTP receiver, configured by OTEL_* only."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import TYPE_CHECKING

import aiosqlite
import pytest
import structlog
from opentelemetry import trace

import garrison
from garrison.components.database import Store
from garrison.telemetry import OBSERVED, configure_logging, metrics, setup_telemetry
from garrison.tracing import DB_SYSTEM_SQLITE, store_span

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.telemetry._otlp_receiver import OtlpReceiver, ReceivedSpan

from tests.telemetry._otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")

SPAN_KIND_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def _by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return matches[0]


@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_spans_and_metrics_arrive_over_otlp_http(
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    compression: str,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "wire-test")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")

    pipeline = setup_telemetry()
    assert pipeline.state == "sdk"
    tracer = trace.get_tracer("app")
    async with aiosqlite.connect(tmp_path / "wire.sqlite3") as db:
        with tracer.start_as_current_span("checkout") as app_span:
            with store_span(DB_SYSTEM_SQLITE, "create", "entries"):
                await db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT)")
            with store_span(
                DB_SYSTEM_SQLITE, "put", "entries", query="INSERT INTO entries VALUES (?, ?)"
            ):
                await db.execute("INSERT INTO entries VALUES (?, ?)", ("k", "v"))
            app_trace = f"{app_span.get_span_context().trace_id:032x}"
            app_span_id = f"{app_span.get_span_context().span_id:016x}"
    metrics().store_operation_duration.record(
        0.002, {"db.system.name": "sqlite", "db.operation.name": "put"}
    )
    assert await pipeline.aclose(timeout=10)

    spans = receiver.wait_for_spans(lambda got: len(got) >= 3)
    checkout = _by_name(spans, "checkout")
    put = _by_name(spans, "put entries")
    create = _by_name(spans, "create entries")
    assert checkout.parent_span_id is None
    assert checkout.trace_id == app_trace
    assert checkout.span_id == app_span_id
    for child in (put, create):
        assert child.trace_id == app_trace
        assert child.parent_span_id == checkout.span_id
        assert child.kind == SPAN_KIND_CLIENT
        assert child.attributes["db.system.name"] == "sqlite"
        assert child.attributes["db.collection.name"] == "entries"
    assert put.attributes["db.operation.name"] == "put"
    assert put.attributes["db.query.text"] == "INSERT INTO entries VALUES (?, ?)"
    assert put.end_time_unix_nano >= put.start_time_unix_nano > 0
    assert checkout.resource["service.name"] == "wire-test"
    assert checkout.resource["deployment.environment"] == "test"
    assert checkout.resource["telemetry.sdk.language"] == "python"

    trace_requests = [r for r in receiver.requests if r.path == "/v1/traces"]
    assert trace_requests
    expected_encoding = "gzip" if compression == "gzip" else ""
    assert {r.content_encoding for r in trace_requests} == {expected_encoding}
    assert {r.content_type for r in trace_requests} == {"application/x-protobuf"}
    assert {r.headers["x-api-key"] for r in trace_requests} == {"s3cret"}

    assert "db.client.operation.duration" in receiver.wait_for_metrics(
        {"db.client.operation.duration"}
    )
    (stats,) = pipeline.statistics()
    assert stats.spans_exported == 3
    assert stats.spans_dropped == 0
    assert stats.last_export_ok is True


async def test_a_failing_collector_is_visible_in_statistics(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.status = 400  # not retryable: the exporter gives up at once
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.endpoint}/v1/traces")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    pipeline = setup_telemetry()
    with trace.get_tracer("app").start_as_current_span("lost"):
        pass
    assert pipeline.state == "sdk"
    processor_stats = pipeline.statistics()
    assert processor_stats[0].last_export_ok is None
    assert await pipeline.aclose(timeout=10)
    (stats,) = pipeline.statistics()
    assert stats.last_export_ok is False
    assert stats.spans_failed == 1
    assert receiver.requests, "the exporter should have tried the receiver"


async def test_a_runtime_s_levels_arrive_at_v1_metrics(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Mailbox depth, restarts, writer lag and subscriptions reach the collector while it runs."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"telemetry": {}, "database": {}},
    }
    async with garrison.open_runtime(config) as rt, rt.get(Store).watch("session/"):
        # Not every instrument has a value yet: restarts has none before a restart.
        wanted = set(OBSERVED) - {"garrison.component.restarts"}
        arrived = await asyncio.to_thread(receiver.wait_for_metrics, wanted)
    assert wanted <= arrived


async def test_logs_arrive_with_the_trace_they_were_logged_in(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    """structlog stays the front end; with OTEL_LOGS_EXPORTER=otlp records reach the collector."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "logs-test")
    configure_logging(json=True, stream=io.StringIO())
    pipeline = setup_telemetry()
    with trace.get_tracer("app").start_as_current_span("checkout") as span:
        structlog.get_logger("shop").warning("payment.declined", order=42)
        trace_id = f"{span.get_span_context().trace_id:032x}"
    logging.getLogger("shop.legacy").error("stdlib %s", "too")
    assert await pipeline.aclose(timeout=10)
    logs = receiver.wait_for_logs(lambda got: len(got) >= 2)
    declined = next(r for r in logs if "payment.declined" in str(r.body))
    assert json.loads(declined.body)["order"] == 42
    assert declined.severity == "WARN"
    assert declined.trace_id == trace_id
    assert declined.resource["service.name"] == "logs-test"
    legacy = next(r for r in logs if "stdlib too" in str(r.body))
    assert legacy.severity == "ERROR"
    # After the close, nothing is handed to the closed provider any more.
    assert not any(type(h).__name__ == "_OtelLogHandler" for h in logging.getLogger().handlers)
