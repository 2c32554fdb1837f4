"""Running one actor on its own, outside a runtime."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from garrison._log import get_logger
from garrison.runtime._cell import ActorCell, ExitKind
from garrison.runtime._ref import ActorRef

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from garrison.runtime._actor import Actor

__all__ = ["open_actor"]

log = get_logger("garrison.runtime")


def _unsupervised_exit(cell: ActorCell, kind: ExitKind, error: BaseException | None) -> None:
    # Nobody restarts a standalone actor: a crash ends it, and queued asks fail
    # with ActorStoppedError (chained from the crash) instead of waiting forever.
    if kind is ExitKind.CRASH:
        log.error("actor.crashed", actor=cell.name, exc_info=error)
    cell.fail_pending()


@contextlib.asynccontextmanager
async def open_actor(
    actor: Actor, *, name: str | None = None, capacity: int = 1000, stop_timeout: float = 10.0
) -> AsyncIterator[ActorRef]:
    """Run ``actor`` in its own task for the duration of the block; yield its ref.

    On exit the mailbox is closed, queued messages are handled, and the loop is
    cancelled if that takes longer than ``stop_timeout``. A standalone actor that
    crashes is not restarted: later messages raise
    :class:`~garrison.ActorStoppedError`.

    >>> async with open_actor(Counter(), name="counter") as ref:   # doctest: +SKIP
    ...     await ref.ask(Add(2))
    """
    cell = ActorCell(name or type(actor).__name__, capacity, type(actor), _unsupervised_exit)
    cell.start(actor)
    try:
        yield ActorRef(cell)
    finally:
        await cell.stop(stop_timeout)
        cell.fail_pending()
