"""garrison's loggers: structured when the application configured structlog, quiet otherwise.

A library must not write to its host's stdout. structlog, left unconfigured,
prints every event there; so until someone calls ``structlog.configure`` (an
application, or :func:`garrison.telemetry.configure_logging`, which ``garrison
run`` calls), garrison's events go to the standard :mod:`logging` logger of the
same name instead, where the application's logging setup decides what is shown
(by default: warnings and errors on stderr).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["get_logger"]


def _to_stdlib(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> tuple[Any, ...]:
    event = event_dict.pop("event", "")
    exc_info = event_dict.pop("exc_info", None)
    fields = " ".join(f"{key}={value!r}" for key, value in event_dict.items())
    message = f"{event} {fields}" if fields else str(event)
    return (message,), {"exc_info": exc_info, "extra": {"garrison": event_dict}}


class _Logger:
    """A logger whose destination is chosen at each call (configuration may come later)."""

    __slots__ = ("_name", "_stdlib")

    def __init__(self, name: str) -> None:
        self._name = name
        self._stdlib = structlog.wrap_logger(
            logging.getLogger(name),
            processors=[_to_stdlib],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name)
        return self._stdlib

    def bind(self, **values: Any) -> Any:
        """A logger with ``values`` added to every event."""
        return self._target().bind(**values)

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at DEBUG level."""
        self._target().debug(event, *args, **kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at INFO level."""
        self._target().info(event, *args, **kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at WARNING level."""
        self._target().warning(event, *args, **kw)

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at ERROR level."""
        self._target().error(event, *args, **kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at ERROR level with the current exception."""
        self._target().exception(event, *args, **kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        """Log ``event`` at CRITICAL level."""
        self._target().critical(event, *args, **kw)


def get_logger(name: str) -> _Logger:
    """The logger garrison's modules use, named like a :mod:`logging` logger."""
    return _Logger(name)
