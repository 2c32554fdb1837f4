"""The audit trail from the command line: history, changes, revert, replay.

``garrison history KEY`` prints every recorded change of a key, with who made
it and why; ``garrison changes`` the changes (and events: mode switches,
restores, reverts) after a time, narrowed by key prefix and actor; with
``--json`` it prints the *event log*: one JSON object per line, which
``garrison replay`` writes into another store, giving it the same state.
``garrison revert PREFIX --to TIME`` gives the keys under PREFIX the values
they had at TIME, as new changes (``--dry-run`` prints the plan only).

Every write these commands make is recorded as ``cli:<os user>`` (see
:func:`~garrison.cli._common.cli_actor`), with ``--reason`` when given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from garrison.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandError,
    emit,
)
from garrison.cli._json import plain
from garrison.cli._store import _add, _key, _print
from garrison.components.database import WriteEdnFirst
from garrison.edn import dumps, loads
from garrison.exceptions import EdnError
from garrison.stores import (
    MISSING,
    Audit,
    Change,
    Mode,
    current_audit,
    key_prefix,
    running_as,
)

if TYPE_CHECKING:
    import argparse

    from garrison.cli._store import Database
    from garrison.stores import AuditEvent, Reversion

__all__ = ["event_line", "register"]

_TIMES = """\
TIME is an ISO 8601 time with its zone (2026-12-04T21:00:00Z,
2026-12-04T22:00:00+01:00) or POSIX seconds (1796418000.5).
"""


def register(subparsers: Any) -> None:
    """Add history, changes, revert and replay to the ``garrison`` CLI."""
    history = _add(subparsers, "history", "print every recorded change of KEY", _history)
    history.add_argument("key", metavar="KEY", help="the key, e.g. session/abc")
    history.add_argument("--limit", type=int, default=None, metavar="N", help="the newest N only")

    changes = _add(
        subparsers,
        "changes",
        "print the changes after a time: who, what, why (--json: the event log)",
        _changes,
        epilog=_TIMES
        + """
With --json: one JSON object per line and per change, {"seq", "key", "op",
"value" (plain JSON), "edn" (the exact value as EDN text), "version", "at",
"actor", "reason"}, and {"op": "event", "event", "at", "actor", "reason"}
for mode switches, restores and reverts. 'garrison replay' reads it back.
""",
    )
    changes.add_argument("--since", default="0", metavar="TIME", help="after TIME (default: all)")
    changes.add_argument("--prefix", default="", metavar="PREFIX", help="keys starting with it")
    changes.add_argument("--actor", default=None, metavar="ACTOR", help="changes by ACTOR only")

    revert = _add(
        subparsers,
        "revert",
        "give the keys under PREFIX the values they had at TIME, as new changes",
        _revert,
        epilog=_TIMES
        + """
Keys deleted since come back, keys created since are deleted; nothing in the
history is removed. Print the plan with --dry-run first; --yes writes it.
""",
    )
    revert.add_argument("prefix", metavar="PREFIX", help="a namespace or key prefix ('' for all)")
    revert.add_argument("--to", required=True, metavar="TIME", help="the time to go back to")
    revert.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    revert.add_argument("--yes", action="store_true", help="write it (required unless --dry-run)")
    revert.add_argument("--reason", default=None, help="recorded with the changes")

    replay = _add(
        subparsers, "replay", "write an event log ('garrison changes --json') into the store",
        _replay,
    )  # fmt: skip
    replay.add_argument("path", metavar="PATH", help="the JSON lines file ('-': standard input)")


def parse_time(text: str) -> dt.datetime | float:
    """A TIME argument: an aware ISO 8601 time or POSIX seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not a time: {text!r}", EXIT_USAGE, hint=_TIMES.strip()) from exc
    if moment.tzinfo is None:
        raise CommandError(
            f"the time {text!r} has no zone, so it is ambiguous",
            EXIT_USAGE,
            hint=f"add Z for UTC: {text}Z",
        )
    return moment


def event_line(change: Change) -> dict[str, Any]:
    """One change as a line of the event log."""
    value = change.value
    return {
        "seq": change.seq,
        "key": change.key,
        "op": change.op,
        "value": None if value is MISSING else plain(value),
        "edn": None if value is MISSING else dumps(value),
        "version": change.version,
        "at": change.at.isoformat(),
        "actor": change.actor,
        "reason": change.reason,
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "op": "event",
        "event": event.event,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "reason": event.reason,
    }


def _who(actor: str | None, reason: str | None) -> str:
    return (actor or "-") + (f" ({reason})" if reason else "")


async def _history(args: argparse.Namespace, database: Database) -> int:
    key = _key(args.key)
    async with database.reading() as side:
        changes = await side.need_sqlite().history(key, limit=args.limit)
    if not changes:
        raise CommandError(f"no recorded change of {key}", EXIT_FAILED)
    if args.json:
        emit([event_line(c) for c in changes])
        return EXIT_OK
    for c in changes:
        value = "" if c.value is MISSING else "\t" + dumps(c.value)
        _print(f"{c.at.isoformat()}\tv{c.version}\t{c.op}\t{_who(c.actor, c.reason)}{value}")
    return EXIT_OK


