"""Crash safety: SIGKILL writers at random moments, and check what survives.

The EdnFileStore, 200+ kills: after every kill the file must parse and hold a
complete state the writer went through (never a torn file, never a mix of two
states), at least as new as the last state the writer reported flushed, and
never older than the state found after the previous kill. Each run starts by
loading what the killed run left.

garrison runtimes in every mode (see ``_crash_lane.py``): every write
acknowledged through ``rt.get(Store)`` is read back through ``rt.get(Store)`` after a
restart. In ``edn-only`` a write may be lost only if the kill came within the
EDN store's bound (``flush_max_delay``) of its acknowledgement; in every mode
that commits to SQLite, no acknowledged write may be lost, including across
mode switches and rollbacks made while writing; with ``durability =
"debounced"`` they may lose what ``edn-only`` may, and only a suffix of the
acknowledged writes. ``benchmarks/bench_crash.py`` runs the same lanes with
200+ kills.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from garrison.cli import main
from garrison.edn import Keyword, loads
from tests.stores._crash_lane import LaneResult, kill_lane
from tests.stores._crash_writer import KEYS, expected_state

WRITER = Path(__file__).with_name("_crash_writer.py")
KILLS_PER_LANE = 120
LANES = 2  # two writers on two files at once


def on_disk(path: Path) -> dict[str, Any]:
    """The file as a map by key text, read with the codec (not the store's loader)."""
    if not path.exists():
        return {}
    parsed = loads(path.read_text(encoding="utf-8"))
    assert isinstance(parsed, dict)
    assert all(isinstance(k, Keyword) for k in parsed)
    return {k.text: v for k, v in parsed.items()}


def lane(folder: Path, seed: int) -> tuple[int, int, int]:
    """Kill a writer KILLS_PER_LANE times; return (final state, kills mid-write, flushes seen)."""
    rng = random.Random(seed)
    path = folder / "memory.edn"
    previous = 0
    mid_write = 0
    flushes_seen = 0
    zygote = subprocess.Popen(
        [sys.executable, str(WRITER), "store", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    try:
        for _ in range(KILLS_PER_LANE):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            ready = zygote.stdout.readline().split()
            assert ready[:1] == ["ready"], f"writer did not start: {ready}"
            pid, loaded = int(ready[1]), int(ready[2])
            assert loaded == previous, "the writer loaded a different state than was left"
            durable = previous
            try:
                # The kill moment: after a random number of confirmed flushes
                # (0-3), while the debounced writer keeps flushing on its own.
                for _ in range(rng.randrange(4)):
                    word, value = zygote.stdout.readline().split()
                    assert word == "flushed"
                    durable = int(value)
                    flushes_seen += 1
            finally:
                os.kill(pid, signal.SIGKILL)
            # Lines the writer printed before dying, then the zygote's report.
            while not (line := zygote.stdout.readline()).startswith("exited"):
                assert line.startswith("flushed"), line
            assert line.split() == ["exited", str(pid), str(-signal.SIGKILL)]
            mid_write += any(name != "memory.edn" for name in os.listdir(folder))
            state = on_disk(path)
            n = state.get("state/n", 0)
            assert n >= durable, f"state {n} on disk, but {durable} was reported flushed"
            assert n >= previous, f"state went back from {previous} to {n}"
            expected = expected_state(n)
            if state != expected:
                # Between put_many and delete of one step, tmp/{n-1} is still there.
                expected[f"tmp/{n - 1}"] = n - 1
                assert state == expected, f"file is not a complete state (state/n = {n})"
            previous = n
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=10)
        zygote.stdout.close()
    return previous, mid_write, flushes_seen


@pytest.mark.slow
def test_sigkill_at_random_moments_never_tears_or_loses_the_file(tmp_path: Path) -> None:
    folders = [tmp_path / f"lane{i}" for i in range(LANES)]
    for folder in folders:
        folder.mkdir()
    seed = random.randrange(1 << 30)
    with ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(lane, folders, [seed + i for i in range(LANES)]))
    assert LANES * KILLS_PER_LANE >= 200
    for final, _, _ in results:
        assert final > KEYS, f"the writers made too little progress (seed {seed})"
    # Some kills must have hit a flush in progress (a temp file left behind),
    # or the test would not be testing atomicity at all.
    assert sum(mid_write for _, mid_write, _ in results) > 0, f"no kill landed mid-write ({seed})"


#: flush_max_delay of the runtime lanes: the EDN store's promised bound (with
#: room for a slow fsync on a busy CI disk; benchmarks/bench_crash.py uses 0.25 s).
BOUND = 0.4


def lanes(tmp_path: Path, count: int, **options: Any) -> list[LaneResult]:
    """Run ``count`` kill lanes at once, each on its own data folder."""
    seed = random.randrange(1 << 30)
    folders = [tmp_path / f"lane{i}" for i in range(count)]
    with ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(kill_lane, folder, seed=seed + i, max_delay=BOUND, **options)
            for i, folder in enumerate(folders)
        ]
        return [future.result() for future in futures]


