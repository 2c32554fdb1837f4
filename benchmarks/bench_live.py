"""Live queries and the audit trail: what they cost writers, how fast results arrive.

- commit-to-subscriber latency: ``--subscriptions`` live queries (one prefix
  each) while a writer commits ``--rate`` puts per second for ``--seconds``,
  each put to a random subscribed prefix carrying its send time; each result
  a subscriber receives gives one latency (receive time minus the send time
  of the newest value it holds). p50 and p99.
- write throughput with those subscriptions against none: 64 concurrent
  writers, ``--writes`` puts in all, ``--rounds`` alternated rounds (none,
  then the subscriptions), medians and the median of the rounds' ratios.
- the same with ``--subscriptions`` Datalog live queries instead, each over
  an attribute of its own (``[:find ?e ?v :where [?e :s7/v ?v]]``, the
  attributes declared indexed), each put writing one of those attributes: a
  put wakes one live query, which runs its query again.
- revert of ``--revert-keys`` keys through the component (plan + one
  transaction), and its dry run.
- what recording the actor and reason costs a write: 200 transactions of 50
  upserts with raw ``sqlite3`` into schema 2 (no audit columns) and schema 3
  (the audit columns on each transaction's commit row), alternated, medians.

Run: ``.venv-test/bin/python benchmarks/bench_live.py``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
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
from garrison.edn import Keyword
from garrison.stores._schema import MIGRATIONS

_UPSERT = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1) ON CONFLICT (key) DO UPDATE SET "
    "value = excluded.value, updated_at = excluded.updated_at, version = version + 1"
)


def _schema_writes(version: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        db = sqlite3.connect(os.path.join(directory, "t.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.create_function("garrison_upgrade_format_1", 1, lambda text: text)
        for migration in MIGRATIONS[:version]:
            for statement in migration:
                if isinstance(statement, str):
                    db.execute(statement)
                else:
                    statement(db)
        commit = (
            "INSERT INTO commits (at, first_seq, actor, reason, event) "
            "VALUES (?, 1, 'app', NULL, NULL)"
            if version >= 3
            else "INSERT INTO commits (at, first_seq) VALUES (?, 1)"
        )
        start = time.perf_counter()
        for now in range(1, 201):
            db.execute("BEGIN IMMEDIATE")
            db.execute(commit, (now,))
            rows = [(f"user/{now % 50}/{i}", "user", "user", '{"a":1}', now) for i in range(50)]
            db.executemany(_UPSERT, rows)
            db.execute("COMMIT")
        took = time.perf_counter() - start
        db.close()
    return took


def _config(data_dir: str, **options: Any) -> dict[str, Any]:
    database = {"watch_buffer": 64, **options}
    return {"runtime": {"data_dir": data_dir}, "components": {"database": database}}


async def _latency(subscriptions: int, rate: int, seconds: float) -> tuple[list[float], int]:
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(_config(data_dir), environ={}) as rt:
            store = rt.get(Store)
            latencies: list[float] = []
            lives = [store.subscribe(f"s/{i}/") for i in range(subscriptions)]
            for live in lives:
                await anext(live)

            async def consume(live: Any) -> None:
                async for result in live:
                    now = time.perf_counter()
                    latencies.append(now - max(value for _, value in result))

            consumers = [asyncio.ensure_future(consume(live)) for live in lives]
            count = int(rate * seconds)
            start = time.perf_counter()
            for n in range(count):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the writer to the rate
                await store.put(f"s/{random.randrange(subscriptions)}/v", time.perf_counter())
            await asyncio.sleep(0.1)  # let the last results arrive
            for live in lives:
                live.close()
            await asyncio.gather(*consumers)
            resyncs = sum(live.resyncs for live in lives)
    return latencies, resyncs


async def _throughput(subscriptions: int, writes: int) -> float:
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(_config(data_dir), environ={}) as rt:
            store = rt.get(Store)
            lives = [store.subscribe(f"s/{i}/") for i in range(subscriptions)]
            for live in lives:
                await anext(live)
            consumers = [asyncio.ensure_future(_drain(live)) for live in lives]

            async def writer(index: int) -> None:
                for n in range(writes // 64):
                    await store.put(f"s/{(index * 31 + n) % max(subscriptions, 1)}/v", n)

            start = time.perf_counter()
            await asyncio.gather(*(writer(i) for i in range(64)))
            took = time.perf_counter() - start
            for live in lives:
                live.close()
            await asyncio.gather(*consumers)
    return (writes // 64 * 64) / took


async def _datalog_throughput(subscriptions: int, writes: int) -> float:
    slots = max(subscriptions, 1)
    schema = {"d": {f":s{i}/v": {"indexed": True} for i in range(slots)}}
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(_config(data_dir, schema=schema), environ={}) as rt:
            store = rt.get(Store)
            lives = [
                store.subscribe(f"[:find ?e ?v :where [?e :s{i}/v ?v]]")
                for i in range(subscriptions)
            ]
            for live in lives:
                await anext(live)
            consumers = [asyncio.ensure_future(_drain(live)) for live in lives]

            async def writer(index: int) -> None:
                for n in range(writes // 64):
                    slot = (index * 31 + n) % slots
                    await store.put(f"d/{slot}", {Keyword(f"s{slot}/v"): n})

            start = time.perf_counter()
            await asyncio.gather(*(writer(i) for i in range(64)))
            took = time.perf_counter() - start
            for live in lives:
                live.close()
            await asyncio.gather(*consumers)
    return (writes // 64 * 64) / took


async def _floor_throughput(subscriptions: int, writes: int) -> float:
    """No live query: each put wakes one of ``subscriptions`` bare consumer tasks instead.

    The least a result per write can cost writers on one event loop: a task
    woken, one step run, a one-entry result built. With ``subscriptions`` 0 it
    is the plain write throughput.
    """
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(_config(data_dir), environ={}) as rt:
            store = rt.get(Store)
            events = [asyncio.Event() for _ in range(subscriptions)]
            done = False

            async def consume(event: asyncio.Event, index: int) -> None:
                while not done:
                    await event.wait()
                    event.clear()
                    _result = [(f"s/{index}/v", index)]

            consumers = [asyncio.ensure_future(consume(e, i)) for i, e in enumerate(events)]

            async def writer(index: int) -> None:
                for n in range(writes // 64):
                    slot = (index * 31 + n) % max(subscriptions, 1)
                    await store.put(f"s/{slot}/v", n)
                    if events:
                        events[slot].set()

            start = time.perf_counter()
            await asyncio.gather(*(writer(i) for i in range(64)))
            took = time.perf_counter() - start
            done = True
            for event in events:
                event.set()
            await asyncio.gather(*consumers)
    return (writes // 64 * 64) / took


async def _drain(live: Any) -> None:
    async for _ in live:
        pass


async def _revert(keys: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(_config(data_dir), environ={}) as rt:
            store = rt.get(Store)
            await store.put_many({f"doc/{i}": {"v": i} for i in range(keys)})
            moment = (await store.history(f"doc/{keys - 1}"))[-1].at
            await store.put_many({f"doc/{i}": {"v": i + 1} for i in range(keys)})
            start = time.perf_counter()
            plan = await store.revert("doc/", to=moment, dry_run=True)
            dry = time.perf_counter() - start
            start = time.perf_counter()
            await store.revert("doc/", to=moment)
            took = time.perf_counter() - start
            assert len(plan) == keys
            assert await store.get("doc/7") == {"v": 7}
    return dry, took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writes", type=int, default=6400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--revert-keys", type=int, default=10_000)
    args = parser.parse_args()
    print(machine())
    latencies, resyncs = await _latency(args.subscriptions, args.rate, args.seconds)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"commit to subscriber, {args.subscriptions} live queries, {args.rate} writes/s: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(latencies)} results, {resyncs} resyncs)"
    )
    for label, measure in (
        ("prefix", _throughput),
        ("Datalog", _datalog_throughput),
        ("floor: a bare task woken per put instead", _floor_throughput),
    ):
        alone, watched, ratios = [], [], []
        for _ in range(args.rounds):
            alone.append(await measure(0, args.writes))
            watched.append(await measure(args.subscriptions, args.writes))
            ratios.append(watched[-1] / alone[-1])
        spread = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"write throughput, 64 writers, {label}: {statistics.median(alone):,.0f}/s alone, "
            f"{statistics.median(watched):,.0f}/s with {args.subscriptions} live queries "
            f"(medians of {args.rounds} rounds; ratio median "
            f"{statistics.median(ratios):.2f}x, rounds {spread})"
        )
    v2, v3 = [], []
    for _ in range(7):
        v2.append(_schema_writes(2))
        v3.append(_schema_writes(3))
    before, after = statistics.median(v2), statistics.median(v3)
    print(
        f"10,000 upserts in 200 transactions, raw sqlite3: schema 2 {before * 1e3:.1f} ms, "
        f"schema 3 (audit) {after * 1e3:.1f} ms ({after / before:.2f}x)"
    )
    dry, took = await _revert(args.revert_keys)
    print(f"revert of {args.revert_keys} keys: plan {dry * 1e3:.0f} ms, revert {took * 1e3:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
