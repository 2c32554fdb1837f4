"""``garrison clear [PREFIX] --yes`` on real files, in every mode."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from garrison import open_runtime
from garrison.cli import main
from garrison.components.database import Store
from garrison.stores._edn_file_format import load_file

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("mode", ["edn-only", "dual-write", "sqlite-first", "sqlite-only"])
def test_clear_asks_for_confirmation_then_clears_in_every_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "{mode}"\n',
        encoding="utf-8",
    )
    for key in ("session/a", "session/b", "user/c"):
        assert run(capsys, config, "put", key, "1")[0] == 0

    status, out, err = run(capsys, config, "clear", "session/")
    assert (status, out) == (2, "")
    assert "would remove 2 keys starting with 'session/'" in err
    assert "nothing was removed" in err
    assert f"garrison clear session/ --yes --config {config}" in err
    assert run(capsys, config, "scan")[1].count("\n") == 3

    assert run(capsys, config, "clear", ":session/", "--yes") == (
        0,
        f"cleared 2 keys starting with 'session/' ({mode} mode)\n",
        "",
    )
    assert run(capsys, config, "scan")[1] == "user/c\t1\n"
    if mode != "sqlite-only":
        assert load_file(data / "memory.edn") == {"user/c": 1}
    if mode != "edn-only":
        with sqlite3.connect(data / "garrison.db") as conn:
            ops = list(conn.execute("SELECT key, op FROM history WHERE op = 'delete'"))
        conn.close()
        assert sorted(ops) == [("session/a", "delete"), ("session/b", "delete")]

    status, _, err = run(capsys, config, "clear")
    assert status == 2
    assert "would remove 1 key (" in err
    assert f"garrison clear --yes --config {config}" in err
    assert run(capsys, config, "clear", "--yes")[1] == f"cleared 1 key ({mode} mode)\n"
    assert run(capsys, config, "scan")[1] == ""


def test_clear_json_refusal_and_result_are_one_document_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert run(capsys, config, "put", "session/a", "1")[0] == 0
    status, out, err = run(capsys, config, "--json", "clear", "session/")
    assert (status, out) == (2, "")
    error = json.loads(err)
    assert (error["status"], error["command"]) == (2, "clear")
    assert "would remove 1 key starting with 'session/'" in error["error"]
    assert (
        error["hint"]
        == f"to remove them, run: garrison clear session/ --yes --config {config} --json"
    )
    status, out, err = run(capsys, config, "--json", "clear", "session/", "--yes")
    assert (status, err) == (0, "")
    assert json.loads(out) == {"cleared": 1, "prefix": "session/", "mode": "sqlite-only"}
    assert run(capsys, config, "scan") == (0, "", "")


def test_a_clear_killed_midway_leaves_each_side_whole(tmp_path: Path) -> None:
    """SIGKILL at a random moment: each side holds every key or none, never a part.

    The EDN file is written before SQLite, so the one state that must never
    be seen is the file still full while SQLite is already empty; when the
    file is empty and SQLite full, the repair backlog names the keys.
    """
    data = tmp_path / "data"
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "dual-write"\n',
        encoding="utf-8",
    )
    count = 20_000

    async def fill() -> None:
        settings = {
            "runtime": {"data_dir": str(data)},
            "components": {"database": {"mode": "dual-write"}},
        }
        async with open_runtime(settings, environ={}) as rt:
            await rt.get(Store).put_many((f"session/k{i:06}", {"i": i}) for i in range(count))

    asyncio.run(fill())
    shutil.copytree(data, tmp_path / "full")
    for _ in range(4):
        shutil.rmtree(data)
        shutil.copytree(tmp_path / "full", data)
        clear = subprocess.Popen(
            [sys.executable, "-m", "garrison.cli", "clear", "--yes", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(random.uniform(0.1, 0.7))  # a random moment of the clear
        clear.send_signal(signal.SIGKILL)
        clear.wait()
        with sqlite3.connect(data / "garrison.db") as conn:
            (in_sqlite,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        conn.close()
        in_edn = len(load_file(data / "memory.edn"))
        assert in_sqlite in (0, count)
        assert in_edn in (0, count)
        assert (in_edn, in_sqlite) != (count, 0)
        if (in_edn, in_sqlite) == (0, count):
            # Killed between the file and SQLite: the repair backlog names every key.
            backlog = json.loads((data / "memory.edn.sqlite-backlog.json").read_bytes())
            assert len(backlog["keys"]) == count
