"""Cheap OpenTelemetry helpers for the message path (API only, never the SDK).

Making a span through the API's proxy tracer costs microseconds even when no
SDK is installed, which is a third of an ask round trip. So the hot path first
asks :func:`tracing_active`, which is one attribute read: until an application
installs a real tracer provider, no context is captured and no span is made.
The check runs on every message, so a provider installed later is picked up at
once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import opentelemetry.trace as _trace_api
from opentelemetry import context as otel_context
from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanContext, Tracer

__all__ = ["_trace_api", "capture_sender", "tracer", "tracing_active"]

_TRACER_NAME = "garrison.runtime"


def tracing_active() -> bool:
    """True when a real (non no-op) tracer provider is installed globally."""
    # The module global, not trace.get_tracer_provider(): the public getter
    # consults os.environ on every call while no provider is set, which is
    # too slow for a per-message check.
    provider = _trace_api._TRACER_PROVIDER
    return provider is not None and not isinstance(provider, trace.NoOpTracerProvider)


_cached: tuple[object, Tracer] | None = None


def tracer() -> Tracer:
    """The runtime's tracer from the current global provider.

    Cached per provider: an SDK provider builds a new Tracer (and scope) on
    every ``get_tracer`` call, which would cost microseconds per message.
    """
    global _cached  # a one-entry cache keyed by the provider
    provider = _trace_api._TRACER_PROVIDER
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    result = trace.get_tracer(_TRACER_NAME)
    _cached = (provider, result)
    return result


def capture_sender() -> tuple[Context | None, SpanContext | None]:
    """The sender's context and span context, or ``(None, None)`` without a live span."""
    if not tracing_active():
        return None, None
    ctx = otel_context.get_current()
    span_context = trace.get_current_span(ctx).get_span_context()
    if not span_context.is_valid:
        return None, None
    return ctx, span_context
