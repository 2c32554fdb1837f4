"""The messages the ``migrator`` component handles, and the job handle it replies with.

``Migrate``, ``Validate`` and ``Export`` start a job and reply at once with a
:class:`MigrationJob`; ``await job.result()`` waits for its summary. The
actor stays free meanwhile, so :class:`Status` (and health checks) answer
while a long migration runs. One job runs at a time::

    job = await runtime.ref("migrator").ask(Migrate(prefixes=("session",)))
    summary = await job.result()
    print(summary.render())
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from garrison.components.migrator._progress import MigrationProgress

__all__ = ["Export", "Migrate", "MigrationJob", "Status", "Validate"]


@dataclass(frozen=True, slots=True)
class Migrate:
    """Migrate the EDN file into the database (options left ``None`` come from the config).

    ``resume=True`` continues an interrupted migration of the same file
    with the same options. ``validate=True`` validates after the migration; the job's result is then
    ``(MigrationSummary, ValidationReport)`` instead of the summary alone.
    """

    prefixes: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None
    batch_size: int | None = None
    resume: bool = False
    dry_run: bool = False
    overwrite: bool | None = None
    validate: bool = False


@dataclass(frozen=True, slots=True)
class Validate:
    """Compare the EDN file and the database key by key (``prefixes``: the config's if ``None``)."""

    prefixes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Export:
    """Write the database back to ``path`` (relative to the data folder) as EDN, atomically.

    Not to the database component's own EDN file while it runs (it would
    overwrite the export at its next flush): for that rollback, stop the
    runtime and run ``garrison export``. An existing file is replaced only
    with ``overwrite=True``.
    """

    path: str | None = None
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    """Ask for the current or last job: its progress and outcome (a plain dict)."""


@dataclass(eq=False)
class MigrationJob:
    """A running or finished migrator job: its kind, live progress and result."""

    operation: str
    progress: MigrationProgress
    task: asyncio.Future[Any] = field(repr=False)
    automatic: bool = False

    @property
    def done(self) -> bool:
        """Whether the job has finished (successfully or not)."""
        return self.task.done()

    async def result(self) -> Any:
        """Wait for the job and return its summary (or raise its error).

        Waiting can be cancelled without cancelling the job.
        """
        return await asyncio.shield(self.task)

    def error(self) -> BaseException | None:
        """The job's error once it has failed (``None`` while running or after success)."""
        if not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()
