"""The command line with ``backend = "postgresql"``: writes run the component on
PostgreSQL, reads read it through the owner actor; no SQLite file appears."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from garrison.cli import main
from garrison.stores import PostgresStore
from tests.cli._process import Process

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SCHEMA = """
[components.database.schema.session]
":session/user" = { type = "string", indexed = true }
"""


def _config(tmp_path: Path, dsn: str, extra: str = "") -> Path:
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n\n[components.database]\n'
        f'backend = "postgresql"\ndsn = "{dsn}"\nmode = "sqlite-only"\n{extra}',
        encoding="utf-8",
    )
    return config


def test_writes_and_reads_reach_postgresql(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, postgres_dsn: str
) -> None:
    config = str(_config(tmp_path, postgres_dsn, SCHEMA))
    assert main(["put", "session/abc", '{:session/user "u1"}', "--config", config]) == 0
    assert main(["put", "session/abc", '{:session/user "u2"}', "--config", config]) == 0
    assert main(["put", "session/def", '{:session/user "u1"}', "--config", config]) == 0
    assert main(["put", "cache/k", "7", "--config", config]) == 0
    assert asyncio.run(_read(postgres_dsn, "cache/k")) == 7
    capsys.readouterr()

    assert main(["get", "session/abc", "--config", config]) == 0
    assert capsys.readouterr().out == '{:session/user "u2"}\n'
    assert main(["get", "nope", "--config", config]) == 1
    capsys.readouterr()
    assert main(["scan", "session/", "--json", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "session/abc": {"session/user": "u2"},
        "session/def": {"session/user": "u1"},
    }
    assert main(["mode", "get", "--config", config]) == 0
    assert capsys.readouterr().out == "sqlite-only\n"

    assert main(["stats", "--config", config]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["sqlite_entries"], stats["sqlite_history_rows"]) == (3, 4)
    assert stats["database"].startswith("postgresql://")
    assert "sqlite_bytes" not in stats
    assert "sqlite_path" not in stats

    assert main(["history", "session/abc", "--config", config]) == 0
    history = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1:4] for line in history] == [
        ["v1", "put", f"cli:{getpass.getuser()}"],
        ["v2", "put", f"cli:{getpass.getuser()}"],
    ]
    assert main(["changes", "--json", "--config", config]) == 0
    changes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [c["key"] for c in changes] == ["session/abc", "session/abc", "session/def", "cache/k"]

    query = "[:find ?s :in $ ?u :where [?s :session/user ?u]]"
    assert main(["query", query, '"u1"', "--config", config]) == 0
    assert capsys.readouterr().out == '["session/def"]\n'
    assert main(["schema", "check", "--json", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True
    # A changed schema the stored data breaks: every violation, exit status 1.
    changed = SCHEMA.replace('type = "string"', 'type = "keyword"')
    changed_config = str(_config(tmp_path, postgres_dsn, changed))
    assert main(["schema", "check", "--json", "--config", changed_config]) == 1
    found = json.loads(capsys.readouterr().out)["violations"]
    assert sorted(v["key"] for v in found) == ["session/abc", "session/def"]
    config = str(_config(tmp_path, postgres_dsn, SCHEMA))

    # backup stays SQLite's: PostgreSQL is backed up with pg_dump.
    assert main(["backup", str(tmp_path / "copy.db"), "--config", config]) != 0
    assert "pg_dump" in capsys.readouterr().err
    assert not (tmp_path / "data" / "garrison.db").exists()


def test_db_takes_a_dsn_for_the_reads_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, postgres_dsn: str
) -> None:
    asyncio.run(_write(postgres_dsn, "doc/a", [1, 2]))
    capsys.readouterr()
    assert main(["get", "doc/a", "--db", postgres_dsn, "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "[1 2]\n"


def test_watch_follows_postgresql(tmp_path: Path, postgres_dsn: str) -> None:
    config = str(_config(tmp_path, postgres_dsn))
    asyncio.run(_write(postgres_dsn, "todo/1", {"done": False}))
    watcher = Process([sys.executable, "-m", "garrison.cli", "watch", "todo/", "--json",
                       "--config", config])  # fmt: skip
    try:
        watcher.wait_for(r'\{"todo/1":\{"done":false\}\}\n')
        asyncio.run(_write(postgres_dsn, "other/1", 1))  # not under the prefix
        asyncio.run(_write(postgres_dsn, "todo/2", {"done": True}))
        watcher.wait_for(r'"todo/2":\{"done":true\}\}\n')
    finally:
        watcher.close()
    lines = [json.loads(line) for line in watcher.output().splitlines()]
    assert lines == [
        {"todo/1": {"done": False}},
        {"todo/1": {"done": False}, "todo/2": {"done": True}},
    ]


async def _read(dsn: str, key: str) -> Any:
    async with PostgresStore(dsn) as store:
        return await store.get(key)


async def _write(dsn: str, key: str, value: Any) -> None:
    async with PostgresStore(dsn) as store:
        await store.put(key, value)


def test_a_read_of_an_empty_database_says_so_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, postgres_dsn: str
) -> None:
    config = _config(tmp_path, postgres_dsn)
    assert main(["get", "doc/a", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "no database at postgresql://" in err
    assert main(["scan", "--config", str(config)]) == 3
    assert not asyncio.run(PostgresStore(postgres_dsn).holds_store())  # no table was created
    assert main(["put", "doc/a", "1", "--config", str(config), "--quiet"]) == 0
    assert asyncio.run(PostgresStore(postgres_dsn).holds_store())
    assert main(["get", "doc/a", "--config", str(config)]) == 0
