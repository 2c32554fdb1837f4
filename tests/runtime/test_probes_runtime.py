"""The probes against a real runtime: real components, states, restarts and stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

import garrison
from garrison.health import evaluate
from garrison.health._runtime_health import probes_for
from garrison.runtime import CheckResult, Component, HealthStatus

P, W, F = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


class Store(Component):
    name = "store"
    result: ClassVar[CheckResult] = CheckResult.passing(latency_ms=0.2)
    checks: ClassVar[int] = 0
    stop_gate: ClassVar[asyncio.Event | None] = None

    async def check_health(self) -> CheckResult:
        type(self).checks += 1
        return type(self).result

    async def on_stop(self) -> None:
        gate = type(self).stop_gate
        if gate is not None:
            await gate.wait()


class Cache(Component):
    name = "cache"
    depends_on = ("store",)
    critical = False

    async def check_health(self) -> CheckResult:
        return CheckResult.failing("cache cold")


class Migrator(Component):
    name = "migrator"
    depends_on = ("store",)
    done: ClassVar[asyncio.Event | None] = None
    finished: ClassVar[asyncio.Event | None] = None

    async def on_start(self) -> None:
        # Startup work that outlives on_start: a blocking migration.
        self.startup_complete = False
        self.spawn(self._migrate())

    async def _migrate(self) -> None:
        done, finished = type(self).done, type(self).finished
        assert done is not None
        assert finished is not None
        await done.wait()
        self.startup_complete = True
        finished.set()


@pytest.fixture(autouse=True)
def _reset() -> None:
    Store.result = CheckResult.passing(latency_ms=0.2)
    Store.checks = 0
    Store.stop_gate = None
    Migrator.done = None
    Migrator.finished = None


async def test_ready_live_and_startup_of_a_running_runtime(tmp_path: Path) -> None:
    async with garrison.runtime.open_runtime(
        {}, components=[Store, Cache], data_dir=str(tmp_path)
    ) as rt:
        probes = probes_for(rt)
        assert probes is probes_for(rt)
        ready = await probes.evaluate("ready")
        # The non-critical cache fails its check: the whole is warn, still 200.
        assert ready.status is W
        assert ready.http_status == 200
        observed = ready.check("store").observed
        # The check's own values, its response time, and the runtime's counters.
        assert observed["latency_ms"] == 0.2
        assert observed["responseTime_ms"] >= 0
        assert observed["mailbox_depth"] == 0
        assert observed["mailbox_capacity"] == 1000
        assert observed["restarts"] == 0
        verbose = ready.to_dict(verbose=True)["checks"]
        assert verbose["store:responseTime"][0]["observedUnit"] == "ms"
        assert "observedUnit" not in verbose["store:mailbox_depth"][0]
        assert ready.check("cache").critical is False
        live = await probes.evaluate("live")
        assert live.status is P
        assert {c.name for c in live.checks} == {"supervisor", "eventloop", "store", "cache"}
        assert (await probes.evaluate("startup")).status is P
        # A second ready within the cache TTL reuses the store's result.
        again = await probes.evaluate("ready")
        assert again.check("store").cached
        assert Store.checks == 1
        await probes.aclose()


async def test_readiness_fails_when_the_stop_begins_before_components_stop(
    tmp_path: Path,
) -> None:
    Store.stop_gate = asyncio.Event()
    async with garrison.runtime.open_runtime({}, components=[Store], data_dir=str(tmp_path)) as rt:
        probes = probes_for(rt)
        assert (await probes.ready()).ok
        stopping = asyncio.ensure_future(rt.aclose())
        await rt.wait_stopping()
        report = await probes.ready()
        # Not ready while the store is still stopping (its on_stop waits on the gate).
        assert report.status is F
        assert report.output == "the runtime is stopping"
        assert rt.state("store") in {
            garrison.runtime.ComponentState.RUNNING,
            garrison.runtime.ComponentState.STOPPING,
        }
        assert (await probes.live()).ok
        Store.stop_gate.set()
        await stopping
    await probes.aclose()


async def test_startup_and_readiness_wait_for_startup_work_that_outlives_on_start(
    tmp_path: Path,
) -> None:
    Migrator.done = asyncio.Event()
    Migrator.finished = asyncio.Event()
    async with garrison.runtime.open_runtime(
        {}, components=[Store, Migrator], data_dir=str(tmp_path)
    ) as rt:
        probes = probes_for(rt)
        report = await probes.startup()
        assert report.status is F
        assert report.check("migrator").output == "startup work still in progress"
        assert report.check("store").status is P
        # Not ready either: no traffic during a blocking migration.
        ready = await probes.ready()
        assert (ready.status, ready.http_status) == (F, 503)
        assert ready.check("migrator").output == "startup work still in progress"
        Migrator.done.set()
        await Migrator.finished.wait()
        assert (await probes.startup()).status is P
        assert (await probes.ready()).status is P
        await probes.aclose()


async def test_two_runtimes_have_their_own_probes(tmp_path: Path) -> None:
    async with (
        garrison.runtime.open_runtime({}, components=[Store], data_dir=str(tmp_path / "a")) as a,
        garrison.runtime.open_runtime(
            {}, components=[Cache, Store], data_dir=str(tmp_path / "b")
        ) as b,
    ):
        assert probes_for(a) is not probes_for(b)
        assert (await probes_for(a).ready()).status is P
        assert (await probes_for(b).ready()).status is W
        await probes_for(a).aclose()
        await probes_for(b).aclose()


async def test_runtime_health_returns_the_report_of_each_probe(tmp_path: Path) -> None:
    async with garrison.runtime.open_runtime({}, components=[Store], data_dir=str(tmp_path)) as rt:
        ready = await evaluate(rt, "ready")
        assert ready.probe == "ready"
        assert ready.status is P
        assert ready.to_dict()["checks"] == {"store": [{"status": "pass"}]}
        assert (await evaluate(rt)).probe == "ready"
        assert (await evaluate(rt, "live")).ok
        assert (await evaluate(rt, "startup")).ok
    # After the stop: not ready, and the reason says so.
    after = await evaluate(rt, "ready")
    assert after.status is F
    assert after.output == "the runtime is stopping"
    await probes_for(rt).aclose()


class Crashy(Component):
    name = "crashy"
    restart = "temporary"  # never restarted: a crash leaves it failed for good
    go: ClassVar[asyncio.Event | None] = None

    async def on_start(self) -> None:
        self.spawn(self._work())

    async def _work(self) -> None:
        go = type(self).go
        assert go is not None
        await go.wait()
        raise RuntimeError("worker blew up")


async def test_live_fails_once_a_critical_component_failed_for_good(tmp_path: Path) -> None:
    failed = asyncio.Event()
    Crashy.go = asyncio.Event()
    async with garrison.runtime.open_runtime(
        {}, components=[Store, Crashy], data_dir=str(tmp_path)
    ) as rt:
        assert (await evaluate(rt, "live")).status is P
        rt.add_state_listener(lambda name, old, new: failed.set() if new == "failed" else None)
        Crashy.go.set()
        await failed.wait()
        live = await evaluate(rt, "live")
        assert live.status is F
        assert live.check("crashy").output == "component failed and will not be restarted"
        assert live.check("store").status is P
        ready = await evaluate(rt, "ready")
        assert ready.status is F
        assert ready.check("crashy").state == "failed"
        await probes_for(rt).aclose()


async def test_live_fails_when_the_supervisor_itself_has_died(tmp_path: Path) -> None:
    """Nothing would restart a crashed component: liveness says so (and the container restarts)."""
    async with garrison.runtime.open_runtime(components=[Store], data_dir=str(tmp_path)) as rt:
        supervising = [rt.supervising]
        assert (await evaluate(rt, "live")).status is P
        watcher = rt._supervisor._watcher  # fault injection: the watch loop dies
        assert watcher is not None
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
        supervising.append(rt.supervising)
        live = await evaluate(rt, "live")
        assert live.status is F
        assert "watch loop has exited" in live.to_json(verbose=True).decode()
        await probes_for(rt).aclose()
    supervising.append(rt.supervising)
    assert supervising == [True, False, False]
