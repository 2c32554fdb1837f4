"""The migrator: ``memory.edn`` into SQLite, validated, resumable, and back again.

* :func:`migrate` moves the EDN map into the database in batches, one
  transaction each, sessions first; idempotent and resumable. It sends them to
  the actor owning the database (:class:`~garrison.components.database.DatabaseLink`).
* :func:`validate` compares both sides key by key.
* :func:`export` writes the database back as EDN, atomically (the rollback).
* :class:`MigratorComponent` does the same inside a runtime, with
  ``auto = "off" | "background" | "blocking"``.
"""

from __future__ import annotations

from garrison.components.migrator._backup import MigrationBackup, backup_before_migration
from garrison.components.migrator._component import MigratorComponent
from garrison.components.migrator._config import AutoMode, MigratorConfig
from garrison.components.migrator._export import export
from garrison.components.migrator._messages import (
    Export,
    Migrate,
    MigrationJob,
    Status,
    Validate,
)
from garrison.components.migrator._migrate import PROGRESS_META, migrate
from garrison.components.migrator._plan import (
    DEFAULT_KIND_MAPPING,
    DEFAULT_ORDER,
    IndexKeys,
    KindMapping,
    normalize_prefixes,
)
from garrison.components.migrator._progress import (
    MigrationProgress,
    ProgressLog,
    ProgressReporter,
)
from garrison.components.migrator._report import ExportSummary, MigrationSummary, ValidationReport
from garrison.components.migrator._source import absolute_path, read_source, read_source_reporting
from garrison.components.migrator._validate import validate

__all__ = [
    "read_source_reporting",
    # component
    "MigratorComponent",
    "MigratorConfig",
    "AutoMode",
    "Migrate",
    "Validate",
    "Export",
    "Status",
    "MigrationJob",
    # engine
    "migrate",
    "validate",
    "export",
    "PROGRESS_META",
    "read_source",
    "absolute_path",
    # backups before a migration
    "backup_before_migration",
    "MigrationBackup",
    # plan
    "KindMapping",
    "DEFAULT_KIND_MAPPING",
    "DEFAULT_ORDER",
    "IndexKeys",
    "normalize_prefixes",
    # results and progress
    "MigrationSummary",
    "ValidationReport",
    "ExportSummary",
    "MigrationProgress",
    "ProgressLog",
    "ProgressReporter",
]
