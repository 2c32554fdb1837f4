"""Fixtures shared by every test package."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from garrison import tracing
from tests._postgres import PostgresServer, require_postgres

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture
def span_exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider installed as the global one for this test only.

    The API lets a process set its global provider once; tests need a fresh one
    each, so this swaps the API's module-level slot (the global that
    garrison.tracing reads; tests/test_tracing.py checks it exists) and puts it
    back afterwards.

    garrison's trace roots are on (``[components.telemetry] trace_roots``), so
    what a test does outside any span of its own is traced as well; a test
    of the default (no roots) turns them off with ``set_trace_roots``.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    monkeypatch.setattr(tracing, "_trace_roots", True)
    yield exporter
    provider.shutdown()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (see tests/_postgres.py); skips without one."""
    require_postgres()
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a new, empty database of its own for this test (dropped afterwards)."""
    dsn = await postgres_server.create_database()
    try:
        yield dsn
    finally:
        await postgres_server.drop_database(dsn)
