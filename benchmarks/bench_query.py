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

The query cache (``--cache``): the same migrated data with the attributes
indexed, served twice in alternated rounds, with ``query_cache_size = 0`` and
with the default cache; each round asks the one-pattern query and the join
``--queries`` times with the same inputs (a repeated query: after the first
ask, each is a hit). Prints p50 and p99 of each side and the ratio of the
medians. Then what a cached answer costs writers: 64 concurrent writers put
6,400 maps (attributes the query does not read) into a fresh runtime, with no
answer cached and with one, ``--repeat`` alternated rounds, medians.

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

Schema rules (``--writes --schema``): the same records and the same two
ways, four sides alternated: no schema; ``type`` and ``required`` rules
(``:learning/id`` a required string, ``:learning/score`` a double,
``:learning/tags`` many keywords); ``:learning/id`` declared ``indexed``
alone (what ``unique`` adds to the index, without its check); and the type
and required rules with ``:learning/id`` also ``unique`` (its lookup in the
index, in the write's transaction). Prints each median and its ratio to the
median with no schema.

The schema check (``--schema-check``): ``--rows`` records written with no
schema, then timed: the open of the store with each schema (which checks every
stored entry first, and builds the index rows of a ``unique`` attribute), and
``SqliteStore.schema_violations`` (what ``garrison schema check`` runs).

Run::

    .venv-test/bin/python benchmarks/bench_query.py [--entities N] [--queries Q]
    .venv-test/bin/python benchmarks/bench_query.py --cache [--entities N] [--queries Q]
    .venv-test/bin/python benchmarks/bench_query.py --writes [--rows N] [--repeat R]
    .venv-test/bin/python benchmarks/bench_query.py --writes --schema [--rows N] [--repeat R]
    .venv-test/bin/python benchmarks/bench_query.py --schema-check [--rows N]
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
from garrison.stores import EntitySchema, SqliteStore


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


_TYPED: dict[str, dict[str, Any]] = {
    ":learning/id": {"type": "string", "required": True},
    ":learning/score": {"type": "double"},
    ":learning/tags": {"type": "keyword", "cardinality": "many"},
}
#: The schema of each side of ``--schema``.
SCHEMAS: dict[str, dict[str, Any]] = {
    "no schema": {},
    "type + required": {"learning": _TYPED},
    "id indexed, no rule": {"learning": {":learning/id": {"indexed": True}}},
    "type + required + unique": {
        "learning": {**_TYPED, ":learning/id": {**_TYPED[":learning/id"], "unique": True}}
    },
}


async def schema_put_rate(rows: list[tuple[str, Any]], *, side: str, batch: int) -> float:
    """Puts per second into a fresh store with the schema of ``side``."""
    schema = EntitySchema.parse(SCHEMAS[side])
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteStore(Path(folder) / "bench.db", schema=schema) as store:
            return await _timed_puts(store, rows, batch)


async def schema_check(rows_count: int) -> None:
    """Time the open that applies each schema to ``rows_count`` stored records, and the check."""
    rows = make_records(rows_count)
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        async with SqliteStore(path) as store:
            for first in range(0, len(rows), 1000):
                await store.put_many(rows[first : first + 1000])
        for side in ("type + required", "type + required + unique"):
            schema = EntitySchema.parse(SCHEMAS[side])
            start = time.perf_counter()
            async with SqliteStore(path, schema=schema):
                opened = time.perf_counter() - start
            async with SqliteStore(path) as store:
                start = time.perf_counter()
                found = await store.schema_violations(schema)
                checked = time.perf_counter() - start
            print(
                f"{side:<24} {rows_count} records: open applying it {opened:.2f} s, "
                f"schema_violations {checked:.2f} s ({len(found)} found)"
            )


async def _timed_puts(store: SqliteStore, rows: list[tuple[str, Any]], batch: int) -> float:
    start = time.perf_counter()
    if batch == 1:
        for key, value in rows:
            await store.put(key, value)
    else:
        for first in range(0, len(rows), batch):
            await store.put_many(rows[first : first + batch])
    return len(rows) / (time.perf_counter() - start)


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
            rate = await _timed_puts(store, rows, batch)
            indexed = list(
                await store.connection.execute_fetchall("SELECT count(*) FROM attributes")
            )
            assert indexed[0][0] >= fewest * len(rows), indexed
            return rate


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


SCHEMA = {
    "session": {":session/user-id": {"indexed": True}},
    "learning": {
        name: {"indexed": True}
        for name in (":learning/tags", ":learning/session", ":learning/score")
    },
}
SELECTIVE = "[:find ?s :in $ ?u :where [?s :session/user-id ?u]]"
JOIN = (
    "[:find ?s ?user :in $ ?tag :where [?l :learning/tags ?tag] "
    "[?l :learning/session ?s] [?l :learning/score ?score] [(> ?score 0.5)] "
    "[?s :session/user-id ?user]]"
)


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
        schema, selective, join = SCHEMA, SELECTIVE, JOIN
        timings: dict[str, list[float]] = {}
        plans: dict[str, Any] = {}
        for side, declared in (("indexed", schema), ("JSON", {})):
            options = {
                "mode": "sqlite-only",
                "cache_size": 0,
                "query_cache_size": 0,
                "schema": declared,
            }
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


async def run_cache(entities: int, queries: int, repeat: int) -> None:
    """A repeated query with the query cache off and on, alternated rounds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        (path / "memory.edn").write_text(legacy_file(entities), encoding="utf-8")
        async with SqliteStore(path / "garrison.db") as store:
            await migrate(store, path / "memory.edn")
        timings: dict[str, list[float]] = {}
        hits: dict[str, int] = {}
        for _ in range(repeat):
            for side, size in (("uncached", 0), ("cached", 1000)):
                options = {"mode": "sqlite-only", "query_cache_size": size, "schema": SCHEMA}
                config = {"runtime": {"data_dir": folder}, "components": {"database": options}}
                async with open_runtime(config, environ={}) as rt:
                    db = rt.get(Store)
                    for name, query, given in (
                        ("one-pattern query", SELECTIVE, "u7"),
                        ("three-clause join", JOIN, Keyword("tag/t1")),
                    ):
                        samples = timings.setdefault(f"{name} {side}", [])
                        for _ in range(queries):
                            start = time.perf_counter()
                            await db.query(query, given)
                            samples.append(time.perf_counter() - start)
                    hits[side] = (await db.statistics()).query_cache_hits
    print(machine())
    print(f"{entities} entities, attributes indexed; {repeat} alternated rounds of {queries}")
    for name in ("one-pattern query", "three-clause join"):
        for side in ("uncached", "cached"):
            print(f"  {name}, {side:<9} {_percentiles(timings[f'{name} {side}'])}")
        ratio = statistics.median(timings[f"{name} uncached"]) / statistics.median(
            timings[f"{name} cached"]
        )
        print(f"    cached vs uncached (p50): {ratio:.1f}x as fast")
    print(f"  cache hits in the last round: {hits['cached']} (uncached: {hits['uncached']})")
    rates: dict[bool, list[float]] = {False: [], True: []}
    for cached in (False, True):  # a warm-up pair, not counted: the first runs stall on GC
        await cached_write_rate(cached=cached)
    for _ in range(repeat):
        for cached in (False, True):
            rates[cached].append(await cached_write_rate(cached=cached))
    none, one = statistics.median(rates[False]), statistics.median(rates[True])
    ratios = [b / a for a, b in zip(rates[False], rates[True], strict=True)]
    spread = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    print(
        f"  64 writers, 6,400 puts: {none:,.0f}/s with no answer cached, {one:,.0f}/s with one "
        f"(medians; the rounds' ratios {spread}, median {statistics.median(ratios):.2f}x)"
    )


async def cached_write_rate(*, cached: bool) -> float:
    """Puts per second of 64 writers, with or without one answer in the query cache."""
    with tempfile.TemporaryDirectory() as folder:
        config = {"runtime": {"data_dir": folder}, "components": {"database": {}}}
        async with open_runtime(config, environ={}) as rt:
            store = rt.get(Store)
            await store.put("session/s1", {Keyword("session/user-id"): "u1"})
            if cached:
                await store.query(SELECTIVE, "u1")

            async def writer(index: int) -> None:
                for n in range(100):
                    await store.put(f"doc/{index}/{n % 10}", {Keyword("doc/n"): n})

            start = time.perf_counter()
            await asyncio.gather(*(writer(i) for i in range(64)))
            took = time.perf_counter() - start
            assert (await store.statistics()).query_cache_entries == int(cached)
            return 6400 / took


async def main(rows_count: int, repeat: int, *, schema: bool) -> None:
    rows = make_records(rows_count)
    print(machine())
    print(f"{rows_count} learning records (six attributes each), {repeat} alternated rounds")
    sides = SCHEMAS if schema else DECLARED
    for label, batch, part, update in (
        ("put_many, 64 per transaction", 64, rows, False),
        ("put_many, 64 per transaction, updates (score, text)", 64, rows, True),
        ("put, one per transaction", 1, rows[: rows_count // 10], False),
    ):
        if schema and update:
            continue  # the rules' cost is measured on new records
        rates: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(repeat):
            for side in sides:
                if schema:
                    rates[side].append(await schema_put_rate(part, side=side, batch=batch))
                else:
                    rates[side].append(
                        await put_rate(part, declared=side, batch=batch, update=update)
                    )
        print(f"{label} ({len(part)} records)")
        base = statistics.median(next(iter(rates.values())))
        for side, values in rates.items():
            runs = ", ".join(f"{rate:,.0f}" for rate in values)
            median = statistics.median(values)
            print(f"  {side:<24} median {median:>9,.0f} puts/s  {median / base:.2f}x  ({runs})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", action="store_true", help="the write figures instead")
    parser.add_argument(
        "--schema", action="store_true", help="with --writes: the cost of schema rules"
    )
    parser.add_argument(
        "--schema-check", action="store_true", help="time the check of stored data by a schema"
    )
    parser.add_argument("--cache", action="store_true", help="the query cache's figures instead")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    if args.schema_check:
        asyncio.run(schema_check(args.rows))
    elif args.writes:
        asyncio.run(main(args.rows, args.repeat, schema=args.schema))
    elif args.cache:
        asyncio.run(run_cache(args.entities, args.queries, args.repeat))
    else:
        asyncio.run(run_queries(args.entities, args.queries))
