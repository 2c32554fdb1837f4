"""``garrison watch PREFIX|QUERY [INPUT ...]``: print a result, then again each time it changes.

::

    garrison watch todo/
    garrison watch '[:find ?s :in $ ?u :where [?s :session/user-id ?u]]' '"u1"'

An argument starting with ``[`` or ``{`` is a Datalog query (as for
``garrison query``, each INPUT EDN text bound to its ``:in`` after ``$``);
anything else is a key prefix. The command line runs beside the
application, not inside its runtime, so it follows the database itself: it
polls SQLite's history (one indexed query for the newest ``seq`` every
``--interval`` seconds, 0.1 by default) and, when a change was committed
(under PREFIX, for a prefix), reads the entries again as the runtime would
serve them in its mode (see :mod:`garrison.cli._store`), or answers the query
again, printing the result only if it differs from the last one (Clojure's
equality; a query's answer as a set of rows). A query's result is one EDN
vector per row, then ``--`` (``--json``: ``{"rows": [...]}`` per line). In
``edn-only`` mode there is no history to follow, and it says so. It runs
until interrupted (Ctrl-C: exit status 130); a query or INPUT that is not
valid is exit status 2.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import orjson

from garrison.cli._common import EXIT_FAILED, EXIT_USAGE, CommandError
from garrison.cli._json import plain
from garrison.cli._store import _add
from garrison.edn import dumps, equal, loads
from garrison.exceptions import EdnError, QueryError
from garrison.stores import Mode, compile_query, key_prefix

if TYPE_CHECKING:
    import argparse

    from garrison.cli._store import Database, _ReadSide
    from garrison.components.database import DatabaseLink

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``watch`` to the ``garrison`` CLI."""
    watch = _add(
        subparsers,
        "watch",
        "print the entries under PREFIX (or a Datalog query's answer), then again each "
        "time a commit changes them",
        _watch,
    )
    watch.add_argument(
        "prefix",
        metavar="PREFIX|QUERY",
        nargs="?",
        default="",
        help="key prefix, or a Datalog query [:find ...]",
    )
    watch.add_argument(
        "inputs", metavar="INPUT", nargs="*", help="EDN values bound to a query's :in after $"
    )
    watch.add_argument(
        "--interval",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="how often to look for new commits (default 0.1)",
    )


def _history(follow: _ReadSide) -> DatabaseLink:
    """The database whose history ``watch`` follows (refused in edn-only mode)."""
    if follow.mode is Mode.EDN_ONLY:
        raise CommandError(
            "watch follows SQLite's history, which the store does not keep in edn-only mode",
            EXIT_FAILED,
            hint="switch to dual-write first: garrison mode set dual-write",
        )
    return follow.need_sqlite()


async def _watch(args: argparse.Namespace, database: Database) -> int:
    if args.prefix.lstrip().startswith(("[", "{")):
        return await _watch_query(args, database)
    if args.inputs:
        raise CommandError("INPUT values bind a query's :in; a PREFIX takes none", EXIT_USAGE)
    prefix = key_prefix(args.prefix)
    interval = max(args.interval, 0.01)
    last: list[tuple[str, Any]] | None = None
    seen = -1
    async with database.reading() as follow:
        sqlite = _history(follow)
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


async def _watch_query(args: argparse.Namespace, database: Database) -> int:
    try:
        inputs = [loads(text) for text in args.inputs]
    except EdnError as exc:
        raise CommandError(f"an INPUT is not EDN: {exc}", EXIT_USAGE) from exc
    try:
        compile_query(args.prefix, inputs)
    except QueryError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    interval = max(args.interval, 0.01)
    last: list[tuple[Any, ...]] | None = None
    seen = -1
    async with database.reading() as follow:
        sqlite = _history(follow)
        while True:
            newest = await sqlite.last_seq()
            if newest != seen:
                # Any commit may change the answer: this process does not see the values
                # a commit replaced, so it answers again (the query is one SQL statement).
                result = sorted(await sqlite.query(args.prefix, *inputs), key=dumps)
                if last is None or not _same_rows(result, last):
                    _show_rows(args, result)
                    last = result
            seen = newest
            await asyncio.sleep(interval)  # polling another process's database


def _same_rows(result: list[tuple[Any, ...]], last: list[tuple[Any, ...]]) -> bool:
    return len(result) == len(last) and all(
        equal(row, other) for row, other in zip(result, last, strict=True)
    )


def _show_rows(args: argparse.Namespace, rows: list[tuple[Any, ...]]) -> None:
    out = sys.stdout
    if args.json:
        out.write(orjson.dumps({"rows": [plain(list(row)) for row in rows]}).decode() + "\n")
    else:
        out.write("".join(dumps(list(row)) + "\n" for row in rows) + "--\n")
    out.flush()


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
