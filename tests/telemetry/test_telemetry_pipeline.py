"""The counting span processor and setup_telemetry's decisions (no network)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from garrison.exceptions import ConfigError
from garrison.telemetry import (
    CountingSpanProcessor,
    TelemetryConfig,
    TelemetryPipeline,
    resolve_settings,
    setup_telemetry,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.usefixtures("otel_globals")


class GatedExporter(SpanExporter):
    """Blocks in export until released; records what it received."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.received: list[str] = []
        self.result = result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        self.received.extend(s.name for s in spans)
        return self.result

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    exporter = GatedExporter()
    processor = CountingSpanProcessor(
        exporter, max_queue_size=4, max_export_batch_size=4, schedule_delay_millis=60_000
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for i in range(4):
        tracer.start_span(f"first {i}").end()
    assert exporter.entered.wait(10), "the full batch should reach the exporter"
    with caplog.at_level(logging.WARNING, logger="garrison.telemetry"):
        for i in range(7):
            tracer.start_span(f"second {i}").end()
    stats = processor.statistics()
    assert stats.spans_queued == 8
    assert stats.spans_dropped == 3
    assert stats.seconds_since_last_drop is not None
    assert "dropped" in caplog.text
    assert "queue full" in caplog.text

    exporter.release.set()
    provider.shutdown()
    stats = processor.statistics()
    assert stats.spans_exported == 8
    assert sorted(exporter.received)[:4] == [f"first {i}" for i in range(4)]
    assert stats.last_export_ok is True


def test_export_failures_are_counted() -> None:
    exporter = GatedExporter(SpanExportResult.FAILURE)
    exporter.release.set()
    processor = CountingSpanProcessor(exporter, schedule_delay_millis=60_000)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    for i in range(3):
        provider.get_tracer("t").start_span(f"s{i}").end()
    assert processor.force_flush()
    stats = processor.statistics()
    assert stats.last_export_ok is False
    assert stats.spans_failed == 3
    assert stats.batches_failed == 1
    assert stats.last_export_error == "export returned FAILURE"
    provider.shutdown()


def test_unsampled_spans_are_not_queued() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = GatedExporter()
    processor = CountingSpanProcessor(exporter)
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("never").end()
    assert processor.statistics().spans_queued == 0
    provider.shutdown()


@pytest.mark.usefixtures("clean_env")
def test_nothing_is_installed_when_the_settings_leave_the_sdk_off() -> None:
    pipeline = setup_telemetry(TelemetryConfig())
    assert pipeline.state == "disabled"
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert pipeline.statistics() == ()


@pytest.mark.usefixtures("clean_env")
async def test_an_application_provider_is_used_not_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_provider = TracerProvider(shutdown_on_exit=False)
    trace.set_tracer_provider(app_provider)
    with caplog.at_level(logging.INFO, logger="garrison.telemetry"):
        pipeline = setup_telemetry(TelemetryConfig(export=True))
    assert pipeline.state == "application"
    assert trace.get_tracer_provider() is app_provider
    assert "application installed" in caplog.text
    # Closing flushes the application's provider but leaves it working.
    assert await pipeline.aclose(timeout=5)
    with app_provider.get_tracer("t").start_as_current_span("still works") as span:
        assert span.is_recording()


async def test_the_sdk_is_built_from_the_environment() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "billing",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
    }
    pipeline = setup_telemetry(None, environ=env)
    try:
        provider = trace.get_tracer_provider()
        assert pipeline.state == "sdk"
        assert isinstance(provider, TracerProvider)
        assert provider is pipeline.tracer_provider
        assert provider.resource.attributes["service.name"] == "billing"
        assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
        assert provider.sampler.get_description().startswith("ParentBased")
        assert metrics.get_meter_provider() is pipeline.meter_provider
        (stats,) = pipeline.statistics()
        assert stats.queue_capacity == 64
        assert stats.exporter == "console:ConsoleSpanExporter"
    finally:
        assert await pipeline.aclose(timeout=5)


async def test_a_second_setup_reuses_the_provider_with_fresh_processors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}
    first = setup_telemetry(None, environ=env)
    await first.aclose(timeout=5)
    with caplog.at_level(logging.INFO, logger="garrison.telemetry"):
        second = setup_telemetry(None, environ=env)
    assert second.state == "sdk"
    assert second.tracer_provider is first.tracer_provider
    assert trace.get_tracer_provider() is first.tracer_provider
    assert "reusing the tracer provider" in caplog.text
    assert "metrics are not exported" in caplog.text
    (stats,) = second.statistics()
    assert stats.exporter == "console:ConsoleSpanExporter"
    await second.aclose(timeout=5)


def test_grpc_without_its_exporter_is_a_clear_error() -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_METRICS_EXPORTER": "none"}
    with pytest.raises(ConfigError, match=r"garrison\[grpc\]") as info:
        setup_telemetry(None, environ=env)
    assert info.value.path == "OTEL_EXPORTER_OTLP_PROTOCOL"
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_an_unknown_exporter_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="zipkin") as info:
        setup_telemetry(None, environ={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert info.value.path == "OTEL_TRACES_EXPORTER"


def test_invalid_batch_settings_name_the_variable() -> None:
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_BSP_MAX_QUEUE_SIZE": "-1"}
    with pytest.raises(ConfigError) as info:
        setup_telemetry(None, environ=env)
    assert info.value.path == "OTEL_BSP_MAX_QUEUE_SIZE"


async def test_close_is_bounded_when_the_collector_hangs() -> None:
    exporter = GatedExporter()
    processor = CountingSpanProcessor(exporter, schedule_delay_millis=60_000)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("stuck").end()
    settings = resolve_settings(None, {})
    pipeline = TelemetryPipeline(settings, "sdk", tracer_provider=provider, processors=(processor,))
    started = time.monotonic()
    ok = await pipeline.aclose(timeout=0.3)
    elapsed = time.monotonic() - started
    assert ok is False
    assert elapsed < 2.0
    exporter.release.set()


async def test_metrics_alone_install_no_tracer_provider() -> None:
    """OTEL_METRICS_EXPORTER on its own exports metrics; messages stay untraced (no cost)."""
    pipeline = setup_telemetry(None, environ={"OTEL_METRICS_EXPORTER": "console"})
    try:
        assert pipeline.state == "sdk"
        assert pipeline.settings.traces_exporter == ()
        assert pipeline.tracer_provider is None
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        assert metrics.get_meter_provider() is pipeline.meter_provider
    finally:
        assert await pipeline.aclose(timeout=5)
