"""garrison's instruments reach whatever meter provider is installed."""

from __future__ import annotations

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from garrison.telemetry import METER_NAME, metrics

pytestmark = pytest.mark.usefixtures("otel_globals")


def _collected(reader: InMemoryMetricReader) -> dict[str, tuple[str, list[object]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, tuple[str, list[object]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == METER_NAME
            for metric in scope_metrics.metrics:
                found[metric.name] = (metric.unit or "", list(metric.data.data_points))
    return found


def test_every_instrument_records_with_its_name_and_unit() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    otel_metrics.set_meter_provider(provider)
    instruments = metrics()
    instruments.store_operation_duration.record(
        0.003, {"db.system.name": "sqlite", "db.operation.name": "put"}
    )
    instruments.mailbox_depth.add(3, {"garrison.actor": "database"})
    instruments.mailbox_depth.add(-1, {"garrison.actor": "database"})
    instruments.restarts.add(1, {"garrison.component": "database"})
    instruments.edn_writer_lag.record(0.25, {"garrison.edn.file": "memory.edn"})
    instruments.migration_keys.add(10, {"garrison.migration.outcome": "migrated"})
    instruments.migration_remaining.add(90)

    found = _collected(reader)
    assert found["db.client.operation.duration"][0] == "s"
    assert found["garrison.actor.mailbox.depth"][1][0].value == 2  # type: ignore[attr-defined]
    assert found["garrison.component.restarts"][1][0].value == 1  # type: ignore[attr-defined]
    assert found["garrison.edn.writer.lag"][0] == "s"
    assert found["garrison.migration.keys"][1][0].value == 10  # type: ignore[attr-defined]
    assert found["garrison.migration.remaining"][1][0].value == 90  # type: ignore[attr-defined]
    provider.shutdown()


def test_instruments_follow_a_newly_installed_provider() -> None:
    before = metrics()
    assert metrics() is before  # cached while the provider does not change
    reader = InMemoryMetricReader()
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[reader], shutdown_on_exit=False))
    after = metrics()
    after.restarts.add(2)
    # Instruments made before the SDK existed forward to it as well (the API's proxies).
    before.restarts.add(1)
    points = _collected(reader)["garrison.component.restarts"][1]
    assert sum(p.value for p in points) == 3  # type: ignore[attr-defined]
