"""``garrison migrate``, ``garrison validate`` and ``garrison export``: the migrator on files.

Paths left out come from the config: the ``database`` component's
``sqlite_path``/``edn_path`` under ``[runtime] data_dir``, and the
``migrator`` section's prefixes, order and batch size, and the ``database``
section's kind mapping and schema.
``migrate`` (unless ``--dry-run``) and ``export`` take the database's owner
lock, like the other operator commands that write; ``validate`` only reads.
With no runtime, each runs an actor owning the database file for the command
(:func:`~garrison.components.database.open_sqlite_owner`) and reaches the
data through it, by the messages the ``database`` component handles.
Before its first write ``migrate`` backs up the database (if it exists) and
the EDN file next to them (``<name>.before-migrate-<UTC time>``) and names
the copies first in its output (``--no-backup`` skips that).

``export`` replaces an existing file only with ``--force``, and says what the
file holds against what the export writes (keys it would drop, by name). It
never replaces the EDN file of the database's own installation (the config's
``edn_path`` for that database) while the database's mode reads that file
(every mode but ``sqlite-only``), ``--force`` or not: that file is what
garrison serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    CommandError,
    cli_actor,
    configured_logging,
    describe_error,
    emit,
    exit_status,
    load,
    report_error,
)
from garrison.components.database import DatabaseLink, DatabaseLock, open_sqlite_owner
from garrison.components.migrator import (
    IndexKeys,
    MigrationBackup,
    MigrationProgress,
    MigratorConfig,
    ProgressReporter,
    absolute_path,
    backup_before_migration,
    export,
    migrate,
    normalize_prefixes,
    read_source_reporting,
    validate,
)
from garrison.config import parse_section
from garrison.edn import MAX_DIGITS
from garrison.exceptions import GarrisonError, StoreLoadError
from garrison.stores import (
    DEFAULT_KIND_MAPPING,
    MODE_META,
    Mode,
    PostgresStore,
    SqliteStore,
    acting_as,
    load_file,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Callable, Coroutine

    from garrison.components.database import DatabaseConfig
    from garrison.components.migrator import ValidationReport
    from garrison.stores import EntitySchema, KindMapping

__all__ = ["register", "run_export", "run_migrate", "run_validate"]

_PROGRESS = """\
Progress goes to stderr: a bar on a terminal, else migrator.progress events in
JSON log lines (as garrison run logs), every --progress-interval seconds."""

_MIGRATE = f"""\
Copy the entries of memory.edn into the database (SQLite, or PostgreSQL with
--db postgresql://... or backend = "postgresql"), in batches (one
transaction each), kinds in the configured order. Resumable (--resume
continues after the last committed batch) and idempotent (keys the database
already holds equal are left alone; keys it holds differently are conflicts,
left unwritten unless --overwrite). The EDN file is read in full first: a file
that does not parse writes nothing. Before the first write the database (if
it exists; not PostgreSQL's: use pg_dump) and the EDN file are copied next to
themselves (<name>.before-migrate-<UTC time>) and the copies named first
(--no-backup skips that). {_PROGRESS}

examples:
  garrison migrate --edn data/memory.edn --db data/garrison.db --dry-run
  garrison migrate --config /etc/myapp/garrison.toml --validate
  garrison migrate --prefix session --prefix presence --batch-size 500
  garrison migrate --resume            # after an interrupted run
  garrison migrate --edn data/memory.edn --db postgresql://app@db/app --validate

exit status: 0 done (with --validate: and the two sides agree); 1 conflicts
             left unwritten, or the two sides differ; 2 bad arguments or
             config; 3 the EDN file is missing or does not parse, or the
             database is in use by a running garrison
"""

_VALIDATE = f"""\
Compare memory.edn and the database (SQLite or PostgreSQL) key by key, with EDN's equality
(Clojure's: 0, false and 0.0 are three different values). Reads only.
{_PROGRESS}

examples:
  garrison validate --edn data/memory.edn --db data/garrison.db
  garrison validate --prefix session --json

exit status: 0 the two sides agree; 1 they differ; 2 bad arguments or config;
             3 the EDN file or the database is missing or unreadable
"""

_EXPORT = f"""\
Write the database's data back to an EDN file, atomically (a rollback to the
legacy store). On SQLite it takes the owner lock: stop garrison first.
{_PROGRESS}

examples:
  garrison export --db data/garrison.db --edn /tmp/memory-export.edn
  garrison export --config /etc/myapp/garrison.toml --force

exit status: 0 written; 1 refused (the file exists and no --force, or it is
             the EDN file the mode reads); 2 bad arguments or config; 3 no
             database, or it is in use by a running garrison
"""


def _common(parser: argparse.ArgumentParser, *, prefixes: bool = True) -> None:
    parser.add_argument(
        "--edn", type=Path, metavar="PATH", help="the EDN file (default: the config's)"
    )
    if prefixes:
        parser.add_argument(
            "--prefix",
            action="append",
            default=None,
            metavar="P",
            help="only keys in this namespace or with this prefix (repeatable)",
        )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between progress log lines when stderr is not a terminal (default 1)",
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``migrate``, ``validate`` and ``export`` to the ``garrison`` CLI."""
    migrate_parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="copy memory.edn into SQLite (resumable, idempotent)", description=_MIGRATE
    )
    _common(migrate_parser)
    migrate_parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="keys per transaction (default: the config's batch_size, 1000)",
    )
    migrate_parser.add_argument(
        "--resume", action="store_true", help="continue after the last committed batch"
    )
    migrate_parser.add_argument(
        "--dry-run", action="store_true", help="read and compare only; write nothing"
    )
    migrate_parser.add_argument(
        "--overwrite", action="store_true", help="replace keys the database holds differently"
    )
    migrate_parser.add_argument(
        "--validate",
        action="store_true",
        help="validate afterwards, reusing the parse if the file is unchanged (exit 1: differ)",
    )
    migrate_parser.add_argument(
        "--index-keys",
        choices=("keep", "drop"),
        default=None,
        help="migrate the hand-kept index keys (kind index: learning/tag-index, "
        "learning/index) or leave them out (default: the config's index_keys, keep)",
    )
    migrate_parser.add_argument(
        "--no-backup",
        action="store_true",
        help="skip the backup of the database and the EDN file taken before the first write",
    )
    migrate_parser.set_defaults(func=run_migrate)
    validate_parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="compare memory.edn and SQLite key by key (exit 1 if they differ)",
        description=_VALIDATE,
    )
    _common(validate_parser)
    validate_parser.add_argument(
        "--index-keys",
        choices=("keep", "drop"),
        default=None,
        help="with drop, the hand-kept index keys are expected missing from the database "
        "(default: the config's index_keys, keep)",
    )
    validate_parser.set_defaults(func=run_validate)
    export_parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="write the SQLite data back to an EDN file, atomically (rollback)",
        description=_EXPORT,
    )
    _common(export_parser, prefixes=False)
    export_parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file (never the EDN file a mode that reads it serves)",
    )
    export_parser.set_defaults(func=run_export)
    return migrate_parser


