"""Operator commands on the database: get, put, scan, mode, backup, restore, stats.

::

    garrison get KEY [--json]                 print one value (EDN, or --json)
    garrison put KEY VALUE [--edn | --json]   VALUE is JSON or EDN text (JSON tried first)
    garrison scan [PREFIX] [--limit N] [--after KEY] [--json]
    garrison mode [get]                       print the store mode
    garrison mode set MODE [--force] [--reason TEXT]
    garrison backup PATH                      online copy of the SQLite database
    garrison restore PATH [--force]           replace the SQLite data with a backup
    garrison stats                            counts, mode, backlog and file sizes (JSON)

Every command takes ``--config`` like ``garrison run`` and opens the database
that config describes directly: no running runtime is needed. Reads
(``get``, ``scan``, ``mode get``, ``stats``, ``backup``) are safe while a
runtime is running (SQLite's WAL gives them a consistent snapshot; in the EDN
modes they read the EDN file, which lags memory by at most the flush delay).
Writes (``put``, ``mode set``, ``restore``) take the database's owner lock and
refuse to run while a runtime holds it, because the runtime's cache, mode and
EDN map would not see them. ``restore`` also refuses to replace a database
that holds data unless ``--force`` is given.

A KEY is a key text: ``session/abc`` (or ``:session/abc``) is the keyword
``:session/abc``. Exit status: 0 done, 1 failed (or key not found), 2 bad
config or arguments.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from garrison.cli._run import default_config_path
from garrison.components.database._config import DatabaseConfig
from garrison.components.database._open import open_stack
from garrison.config import load_config, parse_section
from garrison.exceptions import ConfigError, EdnError, GarrisonError, StoreError
from garrison.stores._edn_file_format import load_file
from garrison.stores._mode import Mode
from garrison.stores._protocol import MISSING
from garrison.stores._router import MODE_META
from garrison.stores._sqlite import SqliteStore
from garrison.stores._values import encode_value
from garrison.stores.edn import dumps, loads

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Coroutine

__all__ = ["register"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add the database commands to the ``garrison`` CLI."""
    get = _add(subparsers, "get", "print the value of KEY", _get)
    get.add_argument("key", metavar="KEY")
    _add_format(get)

    put = _add(subparsers, "put", "set KEY to VALUE (JSON or EDN text)", _put)
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    syntax = put.add_mutually_exclusive_group()
    syntax.add_argument("--json", dest="syntax", action="store_const", const="json")
    syntax.add_argument("--edn", dest="syntax", action="store_const", const="edn")

    scan = _add(subparsers, "scan", "print the entries whose key starts with PREFIX", _scan)
    scan.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    scan.add_argument("--limit", type=int, default=None)
    scan.add_argument("--after", default=None, metavar="KEY")
    _add_format(scan)

    mode = _add(subparsers, "mode", "print or switch the store mode", _mode)
    mode.add_argument("action", nargs="?", choices=("get", "set"), default="get")
    mode.add_argument("mode", nargs="?", choices=[str(m) for m in Mode], metavar="MODE")
    mode.add_argument("--force", action="store_true", help="switch without a clean validation")
    mode.add_argument("--reason", default="garrison mode set", help="recorded with the switch")

    backup = _add(subparsers, "backup", "copy the SQLite database to PATH while in use", _backup)
    backup.add_argument("path", type=Path, metavar="PATH")

    restore = _add(subparsers, "restore", "replace the SQLite data with the backup PATH", _restore)
    restore.add_argument("path", type=Path, metavar="PATH")
    restore.add_argument("--force", action="store_true", help="replace a database holding data")

    _add(subparsers, "stats", "print counts, mode, backlog and file sizes as JSON", _stats)


def _add(
    subparsers: Any,
    name: str,
    help_text: str,
    command: Callable[[argparse.Namespace, DatabaseConfig, Path], Coroutine[Any, Any, int]],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: ./config/garrison.toml, else the packaged default)",
    )
    parser.set_defaults(func=lambda args: _main(args, command))
    return parser


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print values as JSON (EDN-only kinds in garrison's tagged form)",
    )


def _main(
    args: argparse.Namespace,
    command: Callable[[argparse.Namespace, DatabaseConfig, Path], Coroutine[Any, Any, int]],
) -> int:
    path = args.config if args.config is not None else default_config_path()
    try:
        config = load_config(path)
        table = config.components.get("database")
        options = table.options if table is not None else {}
        settings = parse_section(DatabaseConfig, options, path="components.database")
    except ConfigError as exc:
        _error(f"the configuration is invalid: {exc}")
        return EXIT_USAGE
    data_dir = config.runtime.data_dir.expanduser()
    try:
        return asyncio.run(command(args, settings, data_dir))
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (GarrisonError, OSError) as exc:
        _error(str(exc))
        return EXIT_FAILED


# -- reads (no lock) -------------------------------------------------------------


async def _open_sqlite(settings: DatabaseConfig, data_dir: Path) -> SqliteStore:
    sqlite_path, _ = settings.resolve_paths(data_dir)
    if not await asyncio.to_thread(sqlite_path.exists):
        raise StoreError(f"no database at {sqlite_path} (start garrison once to create it)")
    return await SqliteStore(sqlite_path, busy_timeout=settings.busy_timeout).open()


async def _current_mode(store: SqliteStore, settings: DatabaseConfig) -> Mode:
    stored = await store.get_meta(MODE_META)
    return Mode(stored) if stored is not None else Mode(settings.mode or Mode.SQLITE_ONLY)


