"""garrison's rule for its own spans: nothing is made under an unsampled parent.

With a parent-based sampler, a trace the application's root span sampled out
must cost as little as possible in garrison: the handler span of an ask, the
database component's batch span and the store spans are not made at all (the
SDK's sampler is never consulted for them), nothing is exported, and the
unsampled parent stays current so nested work stays in the same trace. A
sampled trace keeps every span; a ``tell`` still starts a new, linked trace
that the sampler decides on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from garrison.components.database import Store
from garrison.runtime import Actor, handler, open_actor, open_runtime
from garrison.stores import SqliteStore
from garrison.tracing import trace_roots

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.util.types import Attributes

    from garrison.runtime import ActorRef

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")


class CountingSampler(Sampler):
    """A real ParentBased sampler that remembers which spans it was asked about."""

    def __init__(self, root: Sampler) -> None:
        self._inner = ParentBased(root)
        self.asked: list[str] = []

    def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        self.asked.append(name)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        inner: str = self._inner.get_description()  # type: ignore[no-untyped-call]  # unannotated in the SDK
        return f"Counting({inner})"


def _install(root: Sampler) -> tuple[CountingSampler, InMemorySpanExporter]:
    sampler = CountingSampler(root)
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    return sampler, spans


@pytest.fixture
def sampled_out() -> Iterator[tuple[CountingSampler, InMemorySpanExporter]]:
    """Every root trace is sampled out (as 99% are at a 1% ratio)."""
    sampler, spans = _install(ALWAYS_OFF)
    yield sampler, spans
    spans.clear()


@pytest.fixture
def sampled_in() -> Iterator[tuple[CountingSampler, InMemorySpanExporter]]:
    """Every root trace is sampled."""
    sampler, spans = _install(ALWAYS_ON)
    yield sampler, spans
    spans.clear()


class Seen:
    """What the handler saw as its current span."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.recording: bool | None = None
        self.store_span_recording: bool | None = None


class Worker(Actor):
    """Handles a Job by touching a real SQLite store and asking another actor."""

    def __init__(self, store: SqliteStore, echo: ActorRef, seen: Seen) -> None:
        self.store = store
        self.echo = echo
        self.seen = seen

    @handler
    async def job(self, message: Job) -> int:
        current = trace.get_current_span()
        self.seen.trace_id = current.get_span_context().trace_id
        self.seen.recording = current.is_recording()
        await self.store.put(f"job/{message.n}", {"n": message.n})
        result: int = await self.echo.ask(message.n)
        return result


class Job:
    def __init__(self, n: int) -> None:
        self.n = n


class Echo(Actor):
    @handler
    async def number(self, message: int) -> int:
        return message


class Boom(Actor):
    @handler
    async def fail(self, message: str) -> None:
        raise ValueError(message)

    @handler
    async def hang(self, message: float) -> None:
        await asyncio.Event().wait()


