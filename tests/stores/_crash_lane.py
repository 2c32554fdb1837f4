"""Kill garrison runtimes at random moments and count the acknowledged writes they lost.

The parent side of ``_crash_writer.py runtime``: :func:`kill_lane` starts the
zygote on one data folder, then again and again forks a writer, lets it write
through ``rt.get(Store)`` for a random while, SIGKILLs it, and reads what the next
writer found (through ``rt.get(Store)``, after a fresh start) against every write
the killed one acknowledged. Shared by the crash tests and
``benchmarks/bench_crash.py``.

A write acknowledged in a mode that commits to SQLite must survive any kill;
one acknowledged in ``edn-only`` must survive a kill that comes more than the
EDN store's bound after its acknowledgement. Every acknowledged write that is
missing after a restart is returned with its age at the kill, so the caller
can compare the ages with the bound.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

WRITER = Path(__file__).with_name("_crash_writer.py")
ROOT = Path(__file__).parents[2]


@dataclass(frozen=True, slots=True)
class LostWrite:
    """An acknowledged write the restarted runtime did not find."""

    number: int
    #: The mode it was acknowledged in.
    mode: str
    #: Seconds from its acknowledgement to the kill.
    age: float
    #: Which kill of the lane lost it (0 for the first).
    kill: int
    #: Seconds from the killed writer's first acknowledgement to the kill.
    run: float


@dataclass(slots=True)
class LaneResult:
    """What one lane of kills found."""

    kills: int = 0
    acknowledged: int = 0
    lost: list[LostWrite] = field(default_factory=list)
    #: Kills after which at least one acknowledged write was missing.
    losing_kills: int = 0
    switches: int = 0
    refused_switches: int = 0
    #: The mode each restart came up in, in order.
    modes: list[str] = field(default_factory=list)


def _go(stdin: IO[str], spec: dict[str, Any]) -> None:
    stdin.write(f"go {json.dumps(spec)}\n")
    stdin.flush()


def _reader(stdout: IO[str]) -> tuple[Callable[[], str], threading.Thread]:
    """A ``readline`` over ``stdout`` that a thread keeps draining meanwhile.

    While the lane waits for its kill moment the writer keeps reporting; a
    pipe nobody reads fills up and would block the writer's event loop, and
    with it the flushes whose timing is under test.
    """
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")  # end of file

    thread = threading.Thread(target=pump, name="crash-lane-reader", daemon=True)
    thread.start()
    return lambda: lines.get(timeout=60), thread


def _ready(readline: Callable[[], str]) -> tuple[int, str, dict[str, int]]:
    line = readline()
    word, pid, mode, found = line.split(" ", 3)
    assert word == "ready", f"the writer did not start: {line!r}"
    return int(pid), mode, {key: int(n) for key, n in json.loads(found).items()}


def kill_lane(
    folder: Path,
    *,
    mode: str,
    kills: int,
    seed: int,
    max_delay: float = 0.25,
    quiet: float = 0.05,
    window: tuple[float, float] = (0.05, 0.6),
    durability: str = "commit",
    switches: tuple[str, ...] = (),
    after_kill: Callable[[], None] | None = None,
) -> LaneResult:
    """Kill ``kills`` writers in ``folder`` (a database first made in ``mode``).

    Each writer (with the database's ``durability`` setting) lives a random
    time within ``window`` seconds after it has reported ready; ``switches``
    are the modes each writer switches to, in order, at random moments.
    ``after_kill`` runs after each kill, before the next writer starts (an
    operator's step: a rollback, say). Returns every lost write with its age.
    """
    rng = random.Random(seed)
    result = LaneResult()
    keys = _keys()
    zygote = subprocess.Popen(
        [sys.executable, str(WRITER), "runtime", str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)},
    )
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    readline, reader = _reader(zygote.stdout)
    spec: dict[str, Any] = {
        "mode": mode,
        "max_delay": max_delay,
        "quiet": quiet,
        "durability": durability,
    }
    acks: list[tuple[int, float, str]] = []  # the previous writer's (number, time, mode)
    killed_at = 0.0
    highest = 0
    try:
        for run in range(kills + 1):
            last = run == kills
            _go(zygote.stdin, {**spec, "start": highest, "seed": rng.randrange(1 << 30),
                               "switches": list(switches), "check_only": last})  # fmt: skip
            pid, current, found = _ready(readline)
            result.modes.append(current)
            lost_before = len(result.lost)
            for number, acked_at, acked_mode in acks:
                if found.get(keys[number % len(keys)], -1) < number:
                    age, ran = killed_at - acked_at, killed_at - acks[0][1]
                    result.lost.append(LostWrite(number, acked_mode, age, run - 1, ran))
            result.losing_kills += len(result.lost) > lost_before
            acks = []
            if last:
                assert readline().split() == ["exited", str(pid), "0"]
                break
            # The kill moment: a timer, not synchronisation; any moment is fair game.
            time.sleep(rng.uniform(*window))
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            result.kills += 1
            writing = current
            while not (line := readline()).startswith("exited"):
                word, *rest = line.split()
                if word == "a":
                    number, acked_at = int(rest[0]), float(rest[1])
                    acks.append((number, acked_at, writing))
                    highest = max(highest, number)
                elif word == "m":
                    writing = rest[0]
                    result.switches += 1
                else:
                    assert word == "r", line
                    result.refused_switches += 1
            assert line.split() == ["exited", str(pid), str(-signal.SIGKILL)], line
            result.acknowledged += len(acks)
            if after_kill is not None:
                after_kill()
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        reader.join(timeout=30)  # it ends at the pipe's end of file
        zygote.stdout.close()
    return result


def _keys() -> list[str]:
    from tests.stores._crash_writer import RUNTIME_KEYS  # one source for the key count

    return [f"k/{i}" for i in range(RUNTIME_KEYS)]
