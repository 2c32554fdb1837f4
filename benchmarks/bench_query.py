"""Datalog over the attribute index against the legacy way, and the index's cost on writes.

Queries (default): ``--entities`` learning records and their sessions (a
session every tenth record; each record refers to its session, has a score
and two tags) are written as a ``memory.edn`` file, migrated into SQLite with
the migrator, and served by a runtime in sqlite-only mode. Timed, ``--queries``
times each, p50 and p99:

- legacy: a Python filter over the parsed EDN map (what an application did
  with ``memory.edn``): the sessions of one user;
- garrison: the same question as a one-pattern query through the actor
  (``store.query``; at most ~10 results);
- garrison: a three-clause join (records of a tag with a score above 0.5,
  their sessions, the sessions' user).

The garrison queries run twice: with the four attributes they read declared
``indexed`` in ``[components.database.schema]`` (patterns read the attribute
table), then with nothing declared (patterns read the stored JSON: a scan).

Writes (``--writes``): writes ``--rows`` legacy-shaped learning records (six
keyword attributes: a string id, a reference to a session, a float score, a
set of one or two keyword tags, a text, a nested map: five or six index rows)
into a fresh database each round, three ways:

- ``put_many`` in transactions of 64 rows (what the database actor's mailbox
  drains look like);
- ``put_many`` the same way, updating the records written first (untimed)
  with a new score and text, their other attributes as they were;
- single ``put`` calls, one transaction each (``--rows // 10`` of them).

Each three ways, by what the store's schema declares indexed: nothing (the
default: a write computes and writes no attribute row), two attributes
(``:learning/session`` and ``:learning/tags``: two or three rows a record),
and all six (five or six rows a record, as when every attribute was indexed).
The three alternate, ``--repeat`` rounds; prints each side's median
throughput and its ratio to the median with nothing declared.

Run::

    .venv-test/bin/python benchmarks/bench_query.py [--entities N] [--queries Q]
    .venv-test/bin/python benchmarks/bench_query.py --writes [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from garrison import open_runtime
from garrison.components.database import Store
from garrison.components.migrator import migrate
from garrison.edn import Keyword, dumps, loads
from garrison.stores import SqliteStore


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


#: What each side declares indexed, and the fewest attribute rows a record gives.
DECLARED: dict[str, tuple[frozenset[str], int]] = {
    "nothing declared": (frozenset(), 0),
    "2 attributes declared": (frozenset({":learning/session", ":learning/tags"}), 2),
    "all 6 declared": (
        frozenset(
            ":learning/" + name for name in ("id", "session", "score", "tags", "text", "meta")
        ),
        5,  # the nested map gives none; two tags may be one
    ),
}


def updated(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The records with a new score and text, their other attributes as they were."""
    score, text = Keyword("learning/score"), Keyword("learning/text")
    return [(key, {**value, score: value[score] / 2, text: "revised"}) for key, value in rows]


async def put_rate(
    rows: list[tuple[str, Any]], *, declared: str, batch: int, update: bool = False
) -> float:
    """Puts per second into a fresh store, in transactions of ``batch`` (1: put).

    ``update``: the records are written first (untimed), then timed as updated.
    """
    attributes, fewest = DECLARED[declared]
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteStore(
            Path(folder) / "bench.db", indexed={"learning": attributes}
        ) as store:
            if update:
                for first in range(0, len(rows), batch):
                    await store.put_many(rows[first : first + batch])
                rows = updated(rows)
            start = time.perf_counter()
            if batch == 1:
                for key, value in rows:
                    await store.put(key, value)
            else:
                for first in range(0, len(rows), batch):
                    await store.put_many(rows[first : first + batch])
            elapsed = time.perf_counter() - start
            indexed = list(
                await store.connection.execute_fetchall("SELECT count(*) FROM attributes")
            )
            assert indexed[0][0] >= fewest * len(rows), indexed
            return len(rows) / elapsed


def legacy_file(entities: int, seed: int = 3) -> str:
    """A memory.edn with ``entities`` learning records and a session per ten of them."""
    rng = random.Random(seed)
    data: dict[Any, Any] = {}
    for i in range(entities // 10):
        data[Keyword(f"session/s{i}")] = {
            Keyword("session/id"): f"s{i}",
            Keyword("session/user-id"): f"u{i % (entities // 100 or 1)}",
        }
    for i in range(entities - len(data)):
        data[Keyword(f"learning/l{i}")] = {
            Keyword("learning/session"): Keyword(f"session/s{i % (entities // 10)}"),
            Keyword("learning/score"): rng.random(),
            Keyword("learning/tags"): frozenset(
                {Keyword(f"tag/t{rng.randrange(200)}"), Keyword(f"tag/t{rng.randrange(200)}")}
            ),
            Keyword("learning/text"): "a learning record " * 2,
        }
    return dumps(data)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1e3:8.3f} ms   p99 {p99 * 1e3:8.3f} ms"