@pytest.mark.slow
def test_edn_only_never_loses_a_write_acknowledged_longer_than_the_bound_ago(
    tmp_path: Path,
) -> None:
    # Kills up to 1.5 bounds after a writer started.
    results = lanes(tmp_path, 2, mode="edn-only", kills=15, window=(0.05, 1.5 * BOUND))
    lost = [write for result in results for write in result.lost]
    assert sum(result.kills for result in results) == 30
    assert sum(result.acknowledged for result in results) > 1000
    too_old = sorted((w for w in lost if w.age > BOUND), key=lambda w: -w.age)
    assert not too_old, (
        f"{len(too_old)} of {len(lost)} lost writes were acknowledged more than {BOUND}s "
        f"before the kill (oldest {too_old[0].age:.3f}s)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dual-write", "sqlite-first", "sqlite-only"])
def test_modes_that_commit_to_sqlite_lose_no_acknowledged_write(tmp_path: Path, mode: str) -> None:
    (result,) = lanes(tmp_path, 1, mode=mode, kills=8)
    assert result.acknowledged > 300
    assert result.lost == [], f"{len(result.lost)} acknowledged writes lost in {mode}"
    assert set(result.modes) == {mode}


@pytest.mark.slow
def test_debounced_durability_loses_at_most_the_bound_and_only_the_newest_writes(
    tmp_path: Path,
) -> None:
    modes = ["sqlite-only", "dual-write"]
    seed = random.randrange(1 << 30)
    with ThreadPoolExecutor(len(modes)) as pool:
        futures = [
            pool.submit(
                kill_lane,
                tmp_path / mode,
                mode=mode,
                kills=8,
                seed=seed + i,
                max_delay=BOUND,
                window=(0.05, 1.5 * BOUND),
                durability="debounced",
            )
            for i, mode in enumerate(modes)
        ]
        results = [future.result() for future in futures]
    for mode, result in zip(modes, results, strict=True):
        assert result.acknowledged > 300, mode
        assert set(result.modes) == {mode}
        too_old = [round(w.age, 3) for w in result.lost if w.age > BOUND]
        assert too_old == [], f"{mode}: lost writes acknowledged over {BOUND}s before the kill"
        for kill in {w.kill for w in result.lost}:
            # Commits keep the acknowledgement order: a kill loses the newest
            # writes only, never one whose successor survived (write n goes
            # to key n % 400, so the numbers of a kill's losses are distinct).
            numbers = sorted(w.number for w in result.lost if w.kill == kill)
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), (mode, kill)
    # Acknowledged before the commit: some kills did catch writes not committed yet.
    assert sum(result.losing_kills for result in results) > 0, f"nothing pending at a kill ({seed})"


@pytest.mark.slow
def test_switches_and_rollbacks_while_writing_lose_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    # Forward and back through the modes that read EDN, at random moments of
    # every run, then killed.
    switches: tuple[str, ...] = ("sqlite-first", "dual-write", "edn-only", "dual-write")
    switches += ("sqlite-first", "dual-write")
    (result,) = lanes(tmp_path, 1, mode="dual-write", kills=12, switches=switches)
    assert result.switches > 6
    assert result.refused_switches == 0
    # Only edn-only's own window may lose a write; every other mode commits first.
    unexpected = [w for w in result.lost if w.mode != "edn-only" or w.age > BOUND]
    assert unexpected == [], [(w.number, w.mode, round(w.age, 3)) for w in unexpected]


@pytest.mark.slow
def test_the_rollback_out_of_sqlite_only_after_kills_serves_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    # Each writer moves on to sqlite-only; after each kill the operator rolls
    # back as docs/migration.md says (export, sqlite-first, dual-write), and the
    # next writer reads EDN again, with no acknowledged write missing.
    folder = tmp_path / "lane"
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{folder}"\n', encoding="utf-8")
    rollbacks = 0

    def roll_back() -> None:
        nonlocal rollbacks
        if mode_of(config) != "sqlite-only":
            return
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["export", "--force", "--config", str(config)]) == 0
            for step in ("sqlite-first", "dual-write"):
                assert main(["mode", "set", step, "--config", str(config)]) == 0
        rollbacks += 1

    result = kill_lane(
        folder,
        mode="dual-write",
        kills=8,
        seed=random.randrange(1 << 30),
        max_delay=BOUND,
        window=(0.3, 0.6),
        switches=("sqlite-first", "sqlite-only"),
        after_kill=roll_back,
    )
    assert rollbacks >= 4
    assert result.refused_switches == 0
    assert result.lost == [], [(w.number, w.mode, round(w.age, 3)) for w in result.lost]


def mode_of(config: Path) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["mode", "get", "--config", str(config)]) == 0
    return out.getvalue().strip()
