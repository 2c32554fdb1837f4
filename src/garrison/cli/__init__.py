"""The ``garrison`` command line.

Each subcommand lives in its own module that exposes ``register(subparsers)``;
``register`` adds an argparse parser and sets ``func`` (``args -> exit status``)
as its default. A new command is a new module plus one line in
:data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from garrison import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: Modules whose ``register(subparsers)`` adds one subcommand each, in help order.
COMMAND_MODULES: list[str] = [
    "garrison.cli._run",
    "garrison.cli._probe",
    "garrison.cli._store",
    "garrison.cli._clear",
    "garrison.cli._archive",
    "garrison.cli._migrate",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``garrison`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="garrison",
        description="An asyncio actor-based component runtime.",
    )
    parser.add_argument("--version", action="version", version=f"garrison {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``garrison`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = func(args)
    return status
