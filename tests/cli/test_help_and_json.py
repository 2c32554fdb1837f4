"""What an operator reads: help text, JSON documents, the version line."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from typing import TYPE_CHECKING

import pytest

from garrison.cli import COMMANDS, build_parser, main
from garrison.health import HealthApp, ProbeServer, probes_for
from garrison.runtime import CheckResult, Component
from garrison.runtime import open_runtime as open_plain_runtime

if TYPE_CHECKING:
    from pathlib import Path


def test_every_command_and_option_is_described_for_the_terminal() -> None:
    _, commands = build_parser("*")
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        text = parser.format_help()
        assert "``" not in text, name  # no reStructuredText
        assert ":class:" not in text, name
        for action in parser._actions:  # argparse has no public list of them
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"garrison {name} {action.option_strings or action.dest}"
    for name in ("migrate", "mode", "probe", "run", "validate", "export"):
        assert "examples:" in commands[name].format_help(), name
    assert "sqlite-first" in commands["mode"].format_help()  # the modes are listed
    for name in ("migrate", "validate", "export"):  # each help is about its own command
        statuses = commands[name].format_help().split("exit status:")[1].split("\n\n")[0]
        others = {"migrate", "validate", "export"} - {name}
        assert not [o for o in others if re.search(rf"(?<!-)\b{o}\b", statuses)], name


def test_top_level_help_lists_commands_and_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name, (_, help_text) in COMMANDS.items():
        assert help_text in out, name
    assert "3 data unavailable or locked" in out


def test_version_names_the_accelerators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["accelerators"]) == {"edn reader", "edn writer", "value encoder"}
    assert all(
        state in {"in use", "not built", "disabled (GARRISON_NO_EXTENSIONS)"}
        for state in doc["accelerators"].values()
    )


def test_values_print_as_plain_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "g.db")
    edn = '{:user/id 7, :tags #{:a}, "s" [1 2N 1.50M 1/3], 3 ##NaN}'
    assert main(["put", "k/1", edn, "--syntax", "edn", "--db", db, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["--json", "get", ":k/1", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == [
        ["user/id", 7],
        ["tags", ["a"]],
        ["s", [1, 2, "1.50", "1/3"]],
        [3, "NaN"],
    ]  # a map with a number key is a list of pairs
    assert main(["put", "k/2", '{:user/id 7 :at #inst "2024-05-01T12:00:00Z"}', "--db", db]) == 0
    assert main(["scan", ":k/", "--json", "--db", db, "--after", "k/1"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "k/2": {"user/id": 7, "at": "2024-05-01T12:00:00+00:00"}
    }


def test_migrate_validate_json_is_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edn = tmp_path / "memory.edn"
    edn.write_text("{:session/a 1, :session/b #{1 2}}", encoding="utf-8")
    argv = ["migrate", "--edn", str(edn), "--db", str(tmp_path / "g.db"), "--validate"]
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["migration"]["written"] == 2
    assert doc["validation"]["agree"] is True
    assert "migrator.progress" in err  # progress on stderr, never on stdout
    assert main([*argv, "--quiet"]) == 0
    assert "migrator.progress" not in capsys.readouterr().err


class _Part(Component):
    name = "part"

    async def check_health(self) -> CheckResult:
        return CheckResult.passing()


async def test_probe_verbose_json_prints_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    async with (
        open_plain_runtime({}, components=[_Part]) as runtime,
        ProbeServer(HealthApp(probes_for(runtime)), port=0) as server,
    ):
        status = await asyncio.to_thread(
            main, ["probe", "ready", "--url", server.url, "--verbose", "--json"]
        )
        assert status == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["probe"] == "ready"
        assert doc["status"] == "pass"
        assert "checks" in doc
        assert await asyncio.to_thread(main, ["probe", "live", "--url", server.url, "--quiet"]) == 0
        assert capsys.readouterr() == ("", "")


def test_quiet_leaves_results_and_drops_confirmations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edn, db = str(tmp_path / "memory.edn"), str(tmp_path / "g.db")
    (tmp_path / "memory.edn").write_text("{:session/a 1}", encoding="utf-8")
    files = ["--edn", edn, "--db", db]
    assert main(["migrate", *files, "--no-backup", "--quiet"]) == 0
    assert "written 1" in capsys.readouterr().out  # a summary is a result
    confirmations = [
        ["put", "a/1", "1"],
        ["delete", "a/1"],
        ["mode", "set", "dual-write"],
        ["backup", str(tmp_path / "b.db")],
        ["restore", str(tmp_path / "b.db"), "--force"],
        ["archive", str(tmp_path / "a.edn.gz")],
        ["export", "--edn", str(tmp_path / "out.edn")],
        ["clear", "--yes"],
    ]
    for argv in confirmations:
        given = files if argv[0] != "export" else ["--db", db]
        assert main(["--quiet", *argv, *given]) == 0, argv
        assert capsys.readouterr().out == "", argv
    assert (tmp_path / "out.edn").is_file()
    assert main(["put", "a/2", "2", *files, "--quiet"]) == 0
    assert main(["get", "a/2", *files, "--quiet"]) == 0
    assert capsys.readouterr().out == "2\n"
