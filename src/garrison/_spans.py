"""What garrison's own spans share (runtime and stores alike): whether a real
tracer provider is installed, and the span context manager.

A leaf module with no garrison imports, so every package can use it without
import cycles. OpenTelemetry API only.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Status,
    StatusCode,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextvars import Token
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, SpanKind, Tracer, TracerProvider
    from opentelemetry.util.types import Attributes

__all__ = ["CurrentSpan", "recording_provider"]


# Providers that can never record: the API's default proxy (no SDK installed yet)
# and the explicit no-op provider.
_NON_RECORDING_PROVIDERS: Final = (ProxyTracerProvider, NoOpTracerProvider)
# Whether the API may load a provider named by the environment on first use.
_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNKNOWN: Final = object()
_last_provider: tuple[object, TracerProvider | None] = (object(), None)  # matches no provider


def recording_provider() -> TracerProvider | None:
    """The installed SDK provider, or ``None`` while spans could not be recorded.

    Reads the API's module global rather than calling
    ``trace.get_tracer_provider()``, which looks up ``os.environ`` on every
    call while no provider is set: microseconds per message or store operation, for
    nothing. The public getter is still used
    when the environment names a provider for the API to load, and if a future
    API drops the global.
    """
    global _last_provider  # a one-entry cache keyed by the provider
    provider: Any = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    last = _last_provider
    if last[0] is provider:
        # The same provider as last time: skip the isinstance against the
        # API's ABCs, which costs about a microsecond per store operation.
        return last[1]
    if provider is None:
        if not _PROVIDER_FROM_ENV:
            return None
        provider = trace.get_tracer_provider()
    elif provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    recording = None if isinstance(provider, _NON_RECORDING_PROVIDERS) else provider
    if provider is getattr(trace, "_TRACER_PROVIDER", _UNKNOWN):
        # Cached only when it is the global itself (not one the getter made
        # from the environment or a proxy standing in while none is set).
        _last_provider = (provider, recording)
    return cast("TracerProvider | None", recording)


class CurrentSpan(AbstractContextManager["Span"]):
    """Start a span on enter, make it current, record an exception, end it on exit.

    What the SDK's ``start_as_current_span`` does, without its two generator
    context managers (``_agnosticcontextmanager`` around ``use_span``), which
    cost about a third of an unsampled span. ``error_type=True`` also sets the
    semantic conventions' ``error.type`` attribute on failure (store spans).
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_error_type",
        "_kind",
        "_links",
        "_name",
        "_span",
        "_token",
        "_tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        *,
        context: Context | None,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
        error_type: bool = False,
    ) -> None:
        self._tracer = tracer
        self._error_type = error_type
        self._name = name
        self._context = context
        self._kind = kind
        self._attributes = attributes
        self._links = links
        self._span: Span = INVALID_SPAN
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        span = self._tracer.start_span(
            self._name, self._context, self._kind, self._attributes, self._links
        )
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            if self._token is not None:
                otel_context.detach(self._token)
            # As the API's use_span: only an Exception is a failure (not a
            # cancellation), and an explicitly set status is not overwritten
            # by the SDK.
            if isinstance(exc, Exception) and span.is_recording():
                if self._error_type:
                    cls = type(exc)
                    span.set_attribute("error.type", f"{cls.__module__}.{cls.__qualname__}")
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span.end()
