"""Progress off a terminal: JSON lines as ``garrison run`` logs, from a command and a component."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GARRISON = [sys.executable, "-m", "garrison.cli"]
#: What every line of garrison run's JSON log carries.
LOG_KEYS = {"event", "level", "logger", "timestamp"}


def _write_edn(path: Path, keys: int) -> None:
    filler = "x" * 900
    body = "\n".join(f':session/k{i:05} {{:n {i} :text "{filler}"}}' for i in range(keys))
    path.write_text("{" + body + "}\n", encoding="utf-8")


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_migrate_logs_json_progress_with_the_bytes_read(tmp_path: Path) -> None:
    edn = tmp_path / "memory.edn"
    _write_edn(edn, 3_000)  # ~2.8 MB: three reads of a megabyte
    size = edn.stat().st_size
    argv = ["migrate", "--edn", str(edn), "--db", str(tmp_path / "g.db"), "--no-backup"]
    done = subprocess.run(
        [*GARRISON, *argv, "--progress-interval", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    events = _events(done.stderr)  # every line is a JSON object
    assert {e["event"] for e in events} == {"migrator.progress"}
    assert all(e.keys() >= LOG_KEYS and e["logger"] == "garrison.migrator" for e in events)
    read = [e["done"] for e in events if e["phase"] == "read"]
    assert {e["total"] for e in events if e["phase"] == "read"} == {size}
    assert read[0] == 0
    assert read[-1] == size
    assert 1 << 20 in read  # the bytes read so far, a megabyte at a time
    assert read == sorted(read)
    assert {"phase": "migrate", "done": 3_000, "total": 3_000, "unit": "keys"}.items() <= (
        next(e for e in events if e["phase"] == "migrate" and e["done"] == 3_000).items()
    )


def test_an_automatic_migration_logs_progress_and_the_validation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_edn(data / "memory.edn", 500)
    config = tmp_path / "garrison.toml"
    config.write_text(
        '[runtime]\ndata_dir = "data"\n[health]\nport = 0\n'
        '[components.database]\nmode = "sqlite-only"\n'
        '[components.migrator]\nauto = "blocking"\n',
        encoding="utf-8",
    )
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*GARRISON, "run", "--config", str(config)], stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            # Observing another process: poll its log with a deadline.
            deadline = time.monotonic() + 30
            while "migrator.validated" not in log.read_text(encoding="utf-8"):
                assert process.poll() is None, log.read_text(encoding="utf-8")
                assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    events = _events(log.read_text(encoding="utf-8"))
    assert all(e.keys() >= LOG_KEYS for e in events)
    phases = [(e["operation"], e["phase"]) for e in events if e["event"] == "migrator.progress"]
    for step in [("migrate", "read"), ("migrate", "migrate"), ("migrate", "validate")]:
        assert step in phases, phases  # the validation is part of the automatic job
    read = [e for e in events if e["event"] == "migrator.progress" and e["phase"] == "read"]
    size = (data / "memory.edn").stat().st_size
    assert [(e["done"], e["total"]) for e in read] == [(0, size), (size, size)]  # once each
    (validated,) = [e for e in events if e["event"] == "migrator.validated"]
    assert {"agree": True, "edn_keys": 500, "sqlite_keys": 500, "different": 0}.items() <= (
        validated.items()
    )
    names = [e["event"] for e in events]
    assert names.index("migrator.validated") < names.index("migrator.auto_done")
