"""``garrison export`` and ``garrison backup`` never replace a file they were not asked to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
from garrison.edn import Keyword, loads

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "garrison.toml"
    path.write_text(f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    (tmp_path / "data").mkdir()
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    status = main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return status, out, err


def test_export_never_replaces_the_edn_file_a_mode_still_reads(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    memory = config.parent / "data" / "memory.edn"
    memory.write_text('{:session/a 1, :session/b "two"}', encoding="utf-8")
    assert run(capsys, config, "put", "session/c", "3")[0] == 0  # edn-only: the file's mode
    before = memory.read_bytes()
    for extra in ((), ("--force",)):
        status, _, err = run(capsys, config, "export", *extra)
        assert status == 1
        assert "is in edn-only with: it is what garrison reads" in err
        assert "'garrison mode set sqlite-only' first" in err
        assert memory.read_bytes() == before


def test_export_over_another_file_says_what_it_would_drop_and_needs_force(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    assert run(capsys, config, "put", "session/a", "1")[0] == 0  # a new install: sqlite-only
    target = config.parent / "elsewhere.edn"
    target.write_text("{:session/a 0, :session/x 1, :session/y 2}", encoding="utf-8")
    status, _, err = run(capsys, config, "export", "--edn", str(target))
    assert status == 1
    assert (
        "an EDN map of 3 keys; the export writes 1 and drops 2 keys the file holds "
        "(session/x, session/y)" in err
    )
    assert "pass --force to replace it" in err
    assert "session/x" in target.read_text(encoding="utf-8")
    status, out, err = run(capsys, config, "export", "--edn", str(target), "--force")
    assert status == 0
    assert "replacing" in err
    assert "exported 1 keys" in out
    assert loads(target.read_text(encoding="utf-8")) == {Keyword("session/a"): 1}


def test_export_and_backup_refuse_an_unrelated_file_without_force(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    assert run(capsys, config, "put", "session/a", "1")[0] == 0
    notes = config.parent / "notes.txt"
    notes.write_text("my notes, not a database\n", encoding="utf-8")
    status, _, err = run(capsys, config, "export", "--edn", str(notes))
    assert status == 1
    assert "not an EDN map garrison can read" in err
    status, _, err = run(capsys, config, "backup", str(notes))
    assert status == 1
    assert "exists; a backup replaces an existing file only when asked" in err
    assert "pass --force to replace it" in err
    assert notes.read_text(encoding="utf-8") == "my notes, not a database\n"
    assert not [p.name for p in notes.parent.iterdir() if p.name.startswith(".")]
    assert run(capsys, config, "backup", str(notes), "--force")[0] == 0
    assert notes.read_bytes().startswith(b"SQLite format 3\x00")
