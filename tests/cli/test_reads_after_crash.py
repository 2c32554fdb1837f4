"""``garrison get`` and ``scan`` in dual-write never answer with the EDN file's older value."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from garrison.cli import main
from garrison.stores import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    status = main([*args, "--config", str(config)])
    return status, capsys.readouterr().out


def test_reads_in_dual_write_see_what_sqlite_committed_after_the_files_last_flush(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.edn").write_text("{:session/a 1, :session/b 2}", encoding="utf-8")
    config = tmp_path / "garrison.toml"
    config.write_text(f'[runtime]\ndata_dir = "{data}"\n', encoding="utf-8")
    assert run(capsys, config, "migrate")[0] == 0
    assert run(capsys, config, "mode", "set", "dual-write")[0] == 0

    async def committed_but_not_flushed() -> None:
        # What a kill leaves: SQLite committed these, the EDN file never got them.
        async with SqliteStore(data / "garrison.db") as store:
            await store.put("session/a", 10)
            await store.delete("session/b")
            await store.put("session/c", 3)

    asyncio.run(committed_but_not_flushed())
    assert run(capsys, config, "get", "session/a") == (0, "10\n")
    assert run(capsys, config, "get", "session/b")[0] == 1
    assert run(capsys, config, "scan", "session/") == (0, "session/a\t10\nsession/c\t3\n")
