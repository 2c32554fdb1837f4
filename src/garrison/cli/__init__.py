"""The ``garrison`` command line.

Each command lives in a module that exposes ``register(subparsers)``, which
adds its parsers (with :class:`~garrison.cli._common.Parser`) and sets
``func`` (``args -> exit status``) as their default. :data:`COMMANDS` names
every command's module and one-line help, so that ``garrison --help`` and
``garrison probe`` import only the module they run: a command's module may
import what it needs at the top, and costs nothing to the others.

A command reports an expected failure by raising
:class:`~garrison.cli._common.CommandError` (or a ``GarrisonError``);
:func:`main` prints it without a traceback (``--debug`` shows one) and maps it
to the exit status in :mod:`garrison.cli._common`.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from garrison.cli._common import (
    EXIT_USAGE,
    CommandError,
    Parser,
    UsageError,
    add_global_options,
    config_path,
    report_error,
)
from garrison.cli._telemetry import run_traced
from garrison.exceptions import ConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every command, in help order: its module and its one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("garrison.cli._run", "start the runtime; keep it running until Ctrl-C or SIGTERM"),
    "probe": ("garrison.cli._probe", "check a running garrison's live, ready or startup probe"),
    "get": ("garrison.cli._store", "print the value of a key"),
    "put": ("garrison.cli._store", "set a key to a value (JSON or EDN text)"),
    "delete": ("garrison.cli._store", "remove keys"),
    "scan": ("garrison.cli._store", "print the entries whose key starts with a prefix"),
    "mode": ("garrison.cli._store", "print or switch the store mode"),
    "backup": ("garrison.cli._store", "copy the SQLite database to a file, while in use"),
    "restore": ("garrison.cli._store", "replace the SQLite data with a backup"),
    "stats": ("garrison.cli._store", "print counts, mode, repair backlog and file sizes"),
    "history": ("garrison.cli._audit", "print every recorded change of a key: who, when, why"),
    "changes": ("garrison.cli._audit", "print the audit trail after a time (--json: event log)"),
    "revert": ("garrison.cli._audit", "give keys the values they had at a time, as new changes"),
    "replay": ("garrison.cli._audit", "write an event log into the store"),
    "watch": ("garrison.cli._watch", "print the entries under a prefix each time they change"),
    "reindex": ("garrison.cli._reindex", "apply the configured kind mapping to every stored row"),
    "query": ("garrison.cli._query", "answer a Datalog query (Datomic's form) from the database"),
    "schema": ("garrison.cli._schema", "check the stored data against the configured schema"),
    "clear": ("garrison.cli._clear", "remove every key, or every key starting with PREFIX"),
    "archive": ("garrison.cli._archive", "write the data as a compressed, checksummed EDN archive"),
    "migrate": ("garrison.cli._migrate", "copy memory.edn into SQLite (resumable)"),
    "validate": ("garrison.cli._migrate", "compare memory.edn and SQLite key by key"),
    "export": ("garrison.cli._migrate", "write the SQLite data back to an EDN file (rollback)"),
    "version": ("garrison.cli._version", "print the version and the C accelerators' status"),
    "completion": ("garrison.cli._completion", "print a bash or zsh completion script"),
}

_DESCRIPTION = """\
garrison: an asyncio actor-based component runtime, and the operator's tools
for its data store (SQLite and the legacy memory.edn file).

Every command reads the same config file (--config; default
./config/garrison.toml, else the packaged default) and takes the global
options before or after its name.

exit status: 0 done or check passed; 1 check failed or not found;
             2 usage or configuration error; 3 data unavailable or locked
"""

# Options that take a value (so the word after them is not the command's name).
_VALUED = {"--config", "--data-dir", "--db", "--edn"}


def _command_of(argv: Sequence[str]) -> str | None:
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if word in _VALUED:
            skip = True
            continue
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> tuple[Parser, dict[str, argparse.ArgumentParser]]:
    """The ``garrison`` parser, and each command's parser by name.

    Only ``command``'s module is imported and only its parsers are built
    (every command's when ``command`` is ``"*"``); without a command every
    command gets a parser that knows its name and help line only.
    """
    parser = Parser(prog="garrison", description=_DESCRIPTION)
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the version and the C accelerators' status (as 'garrison version')",
    )
    add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=Parser
    )
    wanted = {module for name, (module, _) in COMMANDS.items() if command in (name, "*")}
    for name, (module, help_text) in COMMANDS.items():
        if module in wanted:
            if name not in subparsers.choices:
                importlib.import_module(module).register(subparsers)
        elif command is None:
            # The list of commands, for ``garrison --help`` and a mistyped
            # command: a name and a help line each, no module imported.
            subparsers.add_parser(name, help=help_text, add_help=False)
    commands: dict[str, argparse.ArgumentParser] = dict(subparsers.choices)
    for sub in commands.values():
        add_global_options(sub, top=False)
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``garrison`` command; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(words)
    if command is None and "--version" in words:
        command = "version"
        words = ["version", *(w for w in words if w != "--version")]
    as_json = "--json" in words
    debug = "--debug" in words
    args: argparse.Namespace | None = None
    try:
        parser, commands = build_parser(command)
        args, extra = parser.parse_known_args(words)
        if extra:
            target = commands.get(args.command) if args.command else parser
            (target or parser).error(f"unrecognized arguments: {' '.join(extra)}")
        func: Any = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        status: int = run_traced(args.command, args, func)
    except UsageError as exc:
        return report_error(exc, command=command, as_json=as_json)
    except KeyboardInterrupt:
        sys.stderr.write("garrison: interrupted\n")
        return 130
    except ConfigError as exc:
        if debug:
            raise
        where = config_path(args) if args is not None else None
        if where is None:
            hint = None
        elif where.is_file():
            hint = f"fix it in {where}, or in the GARRISON_* variable that sets it"
        else:
            hint = "give the config file with --config PATH"
        error = CommandError(str(exc), EXIT_USAGE, hint=hint)
        return report_error(error, command=command, as_json=as_json)
    except Exception as exc:
        if debug:
            raise
        return report_error(exc, command=command, as_json=as_json)
    return status
