"""Progress of a long migration: a bar on a terminal, structured log events otherwise.

The engine updates one :class:`MigrationProgress` after every batch and hands
it to its listeners. :class:`ProgressLog` logs it as ``migrator.progress``
events through garrison's structlog logger, so they come out as every other
log line does (``garrison run``'s JSON, one object per line, off a
terminal). :class:`ProgressReporter` is the listener the CLI uses: on a TTY it
redraws one line (``[#####-----] 52% 52,000/100,000 keys 14,800 keys/s ETA
3s``); elsewhere (a log file, CI, a pipe) it is a :class:`ProgressLog`. The
migrator component logs its jobs' progress with a :class:`ProgressLog` too and
turns the same object into health details and metrics.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Final, TypeAlias

from garrison._log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MigrationProgress", "ProgressListener", "ProgressLog", "ProgressReporter"]

log = get_logger("garrison.migrator")

_BAR_WIDTH: Final = 24


@dataclass(slots=True)
class MigrationProgress:
    """Where a running operation is: ``done`` of ``total`` in the current ``phase``.

    ``phase`` is ``"read"``, ``"migrate"``, ``"validate"``, ``"export"`` or
    ``"done"``; ``unit`` is what ``done`` and ``total`` count: ``"bytes"`` of
    the file in the read phase, ``"keys"`` in the others. ``resumed_from`` is
    how many keys an earlier, interrupted run had already committed (they count
    in ``done`` but not in the rate).
    """

    operation: str
    phase: str = "read"
    done: int = 0
    total: int = 0
    resumed_from: int = 0
    kind: str | None = None
    unit: str = "keys"
    started: float = field(default_factory=time.monotonic)
    phase_started: float = field(default_factory=time.monotonic)

    def set_phase(
        self, phase: str, *, total: int | None = None, done: int = 0, unit: str = "keys"
    ) -> None:
        """Start a new phase (resets the rate clock)."""
        self.phase = phase
        self.unit = unit
        self.done = done
        self.resumed_from = done
        if total is not None:
            self.total = total
        self.phase_started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the current phase started."""
        return time.monotonic() - self.phase_started

    @property
    def rate(self) -> float:
        """Units per second in this phase (keys done before a resume left out)."""
        elapsed = self.elapsed
        return (self.done - self.resumed_from) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Estimated seconds left in this phase, or ``None`` before there is a rate."""
        rate = self.rate
        if rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    @property
    def fraction(self) -> float:
        """``done / total`` (1.0 for an empty phase)."""
        return self.done / self.total if self.total else 1.0

    def as_dict(self) -> dict[str, object]:
        """Plain data for health details, status replies and logs."""
        eta = self.eta
        return {
            "operation": self.operation,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "kind": self.kind,
            "unit": self.unit,
            "rate": round(self.rate, 1),
            "eta_s": None if eta is None else round(eta, 1),
        }


#: Called with the progress after every batch and at every phase change.
ProgressListener: TypeAlias = "Callable[[MigrationProgress], None]"


class ProgressLog:
    """Logs :class:`MigrationProgress` as ``migrator.progress`` events (a listener).

    One event at each phase change, at the end of each phase, and otherwise at
    most every ``interval`` seconds, never the same phase and count twice in a
    row; the fields are :meth:`MigrationProgress.as_dict`'s.
    """

    def __init__(
        self, *, interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")
        self._logged: tuple[str, int] | None = None  # (phase, done) of the last event

    def __call__(self, progress: MigrationProgress) -> None:
        """Log ``progress`` if it is due (and not the same as the last event)."""
        now = self._clock()
        where = (progress.phase, progress.done)
        if where == self._logged:
            return
        new_phase = self._logged is None or progress.phase != self._logged[0]
        if new_phase or progress.done >= progress.total or now - self._last >= self.interval:
            self._last = now
            self._logged = where
            fields = {k: v for k, v in progress.as_dict().items() if v is not None}
            log.info("migrator.progress", **fields)


class ProgressReporter:
    """Shows :class:`MigrationProgress`: a bar on a terminal, else :class:`ProgressLog` events.

    ``stream`` is where the bar is drawn (stderr by default); ``tty=None`` asks
    it (``isatty()``). Off a terminal the events go wherever logging does (the
    ``garrison`` command configures it as ``garrison run`` does: JSON lines on
    stderr), at most every ``interval`` seconds plus one at each phase change
    and at the end.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        tty: bool | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        self._log = ProgressLog(interval=interval, clock=clock)
        self._phase: str | None = None
        self._drawn = False

    def __call__(self, progress: MigrationProgress) -> None:
        """Show ``progress`` (a listener for the engine)."""
        if not self.tty:
            self._log(progress)
            return
        if progress.phase != self._phase and self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self._phase = progress.phase
        if progress.phase != "done":
            self.stream.write("\r" + self.bar(progress) + "\x1b[K")
            self._drawn = True
        self.stream.flush()

    @staticmethod
    def bar(progress: MigrationProgress) -> str:
        """The one-line bar: phase, bar, percent, count, rate and ETA."""
        filled = int(_BAR_WIDTH * progress.fraction)
        eta = progress.eta
        eta_text = "--" if eta is None else _duration(eta)
        return (
            f"{progress.phase:<8} [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] "
            f"{progress.fraction:4.0%} {progress.done:,}/{progress.total:,} {progress.unit} "
            f"{progress.rate:,.0f} {progress.unit}/s ETA {eta_text}"
        )

    def close(self) -> None:
        """End the bar's line (call once at the end)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
