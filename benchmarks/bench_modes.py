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

Not like for like, by design of the modes: an ``edn-only`` put returns once
the value is in the in-memory map (it reaches the file at the next flush,
up to ``flush_max_delay`` later), while the modes that write SQLite return
after the SQLite commit. A reader of the figures should keep that in mind.

Rounds alternate the modes (a fresh runtime per mode and round, on its own
data, opened and warmed before timing) so background load on a shared
machine hits them alike; every time is the median over ``--rounds`` with its spread (max-min over
median); the ratio is the median of the per-round ratios (each mode against
the ``edn-only`` run of the same round), with their range.

    .venv-test/bin/python benchmarks/bench_modes.py [--keys 10000] [--ops 20000]
        [--tasks 8] [--rounds 5]
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


def _config(folder: Path, mode: str, cache_size: int) -> dict[str, Any]:
    return {
        "runtime": {"data_dir": str(folder), "mailbox_capacity": 1000},
        "components": {
            "database": {"mode": mode, "cache_size": cache_size, "synchronous": "NORMAL"}
        },
    }


async def _load(folder: Path, mode: str, keys: int) -> None:
    rng = random.Random(1)
    async with open_runtime(_config(folder, mode, 0), environ={}) as rt:
        for start in range(0, keys, 1000):
            await rt.get(Store).put_many(
                (f"user/{i:08}", make_value(i, rng)) for i in range(start, min(keys, start + 1000))
            )
        await rt.get(Store).flush()


async def _run(store: Store, workload: str, plan: list[list[tuple[str, Any]]]) -> float:
    """Run each task's ``(key, value or None)`` list concurrently; seconds taken."""
    del workload

    async def task(ops: list[tuple[str, Any]]) -> None:
        get, put = store.get, store.put
        for key, value in ops:
            if value is None:
                await get(key)
            else:
                await put(key, value)

    start = time.perf_counter()
    await asyncio.gather(*(task(ops) for ops in plan))
    return time.perf_counter() - start


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
    mode: str,
    cache_size: int,
    keys: int,
    plans: dict[str, list[list[tuple[str, Any]]]],
) -> dict[str, float]:
    async with open_runtime(_config(folder, mode, cache_size), environ={}) as rt:
        store = rt.get(Store)
        # Every key read once: the cache (when on) holds them all, as in a steady state.
        await _run(store, "warm", [[(f"user/{i:08}", None) for i in range(keys)]])
        return {name: await _run(store, name, plan) for name, plan in plans.items()}


async def main_async(args: argparse.Namespace) -> None:
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
        times: dict[tuple[str, int, str], list[float]] = {}
        for _ in range(args.rounds):
            for cache_size in (0, CACHE_ON):
                for mode in MODES:
                    measured = await _measure(root / mode, mode, cache_size, args.keys, plans)
                    for name, seconds in measured.items():
                        times.setdefault((mode, cache_size, name), []).append(seconds)
    for cache_size in (0, CACHE_ON):
        print(f"\n## read cache {'off' if cache_size == 0 else f'on ({cache_size} entries)'}")
        print(
            f"{'workload':<8} {'mode':<13} {'us/op':>8} {'spread':>7} {'ratio':>7} "
            f"{'per round':>11}  budget"
        )
        for name in WORKLOADS:
            base = times[("edn-only", cache_size, name)]
            for mode in MODES:
                runs = times[(mode, cache_size, name)]
                median = statistics.median(runs)
                # Paired by round (the modes ran back to back): robust to load that
                # comes and goes between rounds.
                ratios = [run / edn for run, edn in zip(runs, base, strict=True)]
                ratio = statistics.median(ratios)
                spread = (max(runs) - min(runs)) / median
                verdict = "" if mode == "edn-only" else (
                    f"{BUDGET[name]:.2f} {'met' if ratio <= BUDGET[name] else 'MISSED'}"
                )  # fmt: skip
                print(
                    f"{name:<8} {mode:<13} {median / args.ops * 1e6:8.1f} {spread:7.0%} "
                    f"{ratio:7.2f} {min(ratios):5.2f}-{max(ratios):<5.2f}  {verdict}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
