"""The writers the crash tests kill: they write until SIGKILL.

Run as ``python _crash_writer.py store PATH`` or ``python _crash_writer.py
runtime DATA_DIR``: a zygote that imports everything once, then forks one
writer process per ``go`` line read from stdin (forking a warm process takes
milliseconds where starting Python takes a tenth of a second, and the tests
need hundreds of runs). When the writer dies the zygote prints ``exited PID
STATUS`` (a negative status is the killing signal).

``store``: each writer loads an EdnFileStore (so every run also checks that
the previous, killed run left a loadable file), prints ``ready PID N`` with the
state it found, then applies step after step forever, printing ``flushed N``
each time :meth:`EdnFileStore.flush` has returned.

``runtime`` (see :func:`run_runtime`): each writer starts a garrison runtime
with the database component, reads every key back through ``rt.get(Store)``,
prints what it found, then writes through ``rt.get(Store)`` and prints each
acknowledgement with its time, so the test can tell, after the kill, which
acknowledged writes the next run does not find and how old they were.

Step ``n`` sets ``state/n`` to ``n``, sets key ``k/{n % KEYS}`` to ``[n, pad]``,
adds ``tmp/{n}`` and deletes ``tmp/{n-1}``. So the whole map after step ``n``
is a function of ``n`` alone (:func:`expected_state`), and the test can tell a
complete state from a torn or mixed one.

Kept to the imports the store needs, so that the test's 200+ runs start fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any

from garrison.components.database import Store
from garrison.stores._edn_file import EdnFileStore

KEYS = 40
PAD = "p" * 300  # makes the file big enough (~15 KB) that kills land mid-write


def say(line: str) -> None:
    """Write one line to stdout in one system call, so a kill never leaves half of it."""
    data = (line + "\n").encode()
    while data:  # lines under PIPE_BUF (4 KiB) go in one atomic write
        data = data[os.write(1, data) :]


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
    say(f"ready {os.getpid()} {n}")
    while True:
        n += 1
        await store.put_many([(f"k/{n % KEYS}", [n, PAD]), (f"tmp/{n}", n), ("state/n", n)])
        await store.delete(f"tmp/{n - 1}")
        if n % 20 == 0:
            await store.flush()
            say(f"flushed {n}")
        else:
            await asyncio.sleep(0)  # lets the debounced writer run between steps


#: Keys the runtime writer cycles through: write ``n`` goes to ``k/{n % RUNTIME_KEYS}``.
RUNTIME_KEYS = 400
#: One big value written once, so each flush of memory.edn writes ~0.5 MB.
BALLAST = "b" * 400_000


async def run_runtime(data_dir: str, spec: dict[str, Any]) -> None:
    """One runtime writer: start garrison, read back, then write and acknowledge forever.

    ``spec``: ``mode`` (for a new database), ``max_delay`` and ``quiet``
    (the EDN writer's flush_max_delay and flush_quiet_period), ``durability``, ``start``
    (write numbers begin above it), ``seed``, ``switches`` (modes to switch to
    in order, every 20-150 ms; a refused switch is reported, not retried)
    and ``check_only`` (read back, report, stop).

    Prints ``ready PID MODE {key: n}`` (the number each key holds, read through
    ``rt.get(Store)``), then ``a N T`` after write ``N`` was acknowledged at
    monotonic time ``T``, ``m MODE T`` after a switch, ``r MODE REASON`` after a
    refused one. Write ``N`` sets ``k/{N % RUNTIME_KEYS}`` to ``[N, pad]``.
    """
    from garrison import open_runtime  # imported once, by the zygote

    database = {
        "mode": spec["mode"],
        "flush_max_delay": spec["max_delay"],
        "flush_quiet_period": spec["quiet"],
        "durability": spec["durability"],
    }
    config = {
        "runtime": {"data_dir": data_dir, "stop_timeout": 5.0},
        "components": {"database": database},
    }
    rng = random.Random(spec["seed"])
    async with open_runtime(config, environ={}) as rt:
        store = rt.get(Store)
        keys = [f"k/{i}" for i in range(RUNTIME_KEYS)]
        found = {key: value[0] for key, value in (await store.get_many(keys)).items()}
        mode = await store.mode()
        say(f"ready {os.getpid()} {mode} {json.dumps(found)}")
        if spec.get("check_only"):
            return
        if await store.get("ballast/all") is None:
            await store.put("ballast/all", BALLAST)
        n = max([spec["start"], *found.values()])
        switches = list(spec.get("switches", ()))
        # Switch moments: every 20-150 ms, however fast the writes go.
        switch_at = time.monotonic() + rng.uniform(0.02, 0.15)
        while True:
            n += 1
            await store.put(f"k/{n % RUNTIME_KEYS}", [n, "p" * 200])
            say(f"a {n} {time.monotonic()!r}")
            if switches and time.monotonic() >= switch_at:
                switch_at = time.monotonic() + rng.uniform(0.02, 0.15)
                target = switches.pop(0)
                try:
                    await store.set_mode(target, reason="crash test")
                except Exception as exc:
                    say(f"r {target} {type(exc).__name__}")
                else:
                    say(f"m {target} {time.monotonic()!r}")
            # A paced writer: the acknowledgements stay well below the pipe's buffer.
            await asyncio.sleep(rng.uniform(0, 0.002))


def zygote(kind: str, path: str) -> None:
    """Fork a writer per ``go`` line; report how each one ended."""
    if kind == "runtime":
        import garrison.components.database  # noqa: F401 - warm the forked writers
    for line in sys.stdin:
        word, _, rest = line.strip().partition(" ")
        if word != "go":
            break
        pid = os.fork()
        if pid == 0:  # the writer; it runs until it is killed (or a check-only run ends)
            code = 1
            try:
                if kind == "runtime":
                    asyncio.run(run_runtime(path, json.loads(rest)))
                    code = 0
                else:
                    asyncio.run(run(path))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"exited {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    zygote(sys.argv[1], sys.argv[2])
