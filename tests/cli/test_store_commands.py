"""``garrison get/put/delete/scan/mode/backup/restore/stats`` on a real database."""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from garrison import open_runtime
from garrison.cli import main
from garrison.components.database import Store

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "garrison.toml"
    path.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n\n[components.database]\ncache_size = 100\n',
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return status, out, err


def test_put_get_scan_in_json_and_edn(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    assert run(capsys, config, "put", "session/abc", '{"user": 42}')[0] == 0
    assert run(capsys, config, "put", ":session/def", '{:tags #{"a"}}')[0] == 0
    assert run(capsys, config, "get", "session/abc") == (0, '{"user" 42}\n', "")
    status, out, _ = run(capsys, config, "get", ":session/abc", "--json")
    assert (status, json.loads(out)) == (0, {"user": 42})
    assert run(capsys, config, "get", "session/def")[1] == '{:tags #{"a"}}\n'
    status, out, _ = run(capsys, config, "scan", "session/")
    assert status == 0
    assert out.splitlines() == ['session/abc\t{"user" 42}', 'session/def\t{:tags #{"a"}}']
    assert run(capsys, config, "scan", ":session/")[1] == out  # the keyword's colon is optional
    status, out, _ = run(
        capsys, config, "scan", "session/", "--limit", "1", "--after", "session/abc"
    )
    assert out.splitlines() == ['session/def\t{:tags #{"a"}}']


def test_errors_have_exit_statuses(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    status, _, err = run(capsys, config, "get", "session/abc")
    assert status == 3
    assert "no database" in err
    run(capsys, config, "put", "a/1", "1")
    status, _, err = run(capsys, config, "get", "a/none")
    assert (status, err) == (1, "garrison get: no such key: a/none (in sqlite-only mode)\n")
    status, _, err = run(capsys, config, "put", "a/na me", "1")
    assert status == 2
    assert err == (
        "garrison put: this key is not an EDN keyword: it contains ' ' at position 5, "
        "which cannot appear in a keyword (key 'a/na me')\n"
    )
    status, _, err = run(capsys, config, "put", "a/3", '"2024-05-01T12:00:00"')  # a plain string
    assert status == 0
    status, _, err = run(capsys, config, "put", "a/2", "{:unclosed", "--syntax", "edn")
    assert status == 2
    assert "neither JSON nor EDN" in err
    config.write_text("[components.database]\ncache_size = -1\n", encoding="utf-8")
    status, _, err = run(capsys, config, "get", "a/1")
    assert status == 2
    assert "components.database" in err


def test_mode_get_and_set(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    run(capsys, config, "put", "a/1", "1")
    assert run(capsys, config, "mode")[1] == "sqlite-only\n"
    status, _, err = run(capsys, config, "mode", "set", "dual-write")
    assert status == 1
    assert "cannot switch" in err  # EDN does not hold a/1: the switch needs --force
    status, out, _ = run(capsys, config, "mode", "set", "dual-write", "--force")
    assert (status, out.startswith("sqlite-only -> dual-write")) == (0, True)
    assert run(capsys, config, "mode", "get")[1] == "dual-write\n"
    # In dual-write the CLI writes the EDN file too.
    run(capsys, config, "put", "a/2", "2")
    assert run(capsys, config, "get", "a/2")[1] == "2\n"


def test_backup_and_guarded_restore(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    run(capsys, config, "put", "a/1", '"before"')
    status, out, _ = run(capsys, config, "backup", str(tmp_path / "backups" / "b.db"))
    assert status == 0
    assert out.strip().endswith("b.db")
    run(capsys, config, "put", "a/1", '"after"')
    status, _, err = run(capsys, config, "restore", str(tmp_path / "backups" / "b.db"))
    assert status == 1
    assert "--force" in err
    assert run(capsys, config, "get", "a/1")[1] == '"after"\n'
    status, out, _ = run(capsys, config, "restore", str(tmp_path / "backups" / "b.db"), "--force")
    assert status == 0
    assert out.splitlines() == [
        f"restored 1 entries from {tmp_path / 'backups' / 'b.db'}",
        "mode: sqlite-only (kept)",
    ]
    assert run(capsys, config, "get", "a/1")[1] == '"before"\n'
    stats = json.loads(run(capsys, config, "stats")[1])
    assert stats["mode"] == "sqlite-only"
    assert stats["sqlite_entries"] == 1


def test_a_read_leaves_the_temporary_file_of_a_running_flush_alone(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text("{:a/1 1}", encoding="utf-8")
    flushing = data / ".memory.edn.garrison-tmp-4242-0a0b0c0d"  # a running writer's
    flushing.write_text("{:a/1 2", encoding="utf-8")
    assert run(capsys, config, "get", "a/1")[1] == "1\n"
    assert run(capsys, config, "scan")[1] == "a/1\t1\n"
    assert flushing.exists()


async def test_writes_refuse_while_a_runtime_owns_the_database(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    async with open_runtime(config, environ={}) as rt:
        await rt.get(Store).put("a/1", 1)
        status = await asyncio.to_thread(main, ["put", "a/1", "2", "--config", str(config)])
        assert status == 3
        assert "in use by a running garrison" in capsys.readouterr().err
        # Reads and backups work alongside the running runtime.
        status = await asyncio.to_thread(main, ["get", "a/1", "--config", str(config)])
        assert (status, capsys.readouterr().out) == (0, "1\n")
        backup = str(tmp_path / "live.db")
        assert await asyncio.to_thread(main, ["backup", backup, "--config", str(config)]) == 0
        assert await rt.get(Store).get("a/1") == 1


def test_the_installed_command_runs(config: Path) -> None:
    put = [sys.executable, "-m", "garrison.cli", "put", "k/1", "[1, 2]", "--config", str(config)]
    subprocess.run(put, check=True, timeout=30)
    get = [sys.executable, "-m", "garrison.cli", "get", "k/1", "--config", str(config)]
    done = subprocess.run(get, check=True, timeout=30, capture_output=True, text=True)
    assert done.stdout == "[1 2]\n"


def test_restore_keeps_the_installations_mode_unless_told(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    backup = str(tmp_path / "b.db")
    run(capsys, config, "put", "a/1", '"in the backup"')
    run(capsys, config, "backup", backup)  # records sqlite-only
    run(capsys, config, "mode", "set", "dual-write", "--force")
    run(capsys, config, "put", "a/1", '"newer"')
    status, out, _ = run(capsys, config, "restore", backup, "--force")
    assert status == 0
    assert "mode: dual-write (kept; the backup had recorded sqlite-only)" in out
    assert run(capsys, config, "mode", "get")[1] == "dual-write\n"
    # The EDN file is still written, and read: it holds every write.
    run(capsys, config, "put", "a/2", "2")
    assert run(capsys, config, "get", "a/1")[1] == '"newer"\n'
    assert run(capsys, config, "get", "a/2")[1] == "2\n"
    status, out, _ = run(capsys, config, "restore", backup, "--force", "--mode", "edn-only")
    assert status == 0
    assert out.splitlines()[-1] == "mode: dual-write -> edn-only"
    assert run(capsys, config, "mode", "get")[1] == "edn-only\n"


def test_delete_removes_keys_and_reports_the_missing_ones(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    run(capsys, config, "mode", "get")
    run(capsys, config, "put", "a/1", "1")
    run(capsys, config, "put", "a/2", "2")
    status, out, err = run(capsys, config, "delete", ":a/1", "a/none", "--json")
    assert status == 1
    assert json.loads(out) == {"deleted": ["a/1"], "missing": ["a/none"]}
    assert json.loads(err) == {
        "error": "no such key: a/none (in sqlite-only mode)",
        "status": 1,
        "command": "delete",
    }
    assert run(capsys, config, "delete", "a/2") == (0, "deleted a/2\n", "")
    assert run(capsys, config, "scan")[1] == ""
    assert run(capsys, config, "delete", "a/na me")[0] == 2


def test_after_migrate_every_command_uses_the_mode_the_runtime_starts_in(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text('{:session/a 1, :session/b "two"}', encoding="utf-8")
    assert main(["migrate", "--config", str(config)]) == 0
    capsys.readouterr()
    assert run(capsys, config, "mode", "get")[1] == "edn-only\n"
    assert json.loads(run(capsys, config, "stats")[1])["edn_entries"] == 2
    run(capsys, config, "put", ":session/a", "10")  # edn-only: the EDN file only
    assert run(capsys, config, "get", "session/a")[1] == "10\n"
    assert run(capsys, config, "scan", ":session/")[1].splitlines() == [
        "session/a\t10",
        'session/b\t"two"',
    ]

    async def runtime_view() -> tuple[str, object]:
        async with open_runtime(config, environ={}) as rt:
            return str(await rt.get(Store).mode()), await rt.get(Store).get("session/a")

    assert asyncio.run(runtime_view()) == ("edn-only", 10)


def test_a_put_whose_edn_side_fails_writes_nothing_in_dual_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "dual-write"\n',
        encoding="utf-8",
    )
    assert run(capsys, config, "put", "a/1", "1")[0] == 0
    # A file the writer cannot rewrite under a 256 KiB limit (SQLite stays far below it).
    (data / "memory.edn").write_text('{:a/1 1, :big/1 "' + "x" * 400_000 + '"}', encoding="utf-8")

    def limit() -> None:  # in the child: writing a file past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    argv = [sys.executable, "-m", "garrison.cli", "put", "a/2", "2", "--config", str(config)]
    failed = subprocess.run(
        argv, preexec_fn=limit, capture_output=True, text=True, timeout=60, check=False
    )
    assert failed.returncode == 3
    assert "nothing was written: the EDN side failed" in failed.stderr
    assert run(capsys, config, "get", "a/2")[0] == 1
    with sqlite3.connect(data / "garrison.db") as db:
        assert db.execute("SELECT key FROM entries ORDER BY key").fetchall() == [("a/1",)]
    assert run(capsys, config, "put", "a/2", "2")[0] == 0  # the disk has room again
    assert run(capsys, config, "get", "a/2")[1] == "2\n"


def test_in_sqlite_first_the_cli_reads_what_the_runtime_reads(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    run(capsys, config, "put", "a/1", "1")  # sqlite-only: SQLite alone holds a/1
    run(capsys, config, "mode", "set", "dual-write", "--force")
    run(capsys, config, "put", "a/2", "2")
    run(capsys, config, "mode", "set", "sqlite-first")
    edn = tmp_path / "data" / "memory.edn"
    edn.write_text(edn.read_text(encoding="utf-8")[:-1] + ", :a/3 3}", encoding="utf-8")
    assert run(capsys, config, "get", "a/3")[1] == "3\n"  # SQLite lacks it: the EDN fallback
    cli_scan = run(capsys, config, "scan", "a/")[1].splitlines()
    assert cli_scan == ["a/1\t1", "a/2\t2", "a/3\t3"]

    async def runtime_scan() -> list[tuple[str, object]]:
        async with open_runtime(config, environ={}) as rt:
            return await rt.get(Store).scan("a/")

    assert asyncio.run(runtime_scan()) == [("a/1", 1), ("a/2", 2), ("a/3", 3)]


def test_a_write_refuses_a_database_it_cannot_open_and_touches_no_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # garrison run would start on the EDN file alone here (dual-write); a command must not.
    data = tmp_path / "data"
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{data}"\n\n[components.database]\nmode = "dual-write"\n',
        encoding="utf-8",
    )
    assert run(capsys, config, "put", "a/1", "1")[0] == 0
    edn = (data / "memory.edn").read_bytes()
    (data / "garrison.db").write_bytes(b"not a database, " * 512)
    status, _, err = run(capsys, config, "put", "a/2", "2")
    assert (status, "garrison.db" in err) == (3, True), err
    assert (data / "memory.edn").read_bytes() == edn
    assert not (data / "garrison.db.lock").exists()
