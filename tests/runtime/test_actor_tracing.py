"""Trace context through envelopes (checked with the SDK's in-memory exporter)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from garrison import tracing
from garrison.runtime import Actor, ComponentState, handler, open_actor, open_runtime
from garrison.tracing import tracing_active
from tests.runtime._lifecycle_components import Crash, Ping, Transitions, make


class Echo(Actor):
    @handler
    async def ping(self, msg: Ping) -> str:
        return "pong"


def named(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, [s.name for s in spans]
    return matches[0]


async def test_ask_handler_span_is_a_child_of_the_callers_span(
    span_exporter: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    async with open_actor(Echo(), name="echo") as ref:
        with tracer.start_as_current_span("caller") as caller:
            assert await ref.ask(Ping()) == "pong"
    handled = named(span_exporter.get_finished_spans(), "echo handle Ping")
    caller_context = caller.get_span_context()
    assert handled.context is not None
    assert handled.context.trace_id == caller_context.trace_id
    assert handled.parent is not None
    assert handled.parent.span_id == caller_context.span_id
    assert handled.attributes is not None
    assert handled.attributes["garrison.message.kind"] == "ask"


async def test_tell_handler_span_starts_a_new_trace_linked_to_the_sender(
    span_exporter: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    async with open_actor(Echo(), name="echo") as ref:
        with tracer.start_as_current_span("sender") as sender:
            await ref.tell(Ping())
    handled = named(span_exporter.get_finished_spans(), "echo handle Ping")
    sender_context = sender.get_span_context()
    assert handled.context is not None
    assert handled.context.trace_id != sender_context.trace_id
    assert handled.parent is None
    assert [link.context.span_id for link in handled.links] == [sender_context.span_id]


async def test_ask_without_a_caller_span_makes_a_root_span(
    span_exporter: InMemorySpanExporter,
) -> None:
    async with open_actor(Echo(), name="echo") as ref:
        await ref.ask(Ping())
    handled = named(span_exporter.get_finished_spans(), "echo handle Ping")
    assert handled.parent is None


async def test_no_provider_means_no_span_work_and_a_later_provider_is_picked_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(tracing, "_trace_roots", True)  # a parentless ask is traced
    assert not tracing_active()
    async with open_actor(Echo(), name="echo") as ref:
        assert await ref.ask(Ping()) == "pong"
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
        assert tracing_active()
        assert await ref.ask(Ping()) == "pong"
    assert [s.name for s in spans.get_finished_spans()] == ["echo handle Ping"]
    provider.shutdown()


async def test_lifecycle_spans(span_exporter: InMemorySpanExporter, tmp_path: Path) -> None:
    comps = [make("db", events=[])]
    async with open_runtime(
        {}, components=comps, data_dir=tmp_path, restart__backoff_initial=0
    ) as rt:
        seen = Transitions(rt)
        await rt.ref("db").tell(Crash())
        await seen.wait_for("db", ComponentState.RUNNING)
        await rt.ref("db").ask(Ping())
    names = [s.name for s in span_exporter.get_finished_spans()]
    assert names.count("component.start db") == 2
    assert names.count("component.stop db") == 2
    assert names.count("component.restart db") == 1
    restart = named(span_exporter.get_finished_spans(), "component.restart db")
    inner_start = [
        s
        for s in span_exporter.get_finished_spans()
        if s.name == "component.start db" and s.parent is not None
    ]
    assert restart.context is not None
    assert [s.parent.span_id for s in inner_start if s.parent] == [restart.context.span_id]