def _settings(args: argparse.Namespace) -> tuple[Path, Path | str, MigratorConfig, int]:
    """The EDN path, the database (a SQLite path or a PostgreSQL DSN), the migrator
    settings and the database's ``edn_max_digits``.

    Arguments win over the config, which is read when a path is left out or
    ``--config`` is given.
    """
    settings = MigratorConfig()
    max_digits = MAX_DIGITS
    edn, db = args.edn, args.db
    if edn is None or db is None or args.config is not None:
        edn_default, db_default, settings, max_digits = _configured(args)
        edn = edn if edn is not None else edn_default
        db = db if db is not None else db_default
    return edn, db, settings, max_digits


def _configured(args: argparse.Namespace) -> tuple[Path, Path | str, MigratorConfig, int]:
    """The config's EDN path, database, migrator settings and ``edn_max_digits``.

    The database is the configured ``dsn`` when the backend is PostgreSQL
    (the migrator's own ``sqlite_path`` still names a SQLite file).

    ``--data-dir`` applies; ``--db`` and ``--edn`` do not: this is what the
    installation itself uses, which an export must not overwrite.
    """
    from garrison.components.database import DatabaseConfig  # noqa: PLC0415 - heavy import

    config = load(args, files=False)
    database = config.components.get("database")
    db_config = parse_section(
        DatabaseConfig,
        database.options if database is not None else {},
        path="components.database",
    )
    sqlite_default, edn_default = db_config.resolve_paths(config.runtime.data_dir)
    db_default: Path | str = db_config.dsn if db_config.backend == "postgresql" else sqlite_default
    migrator = config.components.get("migrator")
    options = dict(migrator.options) if migrator is not None else {}
    settings = parse_section(MigratorConfig, options, path="components.migrator")
    data_dir = config.runtime.data_dir
    if settings.edn_path:
        edn_default = data_dir / settings.edn_path
    if settings.sqlite_path:
        db_default = data_dir / settings.sqlite_path
    return edn_default, db_default, settings, db_config.edn_max_digits


