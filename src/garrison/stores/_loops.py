"""The background loop of a store, run in its owner's task group.

The EDN writer, the mode router's repairs and SQLite's checkpoints are loops
that live as long as their store is open. Each runs in the task group of
whoever owns the store (the database actor hosts one for all of its stores):
an unexpected error in a loop is the owner's failure, so the supervisor
restarts the actor. Errors a loop expects (a failing flush, a failing SQLite
side) it handles itself; anything else propagates, with a note naming the
loop.

A store used on its own (``async with EdnFileStore(...)``, the operator
commands) has no such owner: the store runs the loop in a task of its own,
and the store is then the owner: a loop that failed fails every later call
that depends on it (:meth:`BackgroundLoop.check`) and the store's
``aclose``, instead of ending in silence.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

import anyio
from opentelemetry import context as otel_context

from garrison.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup, TaskStatus

__all__ = ["BackgroundLoop"]

log = logging.getLogger(__name__)

#: How long a stop waits for a cancelled loop to end (it only has to unwind).
_STOP_GRACE: Final = 5.0


class BackgroundLoop:
    """One loop of a store, started in a task group (or a task of the store's own).

    ``body`` runs until it is cancelled by :meth:`stop`; it returns only by
    raising. ``name`` says which loop of which store, in errors and logs.
    """

    def __init__(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._body = body
        self._scope = anyio.CancelScope()
        self._ended = anyio.Event()
        self._own_task: asyncio.Task[None] | None = None
        self._started = False
        #: The unexpected error the loop ended with (``None`` unless it failed).
        self.failure: BaseException | None = None

    async def start(self, task_group: TaskGroup | None) -> None:
        """Run the loop in ``task_group``; ``None``: in a task the store owns (see the module).

        Returns once the loop runs (in a task group), so a stop never waits
        for a loop that was cancelled before it began.
        """
        if self._started:
            raise RuntimeError(f"{self.name} was started already")
        self._started = True
        if task_group is not None:
            await task_group.start(self._run, name=self.name)
            return
        task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        task.add_done_callback(self._own_task_done)
        self._own_task = task

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        # The loop outlives whatever span was current when it started (the
        # component's start): its spans (flushes, checkpoints) start traces
        # of their own instead of hanging under that long-finished span.
        otel_context.attach(otel_context.Context())
        try:
            with self._scope:
                task_status.started()
                await self._body()
        except Exception as exc:
            self.failure = exc
            exc.add_note(f"raised by the background loop {self.name}")
            raise
        finally:
            self._ended.set()

    def _own_task_done(self, task: asyncio.Task[None]) -> None:
        # Retrieved here so that asyncio does not report it as never retrieved;
        # the store raises it from check() and aclose().
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed; its store raises the error from now on", self.name, exc_info=exc)

    def check(self) -> None:
        """Raise :class:`StoreError` (from the loop's error) when the loop failed."""
        failure = self.failure
        if failure is not None:
            raise StoreError(
                f"{self.name} failed ({type(failure).__name__}: {failure}); "
                "close the store and open it again"
            ) from failure

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended. Idempotent.

        A loop of the store's own task that had failed raises its error here
        (in an owner's task group the error went to the group already).
        """
        self._scope.cancel()
        own, self._own_task = self._own_task, None
        with anyio.move_on_after(_STOP_GRACE, shield=True):
            if own is not None:
                # Cancelling the scope before the task began still ends it at
                # its first step (the scope is entered cancelled).
                await asyncio.wait({own})
            elif self._started:
                await self._ended.wait()
        if own is not None:
            self.check()
