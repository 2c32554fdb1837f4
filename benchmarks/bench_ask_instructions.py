"""Instructions per ask, counted by valgrind's callgrind: steady where wall time is not.

    .venv-test/bin/python benchmarks/bench_ask_instructions.py [--n 5000]
    PYTHONPATH=<other checkout>/src .venv-test/bin/python benchmarks/bench_ask_instructions.py

For each case the script runs itself under ``valgrind --tool=callgrind``
twice, with 0 and with ``--n`` asks, and prints the difference divided by
``--n``: the instructions one ask costs, start-up excluded. Cases: ``seq``
(sequential asks to an echo actor, as bench_ask.py), ``conc`` (64 concurrent
askers) and ``base`` (bench_ask.py's bare asyncio.Queue + Future echo). The
counts repeat to within a few hundred instructions on a loaded machine, so
they compare two checkouts of a small change (run each with its PYTHONPATH)
where bench_ask.py's wall times swing by tens of percent. No tracer provider
is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from garrison.runtime import Actor, handler, open_actor

CASES = ("seq", "conc", "base")


@dataclass(frozen=True, slots=True)
class Ping:
    value: int


class Echo(Actor):
    @handler
    async def ping(self, msg: Ping) -> int:
        return msg.value


async def _garrison(n: int, concurrent: bool) -> None:
    async with open_actor(Echo(), name="echo") as ref:
        if not concurrent:
            for i in range(n):
                await ref.ask(Ping(i))
            return

        async def asker(count: int) -> None:
            for i in range(count):
                await ref.ask(Ping(i))

        await asyncio.gather(*(asker(n // 64) for _ in range(64)))


async def _baseline(n: int) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue(1000)

    async def server() -> None:
        while True:
            message, future = await queue.get()
            future.set_result(message.value)

    task = asyncio.create_task(server())
    for i in range(n):
        future = loop.create_future()
        queue.put_nowait((Ping(i), future))
        await future
    task.cancel()


def _run_case(case: str, n: int) -> None:
    if case == "base":
        asyncio.run(_baseline(n))
    else:
        asyncio.run(_garrison(n, concurrent=case == "conc"))


def _instructions(case: str, n: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            case,
            "--n",
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no callgrind total in:\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args()
    if args.child:
        _run_case(args.child, args.n)
        return
    import garrison

    print(f"garrison from {garrison.__file__}; {args.n} asks per case")
    for case in args.cases:
        per_ask = (_instructions(case, args.n) - _instructions(case, 0)) / args.n
        print(f"  {case:5} {per_ask:9,.0f} instructions per ask")


if __name__ == "__main__":
    main()
