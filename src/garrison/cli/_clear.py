"""``garrison clear [PREFIX] --yes``: remove every key (or every key under PREFIX).

::

    garrison clear --yes                  remove every key
    garrison clear session/ --yes         remove the keys starting with session/

Without ``--yes`` nothing is removed: the command says how many keys it would
remove, in which mode and files, and the command line that confirms it (exit
status 2, a usage error). With it,
the keys go in the mode the runtime would start in, like ``garrison delete``:
the EDN file first (in the modes that write it; when the file cannot be
written nothing is removed anywhere), then SQLite in one transaction, each
removal recorded in the history as a delete. In the modes that write both,
the keys join the repair backlog before the file is written and leave it once
SQLite's transaction committed, so a kill in between is repaired from the
file. Like the other writing commands it runs the ``database`` component in
its process, which takes the database's owner lock: it refuses to run while a
runtime holds it (clear through the running
application's ``store.clear()`` instead).

Exit status: 0 cleared; 2 not confirmed, a bad config or PREFIX; 3 no data
(no database or EDN file) or a database in use by a running garrison. With
``--json`` the result is one document: ``{"cleared": N, "prefix": P, "mode": M}``.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_OK, EXIT_USAGE, CommandError, emit

# The database commands' shared machinery (same package).
from garrison.cli._store import Database, _add, _print
from garrison.components.database import WriteEdnFirst
from garrison.stores import Mode, key_prefix

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``garrison clear`` to the ``garrison`` CLI."""
    clear = _add(subparsers, "clear", "remove every key, or every key starting with PREFIX", _clear)
    clear.add_argument(
        "prefix",
        metavar="PREFIX",
        nargs="?",
        default="",
        help="a key prefix (session/ or :session/); every key when left out",
    )
    clear.add_argument("--yes", action="store_true", help="confirm: remove them")


async def _clear(args: argparse.Namespace, database: Database) -> int:
    prefix = key_prefix(args.prefix)
    under = f" starting with {prefix!r}" if prefix else ""
    if not args.yes:
        async with database.reading() as side:
            count = len(await side.scan(prefix, None, None))
            files = side.location if side.mode is Mode.SQLITE_ONLY else side.edn_path
        raise CommandError(
            f"this would remove {_keys(count)}{under} ({side.mode} mode, {files}); "
            "nothing was removed",
            EXIT_USAGE,
            hint=f"to remove them, run: {_confirmed(args, prefix)}",
        )
    await database.require_data()  # a clear creates no database
    async with database.writing() as store:
        mode = await store.mode()
        removed = await store.count(prefix)  # what readers see, as the runtime counts
        # The EDN file first (its keys recorded as behind in SQLite before it loses
        # them: if this process dies before SQLite's transaction, the next runtime
        # reads them from the file, gone, and deletes them from SQLite).
        await store.ref.ask(WriteEdnFirst(clear=prefix))
        await store.clear(prefix)
    if args.json:
        emit({"cleared": removed, "prefix": prefix, "mode": str(mode)})
    elif not args.quiet:
        _print(f"cleared {_keys(removed)}{under} ({mode} mode)")
    return EXIT_OK


def _confirmed(args: argparse.Namespace, prefix: str) -> str:
    """The command line that confirms the clear: the same one, with ``--yes``."""
    words = ["garrison", "clear", *([args.prefix] if prefix else []), "--yes"]
    for option in ("config", "data_dir", "db", "edn"):
        value = getattr(args, option, None)
        if value is not None:
            words += ["--" + option.replace("_", "-"), str(value)]
    if args.json:
        words.append("--json")
    return " ".join(shlex.quote(word) for word in words)


def _keys(count: int) -> str:
    return "1 key" if count == 1 else f"{count} keys"
