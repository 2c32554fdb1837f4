"""``garrison reindex``: apply the configured kind mapping to every stored row.

::

    garrison reindex          set each row's kind by the mapping; print how many changed

The mapping is the one every write classifies with: the legacy plan's, with
``[components.database.kinds]`` (``namespaces``, ``keys``, ``default``) merged
over it. Run it after changing that table. One transaction; values,
versions and history are untouched. Like the other writing commands it takes
the database's owner lock and refuses to run while a runtime holds it.

Exit status: 0 done; 2 a bad config; 3 no database, or a database in use. With
``--json``: ``{"changed": N}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_OK, emit

# The database commands' shared machinery (same package).
from garrison.cli._store import Database, _add, _print
from garrison.components.database import ReindexKinds

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``garrison reindex`` to the ``garrison`` CLI."""
    _add(subparsers, "reindex", "apply the configured kind mapping to every stored row", _reindex)


async def _reindex(args: argparse.Namespace, database: Database) -> int:
    mapping = database.settings.kind_mapping
    async with database.reading() as side:  # no database: say so, create none
        side.need_sqlite()
    async with database.writing() as store:
        changed: int = await store.ref.ask(ReindexKinds(mapping))
    if args.json:
        emit({"changed": changed})
    elif not args.quiet:
        _print(f"{changed} {'row' if changed == 1 else 'rows'} changed kind")
    return EXIT_OK
