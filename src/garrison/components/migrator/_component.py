"""``MigratorComponent``: the migrator inside a runtime, talking to the ``database`` component.

It sends its batches and reads to the database actor
(:class:`~garrison.components.database.DatabaseLink`), which writes them in
its own transactions: the read cache forgets the keys, watchers see the
changes, and keys the application wrote meanwhile join the repair backlog.
It reads the EDN file the database component names, unless ``edn_path``
says otherwise; ``sqlite_path`` migrates into another database file, owned
for the run by an actor of its own.

``auto`` (see :class:`MigratorConfig`):

- ``off``: nothing happens until a :class:`Migrate` message;
- ``background``: right after start a migration (resuming an interrupted
  one) and, with ``validate = true``, a validation run while the runtime is
  already ready; progress shows in health and in the migration metrics;
- ``blocking``: the same, but the component reports its startup unfinished
  (``startup_complete``) until the migration *and* its validation have
  succeeded, so the startup and readiness probes fail until then. A failed or disagreeing
  run leaves startup unfinished and health failing, with the reason.
  With no EDN file at all (a fresh installation) there is nothing to
  migrate: the automatic run succeeds at once.

Jobs run as tasks owned by the actor, one at a time; the handlers reply at
once with a :class:`MigrationJob`, so :class:`Status` answers during a run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar

from garrison._log import get_logger
from garrison.components.database import DatabaseLink, open_sqlite_owner
from garrison.components.migrator._config import MigratorConfig
from garrison.components.migrator._export import export
from garrison.components.migrator._messages import (
    Export,
    Migrate,
    MigrationJob,
    Status,
    Validate,
)
from garrison.components.migrator._migrate import migrate
from garrison.components.migrator._plan import normalize_prefixes
from garrison.components.migrator._progress import MigrationProgress, ProgressLog
from garrison.components.migrator._report import MigrationSummary, ValidationReport
from garrison.components.migrator._source import SourceFile, read_source_reporting
from garrison.components.migrator._validate import validate
from garrison.edn import MAX_DIGITS
from garrison.exceptions import StoreError, ValidationError
from garrison.runtime import CheckResult, Component, handler
from garrison.stores import DEFAULT_KIND_MAPPING, KindMapping, SqliteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine
    from pathlib import Path

__all__ = ["MigratorComponent"]

log = get_logger("garrison.migrator")
#: Seconds between two ``migrator.progress`` events of a job (plus one per phase).
PROGRESS_LOG_INTERVAL = 5.0


class MigratorComponent(Component):
    """Migrates ``memory.edn`` into the database component's SQLite store, on request or at start.

    Messages: :class:`Migrate`, :class:`Validate`, :class:`Export` (each
    replies with a :class:`MigrationJob`) and :class:`Status`.
    """

    name = "migrator"
    depends_on: ClassVar[tuple[str, ...]] = ("database",)
    critical: ClassVar[bool] = False
    config_class: ClassVar[type[Any] | None] = MigratorConfig
    config: MigratorConfig

    def __init__(self) -> None:
        super().__init__()
        self._job: MigrationJob | None = None
        self._job_log = ProgressLog(interval=PROGRESS_LOG_INTERVAL)  # the current job's
        self._last_outcome: dict[str, Any] = {}

    async def on_start(self) -> None:
        """Start the automatic run for ``auto = "background"`` or ``"blocking"``."""
        if self.config.auto == "off":
            return
        if self.config.auto == "blocking":
            self.startup_complete = False
        self._start("migrate", self._auto_run, automatic=True)

    async def on_stop(self) -> None:
        """Cancel a running job (a migration resumes from its last batch next time)."""
        job = self._job
        if job is not None and not job.done:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task

    @property
    def current_job(self) -> MigrationJob | None:
        """The running job, or the last one (``None`` before the first)."""
        return self._job

    # -- paths and store -------------------------------------------------------

    def _paths(self) -> tuple[Path | None, Path]:
        """(own SQLite path or None for the database component's store, EDN path)."""
        edn_default = self._database_paths()[1]
        edn = self.data_dir / self.config.edn_path if self.config.edn_path else edn_default
        if edn is None:
            raise StoreError("the migrator needs edn_path: the database component names none")
        own = self.data_dir / self.config.sqlite_path if self.config.sqlite_path else None
        return own, edn

    def _database_paths(self) -> tuple[Path | None, Path | None]:
        """The database component's (SQLite, EDN) paths, from its config (None: unknown)."""
        database = self.runtime.component("database")
        resolve = getattr(database.config, "resolve_paths", None)
        if callable(resolve):
            sqlite, edn = resolve(database.data_dir)
            return sqlite, edn
        return None, None

    def _kind_mapping(self) -> KindMapping:
        """The ``database`` component's kind mapping (the one every write uses)."""
        database = self.runtime.component("database")
        mapping = getattr(database.config, "kind_mapping", None)
        return mapping if isinstance(mapping, KindMapping) else DEFAULT_KIND_MAPPING

    @contextlib.asynccontextmanager
    async def _store(self, own: Path | None) -> AsyncIterator[DatabaseLink]:
        if own is not None:
            async with SqliteStore(own) as store, open_sqlite_owner(store) as link:
                yield link
            return
        sqlite = self._database_paths()[0]
        yield DatabaseLink(self.ref("database"), str(sqlite) if sqlite else "database")

    # -- jobs ------------------------------------------------------------------

    def _start(
        self,
        operation: str,
        work: Callable[[MigrationProgress], Coroutine[Any, Any, Any]],
        *,
        automatic: bool = False,
    ) -> MigrationJob:
        current = self._job
        if current is not None and not current.done:
            raise StoreError(
                f"the migrator is busy with a {current.operation} "
                f"({current.progress.phase} {current.progress.done}/{current.progress.total})"
            )
        progress = MigrationProgress(operation)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        job = MigrationJob(operation, progress, future, automatic=automatic)
        self._job = job
        self._job_log = ProgressLog(interval=PROGRESS_LOG_INTERVAL)
        self.spawn(self._run(job, work), name=f"migrator-{operation}")
        return job

    async def _run(
        self, job: MigrationJob, work: Callable[[MigrationProgress], Coroutine[Any, Any, Any]]
    ) -> None:
        # Failures are the job's outcome (health, result()), not a crash of the
        # component: a bad memory.edn must not make the supervisor restart it.
        try:
            result = await work(job.progress)
        except asyncio.CancelledError:
            job.task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is the job's reported outcome
            log.warning("migrator.job_failed", operation=job.operation, error=str(exc))
            self._last_outcome = {"operation": job.operation, "error": str(exc)}
            job.task.set_exception(exc)
            job.task.exception()  # retrieved: the outcome is reported through health
            return
        self._last_outcome = {"operation": job.operation, **_outcome(result)}
        job.task.set_result(result)

    async def _auto_run(
        self, progress: MigrationProgress
    ) -> tuple[MigrationSummary | None, ValidationReport | None]:
        _, edn = self._paths()
        if not await asyncio.to_thread(edn.exists):
            # A fresh installation has no legacy file: nothing to migrate is success.
            log.info("migrator.auto_nothing_to_do", edn=str(edn))
            self.startup_complete = True
            return None, None
        source = await read_source_reporting(
            edn,
            progress,
            self._job_log,
            prefixes=self._prefixes(None),
            max_digits=self._max_digits(),
        )
        summary = await self._migrate(progress, Migrate(resume=True), source)
        if summary.conflict_count:
            shown = ", ".join(summary.conflicts[:5])
            raise ValidationError(
                f"{summary.conflict_count} keys hold different data in the database and were "
                f"not overwritten ({shown}); set overwrite = true, or resolve them and restart"
            )
        report = None
        if self.config.validate:
            report = await self._validate(progress, Validate(), source)
        elif summary.raced:
            # Without a validation nothing shows whether they kept the older value.
            raise ValidationError(
                f"{len(summary.raced)} keys were written by someone else during the "
                "migration and validate = false: validate before relying on the data"
            )
        if report is not None and not report.agree:
            raise ValidationError(
                f"after the automatic migration the two sides disagree: "
                f"{report.comparison.summary()}"
            )
        self.startup_complete = True
        log.info("migrator.auto_done", keys=summary.total, written=summary.written)
        return summary, report

    async def _migrate(
        self, progress: MigrationProgress, msg: Migrate, source: SourceFile | None = None
    ) -> MigrationSummary:
        own, edn = self._paths()
        config = self.config
        async with self._store(own) as store:
            summary = await migrate(
                store,
                edn,
                prefixes=self._prefixes(msg.prefixes),
                batch_size=msg.batch_size or config.batch_size,
                resume=msg.resume,
                dry_run=msg.dry_run,
                overwrite=config.overwrite if msg.overwrite is None else msg.overwrite,
                kinds=self._kind_mapping(),
                order=msg.order if msg.order is not None else config.order,
                index_keys=config.index_keys,
                progress=progress,
                listener=self._job_log,
                source=source,
                max_digits=self._max_digits(),
            )
            if summary.raced and own is None:
                # Keys the application wrote while a batch was checked and
                # written are in the database's repair backlog (EDN's newer
                # value wins, even across a crash); a validation after the
                # job must see them repaired.
                await store.wait_repaired()
        return summary

    async def _validate(
        self, progress: MigrationProgress, msg: Validate, source: SourceFile | None = None
    ) -> ValidationReport:
        own, edn = self._paths()
        async with self._store(own) as store:
            report = await validate(
                store,
                edn,
                prefixes=self._prefixes(msg.prefixes),
                index_keys=self.config.index_keys,
                kinds=self._kind_mapping(),
                progress=progress,
                listener=self._job_log,
                source=source,
                max_digits=self._max_digits(),
            )
        comparison = report.comparison
        (log.info if report.agree else log.warning)(
            "migrator.validated",
            agree=report.agree,
            edn_keys=report.edn_keys,
            sqlite_keys=report.sqlite_keys,
            only_in_edn=len(comparison.only_left),
            only_in_sqlite=len(comparison.only_right),
            different=len(comparison.different),
        )
        return report

    def _max_digits(self) -> int:
        """The database component's ``edn_max_digits``: the file is read as it reads it."""
        database = self.runtime.component("database")
        limit = getattr(database.config, "edn_max_digits", MAX_DIGITS)
        return limit if isinstance(limit, int) else MAX_DIGITS

    def _prefixes(self, given: tuple[str, ...] | None) -> tuple[str, ...]:
        return normalize_prefixes(given) if given is not None else self.config.key_prefixes()

    # -- messages --------------------------------------------------------------

    @handler
    async def on_migrate(self, msg: Migrate) -> MigrationJob:
        """Start a migration (and optionally a validation after it)."""

        async def work(progress: MigrationProgress) -> Any:
            summary = await self._migrate(progress, msg)
            if not msg.validate:
                return summary
            return summary, await self._validate(progress, Validate(msg.prefixes))

        return self._start("migrate", work)

    @handler
    async def on_validate(self, msg: Validate) -> MigrationJob:
        """Start a validation."""
        return self._start("validate", lambda progress: self._validate(progress, msg))

    @handler
    async def on_export(self, msg: Export) -> MigrationJob:
        """Start an export of the database to EDN."""

        own, edn = self._paths()
        target = self.data_dir / msg.path if msg.path else edn
        if own is None and await asyncio.to_thread(_same_file, target, edn):
            # The database component holds that file in memory and rewrites it
            # on its own flushes: an export under it would be overwritten (or
            # ignored until a restart). The rollback export runs with the
            # runtime stopped: `garrison export`.
            raise StoreError(
                f"{target} is the database component's own EDN file; export elsewhere "
                "(Export(path=...)), or stop the runtime and run `garrison export`"
            )

        async def work(progress: MigrationProgress) -> Any:
            async with self._store(own) as store:
                return await export(store, target, progress=progress, overwrite=msg.overwrite)

        return self._start("export", work)

    @handler
    async def on_status(self, msg: Status) -> dict[str, Any]:
        """The running or last job's progress and the last outcome."""
        return self.status()

    def status(self) -> dict[str, Any]:
        """What :class:`Status` replies (plain data)."""
        job = self._job
        return {
            "auto": self.config.auto,
            "running": job is not None and not job.done,
            "progress": job.progress.as_dict() if job is not None else None,
            "last": dict(self._last_outcome),
            "startup_complete": self.startup_complete,
        }

    async def check_health(self) -> CheckResult:
        """Passing with the progress while idle or running; failing after a failed automatic run."""
        job = self._job
        observed: dict[str, Any] = {}
        if job is not None:
            observed = {f"migration_{k}": v for k, v in job.progress.as_dict().items()}
        error = self._last_outcome.get("error")
        if error is not None:
            if job is not None and job.automatic:
                message = f"automatic {job.operation} failed: {error}"
                return CheckResult.failing(message, **observed)
            return CheckResult.warning(
                f"last {self._last_outcome['operation']} failed: {error}", **observed
            )
        if self._last_outcome.get("conflicts") or self._last_outcome.get("agree") is False:
            return CheckResult.warning("the last run left differences; see the status", **observed)
        return CheckResult.passing(**observed)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _outcome(result: Any) -> dict[str, Any]:
    parts = result if isinstance(result, tuple) else (result,)
    outcome: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, MigrationSummary):
            outcome.update(keys=part.total, written=part.written, conflicts=part.conflict_count)
        elif isinstance(part, ValidationReport):
            outcome.update(agree=part.agree, different=len(part.comparison.mismatched_keys))
        elif part is not None:
            outcome.update(part.as_dict())
    return outcome
