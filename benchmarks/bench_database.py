"""The database component under load: group commit and grouped reads vs their baselines.

Every garrison figure is an application's view: ``await store.put(...)`` /
``await store.get(...)`` through the Store facade (an ask to the database
actor, which batches, talks to SQLite on aiosqlite's thread, and answers a
write only after its commit), in ``sqlite-only`` mode, ``synchronous=NORMAL``,
WAL, read cache off. Values are ~100-byte JSON maps.

Writes: ``--writers`` concurrent tasks share ``--ops`` puts. Baselines in the
same run, on the same rows and serialising with orjson in the timed region:
raw ``sqlite3`` ``executemany`` in one transaction, into a bare
``(key PRIMARY KEY, value)`` table ("raw kv") and into garrison's own schema
with its history and its attribute index rows ("raw schema"); aiosqlite with
one ``await execute`` and one ``await commit`` per row into the bare table,
from one task
(``--single-task-rows`` rows): the issue's "one await and one commit per
row", where every commit carries exactly one row; this is the compared
baseline. For reference only, the same from as many concurrent tasks sharing
one connection as garrison has writers (a naive application): there one
task's commit also commits the rows other tasks wrote since (an accidental
group commit, with weaker guarantees than garrison's), so it is not one
commit per row. diskcache ``Cache.set`` (``--diskcache-rows`` rows; it never
awaits, so tasks would not change it).

Reads: ``--readers`` concurrent tasks share ``--ops`` point gets of existing
keys in random order, vs raw ``sqlite3`` point reads (one ``SELECT`` per key,
plus ``orjson.loads``) and aiosqlite ``execute_fetchall`` per key from one
task (the compared baseline) and, for reference, from as many tasks on one
connection.

Tracing (``--tracing``): the same write and read runs in fresh interpreters with
no SDK, with the SDK as garrison installs it (batch processor, always-on
sampler, an exporter that does nothing), and with a 1% parent-based ratio
sampler; the cost per operation is the difference from no SDK.

Memory (``--memory-keys``): in a fresh interpreter, fill a sqlite-only database
with N keys (put_many of 10k), then do 200k random point gets through the
store with the configured read cache, and report resident memory (VmRSS); run
for N/10 and N keys to show it does not grow with the data.

``--garrison-only``: one garrison round, wall and CPU time per op, to compare
two checkouts run alternately (``PYTHONPATH=<other checkout>/src``); ``--mode``
picks the store mode (``sqlite-only`` by default).

``--floor``: garrison, a lean actor and the issue's aiosqlite baselines,
alternated in rounds. The lean actor is the least any asyncio batching actor
can do per operation (a list for a mailbox, one future per caller, one
dedicated ``sqlite3`` thread, group commit into garrison's schema with
SQLite's checkpoints off, one ``GET_MANY`` per batch, and nothing else); it
prints what the 15x / 10x targets allow per operation against what that
floor takes.

``--checkpoint-cost``: raw ``sqlite3``, ``--ops`` rows in 64-row transactions
into garrison's schema, with SQLite's in-commit WAL checkpoints and without:
what they cost a writer, and why SqliteStore checkpoints in the background.

Rounds interleave garrison and its baselines so background load hits them
alike; each figure is a median, and the spread (max-min over median) is printed.

    .venv-test/bin/python benchmarks/bench_database.py [--ops 200000] [--repeat 3]
        [--tracing] [--memory-keys 1000000] [--garrison-only] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
import diskcache
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import garrison
from _common import machine, report
from garrison import open_runtime
from garrison.components.database import Store
from garrison.stores._attributes import ATTRIBUTE_SCHEMA
from garrison.stores._schema import MIGRATIONS
from garrison.stores._sqlite_sql import GET_MANY, RECORD_COMMIT, UPSERT
from garrison.stores._values import encode_value

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

    from garrison import Runtime

Row = tuple[str, dict[str, Any]]


def make_rows(count: int, seed: int = 7) -> list[Row]:
    """Keys ``user/00000042`` and ~100-byte JSON maps."""
    rng = random.Random(seed)
    return [
        (
            f"user/{i:08}",
            {
                "name": f"user-{i:08}",
                "age": rng.randrange(90),
                "tags": ["alpha", "beta"],
                "active": i % 3 == 0,
                "score": round(rng.random() * 100, 3),
                "city": "Lisbon",
            },
        )
        for i in range(count)
    ]


def _spread(values: list[float]) -> str:
    return f"{(max(values) - min(values)) / statistics.median(values):.0%}"


# -- garrison --------------------------------------------------------------------


def _config(folder: Path, cache_size: int = 0, mode: str = "sqlite-only") -> dict[str, Any]:
    return {
        "runtime": {"data_dir": str(folder), "mailbox_capacity": 1000},
        "components": {
            "database": {"mode": mode, "cache_size": cache_size, "synchronous": "NORMAL"}
        },
    }


async def _garrison_writes(rt: Runtime, rows: list[Row], writers: int) -> float:
    store = rt.get(Store)
    slices = [rows[i::writers] for i in range(writers)]

    async def writer(part: list[Row]) -> None:
        put = store.put
        for key, value in part:
            await put(key, value)

    start = time.perf_counter()
    await asyncio.gather(*(writer(part) for part in slices))
    return time.perf_counter() - start


async def _garrison_reads(rt: Runtime, keys: list[str], readers: int) -> float:
    store = rt.get(Store)
    slices = [keys[i::readers] for i in range(readers)]

    async def reader(part: list[str]) -> None:
        get = store.get
        for key in part:
            if await get(key) is None:
                raise AssertionError(key)

    start = time.perf_counter()
    await asyncio.gather(*(reader(part) for part in slices))
    return time.perf_counter() - start


async def garrison_round(
    folder: Path, rows: list[Row], keys: list[str], writers: int, readers: int
) -> tuple[float, float]:
    """(write seconds, read seconds) through a fresh runtime's database component."""
    async with open_runtime(_config(folder), environ={}) as rt:
        writes = await _garrison_writes(rt, rows, writers)
        reads = await _garrison_reads(rt, keys, readers)
    return writes, reads