async def _edn_map(settings: DatabaseConfig, data_dir: Path) -> dict[str, Any]:
    _, edn_path = settings.resolve_paths(data_dir)
    return await asyncio.to_thread(load_file, edn_path, max_digits=settings.edn_max_digits)


async def _get(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    key = _key(args.key)
    async with await _open_sqlite(settings, data_dir) as store:
        mode = await _current_mode(store, settings)
        value: Any = MISSING
        if mode in (Mode.SQLITE_FIRST, Mode.SQLITE_ONLY):
            value = await store.get(key, MISSING)
    if value is MISSING and mode is not Mode.SQLITE_ONLY:
        value = (await _edn_map(settings, data_dir)).get(key, MISSING)
    if value is MISSING:
        _error(f"no such key: {key}")
        return EXIT_FAILED
    _print(_render(value, json=args.json))
    return EXIT_OK


async def _scan(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    entries: list[tuple[str, Any]] = []
    async with await _open_sqlite(settings, data_dir) as store:
        mode = await _current_mode(store, settings)
        if mode in (Mode.SQLITE_FIRST, Mode.SQLITE_ONLY):
            entries = await store.scan(args.prefix, after=args.after, limit=args.limit)
    if mode in (Mode.EDN_ONLY, Mode.DUAL_WRITE):
        data = await _edn_map(settings, data_dir)
        keys = sorted(k for k in data if k.startswith(args.prefix))
        if args.after is not None:
            keys = [k for k in keys if k > args.after]
        keys = keys if args.limit is None else keys[: args.limit]
        entries = [(k, data[k]) for k in keys]
    for key, value in entries:
        _print(f"{key}\t{_render(value, json=args.json)}")
    return EXIT_OK


async def _stats(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    del args
    sqlite_path, edn_path = settings.resolve_paths(data_dir)
    async with await _open_sqlite(settings, data_dir) as store:
        mode = await _current_mode(store, settings)
        entries = await store.count()
        rows = await store.connection.execute_fetchall("SELECT count(*) FROM history")
        history = int(next(iter(rows))[0])
    backlog_path = edn_path.with_name(edn_path.name + ".sqlite-backlog.json")
    sizes = await asyncio.to_thread(_sizes, sqlite_path, edn_path, backlog_path)
    report = {
        "mode": str(mode),
        "sqlite_path": str(sqlite_path),
        "edn_path": str(edn_path),
        "sqlite_entries": entries,
        "sqlite_history_rows": history,
        **sizes,
    }
    _print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
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
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    async with await _open_sqlite(settings, data_dir) as store:
        written = await store.backup(target)
    _print(str(written))
    return EXIT_OK


# -- writes (owner lock) ---------------------------------------------------------


async def _put(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    key = _key(args.key)
    value = _parse_value(args.value, args.syntax)
    encode_value(value)  # refuse an unstorable value before touching anything
    stack = await open_stack(settings, data_dir)
    try:
        await stack.router.put(key, value)
    finally:
        await stack.aclose()  # flushes the EDN file in the modes that write it
    return EXIT_OK


async def _mode(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    if args.action == "get":
        if args.mode is not None:
            raise ConfigError("'mode get' takes no MODE (did you mean 'mode set MODE'?)")
        async with await _open_sqlite(settings, data_dir) as store:
            _print(str(await _current_mode(store, settings)))
        return EXIT_OK
    if args.mode is None:
        raise ConfigError("'mode set' needs a MODE: " + ", ".join(str(m) for m in Mode))
    stack = await open_stack(settings, data_dir)
    try:
        switch = await stack.router.switch_mode(args.mode, force=args.force, reason=args.reason)
    finally:
        await stack.aclose()
    detail = f" ({switch.validation})" if switch.validation else ""
    _print(f"{switch.previous} -> {switch.mode}{detail}")
    return EXIT_OK


async def _restore(args: argparse.Namespace, settings: DatabaseConfig, data_dir: Path) -> int:
    source: Path = args.path
    if not await asyncio.to_thread(source.is_file):
        raise StoreError(f"no backup file at {source}")
    stack = await open_stack(settings, data_dir)
    try:
        present = await stack.sqlite.count()
        if present and not args.force:
            _error(
                f"{stack.sqlite.path} holds {present} entries; restoring would replace them "
                "(pass --force to do it)"
            )
            return EXIT_FAILED
        await stack.sqlite.restore(source)
        restored = await stack.sqlite.count()
    finally:
        await stack.aclose()
    _print(f"restored {restored} entries from {source}")
    return EXIT_OK


# -- text ------------------------------------------------------------------------


def _key(text: str) -> str:
    """``:ns/name`` and ``ns/name`` both name the keyword ``:ns/name``."""
    key = text[1:] if text.startswith(":") else text
    if not key:
        raise ConfigError("a KEY must not be empty")
    return key


def _parse_value(text: str, syntax: str | None) -> Any:
    """JSON text, else EDN text (or whichever ``syntax`` forces)."""
    if syntax != "edn":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if syntax == "json":
                raise ConfigError(f"VALUE is not valid JSON: {exc}") from exc
    try:
        return loads(text)
    except EdnError as exc:
        raise ConfigError(f"VALUE is neither JSON nor EDN: {exc}") from exc


def _render(value: Any, *, json: bool) -> str:
    return encode_value(value) if json else dumps(value)


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stderr.write(f"garrison: {text}\n")
