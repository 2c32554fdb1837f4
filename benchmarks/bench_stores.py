"""EdnFileStore: an incremental flush against a full dump of the whole map.

A 100k-key map shaped like the legacy store is loaded into an EdnFileStore and
flushed once (which caches every entry's text). Then, repeatedly, 100 random
keys change and the store flushes: only those 100 entries are serialised again
and the cached texts of the others are joined. The baseline is what the legacy
writer does on every save: ``dumps`` of the whole map. Both write the result
the same way (temp file, fsync, rename, fsync of the folder), so the figures
compare the same durable save; the serialisation alone is reported too.

    .venv-test/bin/python benchmarks/bench_stores.py               # 100k keys, 7 rounds
    .venv-test/bin/python benchmarks/bench_stores.py --keys 20000  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, report
from garrison.edn import Keyword, dumps
from garrison.stores import EdnFileStore
from garrison.stores._atomic import replace_file
from garrison.stores._edn_file_format import entry_text, file_pieces
from garrison.stores._keys import edn_key

_WORDS = ["alpha", "Zürich", "naïve", "plain", "session", "presence", "tag", "index", "café"]


def _entry(rng: random.Random, i: int) -> tuple[str, Any]:
    """One entry by key text: a presence record, a session summary or a tag index."""
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**7))
    kind = i % 3
    if kind == 0:
        return f"presence/s-{i}", {
            Keyword("presence/online?"): rng.random() < 0.5,
            Keyword("presence/seen"): at,
            Keyword("presence/device"): rng.choice(_WORDS),
        }
    if kind == 1:
        return f"session/{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}", {
            Keyword("session/user"): Keyword(f"user/u{rng.randint(1, 5000)}"),
            Keyword("session/started"): at,
            Keyword("session/turns"): rng.randint(1, 200),
            Keyword("session/title"): " ".join(rng.choices(_WORDS, k=4)),
        }
    return f"learning/tag-{i}", frozenset(Keyword(w) for w in rng.sample(_WORDS, 3))


async def measure(keys: int, dirty: int, rounds: int) -> None:
    rng = random.Random(42)
    entries = [_entry(rng, i) for i in range(keys)]
    folder = Path(tempfile.mkdtemp(prefix="garrison-bench-stores-"))
    path = folder / "memory.edn"
    async with EdnFileStore(path, quiet_period=3600, max_delay=3600) as store:
        await store.put_many(entries)
        await store.flush()  # caches every entry's text, as a long-running store has
        size = path.stat().st_size
        names = [k for k, _ in entries]

        incremental: list[float] = []
        incremental_encode: list[float] = []
        full: list[float] = []
        full_encode: list[float] = []
        cached = {k: entry_text(k, v) for k, v in entries}
        for n in range(rounds):
            changed = rng.sample(names, dirty)
            await store.put_many((k, {Keyword("round"): n, Keyword("k"): k}) for k in changed)
            # Alternate which side goes first so drift in the machine's load
            # (other test suites share it) does not favour either.
            order = ("inc", "full") if n % 2 == 0 else ("full", "inc")
            for which in order:
                if which == "inc":
                    start = time.perf_counter()
                    await store.flush()
                    incremental.append(time.perf_counter() - start)
                    assert store.statistics().last_flush_encoded == dirty
                    # The same serialisation work without the disk: encode the
                    # dirty entries, join all cached ones.
                    now = store.snapshot()
                    start = time.perf_counter()
                    cached.update((k, entry_text(k, now[k])) for k in changed)
                    b"".join(file_pieces(list(cached.values())))
                    incremental_encode.append(time.perf_counter() - start)
                else:
                    whole = {edn_key(k): v for k, v in store.snapshot().items()}
                    start = time.perf_counter()
                    text = dumps(whole)
                    encoded = time.perf_counter() - start
                    await asyncio.to_thread(replace_file, folder / "full.edn", text.encode())
                    full.append(time.perf_counter() - start)
                    full_encode.append(encoded)
        # The incremental file is byte for byte the full dump of the same map.
        assert path.read_bytes() == (folder / "full.edn").read_bytes()

    inc, base = statistics.median(incremental), statistics.median(full)

    def spread(runs: list[float]) -> str:
        return f"{max(runs) / min(runs) - 1:.0%}"

    print(f"machine: {machine()}")
    print(
        f"{keys} keys ({size / 1e6:.1f} MB file), {dirty} dirty per flush, medians of {rounds} "
        f"rounds (spread: incremental {spread(incremental)}, full {spread(full)})"
    )
    report(
        f"flush {dirty} dirty of {keys} (durable write)",
        inc * 1e3,
        base * 1e3,
        unit="ms",
        higher_is_better=False,
    )
    report(
        f"serialise {dirty} dirty of {keys} (no disk)",
        statistics.median(incremental_encode) * 1e3,
        statistics.median(full_encode) * 1e3,
        unit="ms",
        higher_is_better=False,
    )
    print(f"incremental / full: {inc / base:.1%} (target <= 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--dirty", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(measure(args.keys, args.dirty, args.rounds))


if __name__ == "__main__":
    main()
