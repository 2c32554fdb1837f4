"""``edn_max_digits``: the EDN file's digit limit, for the store and the migrator alike."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from garrison import ConfigError, StartupError, open_runtime
from garrison.components.database import DatabaseConfig, Store
from garrison.components.migrator import Migrate, MigrationSummary
from garrison.config import parse_section
from garrison.edn import Keyword
from garrison.exceptions import StoreLoadError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from garrison import Runtime

# A number Clojure prints happily, past the default limit of 10,000 digits.
_BIG = "7" * 12_000


@contextlib.asynccontextmanager
async def _runtime(data_dir: Path, **database: Any) -> AsyncIterator[Runtime]:
    config = {
        "runtime": {"data_dir": str(data_dir), "stop_timeout": 10.0},
        "components": {"database": database, "migrator": {}},
    }
    async with open_runtime(config, environ={}) as rt:
        yield rt


async def test_a_longer_number_stops_the_start_with_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text(f"{{:a/n 1,\n :b/n {_BIG}}}", encoding="utf-8")
    with pytest.raises(StartupError) as info:
        async with _runtime(tmp_path, mode="edn-only"):
            pass
    cause = info.value.__cause__
    assert isinstance(cause, StoreLoadError)
    assert f"{tmp_path / 'memory.edn'}:2:7" in str(cause)
    assert "more than the reader's limit of 10000" in str(cause)
    assert "[components.database] edn_max_digits raises the limit" in str(cause)


async def test_edn_max_digits_lets_the_store_and_the_migrator_read_it(tmp_path: Path) -> None:
    (tmp_path / "memory.edn").write_text(f"{{:a/n 1, :b/n {_BIG}}}", encoding="utf-8")
    async with _runtime(tmp_path, mode="dual-write", edn_max_digits=20_000) as rt:
        assert await rt.get(Store).get(Keyword("b/n")) == 7 * (10**12_000 - 1) // 9
        job = await rt.ref("migrator").ask(Migrate(validate=True))
        summary, report = await job.result()
        assert isinstance(summary, MigrationSummary)
        assert summary.total == 2
        assert report is not None
        assert report.agree


def test_edn_max_digits_below_pythons_own_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="edn_max_digits must be at least 4300"):
        parse_section(DatabaseConfig, {"edn_max_digits": 100}, path="components.database")
