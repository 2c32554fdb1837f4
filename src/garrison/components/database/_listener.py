"""Changes from other instances on a shared PostgreSQL database: LISTEN, then catch up.

Every commit notifies the channel ``garrison_changes``, naming the instance
that made it. :func:`follow_changes` runs in the database actor's task group
with a connection of its own that listens there; on each wake-up by another
instance's commit (and once after every connect) it asks the actor to
:class:`CatchUp`, and the actor reads the history after the last ``seq`` it
saw (:meth:`PostgresStore.catch_up`), invalidates those keys in its read cache
and publishes the changes to its watchers and live queries. This instance's
own commits wake nothing and cost no read; they only move the ``seq`` the next
catch-up starts after (see :meth:`PostgresStore.notifications`). A
notification only wakes: the history is the truth, so a lost notification,
or a listening connection lost and made again, loses nothing, and nothing
arrives twice.

Order: other instances' changes arrive in their commit order; this instance's
own writes are published when they are acknowledged, as on SQLite.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from garrison.exceptions import GarrisonError

if TYPE_CHECKING:
    from garrison.runtime import ActorRef
    from garrison.stores import PostgresStore

__all__ = ["CatchUp", "ListenerState", "follow_changes"]

log = logging.getLogger(__name__)

_FIRST_RETRY: Final = 0.1
_LONGEST_RETRY: Final = 5.0


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Read and publish the other instances' changes since the last seen ``seq``.

    ``own_through``: every commit up to this ``seq`` not read yet is this
    instance's own (see :meth:`PostgresStore.notifications`), so the read starts after
    it if it is past the last seen ``seq``. ``check_mode``: compare the mode
    recorded in the database with this instance's (after a connect, and after
    another instance's commit recorded an event); when another instance
    switched it, the actor refuses writes with an error saying so (reads go
    on) until it restarts in the recorded mode. Replies how many changes it
    published.
    """

    own_through: int = 0
    check_mode: bool = False


@dataclass(slots=True)
class ListenerState:
    """Whether the listening connection is up, for the health check, and why not.

    ``tried`` is set once the first connection attempt is over (either way):
    the actor's start waits for it, so a started instance is listening.
    """

    connected: bool = False
    error: str | None = "not connected yet"
    tried: asyncio.Event = field(default_factory=asyncio.Event)


async def follow_changes(store: PostgresStore, database: ActorRef, state: ListenerState) -> None:
    """Listen for commits and ask ``database`` to catch up; reconnect when the connection drops.

    Runs until cancelled (the actor stopping). A failure to connect or to
    catch up is logged and retried with backoff: the actor keeps serving its
    own reads and writes meanwhile, and the next catch-up covers the gap.
    """
    delay = _FIRST_RETRY
    while True:
        try:
            async with store.notifications() as notifications:
                state.connected, state.error = True, None
                state.tried.set()
                # Whatever committed while not listening, a mode switch included.
                await database.ask(CatchUp(check_mode=True))
                delay = _FIRST_RETRY
                while True:
                    own_through, events = await notifications.wait()
                    await database.ask(CatchUp(own_through, check_mode=events))
        except GarrisonError as exc:
            state.connected, state.error = False, str(exc)
            state.tried.set()
            log.warning(
                "following changes of %s failed (%s); retrying in %.1fs", store.path, exc, delay
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _LONGEST_RETRY)