def _database_settings(args: argparse.Namespace) -> DatabaseConfig | None:
    """The configured ``[components.database]``, for a migration: its schema and kinds.

    The schema's rules are checked on every batch, and its indexed attributes
    kept; its kind mapping classifies the keys. ``None`` (the database keeps
    the schema it records; the legacy plan's kinds) when ``--edn`` and
    ``--db`` are given without ``--config``: no config is read then.
    """
    from garrison.components.database import DatabaseConfig  # noqa: PLC0415 - heavy import

    if args.edn is not None and args.db is not None and args.config is None:
        return None
    database = load(args, files=False).components.get("database")
    return parse_section(
        DatabaseConfig,
        database.options if database is not None else {},
        path="components.database",
    )


def _index_keys(args: argparse.Namespace, settings: MigratorConfig) -> IndexKeys:
    given: IndexKeys | None = args.index_keys
    return given if given is not None else settings.index_keys


def _kind_mapping(configured: DatabaseConfig | None) -> KindMapping:
    """The configured kind mapping (the legacy plan's when no config is read)."""
    return configured.kind_mapping if configured is not None else DEFAULT_KIND_MAPPING


def _prefixes(args: argparse.Namespace, settings: MigratorConfig) -> tuple[str, ...]:
    given = getattr(args, "prefix", None)
    return normalize_prefixes(given) if given else settings.key_prefixes()


def _show(args: argparse.Namespace, *results: Any, backup: MigrationBackup | None = None) -> None:
    """The results as text, or as one JSON document (``{"migration": …, "validation": …}``).

    A migration's backup is named in the text before the summary (as it is
    taken) and goes into the JSON document as ``"backup"``.
    """
    if args.json:
        document: Any
        if len(results) == 1:
            document = results[0].as_dict() if results[0] is not None else None
        else:
            names = ("migration", "validation")
            document = {
                n: r.as_dict() if r is not None else None
                for n, r in zip(names, results, strict=True)
            }
        if backup is not None:
            document = {**document, "backup": backup.as_dict()}
        emit(document)
        return
    for result in results:
        if result is not None:
            sys.stdout.write(result.render() + "\n")


def _guarded(
    command: str,
    args: argparse.Namespace,
    body: Callable[[_Progress], Coroutine[Any, Any, int]],
) -> int:
    """Run ``body``; an expected error is reported here, with what it left behind."""
    progress = _Progress(args)
    try:
        with configured_logging(args), acting_as(cli_actor()):
            return asyncio.run(body(progress))
    except (GarrisonError, OSError, ValueError) as exc:
        if getattr(args, "debug", False):
            raise
        hint = None
        if command == "migrate":
            if progress.committed:
                hint = (
                    "batches committed before the error are kept; "
                    "fix the cause and run again with --resume"
                )
            else:
                hint = "nothing was written"
        status = exit_status(exc)
        if isinstance(exc, ValueError) and not isinstance(exc, GarrisonError):
            status = EXIT_UNAVAILABLE  # a file that is not what it should be
        error = CommandError(describe_error(exc), status, hint=hint)
        return report_error(error, command=command, as_json=args.json)


