"""The built-in database component on the wire: one trace from the application to SQLite.

The test component version of this test (test_telemetry_runtime_wire.py) stays:
it checks what the runtime alone guarantees, this one what users of the
database component see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace

from garrison.components.database import Store
from garrison.runtime import open_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.telemetry._otlp_receiver import ReceivedSpan

from tests.telemetry._otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")

SPAN_KIND_CLIENT = 3


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def _descendants(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    found: list[ReceivedSpan] = []
    frontier = [root.span_id]
    while frontier:
        parent = frontier.pop()
        children = [s for s in spans if s.parent_span_id == parent]
        found.extend(children)
        frontier.extend(c.span_id for c in children)
    return found


async def test_application_span_to_database_handler_to_sqlite(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    config = {
        "runtime": {"data_dir": str(tmp_path)},
        "components": {"telemetry": {}, "database": {"mode": "sqlite-only"}},
    }
    async with open_runtime(config, environ={}) as runtime:
        store = runtime.get(Store)
        with trace.get_tracer("app").start_as_current_span("place order") as app:
            await store.put("order/o-1", {"status": "paid"})
            assert await store.get("order/o-1") == {"status": "paid"}
            trace_id = f"{app.get_span_context().trace_id:032x}"

    spans = receiver.wait_for_spans(
        lambda got: any(s.name == "component.stop database" for s in got)
    )
    names = {s.name for s in spans}
    assert {"component.start database", "component.stop database"} <= names
    order = next(s for s in spans if s.name == "place order")
    assert order.trace_id == trace_id
    handlers = {s.name: s for s in spans if s.parent_span_id == order.span_id}
    assert set(handlers) == {"database handle Put", "database handle Get"}
    assert {s.attributes["garrison.actor"] for s in handlers.values()} == {"database"}
    # Each handler span leads down to the SQLite statement(s) it caused.
    for handler_name, operation in (
        ("database handle Put", "put_many"),
        ("database handle Get", "get"),
    ):
        below = _descendants(spans, handlers[handler_name])
        sqlite = [s for s in below if s.attributes.get("db.system.name") == "sqlite"]
        assert [s.name for s in sqlite] == [f"{operation} entries"], [s.name for s in below]
        (statement,) = sqlite
        # A lone operation is a group of one: no batch span in between.
        assert statement.parent_span_id == handlers[handler_name].span_id
        assert statement.trace_id == trace_id
        assert statement.kind == SPAN_KIND_CLIENT
        assert statement.attributes["db.operation.name"] == operation
        assert statement.attributes["db.collection.name"] == "entries"
    # The database's own start (loading the EDN file, reading its mode) is traced too.
    start = next(s for s in spans if s.name == "component.start database")
    assert {s.name for s in _descendants(spans, start)} >= {"load memory.edn"}
    assert {s.resource["service.name"] for s in spans} == {"orders"}
    assert {r.content_encoding for r in receiver.requests if r.path == "/v1/traces"} == {"gzip"}
