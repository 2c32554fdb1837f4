"""The command line with ``backend = "postgresql"``: writes run the component on
PostgreSQL; what reads only SQLite so far says so instead of reading a file."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from garrison.cli import main
from garrison.stores import PostgresStore

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_writes_reach_postgresql_and_sqlite_only_commands_refuse_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, postgres_dsn: str
) -> None:
    config = tmp_path / "garrison.toml"
    config.write_text(
        f'[runtime]\ndata_dir = "{tmp_path / "data"}"\n\n[components.database]\n'
        f'backend = "postgresql"\ndsn = "{postgres_dsn}"\nmode = "sqlite-only"\n',
        encoding="utf-8",
    )
    assert main(["put", "session/abc", '{"user": 42}', "--config", str(config)]) == 0
    assert not (tmp_path / "data" / "garrison.db").exists()
    assert asyncio.run(_read(postgres_dsn, "session/abc")) == {"user": 42}
    capsys.readouterr()
    assert main(["get", "session/abc", "--config", str(config)]) == 3
    assert "on PostgreSQL" in capsys.readouterr().err
    assert main(["migrate", "--config", str(config)]) == 3
    assert 'backend = "postgresql"' in capsys.readouterr().err


async def _read(dsn: str, key: str) -> Any:
    async with PostgresStore(dsn) as store:
        return await store.get(key)
