"""Operator commands on the database: get, put, delete, scan, mode, backup, restore, stats.

Every command opens the database the config describes (``--config``,
``--data-dir``, ``--db``) directly: no running runtime is needed. Every
command works in the mode the runtime would start in (``decide_mode``: the
mode the database records, else the configured one, else ``edn-only`` when
the EDN file exists) and reads the side that mode reads. Reads (``get``,
``scan``, ``mode get``, ``stats``, ``backup``) are safe while a runtime is
running (SQLite's WAL gives them a consistent snapshot; in the EDN modes they
read the EDN file, which lags memory by at most the flush delay; in the modes
that write both sides with SQLite's committed state for the keys the file has
not received yet, as the runtime serves them after levelling). Writes
(``put``, ``delete``, ``mode set``, ``restore``) take the database's owner
lock and refuse to run while a runtime holds it, because the runtime's cache,
mode and EDN map would not see them. ``restore`` also refuses to replace a
database that holds data and ``backup`` an existing file, unless ``--force``
is given.

A write in a mode that writes the EDN file reaches the file first: when the
file cannot be written, nothing is written anywhere. When SQLite then fails,
the keys join the mode router's repair backlog (``stats`` and the health check
show it) and the next runtime copies them from the EDN file.

A KEY is a key text: ``session/abc`` (or ``:session/abc``) is the keyword
``:session/abc``. Exit statuses are those of :mod:`garrison.cli._common`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
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
from garrison.components.database import DatabaseConfig, open_stack
from garrison.config import parse_section
from garrison.edn import dumps, loads
from garrison.exceptions import EdnError, StoreError, ValidationError
from garrison.stores import (
    MISSING,
    MODE_META,
    Mode,
    ModeSwitch,
    RepairBacklog,
    SqliteStore,
    acting_as,
    decide_mode,
    key_prefix,
    key_text,
    levelled_view,
    load_file,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Callable, Coroutine, Sequence

    from garrison.components.database import StoreStack

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
    command: Callable[[argparse.Namespace, DatabaseConfig, Path], Coroutine[Any, Any, int]],
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
    command: Callable[[argparse.Namespace, DatabaseConfig, Path], Coroutine[Any, Any, int]],
) -> int:
    config = load(args)
    table = config.components.get("database")
    options = table.options if table is not None else {}
    settings = parse_section(DatabaseConfig, options, path="components.database")
    data_dir = config.runtime.data_dir.expanduser()
    with acting_as(cli_actor()):
        return asyncio.run(command(args, settings, data_dir))


# -- reads (no lock) -------------------------------------------------------------


class _ReadSide:
    """What a read command needs: the mode the runtime would start in and the stores it reads.

    Opens SQLite only if the database exists (a legacy installation with just
    its EDN file reads that file), and never writes anything.
    """

    def __init__(self, settings: DatabaseConfig, data_dir: Path) -> None:
        self.sqlite_path, self.edn_path = settings.resolve_paths(data_dir)
        self.settings = settings
        self.sqlite: SqliteStore | None = None
        self.mode = Mode.SQLITE_ONLY
        self._edn: dict[str, Any] | None = None
        self._backlog: tuple[frozenset[str], bool] | None = None

    async def __aenter__(self) -> _ReadSide:
        exists = await asyncio.to_thread(
            lambda: (self.sqlite_path.exists(), self.edn_path.exists())
        )
        recorded: str | None = None
        if exists[0]:
            self.sqlite = await SqliteStore(
                self.sqlite_path, busy_timeout=self.settings.busy_timeout
            ).open()
            recorded = await self.sqlite.get_meta(MODE_META)
        self.mode = decide_mode(recorded, configured=self.settings.mode, edn_file_exists=exists[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.sqlite is not None:
            await self.sqlite.aclose()

    def need_sqlite(self) -> SqliteStore:
        if self.sqlite is None:
            raise CommandError(
                f"no database at {self.sqlite_path} (the store is in {self.mode} mode, "
                "which reads SQLite)",
                EXIT_UNAVAILABLE,
                hint="check --config, --data-dir or --db; 'garrison run' or 'garrison migrate' "
                "creates the database",
            )
        return self.sqlite

    async def edn(self) -> dict[str, Any]:
        """The EDN file's map; in the modes that write both sides, as the runtime
        serves it (SQLite's committed state for the keys the file has not received yet)."""
        if self._edn is None:
            data = await asyncio.to_thread(
                load_file, self.edn_path, max_digits=self.settings.edn_max_digits
            )
            if self.mode.writes_sqlite and self.mode.writes_edn and self.sqlite is not None:
                backlog = RepairBacklog(_backlog_path(self.edn_path))
                await backlog.load()
                data = await levelled_view(data, self.sqlite, backlog)
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
            return await self.need_sqlite().get(key, MISSING)
        if self.mode is Mode.SQLITE_FIRST:
            stale, full = await self.stale_in_sqlite()
            if not full and key not in stale:
                value = await self.need_sqlite().get(key, MISSING)
                if value is not MISSING:
                    return value
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


async def _get(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    key = _key(args.key)
    async with _ReadSide(settings, data_dir) as side:
        value = await side.get(key)
    if value is MISSING:
        raise CommandError(f"no such key: {key} (in {side.mode} mode)", EXIT_FAILED)
    if args.json:
        emit(plain(value))
    else:
        _print(dumps(value))
    return EXIT_OK


async def _scan(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    after = None if args.after is None else _key(args.after)
    async with _ReadSide(settings, data_dir) as side:
        entries = await side.scan(key_prefix(args.prefix), after, args.limit)
    if args.json:
        emit({key: plain(value) for key, value in entries})
        return EXIT_OK
    for key, value in entries:
        _print(f"{key}\t{dumps(value)}")
    return EXIT_OK


async def _stats(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    del args
    async with _ReadSide(settings, data_dir) as side:
        report: dict[str, Any] = {
            "mode": str(side.mode),
            "sqlite_path": str(side.sqlite_path),
            "edn_path": str(side.edn_path),
        }
        if side.mode is not Mode.EDN_ONLY or side.sqlite is not None:
            store = side.need_sqlite()
            rows = await store.connection.execute_fetchall("SELECT count(*) FROM history")
            report["sqlite_entries"] = await store.count()
            report["sqlite_history_rows"] = int(next(iter(rows))[0])
        if side.mode is not Mode.SQLITE_ONLY:
            report["edn_entries"] = len(await side.edn())
    backlog_path = _backlog_path(side.edn_path)
    sizes = await asyncio.to_thread(_sizes, side.sqlite_path, side.edn_path, backlog_path)
    emit({**report, **sizes})
    return EXIT_OK


def _sizes(sqlite_path: Path, edn_path: Path, backlog_path: Path) -> dict[str, Any]:
    def size(path: Path) -> int | None:
        return path.stat().st_size if path.exists() else None

    backlog: Any = None
    if backlog_path.exists():
        data = orjson.loads(backlog_path.read_bytes())
        backlog = {"keys": len(data.get("keys", ())), "full_repair": bool(data.get("full"))}
    return {
        "sqlite_bytes": size(sqlite_path),
        "sqlite_wal_bytes": size(sqlite_path.with_name(sqlite_path.name + "-wal")),
        "edn_bytes": size(edn_path),
        "repair_backlog": backlog,
    }


async def _backup(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    target: Path = args.path
    if not args.force and await asyncio.to_thread(target.exists):
        raise CommandError(
            f"{str(target)!r} exists; a backup replaces an existing file only when asked",
            EXIT_FAILED,
            hint="pass --force to replace it",
        )
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    async with _ReadSide(settings, data_dir) as side:
        written = await side.need_sqlite().backup(target, overwrite=args.force)
    if args.json:
        emit({"backup": str(written)})
    elif not args.quiet:
        _print(str(written))
    return EXIT_OK


# -- writes (owner lock) ---------------------------------------------------------


@contextlib.asynccontextmanager
async def _writing(settings: DatabaseConfig, data_dir: Path) -> AsyncIterator[StoreStack]:
    """The opened stores under the owner lock; closed (the EDN file flushed) at the end.

    When the command failed, its error is the one reported, not a second one
    from closing (a final flush that fails for the same reason).
    """
    stack = await open_stack(settings, data_dir)
    try:
        yield stack
    except BaseException:
        with contextlib.suppress(Exception):
            await stack.aclose()
        raise
    await stack.aclose()


async def _edn_first(stack: StoreStack, changes: Sequence[tuple[str, Any]]) -> None:
    """Write ``changes`` (a value, or MISSING to delete) to the EDN file and wait for the disk.

    In the modes that write the EDN file it is written first, so a write the
    file cannot take leaves both sides untouched: the in-memory map is put
    back as it was and the error raised. The router's write that follows
    reaches SQLite (or records the keys for repair when SQLite fails).
    """
    if not stack.router.mode.writes_edn:
        return
    edn = stack.edn
    before = await edn.get_many([k for k, _ in changes])
    await _apply(stack, changes)
    try:
        await edn.flush()
    except StoreError as exc:
        await _apply(stack, [(k, before.get(k, MISSING)) for k, _ in changes])
        raise StoreError(f"nothing was written: the EDN side failed: {exc}") from exc


async def _apply(stack: StoreStack, changes: Sequence[tuple[str, Any]]) -> None:
    gone = [k for k, v in changes if v is MISSING]
    if gone:
        await stack.edn.delete_many(gone)
    kept = [(k, v) for k, v in changes if v is not MISSING]
    if kept:
        await stack.edn.put_many(kept)


async def _put(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    key = _key(args.key)
    value = _parse_value(args.value, args.syntax)
    async with _writing(settings, data_dir) as stack:
        stack.router.admit(key, value)  # refused: nothing is touched
        await _edn_first(stack, [(key, value)])
        await stack.router.put(key, value)
        mode = stack.router.mode
    if args.json:
        emit({"put": key, "mode": str(mode)})
    return EXIT_OK


async def _delete(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    keys = list(dict.fromkeys(_key(k) for k in args.keys))
    async with _ReadSide(settings, data_dir) as side:  # a delete creates no database
        if side.sqlite is None and not await asyncio.to_thread(side.edn_path.exists):
            side.need_sqlite()
    async with _writing(settings, data_dir) as stack:
        mode = stack.router.mode
        existing = await stack.router.get_many(keys)
        await _edn_first(stack, [(k, MISSING) for k in keys])
        await stack.router.delete_many(keys)
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


async def _mode(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    if args.action == "get":
        if args.mode is not None:
            raise CommandError(
                "'mode get' takes no MODE",
                EXIT_USAGE,
                hint=f"to switch: garrison mode set {args.mode}",
            )
        async with _ReadSide(settings, data_dir) as side:
            if args.json:
                emit({"mode": str(side.mode)})
            else:
                _print(str(side.mode))
        return EXIT_OK
    if args.mode is None:
        raise CommandError(
            "'mode set' needs a MODE: " + ", ".join(str(m) for m in Mode), EXIT_USAGE
        )
    async with _writing(settings, data_dir) as stack:
        try:
            switch = await stack.router.switch_mode(args.mode, force=args.force, reason=args.reason)
        except ValidationError as exc:
            if stack.router.mode is Mode.SQLITE_ONLY:  # leaving: the EDN file is behind
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


async def _restore(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    source: Path = args.path
    if not await asyncio.to_thread(source.is_file):
        raise CommandError(f"no backup file at {source}", EXIT_UNAVAILABLE)
    async with _writing(settings, data_dir) as stack:
        present = await stack.sqlite.count()
        if present and not args.force:
            raise CommandError(
                f"{stack.sqlite.path} holds {present} entries; restoring would replace them",
                EXIT_FAILED,
                hint="pass --force to replace them (take a 'garrison backup' first)",
            )
        mode = stack.router.mode
        recorded = await stack.router.restore_sqlite(source)
        restored = await stack.sqlite.count()
        had = "" if recorded in (None, str(mode)) else f"; the backup had recorded {recorded}"
        lines = [f"restored {restored} entries from {source}", f"mode: {mode} (kept{had})"]
        repair = mode.writes_sqlite and mode.writes_edn
        if repair:
            lines.append("SQLite will be levelled with the EDN file (a full repair is pending)")
        switch = None
        if args.mode is not None and args.mode != str(mode):
            switch = await stack.router.switch_mode(args.mode, reason="garrison restore --mode")
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
