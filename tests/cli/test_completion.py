"""``garrison completion bash|zsh``: scripts a real shell loads and completes with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from garrison.cli import COMMANDS, build_parser, main

# Command lines to complete: the words so far, the last one being completed.
CASES: list[tuple[str, ...]] = [
    ("mo",),
    ("",),
    ("--config", "x.toml", "mode", "s"),
    ("mode", "--db", "g.db", "set", "sqlite-"),
    ("probe", "r"),
    ("run", "--log-format", "j"),
    ("migrate", "--dry"),
    ("stats", "--j"),
    ("--js",),
    ("completion", ""),
]


def _bash_completions(script: Path, cwd: Path) -> list[list[str]]:
    lines = [f"source {script}", "complete -p garrison"]
    for words in CASES:
        quoted = " ".join(f"'{w}'" for w in ("garrison", *words))
        lines += [
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _garrison",
            'echo "${COMPREPLY[*]}"',
        ]
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=30,
        check=True,
    )
    assert done.stderr == ""
    out = done.stdout.splitlines()
    assert out[0] == "complete -o default -F _garrison garrison"
    return [line.split() for line in out[1:]]


def test_bash_completes_commands_options_and_names(tmp_path: Path) -> None:
    script = tmp_path / "garrison.bash"
    printed = subprocess.run(
        [sys.executable, "-m", "garrison.cli", "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    script.write_text(printed.stdout, encoding="utf-8")
    (tmp_path / "data-a").mkdir()
    (tmp_path / "data-a.txt").touch()
    got = dict(zip(CASES, _bash_completions(script, tmp_path), strict=True))
    assert got[("mo",)] == ["mode"]
    assert got[("",)] == list(COMMANDS)  # every command, from the registry
    assert got[("--config", "x.toml", "mode", "s")] == ["set"]  # a global option first
    assert got[("mode", "--db", "g.db", "set", "sqlite-")] == ["sqlite-first", "sqlite-only"]
    assert got[("probe", "r")] == ["ready"]
    assert got[("run", "--log-format", "j")] == ["json"]
    assert got[("migrate", "--dry")] == ["--dry-run"]
    assert got[("stats", "--j")] == ["--json"]  # global options after the command too
    assert got[("--js",)] == ["--json"]
    assert got[("completion", "")] == ["bash", "zsh"]


def test_bash_offers_every_option_of_every_command(tmp_path: Path) -> None:
    _, commands = build_parser("*")
    script = tmp_path / "garrison.bash"
    from garrison.cli._completion import script as make_script

    script.write_text(make_script("bash"), encoding="utf-8")
    lines = [f"source {script}"]
    for name in commands:
        lines += [
            f"COMP_WORDS=(garrison {name} --); COMP_CWORD=2; _garrison",
            'echo "${COMPREPLY[*]}"',
        ]
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    offered = dict(zip(commands, done.stdout.splitlines(), strict=True))
    for name, parser in commands.items():
        expected = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--")
        }
        assert set(offered[name].split()) == expected, name


def test_bash_completes_paths_after_path_options(tmp_path: Path) -> None:
    from garrison.cli._completion import script as make_script

    script = tmp_path / "garrison.bash"
    script.write_text(make_script("bash"), encoding="utf-8")
    (tmp_path / "data-a").mkdir()
    (tmp_path / "data-b.toml").touch()
    lines = [f"source {script}"]
    for words in (("--data-dir", "data-"), ("stats", "--config", "data-")):
        quoted = " ".join(f"'{w}'" for w in ("garrison", *words))
        lines += [f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _garrison"]
        lines += ['echo "${COMPREPLY[*]}"']
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        check=True,
    )
    directories, files = done.stdout.splitlines()
    assert directories.split() == ["data-a"]
    assert sorted(files.split()) == ["data-a", "data-b.toml"]


def test_zsh_script_describes_every_command_and_parses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "zsh"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("#compdef garrison\n")
    for name, (_, help_text) in COMMANDS.items():
        quoted = help_text.replace("'", "'\\''")
        assert f"'{name}:{quoted}'" in text, name
        assert f"            {name})\n" in text, name
    assert main(["completion", "zsh", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"shell": "zsh", "script": text}
    assert "'2:mode:(edn-only dual-write sqlite-first sqlite-only)'" in text
    assert (
        "'--data-dir[the data directory, instead of the config'\\''s \\[runtime\\] data_dir]"
        in text
    )
    zsh = shutil.which("zsh")
    if zsh is not None:  # not installed everywhere; the text checks above always run
        script = tmp_path / "_garrison"
        script.write_text(text, encoding="utf-8")
        subprocess.run([zsh, "-n", str(script)], check=True, timeout=30)


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "fish"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fish' (choose from 'bash', 'zsh')" in err
