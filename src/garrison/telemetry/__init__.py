"""garrison.telemetry: OpenTelemetry SDK setup from config and OTEL_*, structlog, metrics.

Library code elsewhere in garrison uses only the OpenTelemetry API. This
package holds the SDK side (what the ``telemetry`` component runs), the
structlog configuration, and garrison's metric instruments.
"""

from __future__ import annotations

from garrison.telemetry._logging import add_trace_context, configure_logging
from garrison.telemetry._metrics import METER_NAME, OBSERVED, Instruments, metrics, observe
from garrison.telemetry._processor import CountingSpanProcessor, SpanExportStatistics
from garrison.telemetry._sdk import TelemetryPipeline, prometheus_metrics, setup_telemetry
from garrison.telemetry._settings import (
    SAMPLERS,
    TelemetryConfig,
    TelemetrySettings,
    resolve_settings,
)

__all__ = [
    # logging
    "configure_logging",
    "add_trace_context",
    # SDK setup
    "TelemetryConfig",
    "TelemetrySettings",
    "resolve_settings",
    "setup_telemetry",
    "TelemetryPipeline",
    "CountingSpanProcessor",
    "SpanExportStatistics",
    "SAMPLERS",
    # metrics
    "metrics",
    "observe",
    "OBSERVED",
    "prometheus_metrics",
    "Instruments",
    "METER_NAME",
]
