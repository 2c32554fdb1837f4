"""structlog with trace ids: JSON through orjson for production, a console renderer for development.

Nothing here runs on import; an application calls :func:`configure_logging`
once (or the telemetry component does, when its config asks for it).

Both structlog's loggers and the standard library's go through the same
pipeline: structlog events are handed to :mod:`logging`, and one handler on the
root logger renders every record with structlog's ``ProcessorFormatter``. So
``logging.getLogger("aiosqlite").warning(...)``, the OpenTelemetry SDK's own
warnings and garrison's lifecycle events all come out in one format, each
with a timestamp, its level, its logger name and, inside a span, the ids of
that span.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, TYPE_CHECKING, Any

import orjson
import structlog
from opentelemetry import trace

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["add_trace_context", "configure_logging", "json_formatter"]


def add_trace_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor adding ``trace_id``, ``span_id`` and ``trace_flags``.

    The values are lowercase hex as in W3C ``traceparent`` (32, 16 and 2
    digits), taken from the span current where the event was logged. Outside
    a span, nothing is added. Usable in an application's own structlog chain.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
        event_dict.setdefault("trace_flags", format(int(context.trace_flags), "02x"))
    return event_dict


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    # ProcessorFormatter must return str; OPT_NON_STR_KEYS and default=repr keep a
    # log line from failing because of an odd value somebody bound.
    return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


class _GarrisonHandler(logging.StreamHandler[IO[str]]):
    """The root handler configure_logging installs; found again to replace it."""


def configure_logging(
    *,
    json: bool = True,
    level: int | str = logging.INFO,
    stream: IO[str] | None = None,
) -> None:
    """Route structlog and stdlib logging through one structured pipeline.

    ``json=True`` renders one JSON object per line through orjson (for log
    shippers); ``json=False`` renders aligned, coloured (on a terminal) lines
    for development. ``level`` applies to the root logger. ``stream`` defaults
    to ``sys.stderr``. Calling it again replaces the earlier configuration;
    handlers the application added to the root logger are left in place.

    >>> import io, structlog
    >>> out = io.StringIO()
    >>> configure_logging(json=True, stream=out)
    >>> structlog.get_logger("app").info("hello", user=7)
    >>> '"event":"hello"' in out.getvalue()
    True
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]
    output = stream if stream is not None else sys.stderr
    renderer: Processor
    if json:
        # Tracebacks as data, without local variables: locals can hold secrets.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    else:
        # Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
        colors = _is_tty(output) and not os.environ.get("NO_COLOR")
        renderer = structlog.dev.ConsoleRenderer(colors=colors)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a second configure_logging call must reach loggers that
        # modules created at import time.
        cache_logger_on_first_use=False,
    )
    handler = _GarrisonHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GarrisonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def _is_tty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def json_formatter() -> logging.Formatter:
    """A formatter rendering any record (structlog's or the stdlib's) as one JSON object."""
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ],
    )
