"""Where a point read's time goes: the floor under bench_modes' read ratio with the cache off.

A read through the ``Store`` facade is an ask to the database actor and, in
the modes that read SQLite, a query on the actor's aiosqlite connection. In
``edn-only`` the actor answers from the in-memory map. This times each part
on its own, on the same 10 000 keys of ~100-byte maps as bench_modes:

- ``facade``: ``await store.get(key)`` with the read cache off, in
  ``edn-only`` and ``sqlite-only``, from 1 task and from 8 concurrent tasks
  (the actor then groups the 8 reads into one ``get_many``);
- ``hop``: an empty call on the SQLite connection's thread (``run_in_thread``),
  the thread hop every query pays;
- ``query``: the point ``SELECT`` and the value's decoding, run in the
  calling thread (no hop), per key, and as one 8-key ``get_many`` query;
- ``store``: ``SqliteStore.get`` / ``get_many`` (8 keys) without the actor:
  hop + query;
- ``edn``: ``EdnFileStore.get``, the dict lookup ``edn-only`` makes.

It prints the floor of the read ratio: (the actor's round trip, taken as the
``edn-only`` facade time less its dict lookup, plus the SQLite store's share
per read) over the ``edn-only`` facade time. Each figure is the median of
``--rounds`` runs, rounds alternating between the parts.

    .venv-test/bin/python benchmarks/bench_read_floor.py [--keys 10000] [--ops 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_modes import _config, _load
from garrison import open_runtime
from garrison.components.database import Store
from garrison.stores import EdnFileStore, SqliteStore
from garrison.stores._sqlite_connection import run_in_thread
from garrison.stores._sqlite_sql import GET, GET_MANY
from garrison.stores._values import decode_value

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

BATCH = 8


async def _per_op(fn: Callable[[str], Awaitable[Any]], keys: list[str], tasks: int) -> float:
    """Microseconds per call of ``fn(key)`` over ``keys``, shared by ``tasks`` tasks."""

    async def task(share: list[str]) -> None:
        for key in share:
            await fn(key)

    start = time.perf_counter()
    await asyncio.gather(*(task(keys[i::tasks]) for i in range(tasks)))
    return (time.perf_counter() - start) / len(keys) * 1e6


async def _facade(folder: Path, mode: str, keys: list[str], tasks: int) -> float:
    async with open_runtime(_config(folder, mode, 0), environ={}) as rt:
        store = rt.get(Store)
        await _per_op(store.get, keys[:2000], tasks)  # warm the page cache and the loop
        return await _per_op(store.get, keys, tasks)


async def _stores(sqlite_path: Path, edn_path: Path, keys: list[str]) -> dict[str, float]:
    results: dict[str, float] = {}
    async with SqliteStore(sqlite_path) as sqlite, EdnFileStore(edn_path) as edn:
        conn = sqlite.connection
        groups = [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]

        async def hop(_key: str) -> None:
            await run_in_thread(conn, lambda: None)

        async def store_many(index: str) -> None:
            await sqlite.get_many(groups[int(index)])

        results["hop"] = await _per_op(hop, keys, 1)
        results["store get"] = await _per_op(sqlite.get, keys, 1)
        indexes = [str(i) for i in range(len(groups))]
        results["store get_many/8"] = await _per_op(store_many, indexes, 1) / BATCH
        results["edn get"] = await _per_op(edn.get, keys, 1)
    with sqlite3.connect(sqlite_path) as raw:
        start = time.perf_counter()
        for key in keys:
            decode_value(raw.execute(GET, (key,)).fetchone()[0])
        results["query"] = (time.perf_counter() - start) / len(keys) * 1e6
        start = time.perf_counter()
        for group in groups:
            for _, text in raw.execute(GET_MANY, (orjson.dumps(group).decode(),)).fetchall():
                decode_value(text)
        results["query get_many/8"] = (time.perf_counter() - start) / len(keys) * 1e6
    return results


async def main_async(args: argparse.Namespace) -> None:
    print(f"# {machine()}")
    print(f"# {args.keys} keys, {args.ops} reads per figure, {args.rounds} rounds; microseconds")
    rng = random.Random(7)
    keys = [f"user/{rng.randrange(args.keys):08}" for _ in range(args.ops)]
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        root = Path(tmp)
        for mode in ("edn-only", "sqlite-only"):
            await _load(root / mode, mode, args.keys)
        # The same data in both files: the EDN file of the edn-only folder, the database
        # of the sqlite-only one.
        sqlite_path, edn_path = (
            root / "sqlite-only" / "garrison.db",
            root / "edn-only" / "memory.edn",
        )
        for _ in range(args.rounds):
            for mode in ("edn-only", "sqlite-only"):
                for tasks in (1, BATCH):
                    name = f"facade {mode} {tasks} task{'s' * (tasks > 1)}"
                    figure = await _facade(root / mode, mode, keys, tasks)
                    figures.setdefault(name, []).append(figure)
            for name, figure in (await _stores(sqlite_path, edn_path, keys)).items():
                figures.setdefault(name, []).append(figure)
    median = {name: statistics.median(runs) for name, runs in figures.items()}
    for name, value in median.items():
        runs = figures[name]
        print(f"{name:<32} {value:8.2f}   ({min(runs):.2f}-{max(runs):.2f})")
    for tasks, share in ((1, "store get"), (BATCH, "store get_many/8")):
        suffix = f"{tasks} task{'s' * (tasks > 1)}"
        edn_facade = median[f"facade edn-only {suffix}"]
        round_trip = edn_facade - median["edn get"]
        floor = (round_trip + median[share]) / edn_facade
        measured = median[f"facade sqlite-only {suffix}"] / edn_facade
        print(
            f"{suffix}: actor round trip {round_trip:.2f} + SQLite {median[share]:.2f} "
            f"= floor ratio {floor:.2f} (measured {measured:.2f}; budget 1.10)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
