"""The migration plan's regression budget: each store mode against ``edn-only``.

The legacy plan's success metrics: reads at most 10% slower and writes at most
20% slower than the EDN store. This runs the same workload through the
``Store`` facade (``await store.get`` / ``await store.put``, an ask to the
database actor each) in all four modes, with the read cache off and on, and
prints each mode's ratio to ``edn-only`` against 1.10 (reads) and 1.20
(writes). The mix (80% reads, 20% writes) is printed against the write
budget, the looser of the two.

Workload: ``--keys`` keys ``user/00000042`` with ~100-byte maps, loaded
before timing and read once each before every timed run (with the cache on,
it then holds them all); ``--ops`` operations per workload shared by ``--tasks``
concurrent tasks, keys drawn at random (the same sequence in every mode);
writes put a new map to an existing key. ``synchronous=NORMAL``, WAL, the
EDN writer with its default debounce (0.1 s quiet, 1 s at most).

Two durability contracts for the modes that write SQLite (``--durability``,
both by default): ``commit``, where a put returns after its SQLite commit, and
``debounced``, the ``edn-only`` contract, where a put returns once it is
admitted and readable and the actor commits within ``flush_max_delay`` (as an
``edn-only`` put returns once the value is in the in-memory map and reaches
the file at the next flush). ``commit`` against ``edn-only`` is not like for
like; ``debounced`` against ``edn-only`` is. Two times per run: until every
operation was answered (``us/op``, ``ratio``: the figure the budget is about,
with the EDN flushes and the debounced commits that fall within the run
running beside it, as in use), and until every write was on disk as well
(``to disk``: then ``store.flush()`` committed what was pending and flushed the
EDN file). Runs much longer than ``flush_max_delay`` (``--ops``) show the
steady state, where the commits' cost is inside the first figure too.

Rounds alternate the modes (a fresh runtime per mode and round, on its own
data, opened and warmed before timing) so background load on a shared
machine hits them alike; every time is the median over ``--rounds`` with its spread (max-min over
median); the ratio is the median of the per-round ratios (each mode against
the ``edn-only`` run of the same round), with their range.

    .venv-test/bin/python benchmarks/bench_modes.py [--keys 10000] [--ops 20000]
        [--tasks 8] [--rounds 5] [--durability commit,debounced] [--cache off,on]
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
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from garrison import open_runtime

if TYPE_CHECKING:
    from garrison.components.database import Store

MODES = ("edn-only", "dual-write", "sqlite-first", "sqlite-only")
WORKLOADS = ("reads", "writes", "mix")
BUDGET = {"reads": 1.10, "writes": 1.20, "mix": 1.20}
CACHE_ON = 10_000


def make_value(i: int, rng: random.Random) -> dict[str, Any]:
    """A ~100-byte JSON map."""
    return {
        "name": f"user-{i:08}",
        "age": rng.randrange(90),
        "tags": ["alpha", "beta"],
        "active": i % 3 == 0,
        "score": round(rng.random() * 100, 3),
        "city": "Lisbon",
    }


def _config(folder: Path, mode: str, cache_size: int, durability: str = "commit") -> dict[str, Any]:
    database = {
        "mode": mode,
        "cache_size": cache_size,
        "synchronous": "NORMAL",
        "durability": durability,
    }
    return {
        "runtime": {"data_dir": str(folder), "mailbox_capacity": 1000},
        "components": {"database": database},
    }


async def _load(folder: Path, mode: str, keys: int) -> None:
    rng = random.Random(1)
    async with open_runtime(_config(folder, mode, 0), environ={}) as rt:
        for start in range(0, keys, 1000):
            await rt.get(Store).put_many(
                (f"user/{i:08}", make_value(i, rng)) for i in range(start, min(keys, start + 1000))
            )
        await rt.get(Store).flush()


async def _run(store: Store, plan: list[list[tuple[str, Any]]]) -> tuple[float, float]:
    """Run each task's ``(key, value or None)`` list concurrently.

    Returns the seconds until every operation was answered, and until every
    write was on disk as well (``store.flush()``: pending writes committed,
    the EDN file flushed).
    """

    async def task(ops: list[tuple[str, Any]]) -> None:
        get, put = store.get, store.put
        for key, value in ops:
            if value is None:
                await get(key)
            else:
                await put(key, value)

    start = time.perf_counter()
    await asyncio.gather(*(task(ops) for ops in plan))
    answered = time.perf_counter() - start
    await store.flush()
    return answered, time.perf_counter() - start


def _plan(workload: str, keys: int, ops: int, tasks: int, seed: int) -> list[list[tuple[str, Any]]]:
    rng = random.Random(seed)
    share = {"reads": 0.0, "writes": 1.0, "mix": 0.2}[workload]
    plan: list[list[tuple[str, Any]]] = [[] for _ in range(tasks)]
    for n in range(ops):
        i = rng.randrange(keys)
        value = make_value(i + n, rng) if rng.random() < share else None
        plan[n % tasks].append((f"user/{i:08}", value))
    return plan


async def _measure(
    folder: Path,
    variant: tuple[str, str],
    cache_size: int,
    keys: int,
    plans: dict[str, list[list[tuple[str, Any]]]],
) -> dict[str, tuple[float, float]]:
    mode, durability = variant
    config = _config(folder, mode, cache_size, "commit" if durability == "-" else durability)
    async with open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        # Every key read once: the cache (when on) holds them all, as in a steady state.
        await _run(store, [[(f"user/{i:08}", None) for i in range(keys)]])
        return {name: await _run(store, plan) for name, plan in plans.items()}


def _variants(durabilities: list[str]) -> list[tuple[str, str]]:
    """``(mode, durability)`` pairs: edn-only once (it commits nothing), the others per setting."""
    return [("edn-only", "-")] + [(m, d) for m in MODES[1:] for d in durabilities]


async def main_async(args: argparse.Namespace) -> None:
    durabilities = args.durability.split(",")
    caches = [{"off": 0, "on": CACHE_ON}[c] for c in args.cache.split(",")]
    variants = _variants(durabilities)
    print(f"# {machine()}")
    print(
        f"# {args.keys} keys, {args.ops} ops per workload, {args.tasks} tasks, "
        f"{args.rounds} rounds; per-op time in microseconds (median); ratio to edn-only"
    )
    with tempfile.TemporaryDirectory(prefix="bench-modes-") as tmp:
        root = Path(tmp)
        for mode in MODES:
            await _load(root / mode, mode, args.keys)
        plans = {
            name: _plan(name, args.keys, args.ops, args.tasks, seed)
            for seed, name in enumerate(WORKLOADS)
        }
        times: dict[tuple[tuple[str, str], int, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for cache_size in caches:
                for variant in variants:
                    folder = root / variant[0]
                    measured = await _measure(folder, variant, cache_size, args.keys, plans)
                    for name, seconds in measured.items():
                        times.setdefault((variant, cache_size, name), []).append(seconds)
    for cache_size in caches:
        print(f"\n## read cache {'off' if cache_size == 0 else f'on ({cache_size} entries)'}")
        print(
            f"{'workload':<8} {'mode':<13} {'durability':<10} {'us/op':>8} {'spread':>7} "
            f"{'ratio':>7} {'per round':>11}  {'budget':<12} {'to disk':>8} {'ratio':>7}"
        )
        for name in WORKLOADS:
            base = times[(variants[0], cache_size, name)]
            for variant in variants:
                mode, durability = variant
                runs = times[(variant, cache_size, name)]
                answered = [a for a, _ in runs]
                median = statistics.median(answered)
                # Paired by round (the modes ran back to back): robust to load that
                # comes and goes between rounds.
                ratios = [a / edn for (a, _), (edn, _) in zip(runs, base, strict=True)]
                ratio = statistics.median(ratios)
                on_disk = statistics.median(d for _, d in runs)
                disk_ratio = statistics.median(
                    d / edn for (_, d), (_, edn) in zip(runs, base, strict=True)
                )
                spread = (max(answered) - min(answered)) / median
                verdict = "" if mode == "edn-only" else (
                    f"{BUDGET[name]:.2f} {'met' if ratio <= BUDGET[name] else 'MISSED'}"
                )  # fmt: skip
                print(
                    f"{name:<8} {mode:<13} {durability:<10} {median / args.ops * 1e6:8.1f} "
                    f"{spread:7.0%} {ratio:7.2f} {min(ratios):5.2f}-{max(ratios):<5.2f}  "
                    f"{verdict:<12} {on_disk / args.ops * 1e6:8.1f} {disk_ratio:7.2f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--durability",
        default="commit,debounced",
        help="durability settings of the modes that write SQLite, comma-separated",
    )
    parser.add_argument("--cache", default="off,on", help="read cache off, on, or both")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
