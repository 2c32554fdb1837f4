"""Operator commands on the database: get, put, delete, scan, mode, backup, restore, stats.

Every command works on the database the config describes (``--config``,
``--data-dir``, ``--db``) without a running runtime, and only through an
actor that owns it (:class:`Database`). Every command works in the mode the
runtime would start in (``decide_mode``: the mode the database records, else
the configured one, else ``edn-only`` when the EDN file exists) and reads the
side that mode reads.

Reads (``get``, ``scan``, ``mode get``, ``stats``, ``backup``) are safe while
a runtime is running: they take no lock and read the database (a SQLite
file, or PostgreSQL with ``backend = "postgresql"``) through the actor of
:func:`~garrison.components.database.open_sqlite_owner` (SQLite's WAL or
PostgreSQL's transactions give them a consistent snapshot); in the EDN modes
they read the EDN file, which lags memory by at most the flush delay; in the
modes that write both sides with SQLite's committed state for the keys the
file has not received yet, as the runtime serves them after levelling.
Writes (``put``, ``delete``, ``mode set``, ``restore``) run the ``database``
component in this process and send it the
:class:`~garrison.components.database.Store` facade's messages; the
component takes the database's owner lock, so they refuse to run while a
runtime holds it (the runtime's cache, mode and EDN map would not see them).
``restore`` also refuses to replace a database that holds data and ``backup``
an existing file, unless ``--force`` is given.

A write in a mode that writes the EDN file reaches the file first
(:class:`~garrison.components.database.WriteEdnFirst`): when the file cannot
be written, nothing is written anywhere. When SQLite then fails,
the keys join the mode router's repair backlog (``stats`` and the health check
show it) and the next runtime copies them from the EDN file.

A KEY is a key text: ``session/abc`` (or ``:session/abc``) is the keyword
``:session/abc``. Exit statuses are those of :mod:`garrison.cli._common`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from garrison.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandError,
    cli_actor,
    emit,
    load,
)
from garrison.cli._json import plain
from garrison.components.database import (
    MISSING,
    DatabaseComponent,
    DatabaseConfig,
    DatabaseLink,
    Restore,
    Store,
    WriteEdnFirst,
    open_sqlite_owner,
)
from garrison.config import ComponentSettings, GarrisonConfig, parse_section
from garrison.edn import dumps, loads
from garrison.exceptions import EdnError, ShutdownError, StartupError, StoreError, ValidationError
from garrison.runtime import Runtime
from garrison.stores import (
    MODE_META,
    Mode,
    ModeSwitch,
    PostgresStore,
    SqliteStore,
    acting_as,
    decide_mode,
    key_prefix,
    key_text,
    load_file,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator

__all__ = ["register"]

_MODES = """\
modes (the order of a migration):
  edn-only      read and write memory.edn only (the legacy store)
  dual-write    write both; read memory.edn (SQLite is being filled)
  sqlite-first  write both; read SQLite, memory.edn for keys not yet repaired
  sqlite-only   read and write SQLite only (memory.edn is left as it was)
"""


def register(subparsers: Any) -> None:
    """Add the database commands to the ``garrison`` CLI."""
    get = _add(subparsers, "get", "print the value of KEY", _get, epilog=_KEYS)
    get.add_argument("key", metavar="KEY", help="the key, e.g. session/abc or :session/abc")

    put = _add(subparsers, "put", "set KEY to VALUE (JSON or EDN text)", _put, epilog=_KEYS)
    put.add_argument("key", metavar="KEY", help="the key, e.g. session/abc")
    put.add_argument("value", metavar="VALUE", help="the value: JSON text, else EDN text")
    put.add_argument(
        "--syntax",
        choices=("json", "edn"),
        default=None,
        help="read VALUE as this only (default: JSON if it parses as JSON, else EDN)",
    )

    delete = _add(subparsers, "delete", "remove KEY (and any further KEYs)", _delete)
    delete.add_argument("keys", metavar="KEY", nargs="+", help="keys to remove")

    scan = _add(
        subparsers, "scan", "print the entries whose key starts with PREFIX", _scan, epilog=_KEYS
    )
    scan.add_argument(
        "prefix",
        metavar="PREFIX",
        nargs="?",
        default="",
        help="a namespace or key prefix, e.g. session/ or :session/ (default: every key)",
    )
    scan.add_argument("--limit", type=int, default=None, metavar="N", help="at most N entries")
    scan.add_argument(
        "--after", default=None, metavar="KEY", help="only keys after KEY (to page through)"
    )

    mode = _add(
        subparsers,
        "mode",
        "print or switch the store mode",
        _mode,
        epilog=_MODES
        + """
