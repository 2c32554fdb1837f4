"""One OpenTelemetry span per store operation, following the database conventions.

Every store (SQLite, the EDN file, the mode router's own bookkeeping) wraps each
operation in :func:`store_span`::

    with store_span(DB_SYSTEM_SQLITE, "put", "entries",
                    query="INSERT INTO entries ... VALUES (?, ?, ...)"):
        await connection.execute(...)

The span is a CLIENT span named ``"{operation} {collection}"`` carrying the
database semantic-convention attributes:

- ``db.system.name``: ``"sqlite"`` for :class:`SqliteStore`; the EDN file store
  is not a database the conventions know, so it uses the custom value
  ``"garrison.edn"`` (:data:`DB_SYSTEM_EDN_FILE`), namespaced as the
  conventions ask for values they do not list;
- ``db.operation.name`` and ``db.collection.name``;
- ``db.query.text``: the parameterised SQL only. Callers pass the statement
  with ``?`` placeholders, never a value, so no user data reaches a trace;
- ``db.operation.batch.size`` when a batch holds more than one item (the
  conventions reserve it for batches of two or more);
- on failure, ``error.type`` (the exception's qualified class name), the
  exception as an event, and ERROR status. Cancellation is not a failure of
  the database, so a cancelled operation ends its span without an error.

The span is made on the event-loop side and spans the whole ``await``:
aiosqlite runs statements on its own thread, which does not carry the caller's
context, so a span started there would lose its parent.

Library code only uses the OpenTelemetry API. When no SDK tracer provider is
installed the helper costs two function calls and a type check: it returns a
shared no-op context manager instead of building attributes and a span,
because the database benchmark holds the store to raw sqlite3 throughput.
The same no-op is returned under a valid but unsampled current span
(garrison's rule for its own spans, see :mod:`garrison.runtime._tracing`): with
a 1% parent-based sampler nearly every operation runs in a sampled-out trace,
and asking the SDK for a non-recording span there would cost ~10 µs per
operation for the decision a ``ParentBased`` sampler makes anyway. The
attributes are still passed when the span is started (not set afterwards),
because the conventions mark them as inputs to the sampling decision.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN,
    Span,
    SpanKind,
)

from garrison import __version__
from garrison._spans import CurrentSpan, recording_provider

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.trace import Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "DB_SYSTEM_EDN_FILE",
    "DB_SYSTEM_SQLITE",
    "TRACER_NAME",
    "store_span",
    "tracing_enabled",
]

#: ``db.system.name`` of :class:`SqliteStore` (a value the conventions define).
DB_SYSTEM_SQLITE: Final = "sqlite"
#: ``db.system.name`` of the EDN file store: a custom, namespaced value.
DB_SYSTEM_EDN_FILE: Final = "garrison.edn"
#: The instrumentation scope name of every store span.
TRACER_NAME: Final = "garrison.stores"


class _NoSpan(AbstractContextManager[Span]):
    """The context manager handed out while no SDK is installed: does nothing, cheaply."""

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


_NO_SPAN: Final = _NoSpan()


# The tracer of the provider seen last. A provider hands out a new Tracer object
# per call, so caching it keeps the traced path from paying for that each time;
# keying on the provider follows a provider that tests or applications replace.
_tracer_cache: tuple[TracerProvider, Tracer] | None = None


def _tracer_for(provider: TracerProvider) -> Tracer:
    global _tracer_cache
    cached = _tracer_cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer(TRACER_NAME, __version__)
    _tracer_cache = (provider, tracer)
    return tracer


def tracing_enabled() -> bool:
    """Whether an SDK tracer provider is installed, so store spans would be recorded."""
    return recording_provider() is not None


def store_span(
    system: str,
    operation: str,
    collection: str,
    *,
    query: str | None = None,
    batch_size: int | None = None,
) -> AbstractContextManager[Span]:
    """A context manager making one CLIENT span for one store operation.

    ``system`` is :data:`DB_SYSTEM_SQLITE` or :data:`DB_SYSTEM_EDN_FILE`;
    ``operation`` a short verb (``"get"``, ``"put_many"``, ``"scan"``);
    ``collection`` the table or file name; ``query`` the parameterised statement
    (placeholders only, never values); ``batch_size`` the number of items of a
    batch operation (recorded only when greater than one).

    The ``with`` block receives the span, so a caller may add attributes such
    as ``db.response.returned_rows``; when tracing is off, or when the current
    span is valid but not sampled (then no span is made at all and the
    unsampled parent stays current), it receives the non-recording invalid
    span, on which every call is a no-op.

    >>> with store_span(DB_SYSTEM_SQLITE, "get", "entries", query="SELECT 1") as span:
    ...     span.is_recording()
    False
    """
    provider = recording_provider()
    if provider is None:
        return _NO_SPAN
    parent = trace.get_current_span().get_span_context()
    if parent.is_valid and not parent.trace_flags.sampled:
        # garrison's rule for its own spans (garrison.runtime._tracing): under
        # an unsampled parent no span is made and the parent stays current,
        # which is what a ParentBased sampler would decide, ~10 us cheaper.
        return _NO_SPAN
    attributes: dict[str, AttributeValue] = {
        "db.system.name": system,
        "db.operation.name": operation,
        "db.collection.name": collection,
    }
    if query is not None:
        attributes["db.query.text"] = query
    if batch_size is not None and batch_size > 1:
        attributes["db.operation.batch.size"] = batch_size
    return CurrentSpan(
        _tracer_for(provider),
        f"{operation} {collection}",
        context=None,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        links=None,
        error_type=True,
    )
