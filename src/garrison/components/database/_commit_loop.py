"""The commit loop of ``durability = "debounced"``: pending writes reach SQLite within the bound.

With ``durability = "debounced"`` the database actor acknowledges a write
before it is committed (see :mod:`._pending`) and keeps the legacy EDN
store's contract instead: every acknowledged write is committed at most
``flush_max_delay`` after its acknowledgement, in one transaction per run of
puts or deletes, so a crash loses at most the writes of the last
``flush_max_delay`` and never part of one.

:meth:`CommitLoop.run` is the timer. It commits after ``flush_quiet_period``
with no new write, and at the latest ``flush_max_delay`` minus a reserve
after the oldest pending write, as the EDN writer flushes. The reserve is
twice a decaying maximum of the recent commit durations plus a fifth of
``flush_max_delay`` (at least 10 ms) for timer latency. The commit runs
beside the actor's turns, one at a time with any other commit (a message that
needs the stores current, the stop): the actor keeps acknowledging writes
and answering reads while a window's transaction runs.

A commit that fails on an error that concerns the commit alone (a lock held
by another process past ``busy_timeout``) keeps the writes pending and
readable; the loop tries again after 50 ms, doubling up to 30 s, and health
reports the error and, past ``max_writer_lag``, fails. A failure that breaks
the connection crashes the actor, as any storage failure does; the writes it
had not committed are lost as in a crash. In the modes that write the EDN
file too, a failing SQLite side does not fail the commit: the router writes
the EDN file and queues the keys for repair, as for any write.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from garrison.components.database._pending import PendingWrites

__all__ = ["CommitLoop"]

#: Per commit, the estimate of the commit duration shrinks by this factor
#: unless the commit took longer (as the EDN writer's flush estimate).
_ESTIMATE_DECAY: Final = 0.8
_SLACK_SHARE: Final = 0.2
_MIN_SLACK: Final = 0.01
_FIRST_BACKOFF: Final = 0.05
_MAX_BACKOFF: Final = 30.0


class CommitLoop:
    """Commits ``pending`` through ``commit`` within ``max_delay`` of each write (see the module).

    ``commit()`` commits what is pending and answers ``False`` when it failed
    and the writes are still pending. The actor calls :meth:`notify` after it
    recorded writes, and :meth:`committed` / :meth:`failed` after every
    commit, whoever asked for it (this loop, a message, the stop).
    """

    def __init__(
        self,
        pending: PendingWrites,
        commit: Callable[[], Awaitable[bool]],
        *,
        quiet_period: float,
        max_delay: float,
    ) -> None:
        self.pending = pending
        self.quiet_period = quiet_period
        self.max_delay = max_delay
        self._commit = commit
        self._wakeup = asyncio.Event()
        self._committed = asyncio.Event()
        self._estimate = 0.0
        #: Commits that succeeded, and those that finished later than
        #: ``max_delay`` after the oldest write they carried.
        self.commits = 0
        self.late_commits = 0
        #: The last commit's error (``None`` once a commit succeeds).
        self.last_error: str | None = None

    @property
    def reserve(self) -> float:
        """Seconds before the bound at which the loop starts a commit."""
        slack = max(_MIN_SLACK, self.max_delay * _SLACK_SHARE)
        return min(self.max_delay, 2 * self._estimate + slack)

    @property
    def lag(self) -> float:
        """Seconds since the oldest pending write was acknowledged (0.0 when none)."""
        first = self.pending.first_at
        return 0.0 if first is None else asyncio.get_running_loop().time() - first

    def notify(self) -> None:
        """Writes were recorded: make sure a commit is scheduled."""
        self._wakeup.set()

    def committed(self, first_at: float, seconds: float) -> None:
        """A commit of writes whose oldest was acknowledged at ``first_at`` took ``seconds``."""
        now = asyncio.get_running_loop().time()
        self.commits += 1
        self.late_commits += now - first_at > self.max_delay
        self.last_error = None
        self._estimate = max(seconds, self._estimate * _ESTIMATE_DECAY)
        self._committed.set()
        self._committed = asyncio.Event()

    def failed(self, error: Exception) -> None:
        """A commit failed; the writes stay pending."""
        self.last_error = f"{type(error).__name__}: {error}"

    async def wait_committed(self) -> None:
        """Wait for the next successful commit (for tests and tools that watch the bound)."""
        await self._committed.wait()

    async def run(self) -> None:
        """Commit pending writes on time until the owner cancels it; raises on a bug."""
        loop = asyncio.get_running_loop()
        pending = self.pending
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            backoff = 0.0
            while (first := pending.first_at) is not None:
                now = loop.time()
                latest = first + max(0.0, self.max_delay - self.reserve)
                due = min(pending.last_at + self.quiet_period, latest)
                if due > now:
                    # A timer, not synchronisation: the commit's moment. Then
                    # look again: a write since may postpone the quiet period,
                    # a message that needed the stores may have committed.
                    await asyncio.sleep(due - now)
                    continue
                began = loop.time()
                if await self._commit():
                    backoff = 0.0
                    # A wait for another commit counts too: it is what committing costs.
                    self._estimate = max(self._estimate, loop.time() - began)
                else:
                    backoff = min(_MAX_BACKOFF, max(_FIRST_BACKOFF, backoff * 2))
                    # A timer: give the store time to recover (the writes stay pending).
                    await asyncio.sleep(backoff)
