"""garrison's own spans: when to make them, how, and the one no-op span.

Library code uses the OpenTelemetry API only; an application (or the
telemetry component, :mod:`garrison.telemetry`) installs the SDK and its
exporters. This module depends on nothing of garrison's but the base layer,
so every layer can use it.

Cost while nobody traces
------------------------
Making a span through the API's proxy tracer costs microseconds even when no
SDK is installed, which is a third of an ask round trip. So every traced path
first asks :func:`tracing_active`, one global read while no provider is set:
until an application installs a real tracer provider, no context is captured
and no span is made, and span helpers hand out :data:`NO_SPAN`. The check
runs on every message and store operation, so a provider installed later is
picked up at once.

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

Root spans
----------
garrison starts no trace of its own for an internal message: an ask or tell
sent with no current span makes no handler span, and the database batches
and store operations under it make none either (:class:`GarrisonTracer`'s
``root=False``), so the sampler is never asked about a new root per message.
:func:`set_trace_roots` (``[components.telemetry] trace_roots = true``)
turns such roots back on. Lifecycle spans, probes (see ``[health] trace``),
and background store work (an EDN flush, a WAL checkpoint, ``root=True`` in
:func:`store_span`) start traces of their own as before.

Store spans and durations
-------------------------
Every store (SQLite, the EDN file, the mode router's own bookkeeping) wraps
each operation in :func:`store_span`, a CLIENT span named ``"{operation}
{collection}"`` with the database semantic-convention attributes:
``db.system.name`` (``"sqlite"``, or the namespaced custom value
``"garrison.edn"`` for the EDN file, which the conventions do not list),
``db.operation.name``, ``db.collection.name``, ``db.query.text`` (the
parameterised SQL only: callers pass ``?`` placeholders, never a value, so no
user data reaches a trace), ``db.operation.batch.size`` for batches of two or
more, and on failure ``error.type``, the exception as an event and ERROR
status. Cancellation is not a failure of the database: a cancelled operation
ends its span without an error. The span is made on the event-loop side and
spans the whole ``await``: aiosqlite runs statements on its own thread, which
does not carry the caller's context. The attributes are passed when the span
starts (not set afterwards): the conventions mark them as sampling inputs.
The same context manager records the operation's duration in the
``db.client.operation.duration`` histogram (:func:`store_operation_duration`,
defined here so the base layer can record it; :mod:`garrison.telemetry`
hands out the same instrument) while a meter provider is installed, span or
no span.

The one reach into OpenTelemetry's internals
--------------------------------------------
:func:`tracing_active` reads the API's module global ``_TRACER_PROVIDER``
instead of calling ``trace.get_tracer_provider()``, which looks up
``os.environ`` on every call while no provider is set: microseconds per
message, for nothing. :func:`metrics_active` reads the metrics API's
``_METER_PROVIDER`` for the same reason. This module is the only place in
garrison that does; ``tests/test_tracing.py`` fails loudly if an
OpenTelemetry release renames either global, and ``pyproject.toml`` bounds
the API's version. Should a global be missing anyway, the public getter is
used (correct, slower).
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, cast

import opentelemetry.metrics._internal as _metrics_api
import opentelemetry.trace as _trace_api
from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    NoOpTracerProvider,
    ProxyTracerProvider,
    SpanKind,
    Status,
    StatusCode,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextvars import Token
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram
    from opentelemetry.trace import Link, Span, SpanContext, Tracer, TracerProvider
    from opentelemetry.util.types import Attributes, AttributeValue

__all__ = [
    "DB_SYSTEM_EDN_FILE",
    "DB_SYSTEM_POSTGRESQL",
    "DB_SYSTEM_SQLITE",
    "METER_NAME",
    "MIGRATOR_SCOPE",
    "NO_SPAN",
    "RUNTIME_SCOPE",
    "STORES_SCOPE",
    "GarrisonTracer",
    "capture_sender",
    "is_unsampled",
    "keep_parent",
    "meter",
    "metrics_active",
    "recording_provider",
    "set_trace_roots",
    "store_operation_duration",
    "store_span",
    "trace_roots",
    "tracer",
    "tracing_active",
]

#: Instrumentation scope of the runtime's spans (handlers, lifecycle, probes).
RUNTIME_SCOPE: Final = "garrison.runtime"
#: Instrumentation scope of every store span.
STORES_SCOPE: Final = "garrison.stores"
#: Instrumentation scope of the migrator's runs (migrate, validate, export).
MIGRATOR_SCOPE: Final = "garrison.migrator"
#: ``db.system.name`` of :class:`SqliteStore` (a value the conventions define).
DB_SYSTEM_SQLITE: Final = "sqlite"
#: ``db.system.name`` of :class:`PostgresStore` (a value the conventions define).
DB_SYSTEM_POSTGRESQL: Final = "postgresql"
#: ``db.system.name`` of the EDN file store: a custom, namespaced value.
DB_SYSTEM_EDN_FILE: Final = "garrison.edn"
#: The instrumentation scope of every garrison metric instrument.
METER_NAME: Final = "garrison"

# Providers that can never record: the API's default proxy (no SDK installed
# yet) and the explicit no-op provider.
_NON_RECORDING_PROVIDERS: Final = (ProxyTracerProvider, NoOpTracerProvider)
# Whether the API may load a provider named by the environment on first use.
_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
# Whether this OpenTelemetry API keeps its provider in the global read below.
_HAS_GLOBAL: Final = hasattr(_trace_api, "_TRACER_PROVIDER")
_last_provider: tuple[object, TracerProvider | None] = (object(), None)  # matches no provider


def _installed_provider() -> object:
    """The API's provider global (``None`` while none is set); see the module docstring."""
    if _HAS_GLOBAL:
        return _trace_api._TRACER_PROVIDER
    return trace.get_tracer_provider()


