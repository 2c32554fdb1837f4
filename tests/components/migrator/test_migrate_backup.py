"""``garrison migrate`` backs up both sides before its first write, and names the copies."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING

from garrison.cli import main
from garrison.stores import SqliteStore

from .conftest import MEMORY_EDN

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _count(db: Path) -> int:
    async def run() -> int:
        async with SqliteStore(db) as store:
            return await store.count()

    return asyncio.run(run())


def test_migrate_backs_up_the_edn_file_and_the_database_it_is_about_to_change(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"
    args = ["migrate", "--edn", str(memory_edn), "--db", str(db)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("backup of the database: none (the database was new)\n")  # first
    first = re.search(r"backup of the EDN file: (\S+)\n", out)
    assert first is not None
    assert (tmp_path / first[1]).read_text(encoding="utf-8") == MEMORY_EDN

    # A second run over a changed file: the database it backs up is the first run's.
    memory_edn.write_text(MEMORY_EDN.replace(":cache/k1 nil}", ":cache/k1 nil, :cache/k2 2}"))
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    backup = document["backup"]
    assert document["written"] == 1
    assert backup["edn"] != first[1]
    assert "cache/k2" in (tmp_path / backup["edn"]).read_text(encoding="utf-8")
    assert _count(tmp_path / backup["database"]) == 11  # before the second run's write
    assert _count(db) == 12
    names = sorted(p.name for p in tmp_path.iterdir() if ".before-migrate-" in p.name)
    assert len(names) == 3
    assert all(re.fullmatch(r"(memory\.edn|garrison\.db)\.before-migrate-\d{8}T\d{6}Z(-\d+)?", n)
               for n in names)  # fmt: skip
    # With --validate the one document holds the migration, the validation and the backup.
    assert main([*args, "--validate", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"migration", "validation", "backup"}
    assert (tmp_path / document["backup"]["edn"]).is_file()


def test_no_backup_and_dry_run_write_no_copies(
    memory_edn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "garrison.db"
    base = ["migrate", "--edn", str(memory_edn), "--db", str(db)]
    assert main([*base, "--dry-run"]) == 0
    assert main([*base, "--no-backup"]) == 0
    assert "backup of" not in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if ".before-migrate-" in p.name]
