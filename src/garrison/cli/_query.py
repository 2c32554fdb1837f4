"""``garrison query 'EDN' [INPUT ...]``: answer a Datalog query from the database.

::

    garrison query '[:find ?s :in $ ?u :where [?s :session/user-id ?u]]' '"u1"'
    garrison query '[:find (count ?l) :where [?l :learning/tags :clojure]]'
    garrison query --explain '[:find ?p :where [?p :project/owner "u1"]]'

Each INPUT is EDN text bound to the query's ``:in`` after ``$`` in order
(``'"u1"'`` a string, ``:clojure`` a keyword, ``'["u1" "u2"]'`` a collection).
Prints one result tuple per line as an EDN vector (``--json``: one document,
``{"rows": [[...], ...]}``); ``--explain`` prints the one SQL statement the
query compiles to, its parameters and SQLite's plan, and says whether it
scans a table and which attributes it reads from the stored JSON (those no
kind's schema declares indexed). A read: it takes no lock and reads the
database while a runtime runs. Queries need the database: in ``edn-only`` mode the command
says which mode to switch to (see docs/queries.md).

Exit status: 0 answered; 2 a query or input that is not valid (the message
names the clause); 3 no database, or edn-only mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, CommandError, emit
from garrison.cli._json import plain

# The database commands' shared machinery (same package).
from garrison.cli._store import Database, _add, _print
from garrison.edn import dumps, loads
from garrison.exceptions import EdnError, QueryError
from garrison.stores import Mode

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``garrison query`` to the ``garrison`` CLI."""
    query = _add(
        subparsers, "query", "answer a Datalog query (Datomic's form) from the database", _query
    )
    query.add_argument("query", metavar="EDN", help="the query: [:find ... :in ... :where ...]")
    query.add_argument(
        "inputs", metavar="INPUT", nargs="*", help="EDN values bound to :in after $, in order"
    )
    query.add_argument(
        "--explain", action="store_true", help="print the SQL statement and its plan instead"
    )


async def _query(args: argparse.Namespace, database: Database) -> int:
    try:
        inputs = [loads(text) for text in args.inputs]
    except EdnError as exc:
        raise CommandError(f"an INPUT is not EDN: {exc}", EXIT_USAGE) from exc
    async with database.reading() as side:
        if side.mode is Mode.EDN_ONLY:
            raise CommandError(
                "a query needs the database, which the store does not use in edn-only mode",
                EXIT_UNAVAILABLE,
                hint="switch to dual-write (garrison mode set dual-write) so the database holds "
                "the data",
            )
        store = side.need_sqlite()
        try:
            result = await store.query(args.query, *inputs, explain=args.explain)
        except QueryError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from exc
    if args.explain:
        if args.json:
            emit(plain(result))
        else:
            _print(result["sql"])
            _print(f"params: {dumps(result['params'])}")
            for step in result["plan"]:
                _print(f"plan: {step}")
            _print("scans a table" if result["scans"] else "uses indexes only")
            if result["unindexed"]:
                _print(f"read from the stored JSON: {' '.join(result['unindexed'])}")
        return EXIT_OK
    rows: list[tuple[Any, ...]] = result
    if args.json:
        emit({"rows": [plain(list(row)) for row in rows]})
    elif not args.quiet:
        for row in rows:
            _print(dumps(list(row)))
    return EXIT_OK
