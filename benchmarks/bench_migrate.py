"""Migrator: migrate + validate a 100k-key, ~25 MB memory.edn against edn_format's parse of it.

Generates a legacy ``memory.edn`` (sessions, presence, collab sessions,
projects, learning records and their indexes, embed tokens, webhooks, cache
entries; keywords, strings with escapes and non-ASCII, sets, lists, #inst,
#uuid, ratios, BigInts, ``:embed-token/5fe3``-style keys), then in the same run:

- baseline: ``edn_format.loads`` of the file text (parse only), median of
  ``--repeat`` runs, and its peak memory (tracemalloc);
- garrison A: ``migrate()`` into a fresh SQLite file, then a separate
  ``validate()`` that reads and parses the file again (what ``garrison
  migrate`` followed by ``garrison validate`` does);
- garrison B: ``migrate()`` then ``validate(source=...)`` reusing the parsed
  file after checking its SHA-256 (what ``garrison migrate --validate`` and the
  component's automatic runs do);

each end to end (reading the file included), median of ``--repeat`` runs on a
fresh database, and the peak memory of one run. Every run is made in a fresh
interpreter (the script calls itself with ``--case``), so no case pays for the
objects another one left alive. tracemalloc sees Python
allocations only (SQLite's own page cache is not counted on either side); both
peaks include reading the file.

    .venv-test/bin/python benchmarks/bench_migrate.py               # 100k keys, 3 runs
    .venv-test/bin/python benchmarks/bench_migrate.py --keys 10000  # a quick look
    .venv-test/bin/python benchmarks/bench_migrate.py --encode-only # value encoding, C vs pure

``--postgresql`` adds a case in the same run: garrison B (``migrate --validate``)
into a fresh PostgreSQL database (the server ``GARRISON_TEST_POSTGRES_DSN``
names, else one started from the installed binaries with PostgreSQL's default
durability, as benchmarks/bench_postgres.py does), with its ratios to the
SQLite figure and to edn_format's parse. ``--bulk-paths`` (with
``--postgresql``) times only the ways to write the file's rows into
PostgreSQL in batches of 1000 under the store's write path (lock, commit
record, history trigger): asyncpg ``executemany`` of the one-row upsert,
``COPY`` into a temporary table then ``INSERT ... SELECT ... ON CONFLICT``,
and one ``INSERT ... SELECT FROM unnest(arrays)`` (what garrison uses).

    .venv-test/bin/python benchmarks/bench_migrate.py --postgresql
    .venv-test/bin/python benchmarks/bench_migrate.py --postgresql --bulk-paths
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from tests._postgres import PostgresServer, find_binaries

from _common import machine, peak_memory, report
from garrison.components.database import open_sqlite_owner
from garrison.components.migrator import migrate, validate
from garrison.components.migrator._source import read_source
from garrison.edn import MAP_ENTRY_SEPARATOR, Keyword, dumps_entry
from garrison.stores import PostgresStore, SqliteStore, encode_rows
from garrison.stores._postgres_sql import UPSERT, UPSERT_ROWS

K = Keyword
_WORDS = [
    "alpha", "Zürich", "naïve", "日本語", "emoji 😀", "tab\tsep", 'quote"d', "back\\slash",
    "line\nbreak", "plain", "session", "presence", "learning", "tag", "index", "café",
]  # fmt: skip


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, words)))


def _entry(rng: random.Random, i: int) -> tuple[Keyword, Any]:
    start = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**8))
    kind = i % 10
    if kind in (0, 1):
        return K(f"session/{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"), {
            K("session/id"): uuid.UUID(int=rng.getrandbits(128)),
            K("session/user"): K(f"user/u{rng.randint(1, 5000)}"),
            K("session/started"): start,
            K("session/tags"): frozenset(K(rng.choice(_WORDS[10:])) for _ in range(2)),
            K("session/messages"): [
                {K("role"): K("user"), K("text"): _text(rng, 20), K("tokens"): rng.randint(1, 900)}
                for _ in range(rng.randint(2, 5))
            ],
        }
    if kind == 2:
        return K(f"presence/s-{i}"), {K("online?"): rng.random() < 0.5, K("last-seen"): start}
    if kind == 3:
        return K(f"collab-session/c-{i}"), {K("peers"): [K(f"user/u{rng.randint(1, 99)}")]}
    if kind == 4:
        return K(f"project/p-{i}"), {
            K("name"): _text(rng, 8),
            K("members"): [K(f"user/u{rng.randint(1, 5000)}") for _ in range(3)],
            K("budget"): rng.choice([1.5, 22, 10**20]),
        }
    if kind in (5, 6):
        return K(f"learning/r-{i}"), {
            K("notes"): _text(rng, 40),
            K("weights"): (rng.random(), rng.random(), None, True),
            K("ratio"): rng.choice([1, 2, 3]) / 7 if rng.random() < 0.5 else 0.5,
        }
    if kind == 7:
        token = uuid.UUID(int=rng.getrandbits(128)).hex
        return K(f"embed-token/{token}"), [round(rng.random(), 6) for _ in range(6)]
    if kind == 8:
        return K(f"webhook/w-{i}"), {
            K("url"): f"https://example.org/hooks/{i}",
            K("on"): {K("push")},
        }
    return K(f"cache/k{i}"), {"raw-key": _text(rng, 30), K("hits"): rng.randint(0, 10**9)}


def build(keys: int, seed: int = 11) -> str:
    """A memory.edn text with ``keys`` top-level keys (~250 bytes each on average)."""
    rng = random.Random(seed)
    entries = [dumps_entry(*_entry(rng, i)) for i in range(keys - 2)]
    index = {K(w): frozenset(rng.sample(range(keys), 20)) for w in _WORDS[10:]}
    entries.append(dumps_entry(K("learning/tag-index"), index))
    entries.append(dumps_entry(K("learning/index"), {K("count"): keys}))
    return "{" + MAP_ENTRY_SEPARATOR.join(entries) + "}"


async def _migrate_validate(
    edn: Path, db: Path, *, reuse: bool, phases: dict[str, list[float]] | None = None
) -> tuple[int, bool]:
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    marks = [time.perf_counter()]
    async with SqliteStore(db) as store:
        if reuse:
            source = await asyncio.to_thread(read_source, edn)
            marks.append(time.perf_counter())
            summary = await migrate(store, edn, source=source)
            marks.append(time.perf_counter())
            result = await validate(store, edn, source=source)
            marks.append(time.perf_counter())
        else:
            summary = await migrate(store, edn)
            result = await validate(store, edn)
    if phases is not None and reuse:
        for name, begin, end in zip(
            ("read", "migrate", "validate"), marks, marks[1:], strict=False
        ):
            phases.setdefault(name, []).append(end - begin)
    return summary.written, result.agree


async def _migrate_validate_pg(
    edn: Path, dsn: str, phases: dict[str, list[float]]
) -> tuple[int, bool]:
    """Case PG: ``migrate --validate`` into the (fresh) PostgreSQL database ``dsn``."""
    marks = [time.perf_counter()]
    async with PostgresStore(dsn) as store, open_sqlite_owner(store) as link:
        source = await asyncio.to_thread(read_source, edn)
        marks.append(time.perf_counter())
        summary = await migrate(link, edn, source=source)
        marks.append(time.perf_counter())
        result = await validate(link, edn, source=source)
        marks.append(time.perf_counter())
    for name, begin, end in zip(("read", "migrate", "validate"), marks, marks[1:], strict=False):
        phases.setdefault(name, []).append(end - begin)
    return summary.written, result.agree


def _child(case: str, edn: Path, db: Path | str, *, memory: bool) -> dict[str, Any]:
    """One case, run in a fresh interpreter (see main); its figures as a dict."""
    if case == "edn_format":
        import edn_format

        if memory:
            _, peak = peak_memory(lambda: edn_format.loads(edn.read_text(encoding="utf-8")))
            return {"peak": peak}
        text = edn.read_text(encoding="utf-8")
        start = time.perf_counter()
        edn_format.loads(text)  # parse only: the file's text is already in memory
        return {"seconds": time.perf_counter() - start}
    if case == "PG":
        pg_phases: dict[str, list[float]] = {}
        start = time.perf_counter()
        written, agree = asyncio.run(_migrate_validate_pg(edn, str(db), pg_phases))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "written": written, "agree": agree, "phases": pg_phases}
    db = Path(db)
    reuse = case == "B"
    if memory:
        _, peak = peak_memory(lambda: asyncio.run(_migrate_validate(edn, db, reuse=reuse)))
        return {"peak": peak}
    phases: dict[str, list[float]] = {}
    start = time.perf_counter()
    written, agree = asyncio.run(_migrate_validate(edn, db, reuse=reuse, phases=phases))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "written": written, "agree": agree, "phases": phases}


def _run(case: str, edn: Path, db: Path | str, *, memory: bool = False) -> dict[str, Any]:
    # Each case runs in its own interpreter: edn_format leaves ~1.8 million
    # objects alive after a parse of this file (gc.collect() frees none), and
    # every later full collection in the same process walks them, which made
    # garrison's runs 20-40% slower than alone.
    command = [sys.executable, __file__, "--case", case, "--edn", str(edn), "--db", str(db)]
    done = subprocess.run(
        [*command, *(["--memory"] if memory else [])], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _encoders(edn: Path, repeat: int) -> None:
    """Value encoding alone: the C encoder against the pure one, on every value of the
    file; then decoding every stored text."""
    from garrison.stores._values import decode_value, encode_value, encode_value_pure

    values = list(read_source(edn).entries.values())
    runs: dict[str, list[float]] = {"C": [], "pure": []}
    for _ in range(repeat):  # alternating, so load changes hit both alike
        for name, encode in (("C", encode_value), ("pure", encode_value_pure)):
            start = time.perf_counter()
            texts = [encode(value) for value in values]
            runs[name].append(time.perf_counter() - start)
            assert texts[-1] == encode_value_pure(values[-1])
    for name, times in runs.items():
        print(f"  encode {name:<5} runs: " + ", ".join(f"{t:.2f}s" for t in times))
    decodes = []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            decode_value(text)
        decodes.append(time.perf_counter() - start)
    print("  decode every stored text: " + ", ".join(f"{t:.2f}s" for t in decodes))
    ratios = [pure / c for c, pure in zip(runs["C"], runs["pure"], strict=True)]
    report("encode every value (s)", statistics.median(runs["C"]),
           statistics.median(runs["pure"]), unit="s", higher_is_better=False)  # fmt: skip
    print("    per-round speed-up: " + ", ".join(f"{r:.1f}x" for r in ratios))


def _accelerators() -> str:
    """Which optional C accelerators this run uses (GARRISON_NO_EXTENSIONS=1 turns all off)."""
    from garrison.edn import _accel
    from garrison.stores import _values

    used = {
        "EDN reader": _accel.reader is not None,
        "value encoder": _values.accelerator is not None,
    }
    return ", ".join(f"{name} {'C' if on else 'pure Python'}" for name, on in used.items())


def main() -> None:
    """Generate the file, run both sides, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--edn", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument(
        "--postgresql", action="store_true", help="add migrate --validate into PostgreSQL"
    )
    parser.add_argument(
        "--bulk-paths",
        action="store_true",
        help="with --postgresql: time only executemany, COPY and unnest for the rows",
    )
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--encode-only",
        action="store_true",
        help="time only the value encoding, C encoder against the pure one (both in-process)",
    )
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_child(args.case, args.edn, args.db, memory=args.memory)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        edn = Path(tmp) / "memory.edn"
        db = Path(tmp) / "garrison.db"
        edn.write_text(build(args.keys), encoding="utf-8")
        mb = edn.stat().st_size / 1e6
        print(machine())
        print(f"file: {mb:.1f} MB, {args.keys} keys; each run in a fresh interpreter")
        print(f"accelerators: {_accelerators()}")
        if args.encode_only:
            _encoders(edn, args.repeat)
            return

        server = None
        if args.postgresql:
            server = PostgresServer()
            if not server.dsn and find_binaries() is None:
                sys.exit("no PostgreSQL: set GARRISON_TEST_POSTGRES_DSN or install the server")
            server.start(durable=True)
        try:
            if args.bulk_paths:
                assert server is not None, "--bulk-paths needs --postgresql"
                asyncio.run(_bulk_paths(server, edn, args.repeat))
                return
            _cases(args, edn, db, server)
        finally:
            if server is not None:
                server.stop()