def recording_provider() -> TracerProvider | None:
    """The installed SDK provider, or ``None`` while spans could not be recorded."""
    global _last_provider  # a one-entry cache keyed by the provider
    provider: Any = _installed_provider()
    last = _last_provider
    if last[0] is provider:
        # The same provider as last time: skip the isinstance against the
        # API's ABCs, which costs about a microsecond per store operation.
        return last[1]
    if provider is None:
        if not _PROVIDER_FROM_ENV:
            return None
        provider = trace.get_tracer_provider()
    recording = None if isinstance(provider, _NON_RECORDING_PROVIDERS) else provider
    if provider is _installed_provider():
        # Cached only when it is the global itself (not one the getter made
        # from the environment, or a proxy standing in while none is set).
        _last_provider = (provider, recording)
    return cast("TracerProvider | None", recording)


if _HAS_GLOBAL and not _PROVIDER_FROM_ENV:

    def tracing_active() -> bool:
        """True when a real (non no-op) tracer provider is installed globally."""
        # One global read while nobody traces: this runs on every message.
        if _trace_api._TRACER_PROVIDER is None:
            return False
        return recording_provider() is not None

else:

    def tracing_active() -> bool:
        """True when a real (non no-op) tracer provider is installed globally."""
        return recording_provider() is not None


# Whether garrison may start a trace of its own for a message or store
# operation that has no parent span (see "Root spans" in the module docstring).
_trace_roots = False


def set_trace_roots(enabled: bool) -> None:
    """Let garrison's per-message and per-operation spans start traces of their own (or not).

    Off by default: with no current span, an ``ask``/``tell`` handler, a
    database batch and a store operation make no span. The telemetry
    component sets it from ``[components.telemetry] trace_roots`` at start.
    """
    global _trace_roots
    _trace_roots = enabled


def trace_roots() -> bool:
    """Whether garrison starts traces of its own for parentless messages and operations."""
    return _trace_roots


# Whether this OpenTelemetry API keeps its meter provider in the global read below.
_HAS_METER_GLOBAL: Final = hasattr(_metrics_api, "_METER_PROVIDER")
_METER_FROM_ENV: Final = "OTEL_PYTHON_METER_PROVIDER" in os.environ


def metrics_active() -> bool:
    """True when a real (non no-op) meter provider is installed globally."""
    # One global read while nobody measures: this runs on every store operation.
    if _HAS_METER_GLOBAL:
        provider = _metrics_api._METER_PROVIDER
        if provider is None:
            if not _METER_FROM_ENV:
                return False
            provider = otel_metrics.get_meter_provider()  # loads and installs it
    else:
        # Correct, slower: the API's proxy provider then counts as active, and
        # its instruments record nothing until a provider is installed.
        provider = otel_metrics.get_meter_provider()
    return not isinstance(provider, NoOpMeterProvider)


# Whether both providers are read from the API's globals and left unset means
# none (no provider named by the environment): store_span's fast path.
_NOTHING_SET_IS_OFF: Final = (
    _HAS_GLOBAL and not _PROVIDER_FROM_ENV and _HAS_METER_GLOBAL and not _METER_FROM_ENV
)

# Bucket boundaries of the semantic conventions for operation durations, in seconds.
_DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip

_meter_cache: tuple[object, otel_metrics.Meter, Histogram] | None = None


