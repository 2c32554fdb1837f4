"""Refused writes never reach a store, and acknowledged ones survive SIGKILL.

A real runtime in a forked writer process mixes writes every store of the
mode refuses with good ones (keys spelt with and without their colon) through
``rt.get(Store)``, and is SIGKILLed at a random moment; the next writer opens what
it left. After every kill, in ``edn-only`` and ``dual-write``:

- the EDN file parses and holds the good keys ``k/1 .. k/m`` with no gap and
  none of the refused ones (one refused write used to poison every flush);
- ``m`` covers every write the writer saw flushed (``store.flush()``
  returned) and every write acknowledged longer ago than the flush bound
  (``flush_max_delay``) plus a scheduling allowance for a loaded machine;
- in ``dual-write``, SQLite holds every acknowledged write (it commits before
  the put returns) and none of the refused ones.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from garrison.edn import Keyword, loads
from tests.components.database._admission_writer import MAX_DELAY

WRITER = Path(__file__).with_name("_admission_writer.py")
KILLS = 4
#: Scheduling delays on a loaded 2-core machine, beyond the flush bound itself.
ALLOWANCE = 1.0


def edn_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    parsed = loads(path.read_text(encoding="utf-8"))
    assert isinstance(parsed, dict)
    assert all(isinstance(k, Keyword) for k in parsed), parsed.keys()
    return {k.text for k in parsed}


def sqlite_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {key for (key,) in db.execute("SELECT key FROM entries")}


def good_prefix(keys: set[str]) -> int:
    """``m`` when the keys are exactly ``k/1 .. k/m``; fails on a refused key or a gap."""
    assert not [k for k in keys if not k.startswith("k/")], f"refused keys stored: {keys}"
    m = len(keys)
    assert keys == {f"k/{i}" for i in range(1, m + 1)}, f"a gap in {sorted(keys)}"
    return m


def lane(folder: Path, mode: str, seed: int) -> int:
    """Kill a writer KILLS times; return the number of good keys at the end."""
    rng = random.Random(seed)
    zygote = subprocess.Popen(
        [sys.executable, str(WRITER), str(folder), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    found = 0
    try:
        for _ in range(KILLS):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            ready = zygote.stdout.readline().split()
            assert ready[:1] == ["ready"], f"the writer did not start: {ready}"
            pid, loaded = int(ready[1]), int(ready[2])
            assert loaded == found, f"{mode}: the writer found {loaded} keys, the file {found}"
            acked: list[tuple[int, float]] = []
            durable = loaded
            deadline = time.monotonic() + rng.uniform(0.05, 1.0)
            try:
                while time.monotonic() < deadline:
                    acked, durable = _note(zygote.stdout.readline(), acked, durable)
            finally:
                killed_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
            while not (line := zygote.stdout.readline()).startswith("exited"):
                acked, durable = _note(line, acked, durable)
            assert line.split() == ["exited", str(pid), str(-signal.SIGKILL)]
            found = good_prefix(edn_keys(folder / "memory.edn"))
            old = [n for n, at in acked if at < killed_at - MAX_DELAY - ALLOWANCE]
            assert found >= max([durable, *old]), (
                f"{mode}: {found} keys in the file; flushed {durable}, acknowledged long ago "
                f"{max(old, default=0)} (seed {seed})"
            )
            if mode == "dual-write":
                in_sqlite = good_prefix(sqlite_keys(folder / "garrison.db"))
                assert in_sqlite >= max((n for n, _ in acked), default=0)
                # The next start levels the EDN file from SQLite, the newer side.
                found = in_sqlite
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        zygote.stdout.close()
    return found


def _note(
    line: str, acked: list[tuple[int, float]], durable: int
) -> tuple[list[tuple[int, float]], int]:
    word, *rest = line.split()
    assert word != "LEAK", f"a write every store should refuse was accepted: {line}"
    if word == "acked":
        acked.append((int(rest[0]), float(rest[1])))
    elif word == "durable":
        durable = int(rest[0])
    else:
        raise AssertionError(f"unexpected line from the writer: {line!r}")
    return acked, durable


def test_refused_writes_never_land_and_acknowledged_ones_survive_sigkill(
    tmp_path: Path,
) -> None:
    modes = ["edn-only", "dual-write"]
    folders = [tmp_path / mode for mode in modes]
    seed = random.randrange(1 << 30)
    with ThreadPoolExecutor(len(modes)) as pool:
        found = list(pool.map(lane, folders, modes, [seed, seed + 1]))
    assert all(n > 0 for n in found), f"the writers made no progress (seed {seed})"
