"""Build and install the OpenTelemetry SDK from :class:`TelemetrySettings`.

This is the only place garrison touches the SDK; library code elsewhere uses the
API only. :func:`setup_telemetry` decides between three outcomes:

- the application already installed a tracer provider: garrison uses it, never
  replaces it, says so in a log line, and only flushes it on close;
- the settings leave the SDK off: nothing is installed (the API stays no-op);
- otherwise garrison builds a ``TracerProvider`` (resource, sampler, one
  :class:`CountingSpanProcessor` per exporter) and a ``MeterProvider`` with a
  periodic reader per metrics exporter, and installs both globally.

OpenTelemetry allows one global provider per process, so a pipeline's close
shuts down its span processors (exporting what is queued) but leaves the
provider installed. A later setup in the same process (a runtime opened again,
or the telemetry component restarted by a ``one_for_all`` supervisor) attaches
fresh processors to that provider: spans are exported again, with the resource
and sampler of the first setup. The meter provider cannot be revived the same
way (it has no way to add readers), so after such a restart metrics are not
exported; the setup logs a warning saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
import time
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from garrison.exceptions import ConfigError
from garrison.telemetry._logging import json_formatter
from garrison.telemetry._processor import CountingSpanProcessor, SpanExportStatistics
from garrison.telemetry._settings import TelemetryConfig, TelemetrySettings, resolve_settings

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TelemetryPipeline", "prometheus_metrics", "setup_telemetry"]

_log = logging.getLogger("garrison.telemetry")

State = Literal["sdk", "application", "disabled"]

# The provider garrison installed in this process, to tell it apart from one
# the application installed (see the module docstring on restarts).
_installed: TracerProvider | None = None
_install_lock = threading.Lock()
# The Prometheus reader's registry while a pipeline with one is installed.
_prometheus_registry: Any = None

_BSP_DEFAULTS: Final = {
    "OTEL_BSP_MAX_QUEUE_SIZE": 2048,
    "OTEL_BSP_SCHEDULE_DELAY": 5000,
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 512,
    "OTEL_BSP_EXPORT_TIMEOUT": 30000,
}


class TelemetryPipeline:
    """What :func:`setup_telemetry` set up; closes it with :meth:`aclose`.

    ``state`` is ``"sdk"`` (garrison's own providers are installed),
    ``"application"`` (the application's provider is used) or ``"disabled"``.
    """

    def __init__(
        self,
        settings: TelemetrySettings,
        state: State,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        processors: tuple[CountingSpanProcessor, ...] = (),
        log_export: tuple[Any, logging.Handler] | None = None,
    ) -> None:
        self.settings = settings
        self.state: State = state
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        # (LoggerProvider, the root logger's handler feeding it) when logs are exported.
        self._log_export = log_export
        self._processors = processors
        self._closed = False

    def statistics(self) -> tuple[SpanExportStatistics, ...]:
        """One snapshot per span exporter garrison built (empty unless ``state == "sdk"``)."""
        return tuple(p.statistics() for p in self._processors)

    # A timeout parameter rather than asyncio.timeout around the call: the bound
    # must also reach the SDK's own flush, which runs in a thread.
    async def aclose(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Flush and shut down what garrison built, off the event loop, within ``timeout`` s.

        An application's provider is flushed, not shut down. Returns ``False``
        when the flush did not finish in time (the rest is abandoned to a
        daemon thread, so a hung collector cannot hold the process). Idempotent.
        """
        if self._closed:
            return True
        self._closed = True
        if self.tracer_provider is None and self.meter_provider is None and not self._log_export:
            return True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def work() -> None:
            error: BaseException | None = None
            try:
                self._close_sync(int(timeout * 1000))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting task, not dropped
                error = exc
            # The loop may be closed when a hung close finally ends.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finish, error)

        # A daemon thread rather than to_thread: the default executor is joined at
        # interpreter exit, and a collector that never answers must not hold it.
        threading.Thread(target=work, name="garrison-telemetry-close", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            _log.warning(
                "telemetry flush did not finish within %.1fs; unsent spans are lost", timeout
            )
            return False
        return True

    def _close_sync(self, timeout_millis: int) -> None:
        provider = self.tracer_provider
        if self.state == "sdk":
            # Each processor exports what is queued before it stops. The provider
            # itself stays installed for a later setup (see the module docstring).
            for processor in self._processors:
                processor.shutdown()
            if self.meter_provider is not None:
                self.meter_provider.shutdown(timeout_millis=timeout_millis)
                _forget_prometheus_registry()
            if self._log_export is not None:
                logger_provider, handler = self._log_export
                logging.getLogger().removeHandler(handler)
                logger_provider.shutdown()  # exports what is queued
        elif self.state == "application":
            flush = getattr(provider, "force_flush", None)
            if callable(flush):
                flush(timeout_millis)


def setup_telemetry(
    config: TelemetryConfig | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> TelemetryPipeline:
    """Resolve the settings and install the SDK when they ask for it.

    Raises :class:`~garrison.exceptions.ConfigError` for invalid OTEL_* values
    or config keys, and when ``grpc`` is asked for but its exporter is not
    installed. Call :meth:`TelemetryPipeline.aclose` on shutdown.
    """
    global _installed
    environ = os.environ if environ is None else environ
    settings = resolve_settings(config, environ)
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        if current is _installed and isinstance(current, TracerProvider):
            return _reattach(current, settings, environ)
        _log.info(
            "using the tracer provider the application installed (%s); garrison does not "
            "replace it",
            type(current).__name__,
        )
        return TelemetryPipeline(settings, "application", tracer_provider=current)
    if not settings.enabled:
        _log.info(
            "OpenTelemetry export is off; set OTEL_EXPORTER_OTLP_ENDPOINT (or another "
            "OTEL_* exporter variable) or export = true in [components.telemetry] to turn it on"
        )
        return TelemetryPipeline(settings, "disabled")

    resource = Resource.create(dict(settings.resource_attributes))
    processors = _processors(settings, environ)
    readers = [_metric_reader(name, settings) for name in settings.metrics_exporter]
    # shutdown_on_exit=False: garrison closes the providers itself, bounded by the
    # stop timeout; the SDK's atexit hook would wait up to 30 s per processor.
    # With no span exporter no tracer provider is installed: spans that go
    # nowhere would cost every message for nothing.
    provider: TracerProvider | None = None
    if processors:
        provider = TracerProvider(
            sampler=_sampler(settings), resource=resource, shutdown_on_exit=False
        )
        for processor in processors:
            provider.add_span_processor(processor)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
    log_export = _log_export(settings, resource) if settings.logs_exporter else None
    with _install_lock:
        if provider is not None:
            trace.set_tracer_provider(provider)
            _installed = provider
        if _is_default_meter_provider(metrics.get_meter_provider()):
            metrics.set_meter_provider(meter_provider)
        else:
            _log.info("using the meter provider the application installed")
    _log.info(
        "OpenTelemetry SDK installed: service %s, traces to %s via %s (%s), sampler %s%s, "
        "metrics to %s, logs to %s",
        settings.service_name or "unknown_service",
        ",".join(settings.traces_exporter) or "nowhere",
        settings.protocol,
        settings.traces_endpoint,
        settings.sampler,
        "" if settings.sampler_arg is None else f"({settings.sampler_arg:g})",
        ",".join(settings.metrics_exporter) or "nowhere",
        ",".join(settings.logs_exporter) or "nowhere",
    )
    return TelemetryPipeline(
        settings,
        "sdk",
        tracer_provider=provider,
        meter_provider=meter_provider,
        processors=processors,
        log_export=log_export,
    )


def _processors(
    settings: TelemetrySettings, environ: Mapping[str, str]
) -> tuple[CountingSpanProcessor, ...]:
    batch = {name: _env_int(environ, name, default) for name, default in _BSP_DEFAULTS.items()}
    span_exporters = [_span_exporter(name, settings) for name in settings.traces_exporter]
    return tuple(
        CountingSpanProcessor(
            exporter,
            max_queue_size=batch["OTEL_BSP_MAX_QUEUE_SIZE"],
            schedule_delay_millis=batch["OTEL_BSP_SCHEDULE_DELAY"],
            max_export_batch_size=batch["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
            export_timeout_millis=batch["OTEL_BSP_EXPORT_TIMEOUT"],
            name=f"{name}:{type(exporter).__name__}",
        )
        for name, exporter in zip(settings.traces_exporter, span_exporters, strict=True)
    )


def _reattach(
    provider: TracerProvider, settings: TelemetrySettings, environ: Mapping[str, str]
) -> TelemetryPipeline:
    """A setup after an earlier garrison pipeline in this process was closed."""
    if not settings.enabled:
        return TelemetryPipeline(settings, "disabled")
    processors = _processors(settings, environ)
    for processor in processors:
        provider.add_span_processor(processor)
    _log.info(
        "reusing the tracer provider garrison installed earlier in this process "
        "(OpenTelemetry allows one per process): new exporters %s, the first setup's "
        "resource and sampler",
        ",".join(settings.traces_exporter) or "none",
    )
    if settings.metrics_exporter:
        _log.warning(
            "metrics are not exported after telemetry was restarted in the same process: "
            "the global meter provider was shut down and cannot be installed again"
        )
    return TelemetryPipeline(settings, "sdk", tracer_provider=provider, processors=processors)


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"expected a positive integer, got {raw!r}", path=name)
    return value


def _sampler(settings: TelemetrySettings) -> sampling.Sampler:
    ratio = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    root: sampling.Sampler = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
    }[settings.sampler.removeprefix("parentbased_")]
    return sampling.ParentBased(root) if settings.sampler.startswith("parentbased_") else root


def _grpc_module(kind: str, settings: TelemetrySettings) -> Any:
    name = f"opentelemetry.exporter.otlp.proto.grpc.{kind}"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            "OTLP over grpc needs the grpc exporter, which is not installed; install "
            "garrison[grpc] (opentelemetry-exporter-otlp-proto-grpc) or use http/protobuf",
            path=settings.sources.get("protocol", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ) from exc


def _span_exporter(name: str, settings: TelemetrySettings) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        if settings.protocol == "grpc":
            module = _grpc_module("trace_exporter", settings)
            exporter: SpanExporter = module.OTLPSpanExporter(**_grpc_options(settings, "traces"))
            return exporter
        return OTLPSpanExporter(
            endpoint=settings.traces_endpoint,
            headers=dict(settings.headers),
            compression=Compression(settings.compression),
        )
    return _from_entry_point("opentelemetry_traces_exporter", name, "OTEL_TRACES_EXPORTER")  # type: ignore[no-any-return]


def _metric_reader(name: str, settings: TelemetrySettings) -> MetricReader:
    exporter: MetricExporter
    if name == "prometheus":
        return _prometheus_reader(settings)
    if name == "console":
        exporter = ConsoleMetricExporter()
    elif name == "otlp" and settings.protocol == "grpc":
        exporter = _grpc_module("metric_exporter", settings).OTLPMetricExporter(
            **_grpc_options(settings, "metrics")
        )
    elif name == "otlp":
        exporter = OTLPMetricExporter(
            endpoint=settings.metrics_endpoint,
            headers=dict(settings.headers),
            compression=Compression(settings.compression),
        )
    else:
        exporter = _from_entry_point(
            "opentelemetry_metrics_exporter", name, "OTEL_METRICS_EXPORTER"
        )
    # The reader honours OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT itself.
    return PeriodicExportingMetricReader(exporter)


def _prometheus_reader(settings: TelemetrySettings) -> MetricReader:
    """A pull reader whose registry :func:`metrics_exposition` renders (no server of its own)."""
    global _prometheus_registry
    try:
        from opentelemetry.exporter.prometheus import (  # noqa: PLC0415 - an optional extra
            PrometheusMetricReader,
        )
        from prometheus_client import CollectorRegistry  # noqa: PLC0415 - comes with it
    except ImportError as exc:
        raise ConfigError(
            "the prometheus metrics exporter is not installed; install garrison[prometheus] "
            "(opentelemetry-exporter-prometheus)",
            path=settings.sources.get("metrics_exporter", "OTEL_METRICS_EXPORTER"),
        ) from exc
    # A registry of its own, not prometheus_client's global one: /metrics shows
    # what this pipeline reads, and a closed pipeline leaves nothing behind.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    _prometheus_registry = registry
    return reader


class _OtelLogHandler(logging.Handler):
    """Hands each record to an OpenTelemetry logger of the same name.

    The body is the record rendered as one JSON object (a structlog event keeps
    its keys); the span current where it was logged correlates it with its
    trace.
    """

    def __init__(self, logger_provider: Any) -> None:
        super().__init__(logging.NOTSET)
        self._provider = logger_provider
        self.setFormatter(json_formatter())

    def emit(self, record: logging.LogRecord) -> None:
        # The SDK's own records (an export that failed) would feed themselves.
        if record.name.startswith("opentelemetry"):
            return
        try:
            number, text = next(
                ((n, t) for level, n, t in _SEVERITY if record.levelno >= level), (1, "TRACE")
            )
            self._provider.get_logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=otel_context.get_current(),
                severity_number=SeverityNumber(number),
                severity_text=text,
                body=self.format(record),
                attributes={
                    "code.function.name": record.funcName,
                    "code.line.number": record.lineno,
                },
            )
        except Exception:  # noqa: BLE001 - logging's contract: emit never raises
            self.handleError(record)


# The log data model's severity numbers for the stdlib levels.
_SEVERITY: Final = (
    (logging.CRITICAL, 21, "FATAL"),
    (logging.ERROR, 17, "ERROR"),
    (logging.WARNING, 13, "WARN"),
    (logging.INFO, 9, "INFO"),
    (logging.DEBUG, 5, "DEBUG"),
)


def _log_export(settings: TelemetrySettings, resource: Resource) -> tuple[Any, logging.Handler]:
    """A LoggerProvider exporting every record of the root logger (structlog's included).

    The logs signal lives in ``opentelemetry._logs``, ``opentelemetry.sdk._logs``
    and the OTLP exporter's ``_log_exporter``: their documented import paths
    (the underscore marks the signal as still evolving), used in this module
    only. The provider is not installed globally; the handler on the root
    logger is how records reach it, and the pipeline's close removes it.
    """
    from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415 - only when asked
    from opentelemetry.sdk._logs.export import (  # noqa: PLC0415
        BatchLogRecordProcessor,
        ConsoleLogRecordExporter,
    )

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for name in settings.logs_exporter:
        exporter: Any
        if name == "console":
            exporter = ConsoleLogRecordExporter()
        elif name == "otlp" and settings.protocol == "grpc":
            exporter = _grpc_module("_log_exporter", settings).OTLPLogExporter(
                **_grpc_options(settings, "logs")
            )
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
                OTLPLogExporter,
            )

            exporter = OTLPLogExporter(
                endpoint=settings.logs_endpoint,
                headers=dict(settings.headers),
                compression=Compression(settings.compression),
            )
        else:
            raise ConfigError(
                f"unknown logs exporter {name!r}: expected otlp, console or none",
                path=settings.sources.get("logs_exporter", "OTEL_LOGS_EXPORTER"),
            )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = _OtelLogHandler(provider)
    logging.getLogger().addHandler(handler)
    return provider, handler


def _forget_prometheus_registry() -> None:
    global _prometheus_registry
    _prometheus_registry = None


#: What ``/metrics`` answers while no Prometheus reader is installed.
_NO_PROMETHEUS: Final = (
    b"garrison exports no metrics in the Prometheus format here: set "
    b'OTEL_METRICS_EXPORTER=prometheus (or metrics_exporter = ["prometheus"] in '
    b"[components.telemetry]) and install garrison[prometheus]\n"
)


async def prometheus_metrics() -> tuple[int, str, bytes]:
    """The ``/metrics`` route: ``(status, content type, body)`` in the Prometheus text format.

    Serve it beside the probes (``garrison run`` does)::

        HealthApp(probes, routes={"/metrics": prometheus_metrics})

    404 with a line saying how to turn it on while no Prometheus reader is
    installed. Collecting runs the instruments' callbacks: it happens off the
    event loop.
    """
    registry = _prometheus_registry
    if registry is None:
        return 404, "text/plain; charset=utf-8", _NO_PROMETHEUS
    from prometheus_client import (  # noqa: PLC0415 - installed with the reader
        CONTENT_TYPE_LATEST,
        generate_latest,
    )

    body = await asyncio.to_thread(generate_latest, registry)
    return 200, CONTENT_TYPE_LATEST, body


def _grpc_options(settings: TelemetrySettings, signal: str) -> dict[str, Any]:
    # grpc is an optional dependency without type information: import it by name.
    grpc = importlib.import_module("grpc")

    endpoint = {
        "traces": settings.traces_endpoint,
        "metrics": settings.metrics_endpoint,
        "logs": settings.logs_endpoint,
    }[signal]
    compression = {
        "gzip": grpc.Compression.Gzip,
        "deflate": grpc.Compression.Deflate,
        "none": grpc.Compression.NoCompression,
    }[settings.compression]
    return {
        "endpoint": endpoint,
        "insecure": endpoint.startswith("http://"),
        "headers": dict(settings.headers),
        "compression": compression,
    }


def _from_entry_point(group: str, name: str, variable: str) -> Any:
    """Other exporters (zipkin, prometheus, …) the way the SDK finds them: by entry point."""
    found = entry_points(group=group, name=name)
    if not found:
        raise ConfigError(
            f"unknown exporter {name!r}: expected otlp, console or none, or an installed "
            f"package that provides it under the {group!r} entry point",
            path=variable,
        )
    try:
        return next(iter(found)).load()()
    except Exception as exc:
        raise ConfigError(f"exporter {name!r} failed to load: {exc}", path=variable) from exc


def _is_default_meter_provider(provider: metrics.MeterProvider) -> bool:
    # The API has no public test for "nothing installed yet": its default is a
    # private proxy class.
    return type(provider).__name__ == "_ProxyMeterProvider"