async def _garrison_only(ops: int, writers: int, readers: int, mode: str) -> dict[str, float]:
    rows = make_rows(ops)
    keys = [key for key, _ in rows]
    random.Random(11).shuffle(keys)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_runtime(_config(Path(tmp), mode=mode), environ={}) as rt:
            cpu, loop = time.process_time(), time.thread_time()
            writes = await _garrison_writes(rt, rows, writers)
            write_cpu, write_loop = time.process_time() - cpu, time.thread_time() - loop
            cpu, loop = time.process_time(), time.thread_time()
            reads = await _garrison_reads(rt, keys, readers)
            read_cpu, read_loop = time.process_time() - cpu, time.thread_time() - loop
    return {
        "write": writes / ops,
        "write_cpu": write_cpu / ops,
        "write_loop": write_loop / ops,
        "read": reads / ops,
        "read_cpu": read_cpu / ops,
        "read_loop": read_loop / ops,
    }


def run_garrison_only(args: argparse.Namespace) -> None:
    """One garrison round, wall and CPU time per op: for before/after runs of two checkouts.

    CPU time (both threads of the process) moves much less than wall time when
    other processes load the machine; "loop" is the CPU time of the event
    loop's thread alone (the benchmark's own caller tasks included), where
    the per-operation Python of the actor path runs.
    """
    f = asyncio.run(_garrison_only(args.ops, args.writers, args.readers, args.mode))
    print(
        f"{Path(garrison.__file__).parent} ({args.mode}): put {f['write'] * 1e6:.2f} us/op "
        f"(CPU {f['write_cpu'] * 1e6:.2f}, loop {f['write_loop'] * 1e6:.2f}), "
        f"get {f['read'] * 1e6:.2f} us/op "
        f"(CPU {f['read_cpu'] * 1e6:.2f}, loop {f['read_loop'] * 1e6:.2f})"
    )


# -- baselines -------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def raw_kv_writes(path: Path, rows: list[Row]) -> float:
    conn = _connect(path)
    conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [(key, orjson.dumps(value).decode()) for key, value in rows],
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _schema(conn: sqlite3.Connection) -> None:
    """garrison's tables: schema 1's and the attribute index (which these writes, declaring
    no indexed attribute as garrison's default, leave empty)."""
    for statement in (*MIGRATIONS[0], *ATTRIBUTE_SCHEMA):
        conn.execute(statement)


