"""Progress output (bar on a terminal, log events otherwise) and the migration's telemetry."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from garrison.components.migrator import MigrationProgress, ProgressReporter, migrate, validate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from garrison.stores import SqliteStore


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_redrawn_bar_with_count_rate_and_eta() -> None:
    out = io.StringIO()
    reporter = ProgressReporter(out, tty=True)
    progress = MigrationProgress("migrate")
    progress.set_phase("migrate", total=200)
    progress.phase_started -= 2.0  # two seconds in
    progress.done = 100

    reporter(progress)
    reporter.close()

    text = out.getvalue()
    assert text.startswith("\r")
    assert "[############------------]  50% 100/200 keys 50 keys/s ETA 2s" in text
    assert text.endswith("\n")


def test_elsewhere_log_events_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    reporter = ProgressReporter(io.StringIO(), tty=False, interval=1.0, clock=clock)
    progress = MigrationProgress("migrate")
    progress.set_phase("migrate", total=300)

    with caplog.at_level("INFO", logger="garrison.migrator"):
        for done in (100, 200):  # same instant: only the phase change and nothing else
            progress.done = done
            reporter(progress)
        clock.now = 1.5
        progress.done = 250
        reporter(progress)
        progress.done = 300
        reporter(progress)  # the end is always written

    events = [r.garrison for r in caplog.records if r.getMessage().startswith("migrator.progress")]  # type: ignore[attr-defined]
    assert [e["done"] for e in events] == [100, 250, 300]
    assert events[0]["operation"] == "migrate"
    assert events[0]["total"] == 300
    assert events[0]["unit"] == "keys"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider installed as the global one for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


async def test_migration_and_validation_spans_carry_the_counts(
    store: SqliteStore, memory_edn: Path, spans: InMemorySpanExporter
) -> None:
    await migrate(store, memory_edn, batch_size=5)
    await validate(store, memory_edn)

    finished = {span.name: span for span in spans.get_finished_spans()}
    migration = finished["migrator.migrate"]
    assert migration.attributes is not None
    assert migration.attributes["garrison.migration.keys"] == 11
    assert migration.attributes["garrison.migration.written"] == 11
    assert migration.attributes["garrison.migration.conflicts"] == 0
    kinds = [
        event.attributes["garrison.migration.kind"]
        for event in migration.events
        if event.attributes
    ]
    assert kinds == ["session", "project", "learning", "cache", "index"]
    validation = finished["migrator.validate"]
    assert validation.attributes is not None
    assert validation.attributes["garrison.migration.agree"] is True
    # The batches are messages to the actor owning the store: each store span
    # is a child of that actor's handler span, itself a child of the migration's.
    by_id = {span.context.span_id: span for span in spans.get_finished_spans()}
    puts = [span for span in spans.get_finished_spans() if span.name.startswith("put_many")]
    assert puts
    for put in puts:
        assert put.parent is not None
        handling = by_id[put.parent.span_id]
        assert handling.parent is not None
        assert handling.parent.span_id == migration.context.span_id


@pytest.fixture
def metric_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    """An SDK meter provider installed globally for this test only (the API sets it once)."""
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    proxy = metrics_internal._PROXY_METER_PROVIDER
    monkeypatch.setattr(proxy, "_real_meter_provider", None)
    monkeypatch.setattr(proxy, "_meters", [])
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    otel_metrics.set_meter_provider(provider)
    yield reader
    provider.shutdown()


def _points(reader: InMemoryMetricReader) -> dict[str, dict[str, int]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, dict[str, int]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    if not isinstance(point, NumberDataPoint):
                        continue  # the store operations' duration histogram
                    label = str(dict(point.attributes or {}).get("garrison.migration.outcome", ""))
                    found.setdefault(metric.name, {})[label] = int(point.value)
    return found


async def test_migration_metrics_count_keys_by_outcome_and_the_remaining_work(
    store: SqliteStore, memory_edn: Path, metric_reader: InMemoryMetricReader
) -> None:
    await store.put("project/p1", "different")

    await migrate(store, memory_edn, batch_size=4)
    await validate(store, memory_edn)

    points = _points(metric_reader)
    assert points["garrison.migration.keys"] == {"migrated": 10, "skipped": 1, "validated": 11}
    assert points["garrison.migration.remaining"] == {"": 0}


def test_the_read_phase_counts_the_files_bytes() -> None:
    out = io.StringIO()
    progress = MigrationProgress("migrate")
    progress.set_phase("read", total=19_000_000, unit="bytes")
    ProgressReporter(out, tty=True)(progress)
    assert "0/19,000,000 bytes" in out.getvalue()
    progress.set_phase("migrate", total=10)
    assert progress.as_dict()["unit"] == "keys"


async def test_the_migrators_reads_are_traced_in_its_runs(
    store: SqliteStore, memory_edn: Path, spans: InMemorySpanExporter
) -> None:
    await migrate(store, memory_edn, batch_size=5)
    await validate(store, memory_edn)
    finished = spans.get_finished_spans()
    # By trace: the actor's handler span between a run and its reads may end
    # just after the reply reaches the migrator.
    runs = {
        span.context.trace_id: span.name for span in finished if span.name.startswith("migrator.")
    }
    reads = {
        (runs.get(span.context.trace_id), span.name)
        for span in finished
        if span.name.split()[0] in {"scan", "get_many", "check_versions", "encoding"}
    }
    assert ("migrator.validate", "scan entries") in reads
    assert ("migrator.validate", "encoding main") in reads
