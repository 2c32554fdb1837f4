"""Every command's exit status, from the one scheme (docs/operations.md).

0 done or check passed; 1 check failed or not found; 2 usage or configuration
error; 3 data unavailable (missing or unreadable) or locked by a running
garrison. Most cases run ``main`` in process; the ones about the process
itself (stdout/stderr of the installed command, a lock held by another
process) run it as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from garrison.cli import COMMANDS, main
from garrison.components.database._lock import DatabaseLock

if TYPE_CHECKING:
    from pathlib import Path

GARRISON = [sys.executable, "-m", "garrison.cli"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose data directory holds nothing yet (and no probe server listens)."""
    path = tmp_path / "etc" / "garrison.toml"
    path.parent.mkdir()
    path.write_text(
        '[runtime]\ndata_dir = "../data"\n\n[health]\nport = 9\n\n[components.database]\n',
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# Each command with arguments that are valid, and its status when the database
# (and the EDN file) do not exist. Writes that create the database say 0.
MISSING = {
    "get": (["get", "a/1"], 3),
    "put": (["put", "a/1", "1"], 0),  # the first write creates the database
    "delete": (["delete", "a/1"], 3),
    "scan": (["scan", "a/"], 3),
    "mode": (["mode", "get"], 0),  # the mode a start would choose: sqlite-only
    "backup": (["backup", "{tmp}/b.db"], 3),
    "restore": (["restore", "{tmp}/no-such-backup.db"], 3),
    "stats": (["stats"], 3),
    "clear": (["clear", "--yes"], 3),
    "history": (["history", "a/1"], 3),
    "changes": (["changes"], 3),
    "revert": (["revert", "a/", "--to", "0", "--yes"], 3),  # creates no database
    "replay": (["replay", "{tmp}/no-such.jsonl"], 3),
    "watch": (["watch", "a/"], 3),
    "reindex": (["reindex"], 3),
    "query": (["query", "[:find ?s :where [?s :a 1]]"], 3),
    "schema": (["schema", "check"], 3),
    "archive": (["archive", "{tmp}/a.edn.gz"], 3),
    "migrate": (["migrate", "--edn", "{tmp}/no-such.edn"], 3),
    "validate": (["validate", "--edn", "{tmp}/no-such.edn"], 3),
    "export": (["export", "--edn", "{tmp}/out.edn"], 3),
    "probe": (["probe", "ready", "--timeout", "1"], 3),  # nothing listens on [health] port
    "version": (["version"], 0),
    "completion": (["completion", "bash"], 0),
}


def test_every_command_is_covered() -> None:
    assert set(MISSING) | {"run"} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(MISSING))