def raw_schema_writes(path: Path, rows: list[Row]) -> float:
    conn = _connect(path)
    _schema(conn)
    start = time.perf_counter()
    now = time.time_ns() // 1000
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO commits (at, first_seq) VALUES (?, 0)", (now,))
    conn.executemany(
        "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
        "VALUES (?1, ?2, ?2, ?3, ?4, ?4, 1) ON CONFLICT (key) DO UPDATE SET "
        "value = excluded.value, updated_at = excluded.updated_at, version = version + 1",
        [(key, "user", orjson.dumps(value).decode(), now) for key, value in rows],
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def raw_schema_group_commits(
    path: Path, rows: list[Row], autocheckpoint: int
) -> tuple[float, float]:
    """(wall, CPU) seconds: 64-row transactions into garrison's schema, as the actor writes.

    ``autocheckpoint`` is SQLite's ``wal_autocheckpoint`` (1000 is its default;
    0 turns its checkpoints off, as SqliteStore's writer does in effect).
    """
    conn = _connect(path)
    conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
    _schema(conn)
    start, cpu = time.perf_counter(), time.thread_time()
    now = time.time_ns() // 1000
    for first in range(0, len(rows), 64):
        now += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(RECORD_COMMIT, (now,))
        conn.executemany(
            UPSERT,
            [
                (key, "user", "user", encode_value(value), now)
                for key, value in rows[first : first + 64]
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start, time.thread_time() - cpu
    conn.close()
    return elapsed


def run_checkpoint_cost(args: argparse.Namespace) -> None:
    """What SQLite's in-commit checkpoints cost a writer (why SqliteStore moves them off)."""
    rows = make_rows(args.ops)
    results: dict[int, list[tuple[float, float]]] = {1000: [], 0: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for setting, values in results.items():
                values.append(
                    raw_schema_group_commits(Path(tmp) / f"c{i}-{setting}.db", rows, setting)
                )
    print(f"raw sqlite3, {args.ops} rows in 64-row transactions into garrison's schema, per row:")
    for setting, values in results.items():
        walls = [wall / len(rows) for wall, _ in values]
        cpus = [cpu / len(rows) for _, cpu in values]
        label = "SQLite's checkpoints (1000 pages)" if setting else "no checkpoints in the writer"
        print(
            f"  {label:<34} wall {statistics.median(walls) * 1e6:6.2f} us "
            f"(spread {_spread(walls)}), CPU {statistics.median(cpus) * 1e6:6.2f} us"
        )


def raw_reads(path: Path, keys: list[str]) -> float:
    conn = _connect(path)
    start = time.perf_counter()
    for key in keys:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        orjson.loads(row[0])
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


_KV_UPSERT = (
    "INSERT INTO kv (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


async def aiosqlite_writes(path: Path, rows: list[Row], tasks: int) -> float:
    """``tasks`` concurrent tasks share one connection, one execute and one commit per row.

    What a naive application does. The tasks' rows land in whatever implicit
    transaction is open, and one task's commit may commit another's rows
    (or find nothing to commit): the baseline gets weaker guarantees than
    garrison gives, never stronger.
    """
    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID")
        await conn.commit()

        async def writer(part: list[Row]) -> None:
            execute, commit = conn.execute, conn.commit
            for key, value in part:
                await execute(_KV_UPSERT, (key, orjson.dumps(value).decode()))
                await commit()

        start = time.perf_counter()
        await asyncio.gather(*(writer(rows[i::tasks]) for i in range(tasks)))
        return time.perf_counter() - start


async def aiosqlite_reads(path: Path, keys: list[str], tasks: int) -> float:
    """``tasks`` concurrent tasks share one connection, one ``execute_fetchall`` per key."""
    async with aiosqlite.connect(path) as conn:

        async def reader(part: list[str]) -> None:
            fetch = conn.execute_fetchall
            for key in part:
                rows = await fetch("SELECT value FROM kv WHERE key = ?", (key,))
                orjson.loads(next(iter(rows))[0])

        start = time.perf_counter()
        await asyncio.gather(*(reader(keys[i::tasks]) for i in range(tasks)))
        return time.perf_counter() - start


def diskcache_writes(folder: Path, rows: list[Row]) -> float:
    with diskcache.Cache(str(folder)) as cache:
        start = time.perf_counter()
        for key, value in rows:
            cache.set(key, value)
        return time.perf_counter() - start


def _workload(args: argparse.Namespace) -> tuple[list[Row], list[str], list[Row]]:
    """(rows, their keys in random order, the rows the one-task aiosqlite baselines use)."""
    rows = make_rows(args.ops)
    keys = [key for key, _ in rows]
    random.Random(11).shuffle(keys)
    return rows, keys, rows[: args.single_task_rows]


# -- the floor: the least any asyncio batching actor can do -------------------------


class _LeanActor:
    """The least an asyncio actor can do per operation: no garrison, nothing optional.

    Callers append ``(item, future)`` to a list and await the future; one task
    takes the whole list at once and hands it to one dedicated ``sqlite3``
    thread, which answers by ``call_soon_threadsafe``. Writes are one
    ``BEGIN IMMEDIATE`` + commit record + ``executemany`` upsert into garrison's
    schema + ``COMMIT`` per batch, with SQLite's checkpoints off (cheaper than
    any real store can be) or, with ``autocheckpoint=1000``, as plain SQLite
    makes them (inside the commit that takes the log past 1000 pages); reads
    are one ``GET_MANY`` per batch, decoded with ``orjson.loads``. No
    messages, supervision, key checks, value format, cache, feed, tracing or
    error handling: a lower bound on garrison's cost per ``await
    store.put/get`` on this machine, not a design.
    """

    def __init__(self, path: Path, autocheckpoint: int = 0) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        pragmas = ("journal_mode = WAL", "synchronous = NORMAL")
        for pragma in (*pragmas, f"wal_autocheckpoint = {autocheckpoint}"):
            self.conn.execute(f"PRAGMA {pragma}")
        for statement in MIGRATIONS[0]:
            self.conn.execute(statement)
        self.loop = asyncio.get_running_loop()
        self.box: list[tuple[Any, asyncio.Future[Any]]] = []
        self.wake: asyncio.Future[None] | None = None
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work)
        self.thread.start()
        self.task = asyncio.ensure_future(self._run())
        self.now = time.time_ns() // 1000

    def _work(self) -> None:
        conn, call = self.conn, self.loop.call_soon_threadsafe
        while (job := self.jobs.get()) is not None:
            batch, future = job
            try:
                if type(batch[0]) is tuple:
                    self.now += 1
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(RECORD_COMMIT, (self.now,))
                    conn.executemany(
                        UPSERT,
                        [(k, "user", "user", orjson.dumps(v).decode(), self.now) for k, v in batch],
                    )
                    conn.execute("COMMIT")
                    call(future.set_result, None)
                else:
                    rows = conn.execute(GET_MANY, (orjson.dumps(batch).decode(),)).fetchall()
                    call(future.set_result, rows)
            except BaseException as exc:
                call(future.set_exception, exc)

    async def _run(self) -> None:
        loop = self.loop
        while True:
            if not self.box:
                self.wake = loop.create_future()
                await self.wake
                self.wake = None
            batch, self.box = self.box, []
            if batch[-1][0] is None:
                return
            done = loop.create_future()
            self.jobs.put(([item for item, _ in batch], done))
            result = await done
            if result is None:
                for _, future in batch:
                    future.set_result(None)
            else:
                values = dict(result)
                for key, future in batch:
                    future.set_result(orjson.loads(values[key]))

    def ask(self, item: Any) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        self.box.append((item, future))
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        return future

    async def close(self) -> None:
        self.ask(None)
        await self.task
        self.jobs.put(None)
        await asyncio.to_thread(self.thread.join)
        self.conn.close()


async def floor_round(
    path: Path, rows: list[Row], keys: list[str], tasks: int, autocheckpoint: int = 0
) -> tuple[float, float]:
    """(put, get) seconds per op of :class:`_LeanActor` with ``tasks`` writers, then readers."""
    actor = _LeanActor(path, autocheckpoint)
    try:

        async def writer(part: list[Row]) -> None:
            for row in part:
                await actor.ask(row)

        async def reader(part: list[str]) -> None:
            for key in part:
                if await actor.ask(key) is None:
                    raise AssertionError(key)

        start = time.perf_counter()
        await asyncio.gather(*(writer(rows[i::tasks]) for i in range(tasks)))
        puts = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(reader(keys[i::tasks]) for i in range(tasks)))
        gets = time.perf_counter() - start
    finally:
        await actor.close()
    return puts / len(rows), gets / len(keys)


def run_floor(args: argparse.Namespace) -> None:
    """Garrison, the lean actor and the issue's aiosqlite baselines, alternated in rounds.

    Prints what each 15x / 10x target allows per operation and what the lean
    actor, the floor of any asyncio actor design on this machine, takes.
    """
    rows, keys, single = _workload(args)
    cached = rows[: args.diskcache_rows]
    runs: dict[str, list[float]] = {
        name: []
        for name in (
            "garrison put",
            "lean actor put",
            "lean, checkpoints put",
            "aiosqlite 1-task put",
            "diskcache put",
            "garrison get",
            "lean actor get",
            "lean, checkpoints get",
            "aiosqlite 1-task get",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for i in range(args.repeat):
            writes, reads = asyncio.run(
                garrison_round(base / f"g{i}", rows, keys, args.writers, args.readers)
            )
            runs["garrison put"].append(writes / len(rows))
            runs["garrison get"].append(reads / len(keys))
            put, get = asyncio.run(floor_round(base / f"lean{i}.db", rows, keys, args.writers))
            runs["lean actor put"].append(put)
            runs["lean actor get"].append(get)
            put, get = asyncio.run(floor_round(base / f"ck{i}.db", rows, keys, args.writers, 1000))
            runs["lean, checkpoints put"].append(put)
            runs["lean, checkpoints get"].append(get)
            runs["diskcache put"].append(diskcache_writes(base / f"dc{i}", cached) / len(cached))
            kv = base / f"aio{i}.db"
            runs["aiosqlite 1-task put"].append(
                asyncio.run(aiosqlite_writes(kv, single, 1)) / len(single)
            )
            one_keys = [key for key, _ in single]
            random.Random(i).shuffle(one_keys)
            runs["aiosqlite 1-task get"].append(
                asyncio.run(aiosqlite_reads(kv, one_keys, 1)) / len(one_keys)
            )
    print(
        f"{args.ops} ops, {args.writers} writers then readers, median of {args.repeat} rounds "
        f"(aiosqlite on {len(single)} rows, diskcache on {args.diskcache_rows}), per op; "
        "the lean actor without checkpoints, and with SQLite's own:"
    )
    median = {name: statistics.median(values) for name, values in runs.items()}
    for name, values in runs.items():
        print(f"  {name:<22} {median[name] * 1e6:8.2f} us  spread {_spread(values)}")
    for op, baseline, factor in (
        ("put", "aiosqlite 1-task", 15),
        ("put", "diskcache", 10),
        ("get", "aiosqlite 1-task", 10),
    ):
        base_time = median[f"{baseline} {op}"]
        ratios = ", ".join(
            f"{who} {median[f'{who} {op}'] * 1e6:.2f} us ({base_time / median[f'{who} {op}']:.1f}x)"
            for who in ("lean actor", "lean, checkpoints", "garrison")
        )
        print(f"{op}: {factor}x {baseline} allows {base_time / factor * 1e6:.2f} us; {ratios}")


# -- the comparison run ----------------------------------------------------------


def run_throughput(args: argparse.Namespace) -> None:
    rows, keys, single = _workload(args)
    cached = rows[: args.diskcache_rows]
    runs: dict[str, list[float]] = {
        name: []
        for name in (
            "garrison writes",
            "raw kv writes",
            "raw schema writes",
            "aiosqlite writes",
            "aiosqlite 1-task writes",
            "diskcache writes",
            "garrison reads",
            "raw reads",
            "aiosqlite reads",
            "aiosqlite 1-task reads",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for i in range(args.repeat):
            writes, reads = asyncio.run(
                garrison_round(base / f"g{i}", rows, keys, args.writers, args.readers)
            )
            runs["garrison writes"].append(writes / len(rows))
            runs["garrison reads"].append(reads / len(keys))
            kv = base / f"kv{i}.db"
            runs["raw kv writes"].append(raw_kv_writes(kv, rows) / len(rows))
            runs["raw reads"].append(raw_reads(kv, keys) / len(keys))
            runs["aiosqlite reads"].append(
                asyncio.run(aiosqlite_reads(kv, keys, args.readers)) / len(keys)
            )
            one_keys = keys[: args.single_task_rows]
            runs["aiosqlite 1-task reads"].append(
                asyncio.run(aiosqlite_reads(kv, one_keys, 1)) / len(one_keys)
            )
            runs["raw schema writes"].append(
                raw_schema_writes(base / f"schema{i}.db", rows) / len(rows)
            )
            runs["aiosqlite writes"].append(
                asyncio.run(aiosqlite_writes(base / f"aio{i}.db", rows, args.writers)) / len(rows)
            )
            runs["aiosqlite 1-task writes"].append(
                asyncio.run(aiosqlite_writes(base / f"aio1-{i}.db", single, 1)) / len(single)
            )
            runs["diskcache writes"].append(diskcache_writes(base / f"dc{i}", cached) / len(cached))
    print(
        f"{args.ops} ops, {args.writers} writers / {args.readers} readers, median of "
        f"{args.repeat} rounds; aiosqlite (one await + one commit per row) from 1 task on "
        f"{len(single)} rows/keys (the compared baseline), and from {args.writers}/"
        f"{args.readers} tasks on one connection on the same {args.ops} (reference only); "
        f"diskcache on {len(cached)} rows; per op"
    )
    for name, values in runs.items():
        median = statistics.median(values)
        print(
            f"  {name:<23} {median * 1e6:9.2f} us/op  {1 / median:12,.0f} ops/s  "
            f"spread {_spread(values)}"
        )
    g_write = 1 / statistics.median(runs["garrison writes"])
    g_read = 1 / statistics.median(runs["garrison reads"])
    comparisons = (
        ("writes", g_write, "raw kv writes", ">= 0.5x"),
        ("writes", g_write, "raw schema writes", ">= 0.5x"),
        ("writes", g_write, "aiosqlite 1-task writes", ">= 15x"),
        ("writes", g_write, "aiosqlite writes", "none: reference, accidental group commit"),
        ("writes", g_write, "diskcache writes", ">= 10x"),
        ("reads", g_read, "raw reads", ">= 0.5x"),
        ("reads", g_read, "aiosqlite 1-task reads", ">= 10x"),
        ("reads", g_read, "aiosqlite reads", "none: reference, 64 tasks on one connection"),
    )
    for kind, ours, name, target in comparisons:
        report(
            f"{kind} vs {name} (issue: {target})",
            ours,
            1 / statistics.median(runs[name]),
            unit="ops/s",
            higher_is_better=True,
        )


# -- tracing (children) ----------------------------------------------------------

TRACING_CASES = ("none", "always_on", "ratio_1pct")


def _install_tracing(case: str) -> None:
    if case == "none":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    from garrison.telemetry import CountingSpanProcessor

    class NoOpExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampler = ALWAYS_ON if case == "always_on" else ParentBased(TraceIdRatioBased(0.01))
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(CountingSpanProcessor(NoOpExporter()))
    trace.set_tracer_provider(provider)


def tracing_child(case: str, ops: int, writers: int, readers: int) -> None:
    _install_tracing(case)
    rows = make_rows(ops)
    keys = [key for key, _ in rows]
    random.Random(11).shuffle(keys)
    with tempfile.TemporaryDirectory() as tmp:
        writes, reads = asyncio.run(garrison_round(Path(tmp), rows, keys, writers, readers))
    print(json.dumps({"write": writes / ops, "read": reads / ops}))


def run_tracing(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, list[float]]] = {
        c: {"write": [], "read": []} for c in TRACING_CASES
    }
    for _ in range(args.repeat):
        for case in TRACING_CASES:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child-tracing",
                    case,
                    "--ops",
                    str(args.trace_ops),
                    "--writers",
                    str(args.writers),
                    "--readers",
                    str(args.readers),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for kind in ("write", "read"):
                results[case][kind].append(figures[kind])
    print(
        f"tracing: {args.trace_ops} ops per run, median of {args.repeat} rounds, cases alternated"
    )
    for kind in ("write", "read"):
        base = statistics.median(results["none"][kind])
        for case in TRACING_CASES:
            values = results[case][kind]
            median = statistics.median(values)
            extra = (median - base) * 1e6
            print(
                f"  {kind:<5} {case:<11} {median * 1e6:8.2f} us/op  tracing cost "
                f"{extra:+7.2f} us/op  spread {_spread(values)}"
            )


# -- memory (children) -----------------------------------------------------------


def _database_bytes(path: str) -> int:
    wal = Path(path + "-wal")
    return os.path.getsize(path) + (wal.stat().st_size if wal.exists() else 0)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _memory(keys_count: int, cache_size: int, gets: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_runtime(_config(Path(tmp), cache_size), environ={}) as rt:
            store = rt.get(Store)
            rng = random.Random(3)
            start_rss = _rss_mib()
            chunk = 10_000
            for first in range(0, keys_count, chunk):
                await store.put_many(
                    (f"user/{i:08}", {"name": f"user-{i:08}", "age": i % 90, "pad": "x" * 40})
                    for i in range(first, min(first + chunk, keys_count))
                )
            filled_rss = _rss_mib()

            async def reader(n: int) -> None:
                for _ in range(n):
                    await store.get(f"user/{rng.randrange(keys_count):08}")

            await asyncio.gather(*(reader(gets // 64) for _ in range(64)))
            read_rss = _rss_mib()
            stats = await store.statistics()
            size = await asyncio.to_thread(_database_bytes, stats.sqlite_path) / 2**20
    return {
        "keys": keys_count,
        "cache_size": cache_size,
        "start_mib": start_rss,
        "filled_mib": filled_rss,
        "after_reads_mib": read_rss,
        "db_mib": size,
        "hit_ratio": stats.cache_hit_ratio,
    }


def run_memory(args: argparse.Namespace) -> None:
    print(f"memory: sqlite-only, read cache {args.memory_cache} entries, 200k random gets")
    for count in (args.memory_keys // 10, args.memory_keys):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child-memory",
                str(count),
                "--memory-cache",
                str(args.memory_cache),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        m = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  {m['keys']:>9,} keys  db file {m['db_mib']:7.1f} MiB  RSS at start "
            f"{m['start_mib']:6.1f} MiB, filled {m['filled_mib']:6.1f} MiB, after reads "
            f"{m['after_reads_mib']:6.1f} MiB  (hit ratio {m['hit_ratio']:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--single-task-rows", type=int, default=20_000)
    parser.add_argument("--diskcache-rows", type=int, default=40_000)
    parser.add_argument("--tracing", action="store_true", help="also measure tracing cost")
    parser.add_argument("--trace-ops", type=int, default=200_000)
    parser.add_argument("--memory-keys", type=int, default=0, help="also measure memory")
    parser.add_argument("--memory-cache", type=int, default=10_000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--garrison-only", action="store_true", help="one garrison round, wall and CPU per op"
    )
    parser.add_argument(
        "--mode",
        default="sqlite-only",
        choices=["edn-only", "dual-write", "sqlite-first", "sqlite-only"],
        help="the store mode of --garrison-only (the writes' admission differs by mode)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="garrison vs a minimal asyncio batching actor vs the aiosqlite baselines",
    )
    parser.add_argument(
        "--checkpoint-cost",
        action="store_true",
        help="raw sqlite3 group commits with and without SQLite's in-commit checkpoints",
    )
    parser.add_argument("--child-tracing", choices=TRACING_CASES, help=argparse.SUPPRESS)
    parser.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_tracing:
        tracing_child(args.child_tracing, args.ops, args.writers, args.readers)
        return
    if args.child_memory:
        print(json.dumps(asyncio.run(_memory(args.child_memory, args.memory_cache, 200_000))))
        return
    if args.garrison_only:
        run_garrison_only(args)
        return
    if args.floor:
        print(machine())
        run_floor(args)
        return
    if args.checkpoint_cost:
        print(machine())
        run_checkpoint_cost(args)
        return
    print(machine())
    if not args.skip_throughput:
        run_throughput(args)
    if args.tracing:
        run_tracing(args)
    if args.memory_keys:
        run_memory(args)


if __name__ == "__main__":
    main()
