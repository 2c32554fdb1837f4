"""Probes leave no trace unless ``[health] trace`` asks for one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import garrison
from garrison.health import ProbeSettings, probes_for

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("otel_globals")


async def test_a_probe_and_its_checks_make_no_span_unless_asked(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    config = {"runtime": {"data_dir": str(tmp_path)}, "components": {"database": {}}}
    async with garrison.open_runtime(config) as rt:
        exporter.clear()
        untraced = probes_for(rt, ProbeSettings(cache_ttl=0))
        for kind in ("live", "ready", "startup"):
            assert (await untraced.evaluate(kind)).ok
        assert exporter.get_finished_spans() == ()  # the database's check ran: no span either

        traced = probes_for(rt, ProbeSettings(cache_ttl=0, trace=True))
        assert (await traced.evaluate("ready")).ok
        spans = exporter.get_finished_spans()
        (probe,) = [s for s in spans if s.name == "health.probe ready"]
        assert probe.attributes is not None
        assert probe.attributes["garrison.health.status"] == "pass"
        assert probe.parent is None
        # The checks' spans, if any, are the probe's children: one trace per probe.
        assert {s.context.trace_id for s in spans} == {probe.context.trace_id}
        await traced.aclose()
    provider.shutdown()