async def run_queries(entities: int, queries: int) -> None:
    text = legacy_file(entities)
    parsed = loads(text)
    user_id, session_user = Keyword("session/user-id"), "u7"
    legacy: list[float] = []
    for _ in range(queries):
        start = time.perf_counter()
        found = [k for k, v in parsed.items() if type(v) is dict and v.get(user_id) == session_user]
        legacy.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        (path / "memory.edn").write_text(text, encoding="utf-8")
        async with SqliteStore(path / "garrison.db") as store:
            await migrate(store, path / "memory.edn")
        schema = {
            "session": {":session/user-id": {"indexed": True}},
            "learning": {
                name: {"indexed": True}
                for name in (":learning/tags", ":learning/session", ":learning/score")
            },
        }
        selective = "[:find ?s :in $ ?u :where [?s :session/user-id ?u]]"
        join = (
            "[:find ?s ?user :in $ ?tag :where [?l :learning/tags ?tag] "
            "[?l :learning/session ?s] [?l :learning/score ?score] [(> ?score 0.5)] "
            "[?s :session/user-id ?user]]"
        )
        timings: dict[str, list[float]] = {}
        plans: dict[str, Any] = {}
        for side, declared in (("indexed", schema), ("JSON", {})):
            options = {"mode": "sqlite-only", "cache_size": 0, "schema": declared}
            config = {"runtime": {"data_dir": folder}, "components": {"database": options}}
            async with open_runtime(config, environ={}) as rt:  # rebuilds the index
                db = rt.get(Store)
                answer = await db.query(selective, session_user)
                assert sorted(key for (key,) in answer) == sorted(k.text for k in found)
                selective_times, join_times = [], []
                for i in range(queries):
                    start = time.perf_counter()
                    await db.query(selective, f"u{i % 100}")
                    selective_times.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    await db.query(join, Keyword(f"tag/t{i % 200}"))
                    join_times.append(time.perf_counter() - start)
                timings[f"selective {side}"] = selective_times
                timings[f"join {side}"] = join_times
                plans[side] = await db.query(join, Keyword("tag/t1"), explain=True)
    print(machine())
    print(f"{entities} entities migrated from memory.edn; {queries} queries each")
    print(
        f"  legacy Python filter over the parsed map ({len(found)} results)  {_percentiles(legacy)}"
    )
    for side in ("indexed", "JSON"):
        label = "attributes indexed" if side == "indexed" else "nothing indexed, JSON read"
        selective_label = f"one-pattern query, {label}"
        join_label = f"three-clause join, {label}"
        print(f"  garrison {selective_label:<46} {_percentiles(timings['selective ' + side])}")
        print(f"  garrison {join_label:<46} {_percentiles(timings['join ' + side])}")
        ratio = statistics.median(legacy) / statistics.median(timings["selective " + side])
        print(f"    selective query vs the Python filter (p50): {ratio:.2f}x as fast")
        print(f"    join scans: {plans[side]['scans']}; plan: {'; '.join(plans[side]['plan'])}")


async def main(rows_count: int, repeat: int) -> None:
    rows = make_records(rows_count)
    print(machine())
    print(f"{rows_count} learning records (six attributes each), {repeat} alternated rounds")
    for label, batch, part, update in (
        ("put_many, 64 per transaction", 64, rows, False),
        ("put_many, 64 per transaction, updates (score, text)", 64, rows, True),
        ("put, one per transaction", 1, rows[: rows_count // 10], False),
    ):
        rates: dict[str, list[float]] = {side: [] for side in DECLARED}
        for _ in range(repeat):
            for side in DECLARED:
                rates[side].append(await put_rate(part, declared=side, batch=batch, update=update))
        print(f"{label} ({len(part)} records)")
        base = statistics.median(rates["nothing declared"])
        for side, values in rates.items():
            runs = ", ".join(f"{rate:,.0f}" for rate in values)
            median = statistics.median(values)
            print(f"  {side:<22} median {median:>9,.0f} puts/s  {median / base:.2f}x  ({runs})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", action="store_true", help="the write figures instead")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    if args.writes:
        asyncio.run(main(args.rows, args.repeat))
    else:
        asyncio.run(run_queries(args.entities, args.queries))
