"""Start and stop many components: garrison's supervisor vs bare asyncio doing the same.

    .venv-test/bin/python benchmarks/bench_lifecycle.py [--repeat 5]

1. 1,000 trivial components in 10 dependency levels (each depends on one
   component of the level before): build + validate the graph, start, stop.
   Baseline: the same 1,000 objects started level by level with asyncio.gather
   and stopped in reverse, with no validation, mailboxes, tasks or timeouts.
2. 10 levels x 10 components whose on_start takes 50 ms: proves concurrency
   within a level (sequential starts would take 100 x 50 ms = 5 s). Baseline:
   the ideal, 10 levels x one 50 ms wait.

Lifecycle log events are filtered to warnings so the figures measure the
supervisor, not the console.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import structlog

from _common import machine, report
from garrison.config import GarrisonConfig, RuntimeSettings
from garrison.runtime import Component, Runtime


class Trivial(Component):
    pass


class Slow(Component):
    async def on_start(self) -> None:
        await asyncio.sleep(0.05)  # the start work being measured, not synchronisation


def build(levels: int, width: int, base: type[Component]) -> list[type[Component]]:
    classes: list[type[Component]] = []
    for level in range(levels):
        for i in range(width):
            deps = (f"c{level - 1}_{i}",) if level else ()
            classes.append(
                type(f"C{level}_{i}", (base,), {"name": f"c{level}_{i}", "depends_on": deps})
            )
    return classes


async def garrison_run(classes: list[type[Component]], data_dir: Path) -> tuple[float, float]:
    config = GarrisonConfig(runtime=RuntimeSettings(data_dir=data_dir))
    begun = time.perf_counter()
    runtime = Runtime(config, classes)
    await runtime.start()
    started = time.perf_counter()
    await runtime.aclose()
    return started - begun, time.perf_counter() - started


class Plain:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class PlainSlow(Plain):
    async def start(self) -> None:
        await asyncio.sleep(0.05)


async def baseline_run(levels: int, width: int, kind: type[Plain]) -> tuple[float, float]:
    begun = time.perf_counter()
    grid = [[kind() for _ in range(width)] for _ in range(levels)]
    for row in grid:
        await asyncio.gather(*(item.start() for item in row))
    started = time.perf_counter()
    for row in reversed(grid):
        await asyncio.gather(*(item.stop() for item in row))
    return started - begun, time.perf_counter() - started


async def main(repeat: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(machine())
    trivial = build(10, 100, Trivial)
    slow = build(10, 10, Slow)
    results: dict[str, list[float]] = {k: [] for k in ("gs", "gt", "bs", "bt", "ss", "bss")}
    with TemporaryDirectory() as tmp:
        for _ in range(repeat):
            g_start, g_stop = await garrison_run(trivial, Path(tmp))
            b_start, b_stop = await baseline_run(10, 100, Plain)
            results["gs"].append(g_start)
            results["gt"].append(g_stop)
            results["bs"].append(b_start)
            results["bt"].append(b_stop)
            s_start, _ = await garrison_run(slow, Path(tmp))
            bs_start, _ = await baseline_run(10, 10, PlainSlow)
            results["ss"].append(s_start)
            results["bss"].append(bs_start)
    med = {k: statistics.median(v) for k, v in results.items()}
    total = [s + t for s, t in zip(results["gs"], results["gt"], strict=True)]
    print(f"1,000 trivial components in 10 levels, {repeat} repetitions (medians):")
    print(f"  start (incl. graph validation) {med['gs'] * 1000:8.1f} ms")
    print(f"  stop                           {med['gt'] * 1000:8.1f} ms")
    print(
        f"  start + stop                   {statistics.median(total) * 1000:8.1f} ms "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in total)}; target < 500 ms)"
    )
    report(
        "start+stop 1,000 components",
        statistics.median(total) * 1000,
        (med["bs"] + med["bt"]) * 1000,
        unit="ms",
        higher_is_better=False,
    )
    print("10 levels x 10 components with a 50 ms on_start:")
    print(
        f"  start {med['ss'] * 1000:.1f} ms (runs: "
        f"{', '.join(f'{t * 1000:.0f}' for t in results['ss'])}; ideal 500 ms, "
        "sequential would be 5000 ms)"
    )
    report(
        "start 10 levels of 50 ms components",
        med["ss"] * 1000,
        med["bss"] * 1000,
        unit="ms",
        higher_is_better=False,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))
