"""The writer the admission crash test kills: a runtime writing through ``rt.get(Store)``.

Run as ``python _admission_writer.py DATA_DIR MODE``: a zygote that imports
garrison once and forks one writer per ``go`` line read from stdin (a warm
fork starts in milliseconds). Each writer opens a runtime on DATA_DIR (so
every run also checks that the killed run left stores that open), prints
``ready PID N`` with the number of ``k/`` keys it found, then writes forever:

- step ``n`` puts ``k/{n}`` (spelt ``:k/{n}`` on odd steps: the same key) and
  prints ``acked N T`` once the put returned (``T``: ``time.monotonic()``);
- between steps it makes writes no store of the mode can hold (a key with a
  space, a ``::`` key, a naive datetime, a value with no EDN form, a
  ``put_many`` with one of those among good entries) and prints ``LEAK`` if
  one is not refused;
- every 25 steps it calls ``store.flush()`` and prints ``durable N``.

The writer dies only by SIGKILL; the zygote then prints ``exited PID STATUS``.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
import time

from garrison import RefusedWriteError, open_runtime
from garrison.components.database import Store

QUIET_PERIOD = 0.002
MAX_DELAY = 0.05


def _report(line: str) -> None:
    # One system call per line: a SIGKILL between the text and its newline
    # (print writes them separately) would tear the line the parent parses.
    os.write(1, (line + "\n").encode())


def refused_writes(n: int) -> list[list[tuple[str, object]]]:
    """Writes (each a put_many) that every mode writing the EDN file refuses."""
    naive = datetime.datetime(2024, 5, 1, 12, 0)  # no time zone: refused
    return [
        [(f"bad/na me {n}", n)],
        [(f"::bad/{n}", n)],
        [(f"bad/naive-{n}", {"at": naive})],
        [(f"bad/bytes-{n}", b"raw")],
        [(f"bad/many-{n}", n), (f"bad/in many {n}", n)],
    ]


async def run(data_dir: str, mode: str) -> None:
    """One writer: open, report, then write forever."""
    database = {"mode": mode, "flush_quiet_period": QUIET_PERIOD, "flush_max_delay": MAX_DELAY}
    config = {"runtime": {"data_dir": data_dir}, "components": {"database": database}}
    async with open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        n = await store.count("k/")
        _report(f"ready {os.getpid()} {n}")
        while True:
            n += 1
            for items in refused_writes(n)[n % 5 : n % 5 + 1]:
                try:
                    await store.put_many(items)
                except RefusedWriteError:
                    pass
                else:
                    _report(f"LEAK {items!r}")
            await store.put(f":k/{n}" if n % 2 else f"k/{n}", n)
            _report(f"acked {n} {time.monotonic()}")
            if n % 25 == 0:
                await store.flush()
                _report(f"durable {n}")


def zygote(data_dir: str, mode: str) -> None:
    """Fork a writer per ``go`` line; report how each one ended."""
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:  # the writer; it runs until it is killed
            try:
                asyncio.run(run(data_dir, mode))
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        _report(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    zygote(sys.argv[1], sys.argv[2])
