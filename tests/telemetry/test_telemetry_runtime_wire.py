"""A real runtime run, configured through OTEL_* only, seen by an OTLP/HTTP receiver.

TODO(issue 5): drive the built-in database component instead of this test's own
component once it exists; the trace shape asserted here stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace

from garrison.runtime import Component, handler, open_runtime
from garrison.stores import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.telemetry._otlp_receiver import ReceivedSpan

from tests.telemetry._otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")

SPAN_KIND_CLIENT = 3


@dataclass(frozen=True)
class Checkout:
    order: str


@dataclass(frozen=True)
class Notify:
    order: str


class Shop(Component):
    """A small component that keeps orders in a SqliteStore it owns."""

    name = "shop"
    store: SqliteStore

    async def on_start(self) -> None:
        self.store = SqliteStore(self.data_dir / "shop.sqlite3")
        await self.store.open()

    async def on_stop(self) -> None:
        await self.store.aclose()

    @handler
    async def checkout(self, message: Checkout) -> Any:
        await self.store.put(f"order/{message.order}", {"status": "paid"})
        return await self.store.get(f"order/{message.order}")

    @handler
    async def notify(self, message: Notify) -> None:
        await self.store.put(f"notified/{message.order}", True)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r} among {sorted(s.name for s in spans)}"
    return found[0]


async def test_a_runtime_run_arrives_as_connected_traces(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-service")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    config = {"runtime": {"data_dir": str(tmp_path)}, "components": {"telemetry": {}}}

    async with open_runtime(config, components=[Shop], environ={}) as runtime:
        await runtime.wait_ready()
        with trace.get_tracer("app").start_as_current_span("place order") as app:
            assert await runtime.ref("shop").ask(Checkout("o-1")) == {"status": "paid"}
            await runtime.ref("shop").tell(Notify("o-1"))
            app_context = app.get_span_context()
        # Asked after the tell on the same mailbox, so the tell has been handled.
        await runtime.ref("shop").ask(Checkout("o-2"))

    spans = receiver.wait_for_spans(lambda got: any(s.name == "component.stop shop" for s in got))
    names = {s.name for s in spans}
    assert {"component.start shop", "component.stop shop"} <= names
    assert _one(spans, "component.start shop").parent_span_id is None

    order = _one(spans, "place order")
    assert order.trace_id == f"{app_context.trace_id:032x}"
    in_trace = [s for s in spans if s.trace_id == order.trace_id]
    handled = _one(in_trace, "shop handle Checkout")
    assert handled.parent_span_id == order.span_id
    assert handled.attributes["garrison.actor"] == "shop"
    store_spans = [s for s in in_trace if s.parent_span_id == handled.span_id]
    assert sorted(s.name for s in store_spans) == ["get entries", "put entries"]
    for span in store_spans:
        assert span.kind == SPAN_KIND_CLIENT
        assert span.attributes["db.system.name"] == "sqlite"
        assert span.attributes["db.collection.name"] == "entries"
        assert span.attributes["db.operation.name"] in {"get", "put"}
        assert span.end_time_unix_nano <= handled.end_time_unix_nano

    # A tell starts its own trace, linked to the span that sent it.
    notify = _one(spans, "shop handle Notify")
    assert notify.trace_id != order.trace_id
    assert notify.parent_span_id is None
    assert (order.trace_id, order.span_id) in notify.links

    assert {s.resource["service.name"] for s in spans} == {"shop-service"}
    assert {r.content_encoding for r in receiver.requests if r.path == "/v1/traces"} == {"gzip"}


async def test_an_invalid_otel_variable_fails_the_start_and_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from garrison.exceptions import ConfigError, StartupError

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    config = {"runtime": {"data_dir": str(tmp_path)}, "components": {"telemetry": {}}}
    with pytest.raises(StartupError) as info:
        async with open_runtime(config, components=[Shop], environ={}):
            pass
    assert info.value.component == "telemetry"
    assert "shop" in info.value.not_started
    cause = info.value.__cause__
    assert isinstance(cause, ConfigError)
    assert cause.path == "OTEL_TRACES_SAMPLER"


async def test_a_runtime_opened_again_in_the_same_process_exports_again(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"telemetry": {"trace_roots": True}},
    }
    for run in (1, 2):
        async with open_runtime(config, components=[Shop], environ={}) as runtime:
            await runtime.ref("shop").ask(Checkout(f"o-{run}"))

        # Everything of this run was flushed by the time the runtime stopped.
        def arrived(got: list[ReceivedSpan], run: int = run) -> bool:
            return _count(got, "component.stop shop") >= run

        spans = receiver.wait_for_spans(arrived)
    assert _count(spans, "component.start shop") == 2
    assert _count(spans, "shop handle Checkout") == 2


def _count(spans: list[ReceivedSpan], name: str) -> int:
    return sum(s.name == name for s in spans)
