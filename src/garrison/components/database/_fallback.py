"""Running on the EDN file while the database cannot be opened, and getting it back.

When SQLite cannot be opened at start in ``edn-only`` or ``dual-write`` (see
:func:`~garrison.components.database._open.open_stack`), the component starts
on the EDN file alone and :func:`retry_database` tries the database again in
the background, after 0.5 s, then doubling up to 30 s between attempts. An
attempt first opens the database on its own (so a database that still hangs
on a lock holds up no request); once that works it asks the component to
attach SQLite (:class:`AttachDatabase`), which happens between two messages,
in mailbox order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from garrison.stores import SQLITE_FAILURES, SqliteStore

if TYPE_CHECKING:
    from garrison.components.database._config import DatabaseConfig
    from garrison.runtime import ActorRef

__all__ = ["FIRST_RETRY", "MAX_RETRY", "AttachDatabase", "RetryState", "retry_database"]

log = logging.getLogger(__name__)

FIRST_RETRY: Final = 0.5
MAX_RETRY: Final = 30.0


@dataclass(frozen=True, slots=True)
class AttachDatabase:
    """Internal: the database opened again; attach it. Replies ``True`` once attached."""


@dataclass(slots=True)
class RetryState:
    """What health reports while the component runs on the EDN file."""

    cause: str
    attempts: int = 0
    next_delay: float = FIRST_RETRY


async def retry_database(
    settings: DatabaseConfig, path: str, state: RetryState, ref: ActorRef
) -> None:
    """Try the database with backoff until the component has attached it (see the module)."""
    while True:
        # A timer, not synchronisation: give the database time to come back.
        await asyncio.sleep(state.next_delay * random.uniform(0.8, 1.2))
        state.attempts += 1
        state.next_delay = min(MAX_RETRY, state.next_delay * 2)
        trial = SqliteStore(Path(path), busy_timeout=settings.busy_timeout)
        try:
            await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
            await trial.open()
        except SQLITE_FAILURES as exc:
            state.cause = f"{type(exc).__name__}: {exc}"
            log.info("the database %s still cannot be opened: %s", path, state.cause)
            continue
        finally:
            await trial.aclose()
        if await ref.ask(AttachDatabase()):
            return