_COPY_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS garrison_load (n integer, key text, namespace text, "
    "kind text, value text) ON COMMIT DELETE ROWS"
)
_COPY_UPSERT = (
    "INSERT INTO entries (key, namespace, kind, value, created_at, updated_at, version) "
    "SELECT key, namespace, kind, value, $1, $1, 1 FROM garrison_load ORDER BY n "
    "ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, kind = excluded.kind, "
    "value = excluded.value, updated_at = excluded.updated_at, version = entries.version + 1"
)


async def _with_batch(way: Any, batch: list[Any], conn: Any, at: int) -> int:
    result: int = await way(conn, batch, at)
    return result


async def _bulk_paths(server: PostgresServer, edn: Path, repeat: int) -> None:
    """The file's rows into PostgreSQL in batches of 1000, three ways, under the store's
    write path (write lock, commit record, history trigger); medians of ``repeat``."""
    source = await asyncio.to_thread(read_source, edn)
    rows = encode_rows(source.entries.items(), kind="bench")
    batches = [rows[i : i + 1000] for i in range(0, len(rows), 1000)]

    async def executemany(conn: Any, batch: list[Any], at: int) -> int:
        await conn.executemany(UPSERT, [(*row, at) for row in batch])
        return len(batch)

    async def copy(conn: Any, batch: list[Any], at: int) -> int:
        await conn.execute(_COPY_TABLE)
        await conn.copy_records_to_table(
            "garrison_load", records=[(n, *row) for n, row in enumerate(batch)]
        )
        await conn.execute(_COPY_UPSERT, at)
        return len(batch)

    async def arrays(conn: Any, batch: list[Any], at: int) -> int:
        columns = [[row[i] for row in batch] for i in range(4)]
        await conn.execute(UPSERT_ROWS, *columns, at)
        return len(batch)

    ways = {"executemany": executemany, "COPY + INSERT SELECT": copy, "unnest arrays": arrays}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, way in ways.items():
            dsn = await server.create_database()
            async with PostgresStore(dsn) as store:
                start = time.perf_counter()
                for batch in batches:
                    await store._write(functools.partial(_with_batch, way, batch))
                times[name].append(time.perf_counter() - start)
                assert await store.count() == len(rows)
            await server.drop_database(dsn)
    print(f"{len(rows)} rows in batches of 1000 into PostgreSQL (median of {repeat}):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<22} {median:6.2f}s  {len(rows) / median:9,.0f} rows/s  "
              + ", ".join(f"{v:.2f}" for v in values))  # fmt: skip


