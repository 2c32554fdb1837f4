"""TelemetryComponent's hooks and health, driven directly (no runtime)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace

from garrison.components.telemetry import TelemetryComponent, TelemetryConfig
from garrison.runtime._check import HealthStatus

if TYPE_CHECKING:
    from collections.abc import Iterator

from tests.telemetry._otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def test_it_starts_before_everything_and_is_not_critical() -> None:
    assert TelemetryComponent.starts_first
    assert not TelemetryComponent.critical
    assert TelemetryComponent.name == "telemetry"
    assert TelemetryComponent.config_class is TelemetryConfig


async def test_start_installs_and_stop_flushes(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    component = TelemetryComponent()
    component.config = TelemetryConfig(service_name="from-config")
    await component.on_start()
    assert component.pipeline is not None
    assert component.pipeline.state == "sdk"
    with trace.get_tracer("t").start_as_current_span("during the run"):
        pass
    health = await component.check_health()
    assert health.status is HealthStatus.PASS
    assert health.observed["state"] == "sdk"
    await component.on_stop()
    assert component.statistics() == ()
    (span,) = receiver.wait_for_spans(lambda got: len(got) >= 1)
    assert span.name == "during the run"
    assert span.resource["service.name"] == "from-config"


async def test_health_warns_while_the_exporter_fails(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.status = 400
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    component = TelemetryComponent()
    await component.on_start()
    with trace.get_tracer("t").start_as_current_span("rejected"):
        pass
    assert component.pipeline is not None
    assert component.pipeline.tracer_provider is not None
    assert component.pipeline.tracer_provider.force_flush()  # type: ignore[attr-defined]
    health = await component.check_health()
    assert health.status is HealthStatus.WARN
    assert "export failing" in health.output
    assert health.observed["spans_failed"] == 1
    await component.on_stop()


@pytest.mark.usefixtures("restore_logging")
async def test_log_format_configures_structured_logging() -> None:
    component = TelemetryComponent()
    component.config = TelemetryConfig(log_format="json", log_level="WARNING")
    await component.on_start()
    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert any(type(h).__name__ == "_GarrisonHandler" for h in root.handlers)
    health = await component.check_health()
    assert health.status is HealthStatus.PASS
    assert health.observed["state"] == "disabled"
    await component.on_stop()
