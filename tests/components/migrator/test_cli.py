"""``garrison migrate``, ``validate`` and ``export`` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from garrison.cli import main
from garrison.components.database._lock import DatabaseLock
from garrison.components.migrator import PROGRESS_META
from garrison.edn import Keyword, loads
from garrison.stores import SqliteStore

from .conftest import MEMORY_EDN, write_sessions

if TYPE_CHECKING:
    from pathlib import Path


def _query(db: Path, coroutine: Any) -> Any:
    async def run() -> Any:
        async with SqliteStore(db) as store:
            return await coroutine(store)

    return asyncio.run(run())


def test_migrate_then_validate_then_export(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"

    status = main(
        ["migrate", "--edn", str(memory_edn), "--db", str(db), "--batch-size", "4", "--validate"]
    )

    out, err = capsys.readouterr()
    assert status == 0
    assert "written 11, unchanged 0, conflicts 0" in out
    assert "by kind: session 3, project 1, learning 1, cache 4, index 2" in out
    assert "bytes read: " in out
    assert "skipped: none" in out
    assert "keywords Clojure cannot read back (migrated as read): 1\n  embed-token/5fe3" in out
    # Off a terminal, progress is logged as JSON lines, as `garrison run` logs.
    events = [json.loads(line) for line in err.splitlines()]
    progress = [e for e in events if e["event"] == "migrator.progress"]
    wanted = {"operation": "migrate", "phase": "migrate", "done": 11, "total": 11}
    assert any(wanted.items() <= event.items() for event in progress)
    assert "\nAGREE: " in out  # --validate reports after the summary

    assert main(["validate", "--edn", str(memory_edn), "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("AGREE")

    target = tmp_path / "exported.edn"
    assert main(["export", "--db", str(db), "--edn", str(target)]) == 0
    assert "exported 11 keys" in capsys.readouterr().out
    assert loads(target.read_text(encoding="utf-8")).keys() == loads(MEMORY_EDN).keys()


def test_rerun_conflicts_and_overwrite_exit_codes(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"
    args = ["migrate", "--edn", str(memory_edn), "--db", str(db)]
    assert main(args) == 0
    assert main(args) == 0
    assert "written 0, unchanged 11" in capsys.readouterr().out

    _query(db, lambda store: store.put("session/abc", {Keyword("user"): Keyword("user/u9")}))

    assert main(args) == 1
    out = capsys.readouterr().out
    assert "conflicts 1" in out
    assert "conflict session/abc: :user edn :user/u1 != sqlite :user/u9" in out
    assert main(["validate", "--edn", str(memory_edn), "--db", str(db)]) == 1
    report = capsys.readouterr().out
    assert report.startswith("DISAGREE")
    assert "different values: 1\n  session/abc: :user edn :user/u1 != sqlite :user/u9" in report

    assert main([*args, "--overwrite", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overwritten"] == 1
    assert main(["validate", "--edn", str(memory_edn), "--db", str(db)]) == 0


def test_bad_edn_stops_with_file_line_column_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "memory.edn"
    bad.write_text("{:session/a 1,\n :session/b #{1 2 ]}", encoding="utf-8")
    db = tmp_path / "garrison.db"

    status = main(["migrate", "--edn", str(bad), "--db", str(db)])

    err = capsys.readouterr().err
    assert status == 3
    assert f"{bad}:2:19: set opened at line 2 closed by ]" in err
    assert "nothing was written" in err
    assert not db.exists()


def test_dry_run_against_a_missing_database_creates_nothing(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"

    status = main(["migrate", "--edn", str(memory_edn), "--db", str(db), "--dry-run"])

    assert status == 0
    assert "DRY RUN" in capsys.readouterr().out
    assert not db.exists()


def test_validate_and_export_need_an_existing_database(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "missing.db"

    assert main(["validate", "--edn", str(memory_edn), "--db", str(db)]) == 3
    assert "no database at" in capsys.readouterr().err
    assert main(["export", "--db", str(db), "--edn", str(tmp_path / "out.edn")]) == 3
    assert not db.exists()
    assert not (tmp_path / "out.edn").exists()


def test_paths_and_options_come_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "legacy.edn").write_text(MEMORY_EDN, encoding="utf-8")
    config = tmp_path / "garrison.toml"
    config.write_text(
        f"""
[runtime]
data_dir = "{data}"

[components.database]
sqlite_path = "ops.db"
edn_path = "legacy.edn"
kinds = {{ namespaces = {{ presence = "presence" }} }}

[components.migrator]
prefixes = ["session", "presence"]
batch_size = 1
""",
        encoding="utf-8",
    )

    assert main(["migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "keys: 2 selected of 11" in out
    assert "by kind: session 1, presence 1" in out
    assert "batches: 2" in out
    assert main(["validate", "--config", str(config)]) == 0
    assert _query(data / "ops.db", lambda store: store.keys()) == ["presence/s-1", "session/abc"]


def test_a_running_garrison_owning_the_database_is_respected(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"

    async def hold_and_run() -> int:
        lock = DatabaseLock(db)
        await lock.acquire()
        try:
            return await asyncio.to_thread(
                main, ["migrate", "--edn", str(memory_edn), "--db", str(db)]
            )
        finally:
            await lock.release()

    assert asyncio.run(hold_and_run()) == 3
    err = capsys.readouterr().err
    assert "in use by a running garrison" in err
    assert "--resume" not in err  # nothing started: nothing to resume


def _wait_for(path: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    """Poll another process's log file for a line matching ``pattern`` (with a deadline)."""
    deadline = time.monotonic() + 30
    compiled = re.compile(pattern)
    while time.monotonic() < deadline:
        for line in path.read_text(encoding="utf-8").splitlines():
            found = compiled.search(line)
            if found is not None:
                return found
        if process.poll() is not None:
            pytest.fail(f"migrate exited ({process.returncode}) before: {path.read_text()}")
        time.sleep(0.01)
    pytest.fail(f"no line matching {pattern!r} within 30 s")


def test_sigkill_mid_run_then_resume_then_validate_passes(tmp_path: Path) -> None:
    edn = tmp_path / "memory.edn"
    write_sessions(edn, 30_000)
    db = tmp_path / "garrison.db"
    log = tmp_path / "migrate.log"
    command = [sys.executable, "-m", "garrison.cli", "migrate", "--edn", str(edn), "--db", str(db)]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--batch-size", "100", "--progress-interval", "0"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            seen = _wait_for(
                log, r'"phase":"migrate","done":([1-9][0-9]{3,}),"total":30000', process
            )
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    committed = _query(db, lambda store: store.get_meta(PROGRESS_META))
    assert int(seen.group(1)) <= committed["done"] < 30_000
    assert not committed["finished"]

    resumed = subprocess.run(
        [*command, "--resume", "--json"], capture_output=True, check=False, timeout=60
    )

    assert resumed.returncode == 0, resumed.stderr.decode()
    summary = json.loads(resumed.stdout)
    assert summary["resumed"]
    assert summary["resumed_from"] == committed["done"]
    assert summary["written"] + summary["unchanged"] == 30_000 - committed["done"]
    assert summary["conflicts"] == []
    check = subprocess.run(
        [sys.executable, "-m", "garrison.cli", "validate", "--edn", str(edn), "--db", str(db)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert check.stdout.decode().startswith("AGREE")
