"""The database component on PostgreSQL: group commit and grouped reads vs asyncpg.

Every garrison figure is an application's view: ``await store.put(...)`` /
``await store.get(...)`` through the Store facade (an ask to the database
actor, which batches, writes one PostgreSQL transaction per group through
:class:`PostgresStore`, and answers a put only after its commit), in
``sqlite-only`` mode with ``backend = "postgresql"``, read cache off. Values
are ~100-byte JSON maps (benchmarks/bench_database.py's rows).

Writes: ``--writers`` concurrent tasks share ``--ops`` puts. Baselines in the
same run, into garrison's own schema (its history trigger included), with
orjson in the timed region: asyncpg ``executemany`` of garrison's upsert in
one transaction; asyncpg with one ``await execute`` per row, each its own
transaction and commit, from one task (``--single-rows`` rows).

Reads: ``--readers`` tasks share ``--ops`` point gets of existing keys in
random order, vs asyncpg reading the same keys in batches of ``--readers``
(``key = ANY($1)``, one round trip per batch, plus ``orjson.loads``).

``--floor`` adds, in the same rounds, the two parts a get cannot do without:
:meth:`PostgresStore.get_many` alone (``--readers`` keys a call, no actor) and
the database actor's own round trip (an ``edn-only`` component answering from
its dict, ``--readers`` readers); their sum over the batched reads is the best
ratio an actor that waits for each group's query can reach.

Propagation (``--propagation`` writes): two runtimes on the same database in
one process (instances A and B, each with its own pool and listener); A puts
one key at a time, B watches; the latency of each is from the start of A's
``put`` (so it includes A's own commit) to the change reaching B's watcher.

Instances (``--instances 1,2,4``): that many ``garrison`` processes (each a
runtime of its own, ``--instance-writers`` writers, ``--instance-puts`` puts,
distinct keys) start, wait for one signal, and write at once into the same
database: the total throughput and each instance's put latency (p50, p99).

The server is the one ``GARRISON_TEST_POSTGRES_DSN`` names, else one started
from the installed binaries in a temporary directory with PostgreSQL's
default durability (``fsync`` and synchronous commits on), as the test suite
does (tests/_postgres.py). Rounds interleave garrison and the baselines (odd
rounds run the baselines first); each figure is a median, and each ratio is
printed per round with the median of the rounds' ratios.

    .venv-test/bin/python benchmarks/bench_postgres.py [--ops 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from tests._postgres import PostgresServer, find_binaries

from _common import machine
from bench_database import make_rows
from garrison import open_runtime
from garrison.components.database import Store
from garrison.stores import PostgresStore
from garrison.stores._postgres_sql import GET_MANY, UPSERT

_SCRIPT = str(Path(__file__).resolve())


async def _fresh_database(server: PostgresServer) -> str:
    """A new database with garrison's schema, made by opening a store on it."""
    dsn = await server.create_database()
    async with PostgresStore(dsn):
        pass
    return dsn


def _config(folder: str, dsn: str) -> dict[str, Any]:
    return {
        "runtime": {"data_dir": folder, "mailbox_capacity": 1000},
        "components": {
            "database": {
                "backend": "postgresql",
                "dsn": dsn,
                "mode": "sqlite-only",
                "cache_size": 0,
            }
        },
    }


async def garrison_puts(dsn: str, rows: list[tuple[str, Any]], writers: int) -> float:
    """Seconds for ``writers`` tasks to put ``rows`` through the facade."""
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(_config(folder, dsn), environ={}) as rt:
            store = rt.get(Store)
            share = [rows[i::writers] for i in range(writers)]

            async def writer(mine: list[tuple[str, Any]]) -> None:
                for key, value in mine:
                    await store.put(key, value)

            start = time.perf_counter()
            await asyncio.gather(*(writer(mine) for mine in share))
            return time.perf_counter() - start


async def garrison_gets(dsn: str, keys: list[str], readers: int) -> float:
    """Seconds for ``readers`` tasks to get ``keys`` through the facade (cache off)."""
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(_config(folder, dsn), environ={}) as rt:
            store = rt.get(Store)
            share = [keys[i::readers] for i in range(readers)]

            async def reader(mine: list[str]) -> None:
                for key in mine:
                    await store.get(key)

            start = time.perf_counter()
            await asyncio.gather(*(reader(mine) for mine in share))
            return time.perf_counter() - start


async def edn_only_gets(rows: list[tuple[str, Any]], keys: list[str], readers: int) -> float:
    """Seconds for ``readers`` tasks to get ``keys`` from an ``edn-only`` database component
    (the actor's round trip, the store a dict): the part of a get no database can remove."""
    with tempfile.TemporaryDirectory() as folder:
        config = {
            "runtime": {"data_dir": folder, "mailbox_capacity": 1000},
            "components": {"database": {"mode": "edn-only", "cache_size": 0}},
        }
        async with open_runtime(config, environ={}) as rt:
            store = rt.get(Store)
            await store.put_many(rows)
            await store.flush()  # the file written now, not while the readers run
            share = [keys[i::readers] for i in range(readers)]

            async def reader(mine: list[str]) -> None:
                for key in mine:
                    await store.get(key)

            start = time.perf_counter()
            await asyncio.gather(*(reader(mine) for mine in share))
            return time.perf_counter() - start


