"""``garrison run``: a real process started from a config, stopped by a signal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import garrison
from garrison._status_format import read_status_file
from garrison.cli import _run as run_module
from garrison.cli import build_parser, main
from garrison.components.database import Store
from garrison.config import find_config, load_config

APP = '''
from __future__ import annotations

from dataclasses import dataclass

from garrison.runtime import Component, handler


@dataclass(frozen=True)
class Crash:
    pass


class Worker(Component):
    name = "worker"


class Broken(Component):
    name = "broken"

    async def on_start(self) -> None:
        raise OSError("cannot bind port 9")


class Flaky(Component):
    """Crashes right after every start: the supervisor must escalate."""

    name = "flaky"

    async def on_start(self) -> None:
        self.self_ref.tell_nowait(Crash())

    @handler
    async def crash_on_message(self, msg: Crash) -> None:
        self.crash(RuntimeError("flaky again"))
'''


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "cli_test_app.py").write_text(APP, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    # In-process runs print only their own paragraph, not log lines.
    monkeypatch.setattr(run_module, "configured_logging", lambda *_: contextlib.nullcontext())
    yield tmp_path
    sys.modules.pop("cli_test_app", None)


def write_config(directory: Path, components: str) -> Path:
    path = directory / "garrison.toml"
    body = f"""
    [runtime]
    data_dir = "{(directory / "data").as_posix()}"
    stop_timeout = 2.0

    [runtime.restart]
    max_restarts = 2
    backoff_initial = 0.0

    [health]
    port = 0  # a free port: tests run in parallel with others
    """
    path.write_text(textwrap.dedent(body) + textwrap.dedent(components), encoding="utf-8")
    return path


def wait_for_line(log: Path, needle: str, process: subprocess.Popen[bytes]) -> None:
    # Observing another process: poll its log with a deadline.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if needle in log.read_text(encoding="utf-8"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"{needle!r} never appeared; log:\n{log.read_text(encoding='utf-8')}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_starts_logs_and_stops_cleanly_on_a_signal(
    app_dir: Path, signum: signal.Signals
) -> None:
    config = write_config(
        app_dir,
        """
        [components.worker]
        factory = "cli_test_app:Worker"

        [components.database]
        """,
    )
    log = app_dir / "run.log"
    env = {**os.environ, "PYTHONPATH": f"{app_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "garrison.cli",
                "run",
                "--config",
                str(config),
                "--log-format",
                "json",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=app_dir,
        )
        try:
            wait_for_line(log, "runtime.running", process)
            process.send_signal(signum)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    names = [e["event"] for e in events]
    for expected in ("component.started", "runtime.stop_requested", "component.stopped"):
        assert expected in names
    started = next(e for e in events if e["event"] == "component.started")
    assert started["component"] == "worker"
    assert "duration_ms" in started
    assert (app_dir / "data").is_dir()
    # A clean stop leaves the database, and no lock file, behind.
    assert sorted(p.name for p in (app_dir / "data").iterdir() if "garrison.db" in p.name) == [
        "garrison.db"
    ]


def test_quiet_run_logs_only_warnings_and_errors(app_dir: Path) -> None:
    status = app_dir / "health.json"
    config = write_config(app_dir, "[components.database]\n")
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[health]\n", f'[health]\nstatus_file = "{status.as_posix()}"\n'),
        encoding="utf-8",
    )
    done = None
    # --quiet before the command, as every global option may be.
    process = subprocess.Popen(
        [sys.executable, "-m", "garrison.cli", "--quiet", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=app_dir,
    )
    try:
        deadline = time.monotonic() + 20
        while done is None and time.monotonic() < deadline and process.poll() is None:
            # Observing another process: poll its status file with a deadline.
            with contextlib.suppress(OSError, ValueError):
                doc = read_status_file(status)
                if doc["probes"]["ready"]["status"] == "pass":
                    done = doc
            time.sleep(0.05)
        assert done is not None, "the runtime never reported ready"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert (out, err) == (b"", b"")


def test_failed_start_exits_1_with_one_paragraph(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        app_dir,
        """
        [components.worker]
        factory = "cli_test_app:Worker"

        [components.broken]
        factory = "cli_test_app:Broken"
        depends_on = ["worker"]
        """,
    )
    assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "component 'broken' failed to start" in err
    assert "cannot bind port 9" in err
    assert "['worker']" in err  # started then stopped again


def test_escalation_exits_1(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        app_dir,
        """
        [components.flaky]
        factory = "cli_test_app:Flaky"
        """,
    )
    assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "crashed more than 2 times" in err
    assert "flaky again" in err


def test_bad_config_exits_2(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        app_dir,
        """
        [components.worker]
        factory = "cli_test_app:Worker"
        colour = "blue"
        """,
    )
    assert main(["run", "--config", str(config)]) == 2
    assert "components.worker.colour: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize("under", [False, True], ids=["a file", "under a file"])
def test_a_data_dir_that_is_a_file_exits_2_with_one_paragraph_naming_it(
    app_dir: Path, capsys: pytest.CaptureFixture[str], under: bool
) -> None:
    blocker = app_dir / "data"
    blocker.write_text("not a directory", encoding="utf-8")
    config = write_config(app_dir, "")
    if under:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("/data", "/data/inner"), encoding="utf-8")
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("garrison: the configuration is invalid: runtime.data_dir: ")
    assert f"{str(blocker)!r}, which is a file" in err if under else f"{str(blocker)!r} is a file"
    assert "Traceback" not in err


def test_default_config_is_the_repository_file_or_the_packaged_copy(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert find_config(repo) == repo / "config" / "garrison.toml"
    packaged = find_config(tmp_path)
    assert packaged.name == "default.toml"
    # The packaged copy is the embedded default; only data_dir is spelt differently
    # (a config file's data_dir is relative to the file, the packaged one's to the
    # working directory), and both name ./data from the repository's root.
    ours = (repo / "config" / "garrison.toml").read_text(encoding="utf-8").splitlines()
    theirs = packaged.read_text(encoding="utf-8").splitlines()
    assert [a for a, b in zip(ours, theirs, strict=True) if a != b] == [
        'data_dir = "../data"       # relative to this file: ./data from the repository root'
    ]
    assert load_config(repo / "config" / "garrison.toml", environ={}).runtime.data_dir == (
        repo / "data"
    )


async def test_open_runtime_without_a_config_uses_the_commands_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `garrison stats` in this directory would read, open_runtime() reads:
    # ./config/garrison.toml (its data_dir relative to the file) ...
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "garrison.toml").write_text(
        '[runtime]\ndata_dir = "../state"\n[components.database]\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    async with garrison.open_runtime(environ={}) as rt:
        assert rt.component_names == ["database"]
        await rt.get(Store).put("a/1", 1)
    assert rt.config.source == tmp_path / "config" / "garrison.toml"
    assert (tmp_path / "state" / "garrison.db").is_file()
    # ... and elsewhere the packaged default, whose data_dir is ./data;
    # {} is the built-in defaults alone (no file, no component).
    (tmp_path / "config" / "garrison.toml").unlink()
    async with garrison.open_runtime(environ={}) as rt:
        assert rt.config.source == find_config()
        assert await rt.get(Store).get("a/1") is None
    assert (tmp_path / "data" / "garrison.db").is_file()
    async with garrison.open_runtime({}, environ={}) as rt:
        assert rt.component_names == []
        assert rt.config.source is None


def test_commands_are_registered_from_their_modules() -> None:
    parser, _ = build_parser("run")
    args = parser.parse_args(["run", "--config", "x.toml"])
    assert args.func is run_module.run
    assert args.config == Path("x.toml")
    # global options go before or after the command
    assert parser.parse_args(["--config", "y.toml", "run"]).config == Path("y.toml")
