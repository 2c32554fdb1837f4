"""EDN codec: garrison's loads/dumps against edn_format on a memory.edn-like file.

Generates a ~20 MB map shaped like the legacy store (namespaced keyword keys,
nested maps, strings with escapes and non-ASCII, sets, #inst, #uuid), then
times ``loads`` and ``dumps`` for both codecs in the same run (CPU time,
rounds interleaving the four cases, medians and per-round ratios of
``--repeat`` rounds) and the peak memory of one ``loads`` each (tracemalloc).

    .venv-test/bin/python benchmarks/bench_edn.py            # ~20 MB, 3 rounds
    .venv-test/bin/python benchmarks/bench_edn.py --mb 2     # a quick look
    .venv-test/bin/python benchmarks/bench_edn.py --pure     # also loads without the C reader
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, peak_memory, report
from garrison.edn import Keyword, _accel, dumps, loads

_WORDS = [
    "alpha", "Zürich", "naïve", "日本語", "emoji 😀", "tab\tsep", "quote\"d", "back\\slash",
    "line\nbreak", "plain", "session", "presence", "learning", "tag", "index", "café",
]  # fmt: skip


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))


def _entry(rng: random.Random, i: int) -> tuple[Keyword, Any]:
    """One top-level entry, in one of the shapes the legacy store holds."""
    kind = rng.randrange(5)
    start = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**8))
    if kind == 0:
        key = Keyword(f"session/{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}")
        return key, {
            Keyword("session/id"): uuid.UUID(int=rng.getrandbits(128)),
            Keyword("session/user"): Keyword(f"user/u{rng.randint(1, 5000)}"),
            Keyword("session/started"): start,
            Keyword("session/tags"): frozenset(Keyword(rng.choice(_WORDS[10:])) for _ in range(3)),
            Keyword("session/messages"): [
                {
                    Keyword("message/role"): Keyword(rng.choice(["user", "assistant"])),
                    Keyword("message/text"): _text(rng),
                    Keyword("message/at"): start + timedelta(seconds=n),
                    Keyword("message/tokens"): rng.randint(1, 4000),
                }
                for n in range(rng.randint(1, 8))
            ],
        }
    if kind == 1:
        return Keyword(f"presence/s-{i}"), {
            Keyword("presence/online?"): rng.random() < 0.5,
            Keyword("presence/last-seen"): start,
            Keyword("presence/score"): rng.random() * 100,
        }
    if kind == 2:
        token = uuid.UUID(int=rng.getrandbits(128)).hex
        return Keyword(f"embed-token/{token}"), [rng.random() for _ in range(16)]
    if kind == 3:
        return Keyword(f"learning/tag-index-{i}"), {
            Keyword(rng.choice(_WORDS[10:])): frozenset(rng.randint(0, 10**6) for _ in range(8)),
            Keyword("learning/notes"): _text(rng),
            Keyword("learning/weights"): (rng.random(), rng.random(), None, True),
        }
    return Keyword(f"cache/k{i}"), {
        "raw-key": _text(rng),
        Keyword("cache/hits"): rng.randint(0, 10**9),
        Keyword("cache/expires"): start,
    }


def build(megabytes: float, seed: int = 7) -> str:
    """A memory.edn-like text of about ``megabytes`` MB."""
    rng = random.Random(seed)
    state: dict[Keyword, Any] = {}
    target = int(megabytes * 1_000_000)
    size = 0
    i = 0
    while size < target:
        key, value = _entry(rng, i)
        state[key] = value
        i += 1
        if i % 2000 == 0:
            size = len(dumps(state).encode())
    return dumps(state)


def _cpu_seconds(fn: Callable[[], object]) -> float:
    """CPU time of one call: the machine is shared, so wall time measures the neighbours."""
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    """Run the comparison and print one line per figure."""
    import edn_format

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the generated file")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument(
        "--pure",
        action="store_true",
        help="also time loads with the C reader off (the pure-Python reader) in the same rounds",
    )
    args = parser.parse_args()

    text = build(args.mb)
    mb = len(text.encode()) / 1e6
    print(machine())
    print(f"file: {mb:.1f} MB, {text.count(':session/id')} sessions; CPU seconds per call")

    # Peak memory first, while nothing else is alive.
    _, ours_peak = peak_memory(lambda: loads(text))
    _, theirs_peak = peak_memory(lambda: edn_format.loads(text))

    ours_value = loads(text)
    theirs_value = edn_format.loads(text)
    runs: dict[str, list[float]] = {name: [] for name in _CASES}
    if args.pure:
        runs["garrison pure loads"] = []
    # Rounds interleave the four cases so that load from other processes hits
    # both codecs alike; each round gives its own ratio.
    for _ in range(args.repeat):
        runs["garrison loads"].append(_cpu_seconds(lambda: loads(text)))
        if args.pure:
            runs["garrison pure loads"].append(_cpu_seconds(lambda: _pure_loads(text)))
        runs["edn_format loads"].append(_cpu_seconds(lambda: edn_format.loads(text)))
        runs["garrison dumps"].append(_cpu_seconds(lambda: dumps(ours_value)))
        runs["edn_format dumps"].append(_cpu_seconds(lambda: edn_format.dumps(theirs_value)))
    for name, seconds in runs.items():
        print(f"  {name:<18} runs: " + ", ".join(f"{r:.2f}s" for r in seconds))
    for op in ("loads", "dumps"):
        ours, theirs = runs[f"garrison {op}"], runs[f"edn_format {op}"]
        ratios = sorted(t / o for o, t in zip(ours, theirs, strict=True))
        report(
            f"{op} throughput (MB/s)",
            mb / statistics.median(ours),
            mb / statistics.median(theirs),
            unit="MB/s",
            higher_is_better=True,
        )
        print(f"  per-round {op} ratios: " + ", ".join(f"{r:.2f}x" for r in ratios))
    if args.pure:
        ours, pure = runs["garrison loads"], runs["garrison pure loads"]
        ratios = sorted(p / o for p, o in zip(pure, ours, strict=True))
        built = "C reader" if _accel.reader is not None else "no C reader (pure both times)"
        print(
            f"garrison loads, {built}: {mb / statistics.median(ours):.1f} MB/s; pure-Python"
            f" reader: {mb / statistics.median(pure):.1f} MB/s; per-round ratios "
            + ", ".join(f"{r:.2f}x" for r in ratios)
        )
    report(
        "loads peak memory (MB)",
        ours_peak / 1e6,
        theirs_peak / 1e6,
        unit="MB",
        higher_is_better=False,
    )


_CASES = ("garrison loads", "edn_format loads", "garrison dumps", "edn_format dumps")


def _pure_loads(text: str) -> Any:
    """``loads`` with the C reader switched off, as ``GARRISON_NO_EXTENSIONS=1`` would."""
    reader = _accel.reader
    _accel.reader = None
    try:
        return loads(text)
    finally:
        _accel.reader = reader


if __name__ == "__main__":
    main()
