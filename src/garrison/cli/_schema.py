"""``garrison schema check``: report every stored entry that breaks the configured schema.

::

    garrison schema check            one line per violation: key, attribute, rule, value
    garrison schema check --json     {"clean": false, "count": N, "violations": [...]}

The schema is the config's ``[components.database.schema.<kind>]`` tables
(docs/queries.md), whether or not the database has had it applied: run the
check before starting garrison with a changed schema, which a start refuses
while the stored data breaks it. The data checked is what the store serves in
its mode: SQLite in ``sqlite-first`` and ``sqlite-only`` (each entry by its
stored kind), the EDN file in ``edn-only`` and ``dual-write`` (each entry by
the kind mapping). A read: it takes no lock and runs beside a running garrison.

Exit status: 0 the data keeps the schema; 1 it breaks it; 2 a bad config;
3 no data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_FAILED, EXIT_OK, emit
from garrison.cli._json import plain

# The database commands' shared machinery (same package).
from garrison.cli._store import Database, _add, _print
from garrison.components.database import CheckSchema
from garrison.edn import dumps
from garrison.stores import DEFAULT_KIND_MAPPING, MISSING, Mode, find_violations

if TYPE_CHECKING:
    import argparse

    from garrison.stores import Violation

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``garrison schema`` to the ``garrison`` CLI."""
    schema = _add(
        subparsers,
        "schema",
        "check the stored data against the configured schema",
        _schema,
        epilog="""\
Reports every stored entry that breaks a rule of [components.database.schema]
(type, cardinality, unique, required, reference): its key, the attribute, the
rule and the value.

examples:
  garrison schema check
  garrison schema check --json
""",
    )
    schema.add_argument("action", choices=("check",), help="check: report the violations")


async def _schema(args: argparse.Namespace, database: Database) -> int:
    schema = database.settings.entity_schema
    async with database.reading() as side:
        if side.mode in (Mode.SQLITE_FIRST, Mode.SQLITE_ONLY):
            link = side.need_sqlite()
            found: list[Violation] = await link.ref.ask(CheckSchema(schema))
        else:
            data = await side.edn()
            kind_of = DEFAULT_KIND_MAPPING.kind_of
            found = find_violations(schema, ((k, kind_of(k), v) for k, v in sorted(data.items())))
    if args.json:
        emit({"clean": not found, "count": len(found), "violations": [_json(v) for v in found]})
    elif not args.quiet:
        for violation in found:
            _print(_line(violation))
        _print(
            "the data keeps the schema"
            if not found
            else f"{len(found)} {'violation' if len(found) == 1 else 'violations'}"
        )
    return EXIT_FAILED if found else EXIT_OK


def _line(violation: Violation) -> str:
    where = f"{violation.key} {violation.attribute} {violation.rule}"
    if violation.value is MISSING:
        return f"{where} ({violation.detail})"
    return f"{where}: {dumps(violation.value)} ({violation.detail})"


def _json(violation: Violation) -> dict[str, Any]:
    return {
        "key": violation.key,
        "attribute": violation.attribute,
        "rule": violation.rule,
        "value": None if violation.value is MISSING else plain(violation.value),
        "detail": violation.detail,
    }
