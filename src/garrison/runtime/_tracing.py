"""Cheap OpenTelemetry helpers for the message path (API only, never the SDK).

Making a span through the API's proxy tracer costs microseconds even when no
SDK is installed, which is a third of an ask round trip. So the hot path first
asks :func:`tracing_active`, which is one attribute read: until an application
installs a real tracer provider, no context is captured and no span is made.
The check runs on every message, so a provider installed later is picked up at
once.

garrison's rule for its own spans
---------------------------------
When the parent of one of garrison's internal spans (an ask's handler span, a
database batch span, a store span, a lifecycle span) is valid but *not
sampled*, garrison makes no span at all: the unsampled parent simply stays
current, so code nested inside sees the same parent and skips too. Under the
SDK's default ``ParentBased`` samplers (``parentbased_always_on``,
``parentbased_traceidratio``, ...) that is exactly the decision the SDK would
reach, minus the ~10 µs the SDK spends building a non-recording span and the
context-manager layers around it. A sampler configured to sample children of
unsampled parents (``ParentBased(local_parent_not_sampled=ALWAYS_ON)``) gets
no garrison spans under unsampled parents; a root span (no valid parent) is
always left to the sampler. Application spans are never affected: the rule
lives in garrison's tracer wrapper (:func:`tracer`), not in the provider.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

import opentelemetry.trace as _trace_api
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind

from garrison._spans import CurrentSpan as _CurrentSpan
from garrison._spans import recording_provider

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextvars import Token
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, SpanContext, Tracer
    from opentelemetry.util.types import Attributes

__all__ = [
    "GarrisonTracer",
    "_trace_api",
    "capture_sender",
    "is_unsampled",
    "keep_parent",
    "tracer",
    "tracing_active",
]

_TRACER_NAME: Final = "garrison.runtime"


def tracing_active() -> bool:
    """True when a real (non no-op) tracer provider is installed globally."""
    return recording_provider() is not None


def is_unsampled(span_context: SpanContext) -> bool:
    """True for a valid span context whose trace is not sampled (garrison skips its child spans)."""
    return span_context.is_valid and not span_context.trace_flags.sampled


class _KeepParent(AbstractContextManager["Span"]):
    """No span: the unsampled parent is (made) current for the block instead."""

    __slots__ = ("_attach", "_span", "_token")

    def __init__(self, parent: SpanContext, attach: bool) -> None:
        # A fresh non-recording span rather than the parent's own object: the
        # parent may be a recording span (a RECORD_ONLY sampler decision), and
        # what the block does to "its" span must not land on the parent.
        self._span: Span = NonRecordingSpan(parent)
        self._attach = attach
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        if self._attach:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)


def keep_parent(parent: SpanContext, *, attach: bool = True) -> AbstractContextManager[Span]:
    """The context manager used in place of a span under an unsampled ``parent``.

    With ``attach`` (the parent came from a captured context, not the current
    one) the parent is made current for the block, so nested code sees it and
    skips its spans too. The block receives a non-recording span of ``parent``.
    """
    return _KeepParent(parent, attach)


class GarrisonTracer:
    """The tracer garrison makes its own spans with: the provider's, plus the rule above.

    Same call shape as the API's ``Tracer.start_as_current_span`` (a context
    manager yielding the span), which is all garrison uses. Under a valid,
    unsampled parent it does not ask the SDK.
    """

    __slots__ = ("_tracer",)

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span current for a ``with`` block; records an exception raised inside it.

        Under an unsampled parent no span is made: the parent stays (or, for
        an explicit ``context``, becomes) current for the block.
        """
        parent = trace.get_current_span(context).get_span_context()
        if is_unsampled(parent):
            return _KeepParent(parent, context is not None)
        return _CurrentSpan(
            self._tracer, name, context=context, kind=kind, attributes=attributes, links=links
        )

    def start_current_unchecked(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
    ) -> AbstractContextManager[Span]:
        """:meth:`start_as_current_span` for a caller that has applied the rule itself.

        The handler span knows its parent from the envelope (or that it has
        none), so checking the context again would be wasted work per message.
        """
        return _CurrentSpan(
            self._tracer, name, context=context, kind=kind, attributes=attributes, links=links
        )


_cached: tuple[object, GarrisonTracer] | None = None


def tracer() -> GarrisonTracer:
    """The runtime's tracer from the current global provider.

    Cached per provider: an SDK provider builds a new Tracer (and scope) on
    every ``get_tracer`` call, which would cost microseconds per message.
    """
    global _cached  # a one-entry cache keyed by the provider
    provider = _trace_api._TRACER_PROVIDER
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    result = GarrisonTracer(trace.get_tracer(_TRACER_NAME))
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
