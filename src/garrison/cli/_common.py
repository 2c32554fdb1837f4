"""What every ``garrison`` command shares: exit statuses, global options, errors, config.

Kept to the standard library (plus ``garrison.exceptions``): ``garrison
probe`` and ``garrison --help`` import it and nothing heavier.

Exit statuses, the same for every command:

==  ===========================================================================
0   done; the check passed
1   a check failed (probe failing, sides disagree, conflicts left) or the key
    or thing asked for is not there
2   usage or configuration error: bad arguments, an invalid config file
3   the data is unavailable: a missing or unreadable database or EDN file, a
    database locked by a running garrison, a probe endpoint that cannot be reached
==  ===========================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.exceptions import (
    ConfigError,
    EdnError,
    RefusedWriteError,
    StoreError,
    ValidationError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from garrison.config import GarrisonConfig

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandError",
    "Parser",
    "UsageError",
    "add_global_options",
    "cli_actor",
    "config_path",
    "configured_logging",
    "describe_error",
    "emit",
    "exit_status",
    "load",
    "report_error",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CommandError(Exception):
    """An expected failure: the operator's message, the exit status, what to do next."""

    def __init__(self, message: str, status: int = EXIT_FAILED, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


class UsageError(CommandError):
    """Arguments the command's parser refused; reported with that command's usage."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message, EXIT_USAGE, hint=f"see '{parser.prog} --help'")
        self.parser = parser


class Parser(argparse.ArgumentParser):
    """An argparse parser that raises :class:`UsageError` instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        raise UsageError(message, self)


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command's name.

    On the top-level parser they have defaults; on a command's parser they are
    ``SUPPRESS``ed unless given, so a value given before the command stays.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    off = default(False)  # noqa: FBT003 - an argparse default, not a flag argument

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--config",
        type=Path,
        default=default(None),
        metavar="PATH",
        help="TOML config file (default: ./config/garrison.toml, else the packaged default)",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=default(None),
        metavar="DIR",
        help="the data directory, instead of the config's [runtime] data_dir",
    )
    group.add_argument(
        "--db",
        type=database_argument,
        default=default(None),
        metavar="PATH|DSN",
        help="the SQLite database, or a postgresql:// URI, instead of the config's",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=off,
        help="print one JSON document on stdout (errors as JSON on stderr)",
    )
    group.add_argument(
        "--quiet",
        action="store_true",
        default=off,
        help="print no progress and no confirmations; results and errors only",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=off,
        help="show the traceback of an error",
    )


def database_argument(text: str) -> Path | str:
    """``--db``: a SQLite file's path, or a PostgreSQL connection URI (a ``str``, kept as given)."""
    return text if text.startswith(_PG_SCHEMES) else Path(text)


_PG_SCHEMES = ("postgresql://", "postgres://")


def config_path(args: argparse.Namespace) -> Path:
    """The config file the command uses: ``--config``, else :func:`garrison.config.find_config`."""
    given: Path | None = getattr(args, "config", None)
    if given is not None:
        return given
    from garrison.config import find_config  # noqa: PLC0415 - not every command reads config

    return find_config()


def load(args: argparse.Namespace, *, files: bool = True) -> GarrisonConfig:
    """The config with ``--data-dir``, ``--db`` and ``--edn`` applied over it.

    Paths given on the command line are relative to the working directory.
    ``files=False`` leaves ``--db`` and ``--edn`` out: the installation's own
    files, as the config names them under ``--data-dir``.
    """
    from garrison.config import load_config  # noqa: PLC0415 - not every command reads config

    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["runtime.data_dir"] = str(_absolute(args.data_dir))
    db = getattr(args, "db", None) if files else None
    if isinstance(db, str):
        overrides["components.database.backend"] = "postgresql"
        overrides["components.database.dsn"] = db
    elif db is not None:
        overrides["components.database.sqlite_path"] = str(_absolute(db))
    if files and getattr(args, "edn", None) is not None:
        overrides["components.database.edn_path"] = str(_absolute(args.edn))
    return load_config(config_path(args), overrides=overrides)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


@contextlib.contextmanager
def configured_logging(args: argparse.Namespace, log_format: str | None = None) -> Iterator[None]:
    """Log on stderr as ``garrison run`` does while the command runs; ``--quiet``: warnings only.

    ``log_format`` is ``"json"`` or ``"console"``; by default JSON lines with
    ``--json`` or off a terminal (what a log collector reads), else the console
    renderer (coloured unless ``NO_COLOR`` is set). On the way out the earlier
    logging set-up comes back, so that ``main()`` called from a program (or a
    test) leaves the host's logging as it found it.
    """
    import logging  # noqa: PLC0415 - only the commands that log need these

    import structlog  # noqa: PLC0415

    from garrison import telemetry  # noqa: PLC0415

    json_lines = log_format == "json" or (
        log_format is None and (args.json or not sys.stderr.isatty())
    )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    earlier = structlog.get_config() if structlog.is_configured() else None
    telemetry.configure_logging(json=json_lines, level="WARNING" if args.quiet else "INFO")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        if earlier is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**earlier)


def exit_status(exc: BaseException) -> int:
    """The exit status for an error (see the module's table)."""
    if isinstance(exc, CommandError):
        return exc.status
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, RefusedWriteError | ValidationError):
        return EXIT_FAILED
    if isinstance(exc, StoreError | EdnError | OSError):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


def report_error(exc: BaseException, *, command: str | None, as_json: bool) -> int:
    """Write ``exc`` to stderr (a line, or a JSON document) and return its exit status."""
    status = exit_status(exc)
    message = describe_error(exc)
    hint = exc.hint if isinstance(exc, CommandError) else None
    if as_json:
        doc: dict[str, Any] = {"error": message, "status": status}
        if command is not None:
            doc["command"] = command
        if hint:
            doc["hint"] = hint
        sys.stderr.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return status
    if isinstance(exc, UsageError):
        sys.stderr.write(exc.parser.format_usage())
    prefix = f"garrison {command}" if command else "garrison"
    sys.stderr.write(f"{prefix}: {message}\n")
    if hint:
        sys.stderr.write(f"{prefix}: {hint}\n")
    return status


def describe_error(exc: BaseException) -> str:
    """The operator's line for ``exc``: an ``OSError`` as ``path: reason``, not ``[Errno …]``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def emit(document: Any) -> None:
    """Print one JSON document (plain data) on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def cli_actor() -> str:
    """The actor the command line's writes are recorded as: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = str(os.getuid())
    return f"cli:{user}"