async def store_gets(dsn: str, keys: list[str], batch: int) -> float:
    """Seconds for ``PostgresStore.get_many`` (no actor) to read the keys, ``batch`` at a time."""
    async with PostgresStore(dsn) as store:
        start = time.perf_counter()
        for i in range(0, len(keys), batch):
            await store.get_many(keys[i : i + batch])
        return time.perf_counter() - start


def _params(rows: list[tuple[str, Any]], now: int) -> list[tuple[Any, ...]]:
    return [(key, "user", "cache", orjson.dumps(value).decode(), now) for key, value in rows]


async def executemany_puts(dsn: str, rows: list[tuple[str, Any]]) -> float:
    """Seconds for asyncpg ``executemany`` of the rows in one transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        params = _params(rows, time.time_ns() // 1000)
        async with conn.transaction():
            await conn.executemany(UPSERT, params)
        return time.perf_counter() - start
    finally:
        await conn.close()


async def row_by_row_puts(dsn: str, rows: list[tuple[str, Any]]) -> float:
    """Seconds for one task to write the rows with one await and one commit each."""
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        for key, value in rows:
            await conn.execute(
                UPSERT, key, "user", "cache", orjson.dumps(value).decode(), time.time_ns() // 1000
            )
        return time.perf_counter() - start
    finally:
        await conn.close()


async def batched_gets(dsn: str, keys: list[str], batch: int) -> float:
    """Seconds for asyncpg to read the keys in batches of ``batch`` (one query each)."""
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        for i in range(0, len(keys), batch):
            for _key, text in await conn.fetch(GET_MANY, keys[i : i + batch]):
                orjson.loads(text)
        return time.perf_counter() - start
    finally:
        await conn.close()


async def propagation(dsn: str, writes: int) -> list[float]:
    """Seconds from A's put to B's watcher, for each of ``writes`` sequential puts."""
    with tempfile.TemporaryDirectory() as folder:
        async with (
            open_runtime(_config(folder + "/a", dsn), environ={}) as first,
            open_runtime(_config(folder + "/b", dsn), environ={}) as second,
        ):
            a, b = first.get(Store), second.get(Store)
            started: dict[str, float] = {}
            latencies: list[float] = []
            async with b.watch("p/") as changes:

                async def receive() -> None:
                    async for change in changes:
                        latencies.append(time.perf_counter() - started[change.key])
                        if len(latencies) == writes:
                            return

                receiver = asyncio.create_task(receive())
                for i in range(writes):
                    key = f"p/{i}"
                    started[key] = time.perf_counter()
                    await a.put(key, i)
                    await asyncio.sleep(0.002)  # ~400 writes/s, not a saturating burst
                await asyncio.wait_for(receiver, 30)
            return latencies


async def instance_worker(dsn: str, name: str, puts: int, writers: int) -> None:
    """One instance (``--instance-worker``): ready, wait for a line on stdin, write, report."""
    rows = [(f"{name}/{key}", value) for key, value in make_rows(puts)]
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(_config(folder, dsn), environ={}) as rt:
            store = rt.get(Store)
            latencies: list[float] = []

            async def writer(mine: list[tuple[str, Any]]) -> None:
                for key, value in mine:
                    began = time.perf_counter()
                    await store.put(key, value)
                    latencies.append(time.perf_counter() - began)

            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            start = time.perf_counter()
            await asyncio.gather(*(writer(rows[i::writers]) for i in range(writers)))
            elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed": elapsed, "latencies": latencies}), flush=True)


async def instances(dsn: str, count: int, puts: int, writers: int) -> tuple[float, list[Any]]:
    """Total puts per second of ``count`` instance processes writing at once, and each one's
    latencies."""
    script = _SCRIPT
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            "--instance-worker",
            dsn,
            "--name",
            f"i{n}",
            "--instance-puts",
            str(puts),
            "--instance-writers",
            str(writers),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,  # the report is one line of every latency
        )
        for n in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    reports = []
    for proc in procs:
        assert proc.stdout is not None
        reports.append(json.loads(await proc.stdout.readline()))
        await proc.wait()
    wall = max(report["elapsed"] for report in reports)
    return count * puts / wall, [report["latencies"] for report in reports]


async def _baselines(
    server: PostgresServer,
    rows: list[tuple[str, Any]],
    single: list[tuple[str, Any]],
    results: dict[str, list[float]],
) -> None:
    """One round of the write baselines, each into a fresh database."""
    dsn = await _fresh_database(server)
    results["executemany"].append(await executemany_puts(dsn, rows) / len(rows))
    await server.drop_database(dsn)
    dsn = await _fresh_database(server)
    results["row"].append(await row_by_row_puts(dsn, single) / len(single))
    await server.drop_database(dsn)


def _ratios(results: dict[str, list[float]], baseline: str, ours: str) -> str:
    """Each round's baseline / garrison ratio, and their median."""
    ratios = [b / g for b, g in zip(results[baseline], results[ours], strict=True)]
    shown = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    return f"rounds {shown}; median {statistics.median(ratios):.2f}x"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--single-rows", type=int, default=2_000)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--propagation", type=int, default=2000)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the get's parts: PostgresStore.get_many alone, an edn-only actor",
    )
    parser.add_argument("--instances", default="", help="e.g. 1,2,4 (only this part then)")
    parser.add_argument("--instance-puts", type=int, default=5000)
    parser.add_argument("--instance-writers", type=int, default=32)
    parser.add_argument("--instance-worker", metavar="DSN", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="i0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instance_worker:
        await instance_worker(
            args.instance_worker, args.name, args.instance_puts, args.instance_writers
        )
        return
    server = PostgresServer()
    if not server.dsn and find_binaries() is None:
        sys.exit("no PostgreSQL: set GARRISON_TEST_POSTGRES_DSN or install the server")
    server.start(durable=True)
    if args.instances:
        try:
            print(f"{machine()}; load average {os.getloadavg()[0]:.1f}")
            for count in (int(part) for part in args.instances.split(",")):
                dsn = await _fresh_database(server)
                rate, latencies = await instances(
                    dsn, count, args.instance_puts, args.instance_writers
                )
                await server.drop_database(dsn)
                each = ", ".join(
                    f"p50 {_percentile(mine, 0.5) * 1e3:.2f} / p99 "
                    f"{_percentile(mine, 0.99) * 1e3:.2f} ms"
                    for mine in latencies
                )
                print(f"{count} instance(s): {rate:,.0f} puts/s in total; put latency {each}")
        finally:
            server.stop()
        return
    try:
        rows = make_rows(args.ops)
        single = rows[: args.single_rows]
        keys = [key for key, _ in rows]
        random.Random(3).shuffle(keys)
        results: dict[str, list[float]] = {
            name: [] for name in ("put", "executemany", "row", "get", "batched", "store", "edn")
        }
        for round_number in range(args.repeat):
            # Odd rounds run the baselines first: neither side always comes first.
            first = round_number % 2 == 1
            if first:
                await _baselines(server, rows, single, results)
            dsn = await _fresh_database(server)
            results["put"].append(await garrison_puts(dsn, rows, args.writers) / len(rows))
            if first:
                results["get"].append(await garrison_gets(dsn, keys, args.readers) / len(keys))
                results["batched"].append(await batched_gets(dsn, keys, args.readers) / len(keys))
            else:
                results["batched"].append(await batched_gets(dsn, keys, args.readers) / len(keys))
                results["get"].append(await garrison_gets(dsn, keys, args.readers) / len(keys))
            if args.floor:
                results["store"].append(await store_gets(dsn, keys, args.readers) / len(keys))
                results["edn"].append(await edn_only_gets(rows, keys, args.readers) / len(keys))
            await server.drop_database(dsn)
            if not first:
                await _baselines(server, rows, single, results)
        dsn = await _fresh_database(server)
        latencies = await propagation(dsn, args.propagation) if args.propagation else []
        await server.drop_database(dsn)
    finally:
        server.stop()
    us = {name: statistics.median(values) * 1e6 for name, values in results.items() if values}
    load = os.getloadavg()[0]
    print(f"{machine()}; load average {load:.1f}; {args.ops} ops, median of {args.repeat}")
    print(f"garrison put, {args.writers} writers            {us['put']:8.1f} us/op")
    print(
        f"asyncpg executemany, one transaction   {us['executemany']:8.1f} us/op"
        f"   garrison {us['executemany'] / us['put']:.2f}x (target >= 0.5x)"
    )
    print(
        f"asyncpg one await + commit per row     {us['row']:8.1f} us/op"
        f"   garrison {us['row'] / us['put']:.2f}x (target >= 10x)"
    )
    print(f"garrison get, {args.readers} readers            {us['get']:8.1f} us/op")
    print(
        f"asyncpg batched reads ({args.readers} keys/query)   {us['batched']:8.1f} us/op"
        f"   garrison {us['batched'] / us['get']:.2f}x (target >= 0.5x)"
    )
    if args.floor:
        floor = us["edn"] + us["store"]
        print(f"PostgresStore.get_many, {args.readers} keys a call  {us['store']:8.1f} us/key")
        print(f"edn-only get, {args.readers} readers (the actor)  {us['edn']:8.1f} us/op")
        print(
            f"floor: actor + store = {floor:.1f} us/op; best ratio to batched reads "
            f"{us['batched'] / floor:.2f}x"
        )
    for baseline, ours in (("executemany", "put"), ("row", "put"), ("batched", "get")):
        print(f"  {baseline} / {ours}: {_ratios(results, baseline, ours)}")
    if latencies:
        p50, p99 = (_percentile(latencies, share) * 1e3 for share in (0.5, 0.99))
        print(
            f"A put -> B watch, {len(latencies)} writes: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {max(latencies) * 1e3:.2f} ms (aim: p99 < 50 ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