class _Progress:
    """The progress listener: the reporter on stderr (none with ``--quiet``).

    It also remembers whether a migration has committed keys, so that a
    failure advises ``--resume`` only when there is something to resume.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.committed = False
        self._reporter = (
            None if args.quiet else ProgressReporter(sys.stderr, interval=args.progress_interval)
        )

    def __call__(self, progress: MigrationProgress) -> None:
        if progress.phase == "migrate" and progress.done > 0:
            self.committed = True
        if self._reporter is not None:
            self._reporter(progress)

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.close()


def run_migrate(args: argparse.Namespace) -> int:
    """``garrison migrate``; returns the exit status."""

    async def body(reporter: _Progress) -> int:
        edn, db, settings, max_digits = _settings(args)
        configured = _database_settings(args)
        schema = configured.entity_schema if configured is not None else None
        prefixes = _prefixes(args, settings)
        batch_size = args.batch_size if args.batch_size is not None else settings.batch_size
        report: ValidationReport | None = None
        backup: MigrationBackup | None = None
        options: dict[str, Any] = {
            "prefixes": prefixes,
            "batch_size": batch_size,
            "resume": args.resume,
            "dry_run": args.dry_run,
            "overwrite": args.overwrite or settings.overwrite,
            "kinds": _kind_mapping(configured),
            "order": settings.order,
            "index_keys": _index_keys(args, settings),
            "listener": reporter,
            "max_digits": max_digits,
        }
        try:
            # Read (and so check) the file before the database is opened:
            # a file that does not parse must not even create the database.
            # A missing file: only the error, no progress.
            await asyncio.to_thread(absolute_path(edn).stat)
            options["source"] = await read_source_reporting(
                absolute_path(edn),
                MigrationProgress("migrate"),
                reporter,
                prefixes=prefixes,
                max_digits=max_digits,
            )
            if args.dry_run and not await _exists(db):
                summary = await migrate(None, edn, database=_describe(db), **options)
            else:
                if not args.dry_run and isinstance(db, Path):  # as `garrison run` does
                    await asyncio.to_thread(db.parent.mkdir, parents=True, exist_ok=True)
                async with _owner_lock(db, needed=not args.dry_run):
                    if not (args.dry_run or args.no_backup):
                        backup = await backup_before_migration(
                            db if isinstance(db, Path) else None,
                            absolute_path(edn),
                            sha256=options["source"].sha256,
                        )
                        if not args.json:
                            sys.stdout.write(backup.render() + "\n")
                    async with _open_database(db, schema=schema) as database:
                        summary = await migrate(database, edn, **options)
                        if args.validate and not args.dry_run:
                            report = await validate(
                                database, edn, prefixes=prefixes, source=options["source"],
                                index_keys=options["index_keys"], kinds=options["kinds"],
                                listener=reporter, max_digits=max_digits,
                            )  # fmt: skip
        finally:
            reporter.close()
        if args.validate:
            _show(args, summary, report, backup=backup)
        else:
            _show(args, summary, backup=backup)
        if report is not None and not report.agree:
            return EXIT_FAILED
        return EXIT_OK if summary.ok else EXIT_FAILED

    return _guarded("migrate", args, body)


@contextlib.asynccontextmanager
async def _owner_lock(db: Path | str, *, needed: bool) -> AsyncIterator[None]:
    """The SQLite database's owner lock, as the operator commands that write take it.

    A running garrison holds it: its read cache and mode router would not see
    our writes, and its EDN writer would overwrite an exported memory.edn.
    PostgreSQL has no owner: its instances take each commit from the change
    notifications (docs/postgresql.md), the migration's too.
    """
    if not needed or isinstance(db, str):
        yield
        return
    lock = DatabaseLock(db)
    await lock.acquire()
    try:
        yield
    finally:
        await lock.release()


async def _exists(db: Path | str) -> bool:
    """Whether a SQLite file is there (a PostgreSQL database is taken to be)."""
    return isinstance(db, str) or await asyncio.to_thread(db.exists)


def _describe(db: Path | str) -> str:
    """The database for reports: the SQLite path, or the DSN without its password."""
    return str(db) if isinstance(db, Path) else PostgresStore(db).path


@contextlib.asynccontextmanager
async def _open_database(
    db: Path | str, *, schema: EntitySchema | None = None, existing: bool = False
) -> AsyncIterator[DatabaseLink]:
    """The database open for the block, owned by an actor; a link to it.

    ``existing``: a SQLite file that is not there is exit status 3 (it is
    not created).
    """
    store: SqliteStore | PostgresStore
    if isinstance(db, str):
        store = PostgresStore(db, schema=schema)
    else:
        if existing and not await asyncio.to_thread(db.is_file):
            raise CommandError(
                f"no database at {db}",
                EXIT_UNAVAILABLE,
                hint="check --config, --data-dir or --db; 'garrison migrate' creates the database",
            )
        store = SqliteStore(db, schema=schema)
    async with store, open_sqlite_owner(store) as link:
        yield link


def run_validate(args: argparse.Namespace) -> int:
    """``garrison validate``; returns 0 when both sides agree, 1 when not."""

    async def body(reporter: _Progress) -> int:
        edn, db, settings, max_digits = _settings(args)
        try:
            async with _open_database(db, existing=True) as database:
                report = await validate(
                    database,
                    edn,
                    prefixes=_prefixes(args, settings),
                    index_keys=_index_keys(args, settings),
                    kinds=_kind_mapping(_database_settings(args)),
                    listener=reporter,
                    max_digits=max_digits,
                )
        finally:
            reporter.close()
        _show(args, report)
        return EXIT_OK if report.agree else EXIT_FAILED

    return _guarded("validate", args, body)


def run_export(args: argparse.Namespace) -> int:
    """``garrison export``; returns 0 when the file was written."""

    async def body(reporter: _Progress) -> int:
        edn, db, _, _ = _settings(args)
        configured_edn, configured_db, _, max_digits = _configured(args)
        live = configured_edn if await asyncio.to_thread(_same_file, db, configured_db) else None
        async with _owner_lock(db, needed=True):
            try:
                async with _open_database(db, existing=True) as database:
                    await _check_export_target(
                        database, absolute_path(edn), live, force=args.force, max_digits=max_digits
                    )
                    summary = await export(database, edn, listener=reporter, overwrite=args.force)
            finally:
                reporter.close()
        if args.json or not args.quiet:  # --quiet: the exit status says it was written
            _show(args, summary)
        return EXIT_OK

    return _guarded("export", args, body)


async def _check_export_target(
    store: DatabaseLink, target: Path, live: Path | None, *, force: bool, max_digits: int
) -> None:
    """Refuse to replace the EDN file a mode still reads, or any file without ``--force``.

    ``live`` is the EDN file of the database's own installation, if known.
    """
    if live is not None and await asyncio.to_thread(_same_file, target, live):
        stored = await store.get_meta(MODE_META)
        # No recorded mode: the runtime would start in edn-only on this file.
        mode = Mode(stored) if stored is not None else Mode.EDN_ONLY
        if mode is not Mode.SQLITE_ONLY:
            raise CommandError(
                f"{str(target)!r} is the EDN file {store.path} is in {mode} with: it is what "
                "garrison reads, and exporting over it would replace that data",
                EXIT_FAILED,
                hint="export elsewhere (--edn OTHER_PATH), or 'garrison mode set sqlite-only' "
                "first",
            )
    if not await asyncio.to_thread(target.exists):
        return
    held = await _describe_existing(store, target, max_digits)
    if not force:
        raise CommandError(
            f"{str(target)!r} exists: {held}", EXIT_FAILED, hint="pass --force to replace it"
        )
    sys.stderr.write(f"garrison export: replacing {str(target)!r}: {held}\n")


async def _describe_existing(store: DatabaseLink, target: Path, max_digits: int) -> str:
    """What an existing export target holds, against what the export would write."""
    writes = await store.count()
    try:
        existing = await asyncio.to_thread(load_file, target, max_digits=max_digits)
    except StoreLoadError as exc:
        return f"not an EDN map garrison can read: {exc}; the export writes {writes} keys"
    dropped = sorted(set(existing) - set(await store.keys()))
    text = f"an EDN map of {len(existing)} keys; the export writes {writes}"
    if dropped:
        shown = ", ".join(dropped[:5]) + (", …" if len(dropped) > 5 else "")
        text += f" and drops {len(dropped)} keys the file holds ({shown})"
    return text


def _same_file(a: Path | str, b: Path | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b  # PostgreSQL: the same DSN
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False
