"""Fixtures shared by the telemetry tests: clean OpenTelemetry globals and logging."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
import structlog
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.util._once import Once

from garrison.telemetry import _sdk

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def otel_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing installed globally for this test, and whatever it installs is undone after.

    The API lets a process set its global providers once; each test needs a
    fresh slot, so this swaps the API's module-level state (and garrison's
    record of what it installed) and monkeypatch puts it all back.
    """
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    # The API's proxy remembers the provider it was pointed at last.
    proxy = metrics_internal._PROXY_METER_PROVIDER
    monkeypatch.setattr(proxy, "_real_meter_provider", None)
    monkeypatch.setattr(proxy, "_meters", [])
    monkeypatch.setattr(_sdk, "_installed", None)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo configure_logging: root handlers and level, and structlog's defaults."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
