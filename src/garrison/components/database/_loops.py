"""The database actor's task group: where the loops of its stores run.

The EDN writer, the mode router's repairs and SQLite's checkpoints run in one
anyio task group, hosted by a background task of the actor
(:meth:`~garrison.runtime.Actor.spawn`). A loop that fails with an error it
does not expect ends the group, the host task fails with that error, and the
actor crashes: the supervisor restarts the component by its policy (the
restart shows in health), and the restart's stop flushes the EDN file and
closes SQLite, so nothing acknowledged is lost. Stopping the actor cancels
the host, and with it every loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any

    from anyio.abc import TaskGroup

__all__ = ["open_loop_group"]


async def open_loop_group(
    spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
) -> TaskGroup:
    """Start the host task with ``spawn`` (the actor's); return its running task group."""
    ready: asyncio.Future[TaskGroup] = asyncio.get_running_loop().create_future()
    spawn(_host(ready))
    return await ready


async def _host(ready: asyncio.Future[TaskGroup]) -> None:
    try:
        async with anyio.create_task_group() as group:
            ready.set_result(group)
            await anyio.sleep_forever()
    except ExceptionGroup as failed:
        # One loop failed (its siblings were cancelled): crash with its own
        # error, which names the loop in a note, rather than the group.
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None
        raise