Entering or leaving sqlite-only needs the two sides to agree (a clean
validation) and an empty repair backlog; --force switches anyway.

examples:
  garrison mode                       # print the mode
  garrison mode set dual-write --reason "start the migration"
  garrison mode set sqlite-only       # after garrison validate agrees
""",
    )
    mode.add_argument(
        "action", nargs="?", choices=("get", "set"), default="get", help="get (default) or set"
    )
    mode.add_argument(
        "mode", nargs="?", choices=[str(m) for m in Mode], metavar="MODE", help="for set: the mode"
    )
    mode.add_argument("--force", action="store_true", help="switch without a clean validation")
    mode.add_argument("--reason", default="garrison mode set", help="recorded with the switch")

    backup = _add(subparsers, "backup", "copy the SQLite database to PATH while in use", _backup)
    backup.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace an existing file at PATH")

    restore = _add(
        subparsers, "restore", "replace the SQLite data with the backup PATH", _restore,
        epilog=_MODES,
    )  # fmt: skip
    restore.add_argument("path", type=Path, metavar="PATH", help="a file written by backup")
    restore.add_argument("--force", action="store_true", help="replace a database holding data")
    restore.add_argument(
        "--mode",
        choices=[str(m) for m in Mode],
        default=None,
        help="switch to MODE after the restore (default: keep the current mode)",
    )

    _add(subparsers, "stats", "print counts, mode, backlog and file sizes as JSON", _stats)


_KEYS = """\
A KEY is the keyword's text, with or without its colon: session/abc and
:session/abc are the same key. Values print as EDN; with --json as plain JSON
(keywords as their text, sets as arrays; see docs/operations.md).
"""


def _add(
    subparsers: Any,
    name: str,
    help_text: str,
    command: Callable[[argparse.Namespace, Database], Coroutine[Any, Any, int]],
    *,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".", epilog=epilog
    )
    parser.add_argument(
        "--edn",
        type=Path,
        default=None,
        metavar="PATH",
        help="the EDN file, instead of the config's",
    )
    parser.set_defaults(func=lambda args: _main(args, command))
    return parser


def _main(
    args: argparse.Namespace,
    command: Callable[[argparse.Namespace, Database], Coroutine[Any, Any, int]],
) -> int:
    database = Database(load(args))
    with acting_as(cli_actor()):
        return asyncio.run(command(args, database))


class Database:
    """The database the config describes: its settings and files, and the two ways in.

    :meth:`reading` (no lock, beside a running garrison) and :meth:`writing`
    (the ``database`` component run in this process, under the owner lock).
    """

    def __init__(self, config: GarrisonConfig) -> None:
        table = config.components.get("database")
        self.options = table.options if table is not None else {}
        self.settings = parse_section(DatabaseConfig, self.options, path="components.database")
        self.config = config
        self.data_dir = config.runtime.data_dir.expanduser()
        self.sqlite_path, self.edn_path = self.settings.resolve_paths(self.data_dir)

    def reading(self) -> _ReadSide:
        """The read side (see :class:`_ReadSide`)."""
        return _ReadSide(self)

    async def require_data(self) -> None:
        """Raise (exit status 3) unless the database or the EDN file exists.

        For the writes that create nothing (``delete``, ``clear``).
        """
        paths = (self.sqlite_path, self.edn_path)
        if not any(await asyncio.to_thread(lambda: [p.exists() for p in paths])):
            mode = decide_mode(None, configured=self.settings.mode, edn_file_exists=False)
            raise _no_database(self.sqlite_path, mode)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Store]:
        """The ``database`` component running in this process for the block; its facade.

        It takes the owner lock as ``garrison run`` does (a runtime holding it
        is exit status 3) and never falls back to the EDN file alone. At the
        end it stops: pending writes committed, the EDN file flushed. When the
        command failed, its error is the one reported, not a second one from
        stopping (a final flush that fails for the same reason).
        """
        only = GarrisonConfig(
            runtime=replace(self.config.runtime, data_dir=self.data_dir),
            components={"database": ComponentSettings(restart="temporary", options=self.options)},
        )
        runtime = await asyncio.to_thread(Runtime, only, [_CommandDatabase])
        with _quiet_lifecycle():
            try:
                await runtime.start()
            except StartupError as exc:  # the lock, a database that cannot be opened
                cause = exc.__cause__
                if cause is None:
                    raise
                raise cause from cause.__cause__
            try:
                yield Store(runtime)
            except BaseException:
                with contextlib.suppress(Exception):
                    await runtime.aclose()
                raise
            try:
                await runtime.aclose()
            except ShutdownError as exc:
                raise next(iter(exc.failures.values())) from None


@contextlib.contextmanager
def _quiet_lifecycle() -> Iterator[None]:
    """The runtime's lifecycle events unlogged: the command reports a failed start or stop."""
    lifecycle = logging.getLogger("garrison.runtime")
    level = lifecycle.level
    lifecycle.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        lifecycle.setLevel(level)