async def test_an_unsampled_caller_costs_no_sampler_call_and_exports_nothing(
    sampled_out: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    sampler, spans = sampled_out
    seen = Seen()
    async with (
        SqliteStore(tmp_path / "jobs.sqlite3") as store,
        open_actor(Echo(), name="echo") as echo,
        open_actor(Worker(store, echo, seen), name="worker") as worker,
    ):
        sampler.asked.clear()  # opening the store made root spans: not this test's
        with trace.get_tracer("app").start_as_current_span("request") as request:
            assert await worker.ask(Job(7)) == 7
    assert not request.is_recording()
    # Only the application's own root span reached the sampler: no handler
    # span (worker, echo) and no store span was even asked about.
    assert sampler.asked == ["request"]
    assert spans.get_finished_spans() == ()
    # The unsampled parent stayed current inside the handler: same trace.
    assert seen.trace_id == request.get_span_context().trace_id
    assert seen.recording is False


async def test_a_remote_unsampled_parent_is_kept_too(
    sampled_out: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    """A parent extracted from an incoming request (traceparent ...-00) behaves the same."""
    sampler, spans = sampled_out
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    async with SqliteStore(tmp_path / "s.sqlite3") as store:
        sampler.asked.clear()
        with trace.use_span(NonRecordingSpan(remote)):
            await store.put("k", 1)
            assert await store.get("k") == 1
    assert sampler.asked == []
    assert spans.get_finished_spans() == ()


async def test_the_database_component_makes_no_spans_in_a_sampled_out_trace(
    sampled_out: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    sampler, spans = sampled_out
    config = {"runtime": {"data_dir": str(tmp_path)}, "components": {"database": {}}}
    async with open_runtime(config, environ={}) as runtime:
        facade = runtime.get(Store)
        sampler.asked.clear()
        spans.clear()
        with trace.get_tracer("app").start_as_current_span("request"):
            await facade.put("user/1", {"name": "ada"})
            assert await facade.get("user/1") == {"name": "ada"}
        # Before stopping (the stop makes its own lifecycle root span): no
        # handler, batch or SQLite span was asked about or exported.
        assert sampler.asked == ["request"]
        assert spans.get_finished_spans() == ()


async def test_a_sampled_trace_keeps_every_span(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    _, spans = sampled_in
    seen = Seen()
    async with (
        SqliteStore(tmp_path / "jobs.sqlite3") as store,
        open_actor(Echo(), name="echo") as echo,
        open_actor(Worker(store, echo, seen), name="worker") as worker,
    ):
        spans.clear()
        with trace.get_tracer("app").start_as_current_span("request") as request:
            assert await worker.ask(Job(1)) == 1
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {"request", "worker handle Job", "put entries", "echo handle int"}
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in finished.values() if s.context} == {trace_id}
    worker_span = finished["worker handle Job"]
    assert worker_span.parent is not None
    assert worker_span.parent.span_id == request.get_span_context().span_id
    for child in ("put entries", "echo handle int"):
        parent = finished[child].parent
        assert parent is not None
        assert worker_span.context is not None
        assert parent.span_id == worker_span.context.span_id
    assert seen.recording is True


async def test_a_tell_from_a_sampled_out_trace_is_a_new_trace_for_the_sampler(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter],
) -> None:
    """A tell's handler span is a root: its sampling is the root sampler's call, not the rule's."""
    sampler, spans = sampled_in
    unsampled = SpanContext(0x123, 0x456, is_remote=False, trace_flags=TraceFlags(0))
    async with open_actor(Echo(), name="echo") as echo:
        with trace.use_span(NonRecordingSpan(unsampled)):
            await echo.tell(5)
            # The echo's mailbox is FIFO: once this ask returns, the tell is handled.
            assert await echo.ask(6) == 6
    assert sampler.asked == ["echo handle int"]
    (handled,) = spans.get_finished_spans()
    assert handled.parent is None
    assert [link.context.span_id for link in handled.links] == [0x456]


async def test_a_failing_handler_marks_its_span_and_a_cancelled_one_does_not(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter],
) -> None:
    _, spans = sampled_in
    async with open_actor(Boom(), name="boom", stop_timeout=0.05) as boom:
        with trace.get_tracer("app").start_as_current_span("request"):
            with pytest.raises(ValueError, match="bad input"):
                await boom.ask("bad input")
            with pytest.raises(TimeoutError):
                await boom.ask(0.1, timeout=0.05)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    failed = by_name["boom handle str"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ValueError: bad input"
    assert [e.name for e in failed.events] == ["exception"]
    # The hanging handler is cancelled when the actor stops: not an error.
    cancelled = by_name["boom handle float"]
    assert cancelled.status.status_code is StatusCode.UNSET
    assert cancelled.events == ()


async def test_a_message_outside_any_span_asks_the_sampler_nothing(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    """By default garrison starts no trace of its own for a message or its store work."""
    sampler, spans = sampled_in
    seen = Seen()
    async with (
        SqliteStore(tmp_path / "jobs.sqlite3") as store,
        open_actor(Echo(), name="echo") as echo,
        open_actor(Worker(store, echo, seen), name="worker") as worker,
    ):
        sampler.asked.clear()
        spans.clear()
        assert await worker.ask(Job(1)) == 1
        await echo.tell(2)
        assert await echo.ask(3) == 3  # FIFO: the tell was handled
        assert sampler.asked == []
        assert spans.get_finished_spans() == ()
        assert seen.recording is False


async def test_trace_roots_make_a_parentless_message_a_trace_of_its_own(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    sampler, spans = sampled_in
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"telemetry": {"trace_roots": True}, "database": {}},
    }
    async with open_runtime(config, environ={}) as runtime:
        assert trace_roots()
        facade = runtime.get(Store)
        sampler.asked.clear()
        spans.clear()
        await facade.put("user/1", {"name": "ada"})
        names = {s.name for s in spans.get_finished_spans()}
        assert "database handle Put" in names
        assert "put_many entries" in names
        assert sampler.asked[0] == "database handle Put"
    assert not trace_roots()  # the component puts the setting back when it stops


async def test_the_database_component_makes_no_trace_of_its_own_for_a_parentless_call(
    sampled_in: tuple[CountingSampler, InMemorySpanExporter], tmp_path: Path
) -> None:
    # The actor's loop was started under the component's (sampled) start span:
    # its work must not hang under that long-finished span either.
    sampler, spans = sampled_in
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"database": {"mode": "sqlite-only"}},
    }
    async with open_runtime(config, environ={}) as runtime:
        facade = runtime.get(Store)
        sampler.asked.clear()
        spans.clear()
        await facade.put("user/1", {"name": "ada"})
        assert await facade.get("user/1") == {"name": "ada"}
        assert await facade.count("user/") == 1
        assert sampler.asked == []
        assert spans.get_finished_spans() == ()
