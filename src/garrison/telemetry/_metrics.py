"""garrison's metric instruments, made through the OpenTelemetry metrics API only.

Components record into the instruments :func:`metrics` returns; whether the
numbers go anywhere is decided by the meter provider the telemetry component
(or the application) installs. Before an SDK is installed the API's proxy
meter hands out instruments that forward to the real ones once it is. The
instruments are cached per global meter provider, so a call after a provider
was installed gets instruments of that provider, and a hot path pays one
identity check. Components that record often should fetch them in
``on_start`` (telemetry has started by then) and keep them.

What is a level rather than an event (mailbox depth, EDN writer lag, open
subscriptions, restarts so far) is an *observable* instrument: the SDK reads
it at each collection from the feeds registered with :func:`observe`. The
telemetry component feeds the runtime's (mailbox depth, restarts), the
database component its own. Collections run on the SDK's reader thread (or a
Prometheus scrape's): a feed reads plain attributes and never touches the
event loop.

Names and units follow the semantic conventions where one exists
(``db.client.operation.duration`` in seconds, with ``db.system.name`` and
``db.operation.name`` attributes); the rest live under ``garrison.``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Final

from opentelemetry import metrics as otel_metrics

from garrison.tracing import METER_NAME, store_operation_duration
from garrison.tracing import meter as garrison_meter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from opentelemetry.metrics import CallbackOptions, Counter, Histogram, UpDownCounter

    #: What a feed returns: ``(value, attributes)`` pairs.
    Feed = Callable[[], Iterable[tuple[float, Mapping[str, str]]]]

__all__ = ["METER_NAME", "OBSERVED", "Instruments", "metrics", "observe"]

_log = logging.getLogger("garrison.telemetry")


@dataclass(frozen=True, slots=True)
class Instruments:
    """The instruments every garrison component records into.

    - ``store_operation_duration`` (histogram, s): one record per store
      operation; attributes ``db.system.name`` (``"sqlite"``,
      ``"garrison.edn"``), ``db.operation.name`` and, on failure, ``error.type``.
      Every store records it through :func:`garrison.tracing.store_span`
      (the base layer defines it, with the store spans).
    - ``migration_keys`` (counter, keys): keys the migrator processed;
      attribute ``garrison.migration.outcome`` (``migrated``, ``skipped``,
      ``failed``, ``validated``).
    - ``migration_remaining`` (up-down counter, keys): add the total when a
      migration starts and subtract as keys are processed, so the current
      value is the remaining work.

    The observable instruments are in :data:`OBSERVED`.
    """

    store_operation_duration: Histogram
    migration_keys: Counter
    migration_remaining: UpDownCounter


#: The observable instruments: name -> (kind, unit, description). Feed one with
#: :func:`observe`.
#:
#: - ``garrison.actor.mailbox.depth`` (gauge): messages waiting, attribute
#:   ``garrison.actor``;
#: - ``garrison.component.restarts`` (counter): restarts so far, attributes
#:   ``garrison.component`` and ``garrison.restart.reason`` (``crash``,
#:   ``exit``, ``strategy``);
#: - ``garrison.edn.writer.lag`` (gauge, s): how long the oldest write not yet
#:   in the EDN file has waited (0 when the file is current), attribute
#:   ``garrison.edn.file``;
#: - ``garrison.database.subscriptions`` (gauge): open change-feed
#:   subscriptions, attribute ``garrison.component``;
#: - ``garrison.database.cache.hits`` / ``garrison.database.cache.misses``
#:   (counters): point reads of a database component answered from its read
#:   cache / that had to read the store (counted per key, since the component
#:   started), attribute ``garrison.component``;
#: - ``garrison.database.query_cache.lookups`` (counter): Datalog queries
#:   looked up in a database component's query cache, attributes
#:   ``garrison.component`` and ``garrison.query_cache.outcome`` (``hit``,
#:   ``miss``);
#: - ``garrison.database.query_cache.removals`` (counter): answers the query
#:   cache dropped, attributes ``garrison.component`` and
#:   ``garrison.query_cache.reason`` (``eviction``: for room; ``invalidation``:
#:   a commit touched an attribute the query reads).
OBSERVED: Final[Mapping[str, tuple[str, str, str]]] = {
    "garrison.actor.mailbox.depth": (
        "gauge",
        "{message}",
        "Messages waiting in actor mailboxes.",
    ),
    "garrison.component.restarts": (
        "counter",
        "{restart}",
        "Component restarts performed by the supervisor, by reason.",
    ),
    "garrison.edn.writer.lag": (
        "gauge",
        "s",
        "How long the oldest write not yet in the EDN file has waited.",
    ),
    "garrison.database.subscriptions": (
        "gauge",
        "{subscription}",
        "Open change-feed subscriptions of a database component.",
    ),
    "garrison.database.cache.hits": (
        "counter",
        "{key}",
        "Keys a database component's point reads found in its read cache.",
    ),
    "garrison.database.cache.misses": (
        "counter",
        "{key}",
        "Keys a database component's point reads had to read from the store.",
    ),
    "garrison.database.query_cache.lookups": (
        "counter",
        "{query}",
        "Datalog queries looked up in a database component's query cache, by outcome.",
    ),
    "garrison.database.query_cache.removals": (
        "counter",
        "{query}",
        "Answers a database component's query cache dropped, by reason.",
    ),
}

# name -> token -> feed; read by the SDK's collection thread.
_feeds: dict[str, dict[int, Feed]] = {name: {} for name in OBSERVED}
_tokens = count()


def observe(name: str, feed: Feed) -> Callable[[], None]:
    """Feed the observable instrument ``name`` (see :data:`OBSERVED`) from ``feed``.

    ``feed()`` returns ``(value, attributes)`` pairs; it runs at each
    collection, on the collector's thread, so it must only read. Returns a
    function that removes the feed (idempotent)::

        stop = observe("garrison.edn.writer.lag", lambda: [(store.lag(), {...})])
        ...
        stop()
    """
    if name not in OBSERVED:
        raise ValueError(f"no observable instrument {name!r}; expected one of {sorted(OBSERVED)}")
    metrics()  # the observable instruments exist on the current provider from now on
    token = next(_tokens)
    _feeds[name][token] = feed

    def remove() -> None:
        _feeds[name].pop(token, None)

    return remove


def _callback(name: str) -> Callable[[CallbackOptions], Iterator[otel_metrics.Observation]]:
    def collect(_options: CallbackOptions) -> Iterator[otel_metrics.Observation]:
        for feed in list(_feeds[name].values()):
            try:
                pairs = list(feed())
            except Exception:  # noqa: BLE001 - one broken feed must not cost the others theirs
                _log.exception("metric feed for %s failed", name)
                continue
            for value, attributes in pairs:
                yield otel_metrics.Observation(value, attributes)

    return collect


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
    instruments = _create(garrison_meter())
    _cache = (provider, instruments)
    return instruments


def _create(meter: otel_metrics.Meter) -> Instruments:
    for name, (kind, unit, description) in OBSERVED.items():
        make = meter.create_observable_gauge if kind == "gauge" else meter.create_observable_counter
        make(name, callbacks=[_callback(name)], unit=unit, description=description)
    return Instruments(
        store_operation_duration=store_operation_duration(),
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
