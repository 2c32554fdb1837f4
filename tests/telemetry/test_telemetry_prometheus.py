"""``/metrics`` in the Prometheus text format, beside the probes, scraped over HTTP."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from garrison.config import build_config
from garrison.health import serving_health
from garrison.runtime import Runtime
from garrison.telemetry import prometheus_metrics

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("otel_globals", "clean_env")


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read().decode()


def _runtime(tmp_path: Path, exporter: str) -> Runtime:
    return Runtime(
        build_config(
            {
                "runtime": {"data_dir": str(tmp_path)},
                "components": {
                    "telemetry": {
                        "export": True,
                        "traces_exporter": [],
                        "metrics_exporter": [exporter],
                    },
                    "database": {},
                },
            }
        )
    )


async def test_metrics_are_scraped_from_the_health_port(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "prometheus")
    routes = {"/metrics": prometheus_metrics}
    async with serving_health(runtime, port=0, routes=routes) as health, runtime:
        assert health.url is not None
        status, content_type, text = await asyncio.to_thread(_get, health.url + "/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=")
        depth = [
            line for line in text.splitlines() if line.startswith("garrison_actor_mailbox_depth")
        ]
        assert any('garrison_actor="database"' in line for line in depth), text
        assert "garrison_database_subscriptions" in text
        assert "garrison_edn_writer_lag_seconds" in text
        # The probes still answer beside it.
        status, _, _ = await asyncio.to_thread(_get, health.url + "/readyz")
        assert status == 200


async def test_metrics_say_how_to_turn_them_on_when_prometheus_is_off(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "console")
    async with (
        serving_health(runtime, port=0, routes={"/metrics": prometheus_metrics}) as health,
        runtime,
    ):
        assert health.url is not None
        status, _, text = await asyncio.to_thread(_get, health.url + "/metrics")
    assert status == 404
    assert "OTEL_METRICS_EXPORTER=prometheus" in text
