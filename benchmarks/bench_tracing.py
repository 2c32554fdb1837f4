"""What tracing costs per ask and per store operation.

Three cases, each in a fresh interpreter (OpenTelemetry lets a process install
its global tracer provider once):

(a) ``none``: no SDK installed; the API's no-op path (the baseline);
(b) ``always_on``: the SDK as garrison installs it (TracerProvider and
    garrison's counting batch processor) with always-on sampling and an
    exporter that accepts every batch and does nothing;
(c) ``ratio_1pct``: the same with ``parentbased_traceidratio`` at 1%.

Per case it times ``ask`` round trips to a standalone actor, SqliteStore
``put`` + ``get`` on a real database file (WAL, synchronous=NORMAL), and the
same operations through the database component of a runtime (the Store facade:
ask, batch, SQLite), which is what an application's store call costs, first
outside any trace (garrison then makes no span: trace_roots is off) and then
inside the trace of an incoming request (a remote parent as extracted from a
``traceparent`` header, sampled by upstream 1 request in 100 in case (c), every
request in case (b)): the usual production shape, where garrison's spans follow
the parent's decision. Rounds
alternate the cases so background load hits them alike; each figure is the
median over rounds, and the spread (max over min) is printed to show the noise.
On a loaded machine the difference of the best rounds ("best round vs best
baseline round") and the CPU time per operation (this process, all its
threads) are the steadier estimates of the intrinsic cost.

    .venv-test/bin/python benchmarks/bench_tracing.py [--rounds 5] [--asks 20000] [--ops 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from _common import machine, report
from garrison.components.database import Store
from garrison.runtime import Actor, handler, open_actor, open_runtime
from garrison.stores import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

CASES = ("none", "always_on", "ratio_1pct")


@dataclass(frozen=True)
class Ping:
    n: int


class Echo(Actor):
    @handler
    async def ping(self, message: Ping) -> int:
        return message.n


def _install(case: str) -> None:
    if case == "none":
        return
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


class _Clock:
    """Wall time and this process's CPU time (all threads, so aiosqlite's too)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def per_op(self, name: str, count: int, into: dict[str, float]) -> None:
        into[name] = (time.perf_counter() - self.wall) / count
        into[f"{name}_cpu"] = (time.process_time() - self.cpu) / count


async def _measure(case: str, asks: int, ops: int) -> dict[str, float]:
    result: dict[str, float] = {}
    async with open_actor(Echo(), name="echo") as ref:
        for i in range(500):  # warm up
            await ref.ask(Ping(i))
        clock = _Clock()
        for i in range(asks):
            await ref.ask(Ping(i))
        clock.per_op("ask", asks, result)

    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteStore(Path(tmp) / "bench.sqlite3") as store:
            for i in range(100):
                await store.put(f"warm/{i}", {"n": i})
            clock = _Clock()
            for i in range(ops):
                await store.put(f"user/{i}", {"n": i, "name": "x" * 20})
                await store.get(f"user/{i}")
            clock.per_op("store", 2 * ops, result)

        config = {
            "runtime": {"data_dir": tmp},
            "components": {"database": {"mode": "sqlite-only"}},
        }
        async with open_runtime(config, environ={}) as runtime:
            facade = runtime.get(Store)
            for i in range(100):
                await facade.put(f"warm/{i}", {"n": i})
            clock = _Clock()
            for i in range(ops):
                await facade.put(f"user/{i}", {"n": i, "name": "x" * 20})
                await facade.get(f"user/{i}")
            clock.per_op("database", 2 * ops, result)
            requests = _request_contexts(case)
            for i in range(100):
                await facade.put(f"warm/{i}", {"n": i})
            clock = _Clock()
            for i in range(ops):
                token = otel_context.attach(requests[i % len(requests)])
                try:
                    await facade.put(f"user/{i}", {"n": i, "name": "x" * 20})
                    await facade.get(f"user/{i}")
                finally:
                    otel_context.detach(token)
            clock.per_op("database_request", 2 * ops, result)
    return result


def _request_contexts(case: str) -> list[Context]:
    """Contexts as extracted from 100 incoming requests' ``traceparent`` headers.

    Upstream made the sampling decision: with a 1% parent-based sampler, one
    request in a hundred arrives sampled; with always-on sampling every one is
    (the case the always-on figures describe). Without an SDK the contexts are
    attached all the same, so the baseline pays for the attach too.
    """
    contexts: list[Context] = []
    for i in range(100):
        sampled = case != "ratio_1pct" or i == 0
        parent = SpanContext(
            trace_id=0x5EED0000 + i,
            span_id=0xC0FFEE + i,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        )
        contexts.append(trace.set_span_in_context(NonRecordingSpan(parent)))
    return contexts


def _worker(case: str, asks: int, ops: int) -> None:
    _install(case)
    print(json.dumps(asyncio.run(_measure(case, asks, ops))))


def _run_case(case: str, asks: int, ops: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", case, "--asks", str(asks), "--ops", str(ops)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--asks", type=int, default=20_000)
    parser.add_argument("--ops", type=int, default=2_000)
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.asks, args.ops)
        return

    print(machine())
    print(f"rounds={args.rounds} asks={args.asks} store ops={2 * args.ops} (put+get) per round")
    kinds = (
        "ask",
        "store",
        "database",
        "database_request",
        "ask_cpu",
        "store_cpu",
        "database_cpu",
        "database_request_cpu",
    )
    runs: dict[str, dict[str, list[float]]] = {c: {k: [] for k in kinds} for c in CASES}
    for _ in range(args.rounds):
        for case in CASES:
            result = _run_case(case, args.asks, args.ops)
            for what in kinds:
                runs[case][what].append(result[what])
    base = {w: statistics.median(runs["none"][w]) for w in kinds}
    labels = (
        ("ask", "ask round trip"),
        ("store", "SqliteStore operation"),
        ("database", "database component operation"),
        ("database_request", "database op in a request's trace"),
        ("ask_cpu", "ask round trip, CPU time"),
        ("store_cpu", "SqliteStore operation, CPU time"),
        ("database_cpu", "database component operation, CPU time"),
        ("database_request_cpu", "database op in a request's trace, CPU"),
    )
    for what, label in labels:
        spread = max(runs["none"][what]) / min(runs["none"][what]) - 1
        print(
            f"(a) no SDK, {label}: {base[what] * 1e6:.1f} us "
            f"(spread {spread * 100:.0f}% over rounds)"
        )
        for case, name in (
            ("always_on", "(b) always-on, no-op exporter"),
            ("ratio_1pct", "(c) 1% ratio"),
        ):
            values = runs[case][what]
            median = statistics.median(values)
            spread = max(values) / min(values) - 1
            report(
                f"{name}, {label} (us)",
                median * 1e6,
                base[what] * 1e6,
                unit="us",
                higher_is_better=False,
            )
            best = min(values) - min(runs["none"][what])
            print(
                f"    overhead {(median - base[what]) * 1e6:+.1f} us/op "
                f"({(median / base[what] - 1) * 100:+.0f}%), spread {spread * 100:.0f}%; "
                f"best round vs best baseline round {best * 1e6:+.1f} us/op"
            )


if __name__ == "__main__":
    main()
