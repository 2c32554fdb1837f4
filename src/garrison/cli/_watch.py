"""``garrison watch PREFIX``: print the entries under a prefix, then again each time they change.

The command line runs beside the application, not inside its runtime, so it
follows the database itself: it polls SQLite's history (one indexed query for
the newest ``seq`` every ``--interval`` seconds, 0.1 by default) and, when a
change was committed under PREFIX, reads the entries again as the runtime
would serve them in its mode (see :mod:`garrison.cli._store`), printing them
only if they differ from the last result (Clojure's equality). In
``edn-only`` mode there is no history to follow, and it says so. It runs
until interrupted (Ctrl-C: exit status 130).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import orjson

from garrison.cli._common import EXIT_FAILED, CommandError
from garrison.cli._json import plain
from garrison.cli._store import _add
from garrison.edn import dumps, equal
from garrison.stores import Mode, key_prefix

if TYPE_CHECKING:
    import argparse

    from garrison.cli._store import Database

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``watch`` to the ``garrison`` CLI."""
    watch = _add(
        subparsers,
        "watch",
        "print the entries under PREFIX, then again each time a commit changes them",
        _watch,
    )
    watch.add_argument("prefix", metavar="PREFIX", nargs="?", default="", help="key prefix")
    watch.add_argument(
        "--interval",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="how often to look for new commits (default 0.1)",
    )


async def _watch(args: argparse.Namespace, database: Database) -> int:
    prefix = key_prefix(args.prefix)
    interval = max(args.interval, 0.01)
    last: list[tuple[str, Any]] | None = None
    seen = -1
    async with database.reading() as follow:
        if follow.mode is Mode.EDN_ONLY:
            raise CommandError(
                "watch follows SQLite's history, which the store does not keep in edn-only mode",
                EXIT_FAILED,
                hint="switch to dual-write first: garrison mode set dual-write",
            )
        sqlite = follow.need_sqlite()
        while True:
            newest = await sqlite.last_seq()
            if newest != seen and (
                seen < 0 or await sqlite.changes(prefix=prefix, after_seq=seen, limit=1)
            ):
                # A fresh read side: the EDN modes read the file as it is now.
                async with database.reading() as side:
                    result = await side.scan(prefix, None, None)
                if last is None or not _same(result, last):
                    _show(args, result)
                    last = result
            seen = newest
            await asyncio.sleep(interval)  # polling another process's database


def _same(result: list[tuple[str, Any]], last: list[tuple[str, Any]]) -> bool:
    return len(result) == len(last) and all(
        k == j and equal(v, w) for (k, v), (j, w) in zip(result, last, strict=True)
    )


def _show(args: argparse.Namespace, result: list[tuple[str, Any]]) -> None:
    out = sys.stdout
    if args.json:
        out.write(orjson.dumps({key: plain(value) for key, value in result}).decode() + "\n")
    else:
        out.write("".join(f"{key}\t{dumps(value)}\n" for key, value in result) + "--\n")
    out.flush()
