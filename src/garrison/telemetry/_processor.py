"""A batch span processor whose drops and export failures are counted, not silent.

The SDK's ``BatchSpanProcessor`` drops the oldest span when its queue is full
and reports it, at best, through a log line. garrison needs the count for
``statistics()`` and the telemetry health check, so :class:`CountingSpanProcessor`
does its own admission in front of the SDK processor: it counts the spans it
handed over and the spans the exporter has taken out of the queue, and refuses
(and counts) a span when the queue could be full. The exporter-side count is
taken when a batch reaches the exporter, just after the SDK took it out of the
queue, so garrison's idea of the queue length is never below the real one:
the SDK queue itself never overflows, and every lost span is one garrison
counted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

__all__ = ["CountingSpanProcessor", "SpanExportStatistics"]

_log = logging.getLogger("garrison.telemetry")

# One warning per this many seconds at most while spans are being dropped, so an
# overload does not turn into a flood of log lines as well.
_DROP_LOG_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class SpanExportStatistics:
    """What the span pipeline has done so far.

    ``spans_dropped`` counts sampled spans refused because the export queue was
    full; ``spans_failed`` counts spans in batches the exporter could not
    deliver; ``last_export_ok`` is ``None`` before the first export.
    """

    exporter: str
    queue_capacity: int
    spans_queued: int
    spans_dropped: int
    spans_exported: int
    spans_failed: int
    batches_failed: int
    last_export_ok: bool | None
    last_export_error: str | None
    seconds_since_last_drop: float | None


class _CountingExporter(SpanExporter):
    """Wraps the real exporter: frees queue slots and records each batch's outcome."""

    def __init__(self, inner: SpanExporter, owner: CountingSpanProcessor) -> None:
        self._inner = inner
        self._owner = owner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._owner._taken(len(spans))
        try:
            result = self._inner.export(spans)
        except Exception as exc:
            self._owner._record_export(len(spans), ok=False, error=f"{type(exc).__name__}: {exc}")
            raise
        ok = result is SpanExportResult.SUCCESS
        self._owner._record_export(
            len(spans), ok=ok, error=None if ok else "export returned FAILURE"
        )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingSpanProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` that counts what it drops and what fails to export.

    >>> from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    >>> processor = CountingSpanProcessor(ConsoleSpanExporter(), max_queue_size=2048)
    >>> processor.statistics().spans_dropped
    0
    >>> processor.shutdown()
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        schedule_delay_millis: float = 5000,
        max_export_batch_size: int = 512,
        export_timeout_millis: float = 30000,
        name: str | None = None,
    ) -> None:
        self._capacity = max_queue_size
        self._name = name or type(exporter).__name__
        self._lock = threading.Lock()
        self._in_queue = 0
        self._queued = 0
        self._dropped = 0
        self._exported = 0
        self._failed = 0
        self._batches_failed = 0
        self._last_ok: bool | None = None
        self._last_error: str | None = None
        self._last_drop_at: float | None = None
        self._last_drop_log = -_DROP_LOG_INTERVAL
        self._dropped_at_last_log = 0
        self._shut_down = False
        self._batch = BatchSpanProcessor(
            _CountingExporter(exporter, self),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
            export_timeout_millis=export_timeout_millis,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span for export, or count it as dropped when the queue is full."""
        if self._shut_down or span.context is None or not span.context.trace_flags.sampled:
            return
        with self._lock:
            full = self._in_queue >= self._capacity
            if full:
                self._dropped += 1
                self._last_drop_at = time.monotonic()
            else:
                self._in_queue += 1
                self._queued += 1
        if full:
            self._log_drop()
            return
        self._batch.on_end(span)

    def shutdown(self) -> None:
        """Export what is queued, then stop the export thread and the exporter."""
        self._shut_down = True
        self._batch.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; ``False`` when that did not finish in time."""
        return self._batch.force_flush(timeout_millis)

    def statistics(self) -> SpanExportStatistics:
        """A consistent snapshot of the counters."""
        with self._lock:
            last_drop = self._last_drop_at
            return SpanExportStatistics(
                exporter=self._name,
                queue_capacity=self._capacity,
                spans_queued=self._queued,
                spans_dropped=self._dropped,
                spans_exported=self._exported,
                spans_failed=self._failed,
                batches_failed=self._batches_failed,
                last_export_ok=self._last_ok,
                last_export_error=self._last_error,
                seconds_since_last_drop=None if last_drop is None else time.monotonic() - last_drop,
            )

    def _taken(self, count: int) -> None:
        with self._lock:
            self._in_queue = max(0, self._in_queue - count)

    def _record_export(self, count: int, *, ok: bool, error: str | None) -> None:
        with self._lock:
            self._last_ok = ok
            if ok:
                self._exported += count
            else:
                self._failed += count
                self._batches_failed += 1
                self._last_error = error

    def _log_drop(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_drop_log < _DROP_LOG_INTERVAL:
                return
            self._last_drop_log = now
            new = self._dropped - self._dropped_at_last_log
            self._dropped_at_last_log = self._dropped
            total = self._dropped
        _log.warning(
            "span export queue full (capacity %d): dropped %d spans (%d in total); "
            "the exporter %s cannot keep up",
            self._capacity,
            new,
            total,
            self._name,
        )