def test_missing_data(
    command: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = MISSING[command]
    argv = [a.format(tmp=tmp_path) for a in argv]
    status, out, err = run(capsys, *argv, "--config", str(config))
    assert status == expected, err
    if expected == 3:
        assert out == ""
        assert f"garrison {command}: " in err, err
        assert "Traceback" not in err
        # With --json: the same status, and the error as one JSON document on stderr.
        status, out, err = run(capsys, *argv, "--config", str(config), "--json")
        assert (status, out) == (3, "")
        error = json.loads(err.splitlines()[-1])
        assert (error["status"], error["command"]) == (3, command)
    # A failed or finished command leaves no lock file behind.
    assert not list(tmp_path.rglob("*.lock"))
    if command not in {"put", "mode", "version", "completion"}:
        assert not (tmp_path / "data" / "garrison.db").exists()  # and creates no database


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_usage_is_2_with_the_commands_usage(
    command: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, command, "--no-such-flag", "--config", str(config))
    assert status == 2
    assert out == ""
    assert err.startswith(f"usage: garrison {command} ")
    assert f"garrison {command}: " in err


def test_usage_and_config_errors(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "frobnicate")  # an unknown command
    assert (status, "invalid choice: 'frobnicate'" in err) == (2, True)
    assert run(capsys, "get", "--config", str(tmp_path / "missing.toml"), "a/1")[0] == 2
    assert run(capsys, "mode", "set", "--config", str(config))[0] == 2  # no MODE
    config.write_text("[runtime]\nstop_timeout = -1\n", encoding="utf-8")
    status, _, err = run(capsys, "stats", "--config", str(config))
    assert (status, "stop_timeout must be greater than zero" in err) == (2, True)


async def test_a_locked_database_is_3_for_writes_and_no_obstacle_to_reads(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def cli(*argv: str) -> tuple[int, str, str]:
        status = main([*argv, "--config", str(config)])
        out, err = capsys.readouterr()
        return status, out, err

    assert await asyncio.to_thread(cli, "put", "a/1", "1") == (0, "", "")
    edn = tmp_path / "memory.edn"
    edn.write_text("{:a/1 1}", encoding="utf-8")
    lock = DatabaseLock(tmp_path / "data" / "garrison.db")
    await lock.acquire()
    try:
        for argv in (
            ["put", "a/1", "2"],
            ["delete", "a/1"],
            ["mode", "set", "dual-write"],
            ["restore", str(tmp_path / "data" / "garrison.db"), "--force"],
            ["migrate", "--edn", str(edn)],
            ["export", "--edn", str(tmp_path / "out.edn")],
        ):
            status, _, err = await asyncio.to_thread(cli, *argv)
            assert (status, "in use by a running garrison" in err) == (3, True), (argv, err)
        # The installed command says so in one line (the runtime it runs for a write logs nothing).
        argv = [*GARRISON, "put", "a/1", "2", "--config", str(config)]
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stderr.count("\n")) == (3, 1), done.stderr
        assert await asyncio.to_thread(cli, "get", "a/1") == (0, "1\n", "")
        assert (await asyncio.to_thread(cli, "get", "a/2"))[0] == 1  # not found
        assert (await asyncio.to_thread(cli, "validate", "--edn", str(edn)))[0] == 0
        assert (await asyncio.to_thread(cli, "stats"))[0] == 0
        # garrison run refuses to start on it: one paragraph, no traceback
        argv = [*GARRISON, "run", "--config", str(config), "--health-port", "0"]
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, "in use by a running garrison" in done.stderr) == (3, True)
        assert "Traceback" not in done.stderr
        assert '"frames"' not in done.stderr
    finally:
        await lock.release()
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("*.lock")))


def test_the_installed_command_json_errors_and_global_options_anywhere(
    config: Path, tmp_path: Path
) -> None:
    """As a script sees it: one JSON document on stdout, or a JSON error on stderr."""

    def garrison(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GARRISON, *argv], capture_output=True, text=True, timeout=60, check=False
        )

    db = tmp_path / "elsewhere" / "store.db"
    missing = garrison("--json", "--db", str(db), "get", "a/1")
    assert (missing.returncode, missing.stdout) == (3, "")
    error = json.loads(missing.stderr)
    assert error["status"] == 3
    assert error["command"] == "get"
    assert str(db) in error["error"]
    assert "Traceback" not in missing.stderr
    # --db before or after the command; a relative data_dir follows the config file
    done = garrison("--config", str(config), "put", "a/1", '{"b": [1, 2]}', "--json")
    assert (done.returncode, json.loads(done.stdout)) == (0, {"put": "a/1", "mode": "sqlite-only"})
    assert (tmp_path / "data" / "garrison.db").exists()
    shown = garrison("get", "--db", str(tmp_path / "data" / "garrison.db"), ":a/1", "--json")
    assert json.loads(shown.stdout) == {"b": [1, 2]}
    assert not list(tmp_path.rglob("*.lock"))


def test_migrate_creates_the_database_where_the_config_says(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edn = tmp_path / "memory.edn"
    edn.write_text("{:session/a 1}", encoding="utf-8")
    # data_dir is "../data" from etc/: it does not exist yet, and is not the cwd's
    assert run(capsys, "migrate", "--edn", str(edn), "--config", str(config), "--quiet")[0] == 0
    assert (tmp_path / "data" / "garrison.db").is_file()
    assert run(capsys, "get", "session/a", "--config", str(config)) == (0, "1\n", "")
