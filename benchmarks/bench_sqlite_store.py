"""SqliteStore.put_many vs raw sqlite3.executemany on the same rows.

Both sides write the same N key/value rows into a fresh WAL database with
``synchronous=NORMAL`` in one transaction, values serialised as JSON text with
orjson inside the timed region (a raw sqlite3 user has to serialise too).

- baseline "raw": ``executemany`` into a plain ``(key PRIMARY KEY, value)`` table,
  the least any SQLite key-value store can do;
- baseline "raw+history": ``executemany`` into garrison's own schema (entries +
  the history trigger and indexes), isolating what garrison's Python layer
  (key checks, classification, value encoding, aiosqlite's thread hop, spans)
  costs on top of the same SQL work.

A second round writes the same rows in transactions of 100 rows (what the
database actor's mailbox drains look like), where aiosqlite's thread hops per
transaction show.

Run: ``.venv-test/bin/python benchmarks/bench_sqlite_store.py [--rows N] [--repeat R]``
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

from _common import machine, report
from garrison.stores import SqliteStore
from garrison.stores._schema import MIGRATIONS


def make_rows(count: int) -> list[tuple[str, Any]]:
    """Rows shaped like an application's records: a namespace key and a small map."""
    return [
        (
            f"user/{i:08}",
            {"name": f"user {i}", "age": i % 90, "tags": ["a", "b"], "active": i % 3 == 0},
        )
        for i in range(count)
    ]


def raw_plain(path: Path, rows: list[tuple[str, Any]], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    start = time.perf_counter()
    for first in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(key, orjson.dumps(value).decode()) for key, value in rows[first : first + batch]],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def raw_with_history(path: Path, rows: list[tuple[str, Any]], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    start = time.perf_counter()
    for first in range(0, len(rows), batch):
        now = time.time_ns() // 1000
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO commits (at, first_seq) VALUES (?, 0)", (now,))
        conn.executemany(
            "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
            "VALUES (?1, ?2, ?2, ?3, ?4, ?4, 1) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at, version = version + 1",
            [
                (key, "user", orjson.dumps(value).decode(), now)
                for key, value in rows[first : first + batch]
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def garrison_put_many(path: Path, rows: list[tuple[str, Any]], batch: int) -> float:
    async with SqliteStore(path) as store:
        start = time.perf_counter()
        for first in range(0, len(rows), batch):
            await store.put_many(rows[first : first + batch])
        return time.perf_counter() - start


def run(rows: list[tuple[str, Any]], batch: int, repeat: int) -> None:
    runs: dict[str, list[float]] = {"raw": [], "raw+history": [], "garrison": []}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeat):
            # Interleaved, so background load hits all three alike.
            runs["raw"].append(raw_plain(Path(folder) / f"raw{i}.db", rows, batch))
            runs["raw+history"].append(raw_with_history(Path(folder) / f"hist{i}.db", rows, batch))
            runs["garrison"].append(
                asyncio.run(garrison_put_many(Path(folder) / f"g{i}.db", rows, batch))
            )
    print(f"put_many of {len(rows)} rows in transactions of {batch} rows, median of {repeat} runs")
    for name, values in runs.items():
        spread = (max(values) - min(values)) / statistics.median(values)
        print(
            f"  {name:<12} median {statistics.median(values) * 1000:8.1f} ms  "
            f"min {min(values) * 1000:8.1f}  max {max(values) * 1000:8.1f}  spread {spread:.0%}"
        )
    rate = len(rows) / statistics.median(runs["garrison"])
    for baseline in ("raw", "raw+history"):
        base_rate = len(rows) / statistics.median(runs[baseline])
        report(
            f"  rows/s, batch {batch}, vs {baseline}",
            rate,
            base_rate,
            unit="rows/s",
            higher_is_better=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    print(machine())
    run(rows, args.rows, args.repeat)  # the figure: one transaction
    run(rows, 100, args.repeat)  # what a database actor's mailbox drain looks like


if __name__ == "__main__":
    main()
