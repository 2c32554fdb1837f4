"""garrison.telemetry: OpenTelemetry SDK setup from config and OTEL_*, structlog, metrics.

Library code elsewhere in garrison uses only the OpenTelemetry API. This
package holds the SDK side (what the ``telemetry`` component runs), the
structlog configuration, and garrison's metric instruments.

The instruments and logging need only the API; the SDK and its exporters are
imported the first time a name that needs them is used (``setup_telemetry``,
``TelemetryPipeline``, ``prometheus_metrics``, ``CountingSpanProcessor``,
``SpanExportStatistics``), so a component that records metrics does not load
an SDK nobody set up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from garrison.telemetry._logging import add_trace_context, configure_logging
from garrison.telemetry._metrics import METER_NAME, OBSERVED, Instruments, metrics, observe
from garrison.telemetry._settings import (
    SAMPLERS,
    TelemetryConfig,
    TelemetrySettings,
    resolve_settings,
)

if TYPE_CHECKING:
    from garrison.telemetry._processor import CountingSpanProcessor, SpanExportStatistics
    from garrison.telemetry._sdk import TelemetryPipeline, prometheus_metrics, setup_telemetry

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

# The names whose modules import the SDK, and those modules.
_WITH_SDK = {
    "setup_telemetry": "garrison.telemetry._sdk",
    "TelemetryPipeline": "garrison.telemetry._sdk",
    "prometheus_metrics": "garrison.telemetry._sdk",
    "CountingSpanProcessor": "garrison.telemetry._processor",
    "SpanExportStatistics": "garrison.telemetry._processor",
}


def __getattr__(name: str) -> Any:
    module = _WITH_SDK.get(name)
    if module is None:
        raise AttributeError(f"module 'garrison.telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
