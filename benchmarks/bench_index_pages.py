"""What the attribute index costs SQLite per write transaction, and what its variants would.

The same learning records as ``bench_query.py --writes`` (two attributes
declared: ``:learning/session`` and ``:learning/tags``, about three index rows
a record), written in plain ``sqlite3`` into garrison's schema in transactions
of 64 records, as ``put_many`` writes them (the ``commits`` row, the upsert
with its history trigger, then the index statements), with the write-ahead log
never checkpointed, so its size counts the pages each transaction wrote. The
index rows are computed before the clock starts: this is SQLite's part alone.

Variants, alternated ``--repeat`` rounds, medians:

- ``no index``: the entries alone (nothing declared);
- ``index``: the entities' rows deleted, then the new ones inserted;
- ``index, no delete``: the inserts alone (every key here is new: what
  garrison writes for new keys, which read no old row and so delete none);
- ``integer attr``: the table keyed by an integer id of the attribute name;
- ``no (entity, attr) index``: the table without its secondary index (and no
  delete, which would scan without it).

Prints records per second, its ratio to ``no index``, and the log's pages per
transaction. ``--only NAME`` runs one variant once (to count its instructions:
the variants differ only in the statements timed, so the difference of two
counts is theirs). Run::

    .venv-test/bin/python benchmarks/bench_index_pages.py [--rows N] [--repeat R]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv-test/bin/python benchmarks/bench_index_pages.py --rows 4000 --only index
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_query import DECLARED, make_records
from garrison.stores import SqliteStore
from garrison.stores._attributes import entity_attributes
from garrison.stores._sqlite_sql import RECORD_COMMIT, UPSERT
from garrison.stores._values import encode_value

_BATCH = 64
_DELETE = "DELETE FROM attributes WHERE entity IN (SELECT value FROM json_each(?1))"
_INSERT = "INSERT INTO attributes (attr, value, tag, entity) VALUES (?, ?, ?, ?)"
_INTEGER_TABLE = (
    "DROP TABLE attributes",
    (
        "CREATE TABLE attributes (attr INTEGER NOT NULL, value NOT NULL, tag TEXT NOT NULL, "
        "entity TEXT NOT NULL, PRIMARY KEY (attr, value, tag, entity)) WITHOUT ROWID"
    ),
    "CREATE INDEX attributes_by_entity ON attributes (entity, attr)",
)
_ATTRIBUTE_IDS = {":learning/session": 1, ":learning/tags": 2}

#: name -> (schema changes, index rows written?, delete first?, attribute ids?)
VARIANTS: dict[str, tuple[tuple[str, ...], bool, bool, bool]] = {
    "no index": ((), False, False, False),
    "index": ((), True, True, False),
    "index, no delete": ((), True, False, False),
    "integer attr": (_INTEGER_TABLE, True, True, True),
    "no (entity, attr) index": (("DROP INDEX attributes_by_entity",), True, False, False),
}


def _fresh(folder: Path, schema: tuple[str, ...]) -> sqlite3.Connection:
    path = folder / "pages.db"

    async def create() -> None:
        async with SqliteStore(path):
            pass

    asyncio.run(create())
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    for statement in schema:
        db.execute(statement)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def run(
    variant: str, rows: list[tuple[str, str, str, str]], index: dict[str, Any]
) -> tuple[float, float]:
    """(records per second, log pages per transaction) of one variant on a fresh database."""
    schema, indexed, delete, ids = VARIANTS[variant]
    with tempfile.TemporaryDirectory() as folder:
        db = _fresh(Path(folder), schema)
        page = db.execute("PRAGMA page_size").fetchone()[0]
        batches = [rows[i : i + _BATCH] for i in range(0, len(rows), _BATCH)]
        start = time.perf_counter()
        for now, batch in enumerate(batches, start=1):
            db.execute("BEGIN IMMEDIATE")
            db.execute(RECORD_COMMIT, (now, None, None, None))
            db.executemany(UPSERT, [(*row, now) for row in batch])
            if indexed:
                keys = [row[0] for row in batch]
                if delete:
                    db.execute(_DELETE, (orjson.dumps(keys).decode(),))
                db.executemany(
                    _INSERT,
                    [
                        (_ATTRIBUTE_IDS[attr] if ids else attr, value, tag, key)
                        for key in keys
                        for attr, value, tag in index[key]
                    ],
                )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        log = (Path(folder) / "pages.db-wal").stat().st_size
        db.close()
    frames = log / (page + 24)  # each log frame: a 24-byte header and the page
    return len(rows) / elapsed, frames / len(batches)


def main(count: int, repeat: int, only: str | None) -> None:
    records = make_records(count)
    declared = DECLARED["2 attributes declared"][0]
    rows = [(key, "learning", "learning", encode_value(value)) for key, value in records]
    index = {key: entity_attributes(value, declared) for key, value in records}
    variants = list(VARIANTS) if only is None else [only]
    rates: dict[str, list[float]] = {name: [] for name in variants}
    pages: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat if only is None else 1):
        for name in variants:
            rate, per_transaction = run(name, rows, index)
            rates[name].append(rate)
            pages[name].append(per_transaction)
    print(machine())
    print(f"{count} records, transactions of {_BATCH}, {repeat} alternated rounds (medians)")
    base = statistics.median(rates.get("no index", rates[variants[0]]))
    for name in variants:
        rate = statistics.median(rates[name])
        print(
            f"  {name:<26} {rate:>9,.0f} records/s  {rate / base:.2f}x  "
            f"{statistics.median(pages[name]):6.1f} log pages a transaction"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=list(VARIANTS), help="one variant, once")
    args = parser.parse_args()
    main(args.rows, args.repeat, args.only)
