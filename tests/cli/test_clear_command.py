"""``garrison clear [PREFIX] --yes`` on real files, in every mode."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
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
