"""The built-in ``telemetry`` component: the OpenTelemetry SDK and structured logs.

It starts before every other component (``starts_first``), so their
``component.start`` spans are captured, and stops after them, flushing what is
queued. Configure it in ``garrison.toml``::

    [components.telemetry]
    export = false          # OTEL_* variables switch it on without editing the file
    log_format = "json"     # or "console"; leave it out to keep your own logging
    log_level = "INFO"
    trace_roots = false     # true: a message sent outside any span starts a trace

or with the standard variables only (they win over the file)::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_SERVICE_NAME=shop garrison run

The component is not critical: a broken exporter makes health ``warn``, never
takes the application down.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar, Final

from garrison.runtime import CheckResult, Component
from garrison.telemetry import TelemetryConfig, configure_logging, observe, setup_telemetry
from garrison.tracing import set_trace_roots, trace_roots

if TYPE_CHECKING:
    from collections.abc import Callable

    from garrison.runtime import Runtime
    from garrison.telemetry import SpanExportStatistics, TelemetryPipeline

__all__ = ["DROP_WARNING_WINDOW", "TelemetryComponent", "TelemetryConfig"]

#: Health stays ``warn`` for this many seconds after the last dropped span.
DROP_WARNING_WINDOW: Final = 300.0


class TelemetryComponent(Component):
    """Sets up the OpenTelemetry SDK (and, if asked, structlog) for the whole runtime.

    On start it resolves its config against the OTEL_* environment and installs
    the SDK, unless the application already installed a tracer provider (then
    that one is used, and only flushed on stop) or nothing asks for export. On
    stop it flushes and shuts the providers down off the event loop, within
    ``flush_timeout`` (and the runtime's stop timeout). :meth:`check_health`
    warns while spans are being dropped or the exporter is failing.
    """

    name = "telemetry"
    starts_first: ClassVar[bool] = True
    critical: ClassVar[bool] = False
    config_class: ClassVar[type[TelemetryConfig]] = TelemetryConfig

    config: TelemetryConfig | None = None
    _pipeline: TelemetryPipeline | None = None
    _unobserve: tuple[Callable[[], None], ...] = ()
    _roots_before: bool | None = None

    async def on_start(self) -> None:
        """Configure logging if asked, then install the SDK (off the loop: it reads files)."""
        config = self.config or TelemetryConfig()
        self._roots_before = trace_roots()
        set_trace_roots(config.trace_roots)
        if config.log_format is not None:
            configure_logging(json=config.log_format == "json", level=config.log_level)
        self._pipeline = await asyncio.to_thread(setup_telemetry, config)
        runtime = self._runtime
        if runtime is not None:  # run on its own (no runtime) it has nothing to observe
            self._unobserve = _observe_runtime(runtime)

    async def on_stop(self) -> None:
        """Flush and shut down what :meth:`on_start` installed, bounded by ``flush_timeout``."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            config = self.config or TelemetryConfig()
            await pipeline.aclose(timeout=config.flush_timeout)  # the last collection included
        for unobserve in self._unobserve:
            unobserve()
        self._unobserve = ()
        roots_before, self._roots_before = self._roots_before, None
        if roots_before is not None:
            set_trace_roots(roots_before)

    @property
    def pipeline(self) -> TelemetryPipeline | None:
        """The running pipeline (``None`` before start and after stop)."""
        return self._pipeline

    def statistics(self) -> tuple[SpanExportStatistics, ...]:
        """Per-exporter span counters: queued, dropped, exported, failed."""
        return () if self._pipeline is None else self._pipeline.statistics()

    async def check_health(self) -> CheckResult:
        """``warn`` while spans are dropped or the exporter fails; ``pass`` otherwise."""
        pipeline = self._pipeline
        if pipeline is None:
            return CheckResult.passing(state="stopped")
        stats = pipeline.statistics()
        observed: dict[str, object] = {
            "state": pipeline.state,
            "spans_exported": sum(s.spans_exported for s in stats),
            "spans_dropped": sum(s.spans_dropped for s in stats),
            "spans_failed": sum(s.spans_failed for s in stats),
        }
        problems: list[str] = []
        for s in stats:
            recent = s.seconds_since_last_drop
            if recent is not None and recent < DROP_WARNING_WINDOW:
                problems.append(
                    f"{s.exporter}: {s.spans_dropped} spans dropped (queue of {s.queue_capacity} "
                    f"full, last {recent:.0f}s ago)"
                )
            if s.last_export_ok is False:
                problems.append(f"{s.exporter}: export failing ({s.last_export_error})")
        if problems:
            return CheckResult.warning("; ".join(problems), **observed)
        return CheckResult.passing(**observed)


def _observe_runtime(runtime: Runtime) -> tuple[Callable[[], None], ...]:
    """Feed the runtime's levels (mailbox depth, restarts) to the observable instruments.

    The feeds run on the collector's thread; they only read counters.
    """
    return (
        observe(
            "garrison.actor.mailbox.depth",
            lambda: [
                (stats.mailbox_depth, {"garrison.actor": name})
                for name, stats in runtime.statistics().items()
            ],
        ),
        observe(
            "garrison.component.restarts",
            lambda: [
                (count, {"garrison.component": name, "garrison.restart.reason": reason})
                for name, reasons in runtime.restarts().items()
                for reason, count in reasons.items()
            ],
        ),
    )
