"""Event-loop lag: how late the loop wakes a task that asked to sleep.

The live probe uses it: lag that large means every callback (a probe, a
message) waits that long too, and a loop stalled for seconds is a wedged
process.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LoopLagMonitor", "measure_lag"]


class LoopLagMonitor:
    """Measures how late the event loop wakes a task that asked to sleep.

    A small task sleeps ``interval`` seconds at a time and records how much
    later than asked it woke up; :meth:`worst` is the largest lag of the last
    ``window`` seconds. Lag that large means callbacks (probes, messages) wait
    that long too. Start with :meth:`start`, stop with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        interval: float = 0.25,
        window: float = 10.0,
        until: Callable[[], bool] | None = None,
    ) -> None:
        self.interval = interval
        self.window = window
        # Checked after every sample: the task ends by itself once the thing it
        # watches is gone, so an embedded runtime leaves no task behind.
        self._until = until
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._sampled: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """True while the sampling task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="garrison.health.loop-lag"
            )

    async def aclose(self) -> None:
        """Stop sampling (idempotent)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # The task's own cancellation is expected; ours must still propagate.
            await asyncio.wait([task])

    def record(self, lag: float, *, now: float | None = None) -> None:
        """Add one lag sample (seconds) taken at ``now`` (monotonic)."""
        now = time.monotonic() if now is None else now
        self._samples.append((now, lag))
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()
        if self._sampled is not None:
            self._sampled.set()
            self._sampled = None

    async def wait_sample(self) -> None:
        """Return after the next sample has been recorded."""
        if self._sampled is None:
            self._sampled = asyncio.Event()
        await self._sampled.wait()

    def worst(self) -> float:
        """The largest lag (seconds) sampled within the window, 0.0 when none."""
        cutoff = time.monotonic() - self.window
        return max((lag for at, lag in self._samples if at >= cutoff), default=0.0)

    async def _run(self) -> None:
        while self._until is None or not self._until():
            start = time.monotonic()
            await asyncio.sleep(self.interval)
            self.record(max(0.0, time.monotonic() - start - self.interval))


async def measure_lag() -> float:
    """How long one trip through the event loop's ready queue takes right now (seconds)."""
    start = time.monotonic()
    await asyncio.sleep(0)
    return time.monotonic() - start