def _meter_and_duration() -> tuple[otel_metrics.Meter, Histogram]:
    global _meter_cache
    provider = otel_metrics.get_meter_provider()
    cached = _meter_cache
    if cached is not None and cached[0] is provider:
        return cached[1], cached[2]
    # Imported here: the package's __init__ imports this module while it loads.
    from garrison import __version__  # noqa: PLC0415

    meter = otel_metrics.get_meter(METER_NAME, __version__, provider)
    duration = meter.create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of garrison store operations.",
        explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
    )
    _meter_cache = (provider, meter, duration)
    return meter, duration


def meter() -> otel_metrics.Meter:
    """garrison's meter (scope :data:`METER_NAME`) of the current global meter provider."""
    return _meter_and_duration()[0]


def store_operation_duration() -> Histogram:
    """The ``db.client.operation.duration`` histogram (s) that :func:`store_span` records.

    Defined here, with the store spans, because every store records it;
    :func:`garrison.telemetry.metrics` hands out the same instrument. One
    record per store operation, attributes ``db.system.name``,
    ``db.operation.name`` and, on failure, ``error.type``.
    """
    return _meter_and_duration()[1]


def is_unsampled(span_context: SpanContext) -> bool:
    """True for a valid span context whose trace is not sampled (garrison skips its child spans)."""
    return span_context.is_valid and not span_context.trace_flags.sampled


class _NoSpan(AbstractContextManager["Span"]):
    """Does nothing and hands the block the invalid span, on which every call is a no-op."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


#: The span context manager handed out when no span is made (tracing off, or
#: an unsampled current parent). Stateless, so one serves every block.
NO_SPAN: Final[AbstractContextManager[Span]] = _NoSpan()


class _KeepParent(AbstractContextManager["Span"]):
    """No span: the unsampled parent is made current for the block instead."""

    __slots__ = ("_span", "_token")

    def __init__(self, parent: SpanContext) -> None:
        # A fresh non-recording span rather than the parent's own object: the
        # parent may be a recording span (a RECORD_ONLY sampler decision), and
        # what the block does to "its" span must not land on the parent.
        self._span: Span = NonRecordingSpan(parent)
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
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


def keep_parent(parent: SpanContext) -> AbstractContextManager[Span]:
    """The context manager used in place of a span under an unsampled, captured ``parent``.

    The parent came from a captured context (an envelope), not the current
    one: it is made current for the block, so nested code sees it and skips
    its spans too. The block receives a non-recording span of ``parent``.
    """
    return _KeepParent(parent)


class _CurrentSpan(AbstractContextManager["Span"]):
    """Start a span on enter, make it current, record an exception, end it on exit.

    What the API's ``start_as_current_span`` does, without its two generator
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
        *,
        error_type: bool = False,
        root: bool = True,
    ) -> AbstractContextManager[Span]:
        """A span current for a ``with`` block; records an exception raised inside it.

        Under an unsampled parent no span is made: the parent stays (or, for
        an explicit ``context``, becomes) current for the block. With no
        parent, ``root=False`` (garrison's per-message and per-operation
        spans) makes no span unless :func:`trace_roots` is on.
        """
        parent = trace.get_current_span(context).get_span_context()
        if is_unsampled(parent):
            return NO_SPAN if context is None else _KeepParent(parent)
        if not root and not parent.is_valid and not _trace_roots:
            return NO_SPAN
        return self.start_current_unchecked(
            name, context, kind, attributes, links, error_type=error_type
        )

    def start_current_unchecked(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
        *,
        error_type: bool = False,
    ) -> AbstractContextManager[Span]:
        """:meth:`start_as_current_span` for a caller that has applied the rule itself.

        The handler span knows its parent from the envelope (or that it has
        none), so checking the context again would be wasted work per message.
        """
        return _CurrentSpan(
            self._tracer,
            name,
            context=context,
            kind=kind,
            attributes=attributes,
            links=links,
            error_type=error_type,
        )


# Tracers of the provider seen last, by scope. A provider builds a new Tracer
# (and scope) on every get_tracer call, which would cost microseconds per
# message; keying on the provider follows one that tests or applications replace.
_tracers: tuple[object, dict[str, GarrisonTracer]] = (object(), {})


def tracer(scope: str = RUNTIME_SCOPE) -> GarrisonTracer:
    """garrison's tracer for ``scope`` from the current global provider (cached per provider)."""
    global _tracers
    provider = _installed_provider()
    cached_provider, by_scope = _tracers
    if cached_provider is not provider:
        by_scope = {}
        _tracers = (provider, by_scope)
    found = by_scope.get(scope)
    if found is None:
        found = by_scope[scope] = GarrisonTracer(trace.get_tracer(scope))
    return found


