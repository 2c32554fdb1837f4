"""Durability under SIGKILL: garrison runtimes killed at random moments, in every mode.

Each lane forks runtimes from a warm parent (``tests/stores/_crash_writer.py``)
that write through ``rt.get(Store)`` and report every acknowledgement with its time;
the lane SIGKILLs each one after a random 0.05 s to 2.4 bounds, and the next runtime
reads every key back through ``rt.get(Store)`` (see ``tests/stores/_crash_lane.py``).
A write is *lost* when an acknowledged value is missing after the restart; its
*age* is the time from its acknowledgement to the kill.

The EDN store promises that a write is on disk ``flush_max_delay`` after its
acknowledgement (``docs/storage.md``), so in ``edn-only`` every lost write must
be younger than that bound; the modes that commit to SQLite must lose nothing,
unless ``--durability debounced`` gives them the ``edn-only`` promise.
The promise holds while a flush takes at most about half the bound, so the
script first times 150 flushes of a store shaped like the lanes' (50 changed
keys each) and prints their median and maximum.
The test suite runs the same lanes with fewer kills (``tests/stores/test_crash.py``).

    .venv-test/bin/python benchmarks/bench_crash.py                  # 220 kills in edn-only
    .venv-test/bin/python benchmarks/bench_crash.py --modes all --kills 60
    .venv-test/bin/python benchmarks/bench_crash.py --modes sqlite-only,dual-write \
        --durability debounced --kills 100
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lanes live with the tests

from tests.stores._crash_lane import LaneResult, kill_lane
from tests.stores._crash_writer import BALLAST, RUNTIME_KEYS

from _common import machine
from garrison.stores import EdnFileStore

MODES = ("edn-only", "dual-write", "sqlite-first", "sqlite-only")


def run_mode(
    mode: str, kills: int, lanes: int, bound: float, seed: int, *, durability: str = "commit"
) -> bool:
    """Kill ``kills`` runtimes in ``mode`` over ``lanes`` parallel lanes; print; True if kept."""
    per_lane = [kills // lanes + (i < kills % lanes) for i in range(lanes)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(lanes) as pool:
        futures = [
            pool.submit(
                kill_lane,
                Path(folder) / f"lane{i}",
                mode=mode,
                kills=n,
                seed=seed + i,
                max_delay=bound,
                window=(0.05, bound * 2.4),
                durability=durability,
            )
            for i, n in enumerate(per_lane)
        ]
        results: list[LaneResult] = [future.result() for future in futures]
    seconds = time.perf_counter() - started
    lost = [write for result in results for write in result.lost]
    acknowledged = sum(result.acknowledged for result in results)
    ages = sorted(write.age for write in lost)
    # edn-only and the debounced modes acknowledge before the write is on disk.
    allowed = bound if mode == "edn-only" or durability == "debounced" else 0.0
    too_old = [age for age in ages if age > allowed]
    losing = sum(r.losing_kills for r in results)
    print(
        f"{mode:<13} {durability:<9} kills {sum(r.kills for r in results):>4}  "
        f"acknowledged {acknowledged:>7}  "
        f"lost {len(lost):>6} in {losing:>3} kills  max age of a lost write "
        f"{(f'{ages[-1]:.3f}s' if ages else '-'):>7} (bound {allowed:g}s)  "
        f"median {(f'{statistics.median(ages):.3f}s' if ages else '-'):>7}  "
        f"older than the bound {len(too_old)}  [{seconds:.0f}s]"
    )
    return not too_old


async def flush_times(folder: Path, rounds: int = 150) -> list[float]:
    """Seconds each of ``rounds`` flushes of a lane-shaped store took (50 keys changed each)."""
    times: list[float] = []
    async with EdnFileStore(folder / "memory.edn") as store:
        await store.put("ballast/all", BALLAST)
        await store.put_many([(f"k/{i}", [i, "p" * 200]) for i in range(RUNTIME_KEYS)])
        await store.flush()
        for r in range(rounds):
            changed = [(f"k/{(r * 50 + j) % RUNTIME_KEYS}", [r, "p" * 200]) for j in range(50)]
            await store.put_many(changed)
            started = time.perf_counter()
            await store.flush()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)  # the pace of the lanes' flushes, not synchronisation
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=220, help="kills per mode (default 220)")
    parser.add_argument("--lanes", type=int, default=2, help="lanes killed in parallel")
    parser.add_argument("--bound", type=float, default=0.25, help="flush_max_delay (seconds)")
    parser.add_argument("--modes", default="edn-only", help="comma-separated modes, or 'all'")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--durability", default="commit", choices=("commit", "debounced"))
    args = parser.parse_args()
    modes = MODES if args.modes == "all" else tuple(args.modes.split(","))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"{machine()}; seed {seed}; flush_max_delay {args.bound}s")
    with tempfile.TemporaryDirectory() as folder:
        times = asyncio.run(flush_times(Path(folder)))
    median, worst = statistics.median(times) * 1000, times[-1] * 1000
    print(f"one flush (~0.5 MB file, fsynced): median {median:.1f} ms, max {worst:.1f} ms")
    kept = [
        run_mode(mode, args.kills, args.lanes, args.bound, seed, durability=args.durability)
        for mode in modes
    ]
    sys.exit(0 if all(kept) else 1)


if __name__ == "__main__":
    main()
