"""garrison's metric instruments, made through the OpenTelemetry metrics API only.

Components record into the instruments :func:`metrics` returns; whether the
numbers go anywhere is decided by the meter provider the telemetry component
(or the application) installs. Before an SDK is installed the API's proxy
meter hands out instruments that forward to the real ones once it is. The
instruments are cached per global meter provider, so a call after a provider
was installed gets instruments of that provider, and a hot path pays one
identity check. Components that record often should fetch them in
``on_start`` (telemetry has started by then) and keep them.

Names and units follow the semantic conventions where one exists
(``db.client.operation.duration`` in seconds, with ``db.system.name`` and
``db.operation.name`` attributes); the rest live under ``garrison.``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import metrics as otel_metrics

from garrison import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, UpDownCounter

__all__ = ["METER_NAME", "Instruments", "metrics"]

#: The instrumentation scope of every garrison instrument.
METER_NAME = "garrison"

# Bucket boundaries of the semantic conventions for operation durations, in seconds.
_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class Instruments:
    """The instruments every garrison component records into.

    - ``store_operation_duration`` (histogram, s): one record per store
      operation; attributes ``db.system.name`` (``"sqlite"``,
      ``"garrison.edn"``), ``db.operation.name`` and, on failure, ``error.type``.
    - ``mailbox_depth`` (up-down counter, messages): +1 when a message is
      queued, -1 when the actor takes it; attribute ``garrison.actor``.
    - ``restarts`` (counter): one per component restart; attributes
      ``garrison.component`` and ``garrison.restart.reason``.
    - ``edn_writer_lag`` (histogram, s): at each flush of the EDN file, how
      long the oldest unflushed write waited; attribute ``garrison.edn.file``.
    - ``migration_keys`` (counter, keys): keys the migrator processed;
      attribute ``garrison.migration.outcome`` (``migrated``, ``skipped``,
      ``failed``, ``validated``).
    - ``migration_remaining`` (up-down counter, keys): add the total when a
      migration starts and subtract as keys are processed, so the current
      value is the remaining work.
    """

    store_operation_duration: Histogram
    mailbox_depth: UpDownCounter
    restarts: Counter
    edn_writer_lag: Histogram
    migration_keys: Counter
    migration_remaining: UpDownCounter


_cache: tuple[object, Instruments] | None = None


def metrics() -> Instruments:
    """garrison's instruments from the current global meter provider (cached per provider).

    >>> from garrison.telemetry import metrics
    >>> metrics().restarts.add(1, {"garrison.component": "database"})
    """
    global _cache
    provider = otel_metrics.get_meter_provider()
    cached = _cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    instruments = _create(otel_metrics.get_meter(METER_NAME, __version__, provider))
    _cache = (provider, instruments)
    return instruments


def _create(meter: otel_metrics.Meter) -> Instruments:
    return Instruments(
        store_operation_duration=meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of garrison store operations.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        ),
        mailbox_depth=meter.create_up_down_counter(
            "garrison.actor.mailbox.depth",
            unit="{message}",
            description="Messages waiting in actor mailboxes.",
        ),
        restarts=meter.create_counter(
            "garrison.component.restarts",
            unit="{restart}",
            description="Component restarts performed by the supervisor.",
        ),
        edn_writer_lag=meter.create_histogram(
            "garrison.edn.writer.lag",
            unit="s",
            description="How long the oldest unflushed EDN write waited before reaching the file.",
        ),
        migration_keys=meter.create_counter(
            "garrison.migration.keys",
            unit="{key}",
            description="Keys processed by the EDN to SQLite migrator, by outcome.",
        ),
        migration_remaining=meter.create_up_down_counter(
            "garrison.migration.remaining",
            unit="{key}",
            description="Keys the running migration has still to process.",
        ),
    )