def capture_sender() -> tuple[Context | None, SpanContext | None]:
    """The sender's context and span context, or ``(None, None)`` without a live span.

    For a caller that found :func:`tracing_active` true (it runs on every send).
    """
    ctx = otel_context.get_current()
    if not ctx:
        return None, None  # nothing attached: no span, and nothing to look up
    span_context = trace.get_current_span(ctx).get_span_context()
    if not span_context.is_valid:
        return None, None
    return ctx, span_context


def store_span(
    system: str,
    operation: str,
    collection: str,
    *,
    query: str | None = None,
    batch_size: int | None = None,
    links: Sequence[Link] | None = None,
    root: bool = False,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> AbstractContextManager[Span]:
    """A context manager for one store operation: its CLIENT span and its duration.

    ``system`` is :data:`DB_SYSTEM_SQLITE`, :data:`DB_SYSTEM_POSTGRESQL` or
    :data:`DB_SYSTEM_EDN_FILE`; ``attributes`` are more span attributes (a
    server's ``server.address``, ``server.port`` and ``db.namespace``);
    ``operation`` a short verb (``"get"``, ``"put_many"``, ``"scan"``);
    ``collection`` the table or file name; ``query`` the parameterised statement
    (placeholders only, never values); ``batch_size`` the number of items of a
    batch operation (recorded only when greater than one); ``links`` span
    links (the writes an EDN flush persists). ``root=True`` lets a background
    operation (a flush, a checkpoint) with no parent start a trace of its
    own; otherwise a parentless operation makes a span only when
    :func:`trace_roots` is on.

    While a meter provider is installed, the operation's duration is
    recorded in :func:`store_operation_duration` whether or not a span is
    made.

    The ``with`` block receives the span, so a caller may add attributes such
    as ``db.response.returned_rows``; when no span is made (tracing off, or an
    unsampled current span, which then stays current) it receives the invalid
    span, on which every call is a no-op.

    >>> with store_span(DB_SYSTEM_SQLITE, "get", "entries", query="SELECT 1") as span:
    ...     span.is_recording()
    False
    """
    if (
        _NOTHING_SET_IS_OFF
        and _trace_api._TRACER_PROVIDER is None
        and _metrics_api._METER_PROVIDER is None
    ):
        return NO_SPAN  # no SDK at all: two global reads, not two calls
    tracing = tracing_active()
    measuring = metrics_active()
    if not tracing and not measuring:
        return NO_SPAN
    span: AbstractContextManager[Span] = NO_SPAN
    # garrison's rule (see GarrisonTracer), checked before the attributes are
    # built: most operations have an unsampled parent or none.
    parent = trace.get_current_span().get_span_context() if tracing else None
    if parent is not None and (
        parent.trace_flags.sampled if parent.is_valid else root or _trace_roots
    ):
        span_attributes: dict[str, AttributeValue] = {
            "db.system.name": system,
            "db.operation.name": operation,
            "db.collection.name": collection,
        }
        if attributes:
            span_attributes.update(attributes)
        if query is not None:
            span_attributes["db.query.text"] = query
        if batch_size is not None and batch_size > 1:
            span_attributes["db.operation.batch.size"] = batch_size
        span = tracer(STORES_SCOPE).start_current_unchecked(
            f"{operation} {collection}",
            None,
            SpanKind.CLIENT,
            span_attributes,
            links,
            error_type=True,
        )
    if not measuring:
        return span
    return _MeasuredOperation(span, store_operation_duration(), system, operation)


class _MeasuredOperation(AbstractContextManager["Span"]):
    """A store operation's span (maybe :data:`NO_SPAN`) plus a record of its duration."""

    __slots__ = ("_duration", "_operation", "_span", "_started", "_system")

    def __init__(
        self, span: AbstractContextManager[Span], duration: Histogram, system: str, operation: str
    ) -> None:
        self._span = span
        self._duration = duration
        self._system = system
        self._operation = operation
        self._started = 0.0

    def __enter__(self) -> Span:
        span = self._span.__enter__()
        self._started = time.perf_counter()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        try:
            self._span.__exit__(exc_type, exc, tb)
        finally:
            attributes: dict[str, AttributeValue] = {
                "db.system.name": self._system,
                "db.operation.name": self._operation,
            }
            # As on the span: only an Exception is a failure (not a cancellation).
            if isinstance(exc, Exception):
                cls = type(exc)
                attributes["error.type"] = f"{cls.__module__}.{cls.__qualname__}"
            self._duration.record(elapsed, attributes)
