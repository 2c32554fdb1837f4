"""The attribute index's cost on writes: puts with it against the same store without it.

Writes (``--writes``): writes ``--rows`` legacy-shaped learning records (six
keyword attributes: a string id, a reference to a session, a float score, a
set of one or two keyword tags, a text, a nested map: five or six index rows) into a
fresh database each round, two ways:

- ``put_many`` in transactions of 64 rows (what the database actor's mailbox
  drains look like);
- single ``put`` calls, one transaction each (``--rows // 10`` of them).

Each once as garrison writes (the attribute rows computed from the value and
written in the same transaction), once with the index's statements and row
computation switched off (the store as it was before the index). The two
alternate, ``--repeat`` rounds; prints each side's median throughput and the
ratio of the medians.

Run::

    .venv-test/bin/python benchmarks/bench_query.py --writes [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from garrison.edn import Keyword
from garrison.stores import SqliteStore
from garrison.stores import _sqlite as sqlite_module

if TYPE_CHECKING:
    from collections.abc import Iterator


def make_records(count: int, seed: int = 7) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    return [
        (
            f"learning/l{i:06d}",
            {
                Keyword("learning/id"): f"l{i}",
                Keyword("learning/session"): Keyword(f"session/s{i % 500}"),
                Keyword("learning/score"): rng.random(),
                Keyword("learning/tags"): frozenset(
                    {Keyword(f"tag/t{i % 37}"), Keyword(f"tag/t{i % 11}")}
                ),
                Keyword("learning/text"): "a learning record's text " * 3,
                Keyword("learning/meta"): {Keyword("source"): "bench", Keyword("n"): i},
            },
        )
        for i in range(count)
    ]


@contextlib.contextmanager
def index_off() -> Iterator[None]:
    """The store without the attribute index: no rows computed, no statements run."""
    names = vars(sqlite_module)  # the names the store's write path looks up
    saved = names["index_statements"], names["entity_attributes"]
    names["index_statements"] = lambda indexed: ()
    names["entity_attributes"] = lambda value: None
    try:
        yield
    finally:
        names["index_statements"], names["entity_attributes"] = saved


async def put_rate(rows: list[tuple[str, Any]], *, index: bool, batch: int) -> float:
    """Puts per second into a fresh store, in transactions of ``batch`` (1: put)."""
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteStore(Path(folder) / "bench.db") as store:
            with contextlib.nullcontext() if index else index_off():
                start = time.perf_counter()
                if batch == 1:
                    for key, value in rows:
                        await store.put(key, value)
                else:
                    for first in range(0, len(rows), batch):
                        await store.put_many(rows[first : first + batch])
                elapsed = time.perf_counter() - start
            if index:
                indexed = list(
                    await store.connection.execute_fetchall("SELECT count(*) FROM attributes")
                )
                assert indexed[0][0] >= 5 * len(rows), indexed  # two tags may be one
            return len(rows) / elapsed


async def main(rows_count: int, repeat: int) -> None:
    rows = make_records(rows_count)
    print(machine())
    print(f"{rows_count} learning records (5 or 6 index rows each), {repeat} alternated rounds")
    for label, batch, part in (
        ("put_many, 64 per transaction", 64, rows),
        ("put, one per transaction", 1, rows[: rows_count // 10]),
    ):
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeat):
            for index in (True, False):
                rates[index].append(await put_rate(part, index=index, batch=batch))
        print(f"{label} ({len(part)} records)")
        for index, values in rates.items():
            side = "with the attribute index" if index else "without it"
            runs = ", ".join(f"{rate:,.0f}" for rate in values)
            print(f"  {side:<26} median {statistics.median(values):>9,.0f} puts/s  ({runs})")
        ratio = statistics.median(rates[True]) / statistics.median(rates[False])
        print(f"  ratio with / without: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", action="store_true", help="the write figures")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
