"""Fixtures of the database component tests: a real runtime on real files in tmp_path."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from garrison import open_runtime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from garrison import Runtime


@contextlib.asynccontextmanager
async def database_runtime(data_dir: Path, **options: Any) -> AsyncIterator[Runtime]:
    """A runtime with only the database component, its data under ``data_dir``."""
    config = {
        "runtime": {"data_dir": str(data_dir), "stop_timeout": 10.0},
        "components": {"database": options},
    }
    async with open_runtime(config, environ={}) as rt:
        yield rt


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A running runtime with the database component in sqlite-only mode."""
    async with database_runtime(tmp_path) as rt:
        yield rt