async def _changes(args: argparse.Namespace, database: Database) -> int:
    since = parse_time(args.since)
    async with database.reading() as side:
        sqlite = side.need_sqlite()
        changes = await sqlite.changes(since, prefix=key_prefix(args.prefix), actor=args.actor)
        events = await sqlite.events(since, actor=args.actor) if not args.prefix else []
    # Events and changes in time order (an event sorts before changes of its commit).
    merged: list[tuple[int, int, Change | AuditEvent]] = [(e.at_micros, 0, e) for e in events]
    merged += [(c.at_micros, 1, c) for c in changes]
    merged.sort(key=lambda item: (item[0], item[1]))
    out = sys.stdout
    for _, _, item in merged:
        if args.json:
            line = event_line(item) if isinstance(item, Change) else _event(item)
            out.write(orjson.dumps(line).decode() + "\n")
        elif isinstance(item, Change):
            value = "" if item.value is MISSING else "\t" + dumps(item.value)
            who = _who(item.actor, item.reason)
            out.write(f"{item.at.isoformat()}\t{item.op}\t{item.key}\t{who}{value}\n")
        else:
            out.write(
                f"{item.at.isoformat()}\tevent\t{item.event}\t{_who(item.actor, item.reason)}\n"
            )
    return EXIT_OK


async def _revert(args: argparse.Namespace, database: Database) -> int:
    to = parse_time(args.to)
    if not (args.dry_run or args.yes):
        raise CommandError(
            "a revert writes new values; say --yes to write them",
            EXIT_USAGE,
            hint="print the plan first with --dry-run",
        )
    prefix = key_prefix(args.prefix)
    audit = current_audit()
    with running_as(Audit(audit.actor, args.reason or audit.reason)):
        async with database.reading() as side:  # a revert creates no database
            if side.mode is Mode.EDN_ONLY:
                _refuse_edn_only()
            plan = await side.need_sqlite().revert_plan(prefix, to)
        if plan and not args.dry_run:
            async with database.writing() as store:
                plan = await store.revert(prefix, to=to, dry_run=True)
                if plan:  # the EDN file first: when it cannot be written, nothing is
                    await store.ref.ask(WriteEdnFirst([(r.key, r.target) for r in plan]))
                    plan = await store.revert(prefix, to=to)
    _report(args, plan)
    return EXIT_OK


def _refuse_edn_only() -> None:
    raise CommandError(
        "a revert needs SQLite's history, which the store does not keep in edn-only mode",
        EXIT_FAILED,
        hint="switch to dual-write first: garrison mode set dual-write",
    )


def _report(args: argparse.Namespace, plan: list[Reversion]) -> None:
    if args.json:
        emit({
            "dry_run": args.dry_run,
            "changes": [
                {
                    "key": r.key,
                    "op": "delete" if r.target is MISSING else "put",
                    "current": None if r.current is MISSING else plain(r.current),
                    "target": None if r.target is MISSING else plain(r.target),
                }
                for r in plan
            ],
        })  # fmt: skip
        return
    if args.quiet:
        return
    for r in plan:
        if r.target is MISSING:
            _print(f"delete\t{r.key}\t{dumps(r.current)}")
        elif r.current is MISSING:
            _print(f"create\t{r.key}\t{dumps(r.target)}")
        else:
            _print(f"put\t{r.key}\t{dumps(r.current)} -> {dumps(r.target)}")
    verb = "would change" if args.dry_run else "changed"
    _print(f"{verb} {len(plan)} keys")


async def _replay(args: argparse.Namespace, database: Database) -> int:
    path: str = args.path
    if path == "-":
        text = await asyncio.to_thread(sys.stdin.read)
        name = "<stdin>"
    else:
        try:
            text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}", EXIT_UNAVAILABLE) from exc
        name = path
    changes = _parse_log(text, name)
    async with database.writing() as store:
        # One write per run of changes of one op, actor and reason, in log order.
        for audit, op, entries in _runs(changes):
            with running_as(audit):
                if op == "put":
                    await store.ref.ask(WriteEdnFirst(entries))  # refused: nothing is touched
                    await store.put_many(entries)
                else:
                    keys = [key for key, _ in entries]
                    await store.ref.ask(WriteEdnFirst([(key, MISSING) for key in keys]))
                    await store.delete_many(keys)
    if args.json:
        emit({"replayed": len(changes)})
    elif not args.quiet:
        _print(f"replayed {len(changes)} changes from {name}")
    return EXIT_OK


def _parse_log(text: str, name: str) -> list[tuple[Audit, str, str, Any]]:
    """The changes of an event log: (audit, op, key, value); events are skipped."""
    changes: list[tuple[Audit, str, str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            op = record["op"]
            if op == "event":
                continue
            if op not in ("put", "delete"):
                raise ValueError(f"unknown op {op!r}")
            key = _key(record["key"])
            value = loads(record["edn"]) if op == "put" else MISSING
            audit = Audit(record.get("actor") or "replay", record.get("reason"))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, EdnError) as exc:
            raise CommandError(
                f"{name}, line {number}: not an event of the log: {exc}", EXIT_USAGE
            ) from exc
        changes.append((audit, op, key, value))
    return changes


def _runs(
    changes: list[tuple[Audit, str, str, Any]],
) -> list[tuple[Audit, str, list[tuple[str, Any]]]]:
    """Consecutive changes of one op and audit, each key once per run (so in one write)."""
    runs: list[tuple[Audit, str, list[tuple[str, Any]]]] = []
    seen: set[str] = set()
    for audit, op, key, value in changes:
        if runs and runs[-1][0] == audit and runs[-1][1] == op and key not in seen:
            runs[-1][2].append((key, value))
        else:
            runs.append((audit, op, [(key, value)]))
            seen = set()
        seen.add(key)
    return runs
