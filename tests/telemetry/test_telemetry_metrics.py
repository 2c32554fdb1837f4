"""garrison's instruments reach whatever meter provider is installed, with real values."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import garrison
from garrison.components.database import Store
from garrison.runtime import Component
from garrison.telemetry import METER_NAME, OBSERVED, metrics, observe

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("otel_globals")

Points = dict[str, list[tuple[dict[str, Any], float]]]


def _collected(reader: InMemoryMetricReader) -> tuple[Points, dict[str, str]]:
    """Every data point by metric name, and each metric's unit."""
    data = reader.get_metrics_data()
    points: Points = {}
    units: dict[str, str] = {}
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == METER_NAME
            for metric in scope_metrics.metrics:
                units[metric.name] = metric.unit or ""
                points[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", getattr(p, "sum", 0.0)))
                    for p in metric.data.data_points
                ]
    return points, units


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    otel_metrics.set_meter_provider(provider)
    yield reader
    provider.shutdown()


def test_the_event_instruments_record_with_their_names_and_units(
    reader: InMemoryMetricReader,
) -> None:
    instruments = metrics()
    instruments.store_operation_duration.record(
        0.003, {"db.system.name": "sqlite", "db.operation.name": "put"}
    )
    instruments.migration_keys.add(10, {"garrison.migration.outcome": "migrated"})
    instruments.migration_remaining.add(90)
    points, units = _collected(reader)
    assert units["db.client.operation.duration"] == "s"
    assert points["garrison.migration.keys"] == [({"garrison.migration.outcome": "migrated"}, 10)]
    assert points["garrison.migration.remaining"] == [({}, 90)]


def test_instruments_follow_a_newly_installed_provider() -> None:
    before = metrics()
    assert metrics() is before  # cached while the provider does not change
    reader = InMemoryMetricReader()
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[reader], shutdown_on_exit=False))
    after = metrics()
    after.migration_keys.add(2)
    # Instruments made before the SDK existed forward to it as well (the API's proxies).
    before.migration_keys.add(1)
    points, _ = _collected(reader)
    assert sum(value for _, value in points["garrison.migration.keys"]) == 3


def test_a_broken_feed_costs_only_its_own_values(reader: InMemoryMetricReader) -> None:
    def broken() -> list[tuple[float, dict[str, str]]]:
        raise RuntimeError("feed bug")

    stops = [
        observe("garrison.database.subscriptions", broken),
        observe("garrison.database.subscriptions", lambda: [(4, {"garrison.component": "x"})]),
    ]
    points, _ = _collected(reader)
    assert points["garrison.database.subscriptions"] == [({"garrison.component": "x"}, 4)]
    for stop in stops:
        stop()
    with pytest.raises(ValueError, match="no observable instrument"):
        observe("garrison.nothing", broken)


class Flaky(Component):
    """Crashes once, on request, then runs on after its restart."""

    name = "flaky"
    crash_now: ClassVar[asyncio.Event]

    async def on_start(self) -> None:
        self.spawn(self._wait_then_crash())

    async def _wait_then_crash(self) -> None:
        event = Flaky.crash_now
        await event.wait()
        event.clear()
        raise RuntimeError("flaky crashed")


async def test_a_running_runtime_feeds_every_observable_instrument(
    reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    Flaky.crash_now = asyncio.Event()
    config = {
        "runtime": {"data_dir": str(tmp_path), "restart": {"backoff_initial": 0.01}},
        "components": {
            "telemetry": {},
            "database": {"mode": "edn-only", "flush_quiet_period": 60, "flush_max_delay": 60},
        },
    }
    async with garrison.open_runtime(config, components=[Flaky]) as rt:
        restarted = asyncio.Event()
        rt.add_state_listener(
            lambda name, _old, new: restarted.set() if (name, new) == ("flaky", "running") else None
        )
        Flaky.crash_now.set()
        await restarted.wait()
        store = rt.get(Store)
        await store.put("session/a", {"user": 1})  # waits in memory: flush_delay is a minute
        async with store.watch("session/"):
            points, units = _collected(reader)
            assert set(OBSERVED) <= set(points)
            depth = {attrs["garrison.actor"] for attrs, _ in points["garrison.actor.mailbox.depth"]}
            assert depth == {"telemetry", "database", "flaky"}
            assert points["garrison.component.restarts"] == [
                ({"garrison.component": "flaky", "garrison.restart.reason": "crash"}, 1)
            ]
            ((lag_attrs, lag),) = points["garrison.edn.writer.lag"]
            assert lag_attrs["garrison.edn.file"].endswith("memory.edn")
            assert lag > 0
            assert units["garrison.edn.writer.lag"] == "s"
            subscriptions = points["garrison.database.subscriptions"]
            assert subscriptions == [({"garrison.component": "database"}, 1)]
        await store.flush()
        points, _ = _collected(reader)
        assert points["garrison.edn.writer.lag"][0][1] == 0
    # A stopped runtime feeds nothing any more.
    points, _ = _collected(reader)
    assert not points.get("garrison.actor.mailbox.depth")


async def test_store_operations_and_cache_lookups_are_measured(
    reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"database": {"mode": "sqlite-only", "cache_size": 16}},
    }
    async with garrison.open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        await store.put("user/1", {"name": "ada"})
        await store.get("user/1")  # a miss: read from SQLite
        await store.get("user/1")  # a hit
        points, units = _collected(reader)
    assert units["db.client.operation.duration"] == "s"
    durations = {
        (attrs["db.system.name"], attrs["db.operation.name"], attrs.get("error.type"))
        for attrs, _ in points["db.client.operation.duration"]
    }
    assert ("sqlite", "get", None) in durations
    assert ("sqlite", "put_many", None) in durations
    assert points["garrison.database.cache.hits"] == [({"garrison.component": "database"}, 1)]
    assert points["garrison.database.cache.misses"] == [({"garrison.component": "database"}, 1)]
