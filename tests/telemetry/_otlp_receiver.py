"""A small, real OTLP/HTTP receiver for tests: what a collector would receive.

It listens on 127.0.0.1 on a free port in a daemon thread (stdlib
``http.server``), accepts ``POST /v1/traces``, ``POST /v1/metrics`` and ``POST /v1/logs`` with
protobuf bodies (plain, gzip or deflate, as ``Content-Encoding`` says), decodes
them with the ``opentelemetry-proto`` messages and keeps what arrived. Tests
wait on it with a deadline instead of sleeping::

    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        ...
        spans = receiver.wait_for_spans(lambda spans: any(s.name == "x" for s in spans))

Reusable by any test that needs to see exported telemetry on the wire:
``from tests.telemetry._otlp_receiver import OtlpReceiver``. Note that the
global provider must be fresh for each test; see the ``otel_globals`` fixture
in ``tests/telemetry/conftest.py``.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["OtlpReceiver", "ReceivedLog", "ReceivedRequest", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedLog:
    """One log record as it came over the wire."""

    body: Any
    severity: str
    trace_id: str
    span_id: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class ReceivedRequest:
    """One export request as it came over the wire."""

    path: str
    content_encoding: str
    content_type: str
    headers: dict[str, str]
    body_size: int


@dataclass(frozen=True)
class ReceivedSpan:
    """One span, decoded; ids in lowercase hex, ``parent_span_id`` ``None`` for a root."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    status_code: int = 0
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _decode_span(span: Span, resource: dict[str, Any], scope: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=span.kind,
        attributes=_attributes(span.attributes),
        resource=resource,
        scope=scope,
        events=[(e.name, _attributes(e.attributes)) for e in span.events],
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
        status_code=span.status.code,
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
    )


class OtlpReceiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 that records spans, metric names and requests.

    ``status`` is the HTTP status it answers with (set it to 503 to play a
    failing collector).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[tuple[str, dict[str, Any]]] = []
        self._logs: list[ReceivedLog] = []
        self._requests: list[ReceivedRequest] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                encoding = self.headers.get("Content-Encoding", "")
                receiver._record_request(self.path, encoding, dict(self.headers.items()), len(body))
                if receiver.status != 200:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path == "/v1/traces":
                    receiver._add_traces(body)
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._add_metrics(body)
                    answer = ExportMetricsServiceResponse().SerializeToString()
                elif self.path == "/v1/logs":
                    receiver._add_logs(body)
                    answer = ExportLogsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                """Quiet: the test output is not the place for access logs."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )

    @property
    def endpoint(self) -> str:
        """The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        with self._condition:
            return list(self._spans)

    @property
    def metric_names(self) -> set[str]:
        """The names of every metric received so far."""
        with self._condition:
            return {name for name, _ in self._metrics}

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far."""
        with self._condition:
            return list(self._requests)

    def wait_for_spans(
        self, predicate: Callable[[list[ReceivedSpan]], bool], *, timeout: float = 15.0
    ) -> list[ReceivedSpan]:
        """Block until ``predicate(spans)`` holds; raise ``TimeoutError`` with what arrived."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate(self._spans):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [s.name for s in self._spans]
                    raise TimeoutError(f"spans did not arrive in {timeout}s; got {names}")
                self._condition.wait(remaining)
            return list(self._spans)

    def wait_for_metrics(self, names: set[str], *, timeout: float = 15.0) -> set[str]:
        """Block until metrics with all of ``names`` arrived."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not names <= {n for n, _ in self._metrics}:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = sorted({n for n, _ in self._metrics})
                    raise TimeoutError(f"metrics {sorted(names)} did not arrive; got {got}")
                self._condition.wait(remaining)
            return {n for n, _ in self._metrics}

    def _record_request(self, path: str, encoding: str, headers: dict[str, str], size: int) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        content_type = lowered.get("content-type", "")
        with self._condition:
            self._requests.append(ReceivedRequest(path, encoding, content_type, lowered, size))
            self._condition.notify_all()

    def _add_traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        decoded = [
            _decode_span(
                span, _attributes(resource_spans.resource.attributes), scope_spans.scope.name
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._condition:
            self._spans.extend(decoded)
            self._condition.notify_all()

    def wait_for_logs(
        self, predicate: Callable[[list[ReceivedLog]], bool], *, timeout: float = 15.0
    ) -> list[ReceivedLog]:
        """Block until ``predicate(logs so far)`` holds; the logs received."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate(self._logs):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"logs did not arrive; got {self._logs}")
                self._condition.wait(remaining)
            return list(self._logs)

    def _add_logs(self, body: bytes) -> None:
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        decoded = [
            ReceivedLog(
                body=_value(record.body),
                severity=record.severity_text,
                trace_id=record.trace_id.hex(),
                span_id=record.span_id.hex(),
                resource=_attributes(resource_logs.resource.attributes),
            )
            for resource_logs in request.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]
        with self._condition:
            self._logs.extend(decoded)
            self._condition.notify_all()

    def _add_metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        found = [
            (metric.name, _attributes(resource_metrics.resource.attributes))
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        ]
        with self._condition:
            self._metrics.extend(found)
            self._condition.notify_all()