def _cases(args: argparse.Namespace, edn: Path, db: Path, server: PostgresServer | None) -> None:
    """Every case ``--repeat`` times, alternating; the medians and ratios."""
    runs: dict[str, list[float]] = {"edn_format": [], "A": [], "B": []}
    if server is not None:
        runs["PG"] = []
    phases: dict[str, list[float]] = {}
    pg_phases: dict[str, list[float]] = {}
    for _ in range(args.repeat):  # alternate the cases so load changes hit all alike
        for case, times in runs.items():
            target: Path | str = db
            if case == "PG":
                assert server is not None
                target = asyncio.run(server.create_database())
            result = _run(case, edn, target)
            if case == "PG":
                assert server is not None
                asyncio.run(server.drop_database(str(target)))
            times.append(result["seconds"])
            if case != "edn_format":
                assert result["written"] == args.keys, (case, result["written"])
                assert result["agree"], case
            into = pg_phases if case == "PG" else phases
            for name, values in result.get("phases", {}).items():
                into.setdefault(name, []).extend(values)
    for name, values in runs.items():
        spread = max(values) / min(values) - 1
        print(f"  {name:<11} runs: " + ", ".join(f"{v:.2f}s" for v in values)
              + f"  (spread {spread:.0%})")  # fmt: skip
    print(
        "  B by phase (medians): "
        + ", ".join(f"{name} {statistics.median(v):.2f}s" for name, v in phases.items())
    )
    baseline = statistics.median(runs["edn_format"])
    for case, label in (
        ("A", "migrate + separate validate"),
        ("B", "migrate + validate (reuse)"),
    ):
        ours = statistics.median(runs[case])
        report(f"{label} vs edn_format parse (s)", ours, baseline, unit="s",
               higher_is_better=False)  # fmt: skip
        print(f"    fraction of edn_format's parse time: {ours / baseline:.2f} (target < 0.33)")
    if server is not None:
        print(
            "  PG by phase (medians): "
            + ", ".join(f"{name} {statistics.median(v):.2f}s" for name, v in pg_phases.items())
        )
        ours = statistics.median(runs["PG"])
        sqlite = statistics.median(runs["B"])
        print(
            f"  PostgreSQL migrate --validate: {ours:.2f}s; "
            f"{ours / sqlite:.2f}x SQLite's time (B, {sqlite:.2f}s); "
            f"{ours / baseline:.2f} of edn_format's parse time ({baseline:.2f}s)"
        )

    theirs_peak = _run("edn_format", edn, db, memory=True)["peak"]
    ours_peak = _run("A", edn, db, memory=True)["peak"]
    report("peak memory, A vs edn_format parse (MB)", ours_peak / 1e6, theirs_peak / 1e6,
           unit="MB", higher_is_better=False)  # fmt: skip


if __name__ == "__main__":
    main()
