"""The writer the crash test kills: writes to an EdnFileStore until SIGKILL.

Run as ``python _crash_writer.py PATH``: a zygote that imports everything once,
then forks one writer process per ``go`` line read from stdin (forking a warm
process takes milliseconds where starting Python takes a tenth of a second,
and the test needs hundreds of runs). Each writer loads the store (so every run
also checks that the previous, killed run left a loadable file), prints
``ready PID N`` with the state it found, then applies step after step forever,
printing ``flushed N`` each time :meth:`EdnFileStore.flush` has returned. When
the writer dies the zygote prints ``exited PID STATUS`` (a negative status is
the killing signal).

Step ``n`` sets ``state/n`` to ``n``, sets key ``k/{n % KEYS}`` to ``[n, pad]``,
adds ``tmp/{n}`` and deletes ``tmp/{n-1}``. So the whole map after step ``n``
is a function of ``n`` alone (:func:`expected_state`), and the test can tell a
complete state from a torn or mixed one.

Kept to the imports the store needs, so that the test's 200+ runs start fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from garrison.stores._edn_file import EdnFileStore

KEYS = 40
PAD = "p" * 300  # makes the file big enough (~15 KB) that kills land mid-write


def expected_state(n: int) -> dict[str, Any]:
    """The map (by key text) after step ``n``; empty before the first step."""
    if n == 0:
        return {}
    state: dict[str, Any] = {"state/n": n, f"tmp/{n}": n}
    for i in range(KEYS):
        # The last step m <= n that wrote key k/i, if any.
        last = n - ((n - i) % KEYS)
        if last >= 1:
            state[f"k/{i}"] = [last, PAD]
    return state


async def run(path: str) -> None:
    """One writer: load, report, then step forever."""
    store = await EdnFileStore(path, quiet_period=0.001, max_delay=0.004).open()
    n = await store.get("state/n", 0)
    print(f"ready {os.getpid()} {n}", flush=True)
    while True:
        n += 1
        await store.put_many([(f"k/{n % KEYS}", [n, PAD]), (f"tmp/{n}", n), ("state/n", n)])
        await store.delete(f"tmp/{n - 1}")
        if n % 20 == 0:
            await store.flush()
            print(f"flushed {n}", flush=True)
        else:
            await asyncio.sleep(0)  # lets the debounced writer run between steps


def zygote(path: str) -> None:
    """Fork a writer per ``go`` line; report how each one ended."""
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:  # the writer; it runs until it is killed
            try:
                asyncio.run(run(path))
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        print(f"exited {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    zygote(sys.argv[1])
