"""garrison's own log events: quiet on stdout, visible through logging when unconfigured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import structlog

import garrison
from tests.runtime._lifecycle_components import make

if TYPE_CHECKING:
    import pytest


async def test_without_structlog_config_lifecycle_events_go_to_stdlib_logging(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    structlog.reset_defaults()
    assert not structlog.is_configured()
    with caplog.at_level(logging.INFO, logger="garrison"):
        async with garrison.open_runtime({}, components=[make("alpha", events=[])]):
            pass
    assert capsys.readouterr().out == ""  # nothing on the host's stdout
    started = [r for r in caplog.records if r.getMessage().startswith("component.started")]
    assert [r.name for r in started] == ["garrison.runtime"]
    assert "component='alpha'" in started[0].getMessage()
    assert started[0].garrison["component"] == "alpha"  # type: ignore[attr-defined]