class _CommandDatabase(DatabaseComponent):
    """The ``database`` component as a writing command runs it: no EDN-file fallback."""

    fallback = False


def _no_database(path: Path | str, mode: Mode | str) -> CommandError:
    return CommandError(
        f"no database at {path} (the store is in {mode} mode, which reads the database)",
        EXIT_UNAVAILABLE,
        hint="check --config, --data-dir or --db; 'garrison run' or 'garrison migrate' "
        "creates the database",
    )


# -- reads (no lock) -------------------------------------------------------------


class _ReadSide:
    """What a read command needs: the mode the runtime would start in, and its data.

    The database is read through the actor of ``open_sqlite_owner`` owning a
    store of the configured backend: the SQLite file (only if it exists: a
    legacy installation with just its EDN file reads that file), or the
    PostgreSQL database (a pool of its own, beside any running instances).
    Reads take no lock and write nothing, so they run beside a running
    garrison: SQLite's WAL, or PostgreSQL's transactions, give each read a
    consistent snapshot; the EDN file lags the runtime's memory by at most
    the flush delay. (A PostgreSQL database that holds no garrison store is
    "no database", as a missing SQLite file is: a read creates nothing.
    Opening a :class:`PostgresStore` checks its schema under the write lock
    for a moment, as every instance's start does.)
    """

    def __init__(self, database: Database) -> None:
        self.sqlite_path = database.sqlite_path
        self.edn_path = database.edn_path
        self.settings = database.settings
        #: The database is PostgreSQL's (``backend = "postgresql"``), not a SQLite file.
        self.postgresql = self.settings.backend == "postgresql"
        #: The database, for messages: the SQLite file, or the DSN without its password.
        self.location = (
            PostgresStore(self.settings.dsn).path if self.postgresql else str(self.sqlite_path)
        )
        self.link: DatabaseLink | None = None
        self.mode = Mode.SQLITE_ONLY
        self._edn: dict[str, Any] | None = None
        self._backlog: tuple[frozenset[str], bool] | None = None
        self._open = contextlib.AsyncExitStack()

    async def __aenter__(self) -> _ReadSide:
        exists = await asyncio.to_thread(
            lambda: (self.postgresql or self.sqlite_path.exists(), self.edn_path.exists())
        )
        if self.postgresql:
            exists = (await PostgresStore(self.settings.dsn).holds_store(), exists[1])
        recorded: str | None = None
        if exists[0]:
            async with contextlib.AsyncExitStack() as opening:
                store: SqliteStore | PostgresStore
                if self.postgresql:
                    store = PostgresStore(self.settings.dsn, pool_size=2)
                else:
                    store = SqliteStore(self.sqlite_path, busy_timeout=self.settings.busy_timeout)
                await opening.enter_async_context(store)
                self.link = await opening.enter_async_context(open_sqlite_owner(store))
                recorded = await self.link.get_meta(MODE_META)
                self._open = opening.pop_all()
        self.mode = decide_mode(recorded, configured=self.settings.mode, edn_file_exists=exists[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._open.aclose()

    def need_sqlite(self) -> DatabaseLink:
        """The link to the database's owner; exit status 3 when there is no database."""
        if self.link is None:
            raise _no_database(self.location, self.mode)
        return self.link

    async def edn(self) -> dict[str, Any]:
        """The EDN file's map; in the modes that write both sides, as the runtime
        serves it (SQLite's committed state for the keys the file has not received yet)."""
        if self._edn is None:
            data = await asyncio.to_thread(
                load_file, self.edn_path, max_digits=self.settings.edn_max_digits
            )
            if self.mode.writes_sqlite and self.mode.writes_edn and self.link is not None:
                data = await self.link.levelled_edn(data, _backlog_path(self.edn_path))
            self._edn = data
        return self._edn

    async def stale_in_sqlite(self) -> tuple[frozenset[str], bool]:
        """sqlite-first: the repair backlog's keys (read from EDN) and its full flag."""
        if self._backlog is None:
            path = _backlog_path(self.edn_path)
            data = await asyncio.to_thread(_read_json, path)
            self._backlog = (frozenset(data.get("keys", ())), bool(data.get("full")))
        return self._backlog

    async def get(self, key: str) -> Any:
        """The value the runtime would read for ``key``, or MISSING (as ModeRouter.get)."""
        if self.mode is Mode.SQLITE_ONLY:
            return (await self.need_sqlite().get_many([key])).get(key, MISSING)
        if self.mode is Mode.SQLITE_FIRST:
            stale, full = await self.stale_in_sqlite()
            if not full and key not in stale:
                found = await self.need_sqlite().get_many([key])
                if key in found:
                    return found[key]
        return (await self.edn()).get(key, MISSING)

    async def scan(
        self, prefix: str, after: str | None, limit: int | None
    ) -> list[tuple[str, Any]]:
        """The entries the runtime would scan (as ModeRouter.scan)."""
        if self.mode is Mode.SQLITE_ONLY:
            return await self.need_sqlite().scan(prefix, after=after, limit=limit)
        data = await self.edn()
        merged = dict.fromkeys(k for k in data if k.startswith(prefix))
        from_sqlite: dict[str, Any] = {}
        if self.mode is Mode.SQLITE_FIRST:
            stale, full = await self.stale_in_sqlite()
            if not full:
                entries = await self.need_sqlite().scan(prefix)
                from_sqlite = {k: v for k, v in entries if k not in stale}
                merged.update(dict.fromkeys(from_sqlite))
        keys = sorted(k for k in merged if after is None or k > after)
        keys = keys if limit is None else keys[:limit]
        return [(k, from_sqlite[k] if k in from_sqlite else data[k]) for k in keys]


def _backlog_path(edn_path: Path) -> Path:
    return edn_path.with_name(edn_path.name + ".sqlite-backlog.json")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


async def _get(args: argparse.Namespace, database: Database) -> int:
    key = _key(args.key)
    async with database.reading() as side:
        value = await side.get(key)
    if value is MISSING:
        raise CommandError(f"no such key: {key} (in {side.mode} mode)", EXIT_FAILED)
    if args.json:
        emit(plain(value))
    else:
        _print(dumps(value))
    return EXIT_OK


async def _scan(args: argparse.Namespace, database: Database) -> int:
    after = None if args.after is None else _key(args.after)
    async with database.reading() as side:
        entries = await side.scan(key_prefix(args.prefix), after, args.limit)
    if args.json:
        emit({key: plain(value) for key, value in entries})
        return EXIT_OK
    for key, value in entries:
        _print(f"{key}\t{dumps(value)}")
    return EXIT_OK


async def _stats(args: argparse.Namespace, database: Database) -> int:
    del args
    async with database.reading() as side:
        report: dict[str, Any] = {"mode": str(side.mode)}
        if side.postgresql:
            report["database"] = side.location
        else:
            report["sqlite_path"] = str(side.sqlite_path)
        report["edn_path"] = str(side.edn_path)
        if side.mode is not Mode.EDN_ONLY or side.link is not None:
            link = side.need_sqlite()
            report["sqlite_entries"] = await link.count()
            report["sqlite_history_rows"] = await link.count_history()
        if side.mode is not Mode.SQLITE_ONLY:
            report["edn_entries"] = len(await side.edn())
    backlog_path = _backlog_path(side.edn_path)
    sqlite_path = None if side.postgresql else side.sqlite_path
    sizes = await asyncio.to_thread(_sizes, sqlite_path, side.edn_path, backlog_path)
    emit({**report, **sizes})
    return EXIT_OK


def _sizes(sqlite_path: Path | None, edn_path: Path, backlog_path: Path) -> dict[str, Any]:
    """The files' sizes (PostgreSQL's database has none here: ``sqlite_path`` is ``None``)."""

    def size(path: Path) -> int | None:
        return path.stat().st_size if path.exists() else None

    backlog: Any = None
    if backlog_path.exists():
        data = orjson.loads(backlog_path.read_bytes())
        backlog = {"keys": len(data.get("keys", ())), "full_repair": bool(data.get("full"))}
    sizes: dict[str, Any] = {}
    if sqlite_path is not None:
        sizes["sqlite_bytes"] = size(sqlite_path)
        sizes["sqlite_wal_bytes"] = size(sqlite_path.with_name(sqlite_path.name + "-wal"))
    return {**sizes, "edn_bytes": size(edn_path), "repair_backlog": backlog}


async def _backup(args: argparse.Namespace, database: Database) -> int:
    target: Path = args.path
    if not args.force and await asyncio.to_thread(target.exists):
        raise CommandError(
            f"{str(target)!r} exists; a backup replaces an existing file only when asked",
            EXIT_FAILED,
            hint="pass --force to replace it",
        )
    async with database.reading() as side:
        written = await side.need_sqlite().backup(target, overwrite=args.force)
    if args.json:
        emit({"backup": str(written)})
    elif not args.quiet:
        _print(str(written))
    return EXIT_OK


# -- writes (the database component, under the owner lock) -------------------------


async def _put(args: argparse.Namespace, database: Database) -> int:
    key = _key(args.key)
    value = _parse_value(args.value, args.syntax)
    async with database.writing() as store:
        await store.ref.ask(WriteEdnFirst([(key, value)]))  # refused: nothing is touched
        await store.put(key, value)
        mode = await store.mode()
    if args.json:
        emit({"put": key, "mode": str(mode)})
    return EXIT_OK


async def _delete(args: argparse.Namespace, database: Database) -> int:
    keys = list(dict.fromkeys(_key(k) for k in args.keys))
    await database.require_data()  # a delete creates no database
    async with database.writing() as store:
        mode = await store.mode()
        existing = await store.get_many(keys)
        await store.ref.ask(WriteEdnFirst([(k, MISSING) for k in keys]))
        await store.delete_many(keys)
    deleted = [k for k in keys if k in existing]
    missing = [k for k in keys if k not in existing]
    if args.json:
        emit({"deleted": deleted, "missing": missing})
    elif not args.quiet:
        for key in deleted:
            _print(f"deleted {key}")
    if missing:
        raise CommandError(f"no such key: {', '.join(missing)} (in {mode} mode)", EXIT_FAILED)
    return EXIT_OK


async def _mode(args: argparse.Namespace, database: Database) -> int:
    if args.action == "get":
        if args.mode is not None:
            raise CommandError(
                "'mode get' takes no MODE",
                EXIT_USAGE,
                hint=f"to switch: garrison mode set {args.mode}",
            )
        async with database.reading() as side:
            if args.json:
                emit({"mode": str(side.mode)})
            else:
                _print(str(side.mode))
        return EXIT_OK
    if args.mode is None:
        raise CommandError(
            "'mode set' needs a MODE: " + ", ".join(str(m) for m in Mode), EXIT_USAGE
        )
    async with database.writing() as store:
        try:
            switch = await store.set_mode(args.mode, force=args.force, reason=args.reason)
        except ValidationError as exc:
            if await store.mode() is Mode.SQLITE_ONLY:  # leaving: the EDN file is behind
                hint = (
                    "'garrison export' writes the EDN file from SQLite; then "
                    "'garrison validate' must agree before you switch again; or pass --force"
                )
            else:
                hint = (
                    "let 'garrison run' repair until 'garrison stats' shows no "
                    "repair_backlog and 'garrison validate' agrees, then switch again; "
                    "or pass --force"
                )
            raise CommandError(str(exc), EXIT_FAILED, hint=hint) from exc
    if args.json:
        emit(_switch(switch))
    elif not args.quiet:
        detail = f" ({switch.validation})" if switch.validation else ""
        _print(f"{switch.previous} -> {switch.mode}{detail}")
    return EXIT_OK


def _switch(switch: ModeSwitch) -> dict[str, Any]:
    return {
        "previous": str(switch.previous),
        "mode": str(switch.mode),
        "forced": switch.forced,
        "validation": switch.validation,
    }


async def _restore(args: argparse.Namespace, database: Database) -> int:
    source: Path = args.path
    if not await asyncio.to_thread(source.is_file):
        raise CommandError(f"no backup file at {source}", EXIT_UNAVAILABLE)
    async with database.writing() as store:
        sqlite = DatabaseLink(store.ref, str(database.sqlite_path))
        present = await sqlite.count()
        if present and not args.force:
            raise CommandError(
                f"{sqlite.path} holds {present} entries; restoring would replace them",
                EXIT_FAILED,
                hint="pass --force to replace them (take a 'garrison backup' first)",
            )
        mode = await store.mode()
        recorded: str | None = await store.ref.ask(Restore(source))
        restored = await sqlite.count()
        had = "" if recorded in (None, str(mode)) else f"; the backup had recorded {recorded}"
        lines = [f"restored {restored} entries from {source}", f"mode: {mode} (kept{had})"]
        repair = mode.writes_sqlite and mode.writes_edn
        if repair:
            lines.append("SQLite will be levelled with the EDN file (a full repair is pending)")
        switch = None
        if args.mode is not None and args.mode != str(mode):
            switch = await store.set_mode(args.mode, reason="garrison restore --mode")
            detail = f" ({switch.validation})" if switch.validation else ""
            lines.append(f"mode: {switch.previous} -> {switch.mode}{detail}")
    if args.json:
        emit({
            "restored": restored,
            "source": str(source),
            "mode": str(mode if switch is None else switch.mode),
            "backup_recorded_mode": recorded,
            "full_repair_pending": repair,
            "switch": None if switch is None else _switch(switch),
        })  # fmt: skip
    elif not args.quiet:
        _print("\n".join(lines))
    return EXIT_OK


# -- text ------------------------------------------------------------------------


def _key(text: str) -> str:
    """The key text of a KEY argument (``:ns/name`` and ``ns/name`` are the same key)."""
    try:
        return key_text(text)
    except StoreError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc


def _parse_value(text: str, syntax: str | None) -> Any:
    """JSON text, else EDN text (or whichever ``syntax`` forces)."""
    if syntax != "edn":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if syntax == "json":
                raise CommandError(f"VALUE is not valid JSON: {exc}", EXIT_USAGE) from exc
    try:
        return loads(text)
    except EdnError as exc:
        raise CommandError(
            f"VALUE is neither JSON nor EDN: {exc}",
            EXIT_USAGE,
            hint="quote it for the shell, e.g. garrison put KEY '{\"a\": 1}'",
        ) from exc


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
