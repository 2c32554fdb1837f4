"""configure_logging: structured events with trace ids, through orjson or the console renderer."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any

import orjson
import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from garrison.telemetry import configure_logging

pytestmark = pytest.mark.usefixtures("restore_logging")


def _events(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_events_inside_a_span_carry_its_ids_in_lowercase_hex() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    tracer = TracerProvider().get_tracer("test")
    log = structlog.get_logger("app")

    log.info("before")
    with tracer.start_as_current_span("work") as span:
        log.info("inside", order=42)
        context = span.get_span_context()
    log.info("after")

    before, inside, after = _events(out)
    assert inside["event"] == "inside"
    assert inside["order"] == 42
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert inside["trace_flags"] == f"{int(context.trace_flags):02x}"
    assert inside["trace_id"] == inside["trace_id"].lower()
    assert len(inside["trace_id"]) == 32
    for outside in (before, after):
        assert "trace_id" not in outside
        assert "span_id" not in outside
        assert "trace_flags" not in outside


def test_events_have_iso_utc_timestamps_levels_and_logger_names() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    structlog.get_logger("garrison.runtime").warning("component.start", component="db")
    (event,) = _events(out)
    stamp = dt.datetime.fromisoformat(event["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=1)
    assert event["level"] == "warning"
    assert event["logger"] == "garrison.runtime"
    assert event["component"] == "db"


def test_stdlib_logging_goes_through_the_same_pipeline() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work"):
        logging.getLogger("aiosqlite").warning("slow statement: %.1f ms", 12.5)
    (event,) = _events(out)
    assert event["event"] == "slow statement: 12.5 ms"
    assert event["logger"] == "aiosqlite"
    assert event["level"] == "warning"
    assert len(event["trace_id"]) == 32


def test_level_filters_and_exceptions_render_as_data_without_locals() -> None:
    out = io.StringIO()
    configure_logging(json=True, level="WARNING", stream=out)
    log = structlog.get_logger("app")
    log.info("dropped")
    secret = "hunter2"
    try:
        raise ValueError(secret[:0] + "bad value")
    except ValueError:
        log.exception("failed")
    (event,) = _events(out)
    assert event["event"] == "failed"
    assert event["exception"][0]["exc_type"] == "ValueError"
    assert "hunter2" not in out.getvalue()


def test_odd_values_do_not_break_a_log_line() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    structlog.get_logger().info("odd", value=object(), mapping={1: "one"})
    (event,) = _events(out)
    assert event["value"].startswith("<object object")
    assert event["mapping"] == {"1": "one"}


def test_console_renderer_for_development() -> None:
    out = io.StringIO()
    configure_logging(json=False, stream=out)
    structlog.get_logger("app").info("ready", port=8080)
    line = out.getvalue().strip()
    assert "ready" in line
    assert "port=8080" in line
    assert not line.startswith("{")
    assert "\x1b[" not in line  # no colour codes when the stream is not a terminal


def test_configuring_twice_replaces_instead_of_duplicating() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    configure_logging(json=True, stream=second)
    structlog.get_logger().info("once")
    assert first.getvalue() == ""
    assert len(_events(second)) == 1


def test_importing_garrison_configures_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import logging, structlog, garrison, garrison.telemetry;"
        "print(len(logging.getLogger().handlers), structlog.is_configured())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "False"]


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_console_colours_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    out = _Terminal()
    configure_logging(json=False, stream=out)
    structlog.get_logger("app").info("hello", n=1)
    assert ("\x1b[" in out.getvalue()) is coloured
    plain = io.StringIO()  # not a terminal: never colour
    configure_logging(json=False, stream=plain)
    structlog.get_logger("app").info("hello", n=1)
    assert "\x1b[" not in plain.getvalue()
    assert "hello" in plain.getvalue()
