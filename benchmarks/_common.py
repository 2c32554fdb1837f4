"""Shared helpers for the benchmark scripts: timing, peak memory, and reporting.

Every benchmark measures garrison and its baseline in the same run and prints
the ratio, so the figures compare like with like on whatever machine runs them.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")


def machine() -> str:
    """One line naming the machine and interpreter, for docs/performance.md."""
    import os

    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def time_call(fn: Callable[[], Any], *, repeat: int = 5) -> tuple[float, list[float]]:
    """Run ``fn`` ``repeat`` times; return (median seconds, all runs)."""
    runs: list[float] = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


async def time_async(
    fn: Callable[[], Awaitable[Any]], *, repeat: int = 5
) -> tuple[float, list[float]]:
    """Await ``fn()`` ``repeat`` times; return (median seconds, all runs)."""
    runs: list[float] = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        await fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def peak_memory(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn`` under tracemalloc; return its result and the peak bytes allocated."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def report(
    name: str, garrison_value: float, baseline_value: float, *, unit: str, higher_is_better: bool
) -> float:
    """Print one comparison line and return garrison's advantage (>1 means garrison wins)."""
    if higher_is_better:
        advantage = garrison_value / baseline_value if baseline_value else float("inf")
    else:
        advantage = baseline_value / garrison_value if garrison_value else float("inf")
    print(
        f"{name:<48} garrison {garrison_value:>12.4g} {unit:<8} "
        f"baseline {baseline_value:>12.4g} {unit:<8} advantage {advantage:6.2f}x"
    )
    return advantage
