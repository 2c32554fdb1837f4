"""The live / ready / startup probes against a small in-process target.

The target here is a plain object implementing ProbeTarget; the same probes
run against a real runtime in test_probes_runtime.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from garrison.health._probes import ComponentView, HealthProbes, ProbeSettings
from garrison.runtime._check import CheckResult, HealthStatus

P, W, F = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


@dataclass
class Part:
    name: str
    critical: bool = True
    state: str = "running"
    startup_complete: bool = True
    result: CheckResult = field(default_factory=CheckResult.passing)
    calls: int = 0
    hang: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    error: Exception | None = None
    #: Until set, the check ignores its cancellation.
    stubborn: asyncio.Event | None = None

    async def check(self) -> CheckResult:
        self.calls += 1
        self.entered.set()
        if self.hang is not None:
            await self.hang.wait()
        while self.stubborn is not None and not self.stubborn.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # the bug under test
                await self.stubborn.wait()
        if self.error is not None:
            raise self.error
        return self.result

    def view(self) -> ComponentView:
        return ComponentView(
            self.name, self.state, self.critical, self.startup_complete, self.check
        )


@dataclass
class Target:
    parts: list[Part]
    stopping: bool = False
    supervisor_hangs: bool = False

    def component_views(self) -> list[ComponentView]:
        return [p.view() for p in self.parts]

    async def ping_supervisor(self) -> None:
        if self.supervisor_hangs:
            await asyncio.Event().wait()


FAST = ProbeSettings(check_timeout=0.2, supervisor_timeout=0.2, cache_ttl=30.0)


Make = Callable[..., HealthProbes]


@pytest.fixture
async def probes_factory() -> AsyncIterator[Make]:
    made: list[HealthProbes] = []

    def make(target: Target, settings: ProbeSettings = FAST) -> HealthProbes:
        probes = HealthProbes(target, settings)
        made.append(probes)
        return probes

    yield make
    for p in made:
        await p.aclose()


async def test_ready_passes_when_critical_components_run_and_pass(probes_factory: Make) -> None:
    target = Target([Part("database"), Part("cache", critical=False)])
    report = await probes_factory(target).evaluate("ready")
    assert report.status is P
    assert report.http_status == 200
    assert [c.name for c in report.checks] == ["database", "cache"]


async def test_ready_fails_on_a_critical_failure_and_warns_on_a_non_critical_one(
    probes_factory: Make,
) -> None:
    cache = Part("cache", critical=False, result=CheckResult.failing("down"))
    report = await probes_factory(Target([Part("database"), cache])).ready()
    assert report.status is W
    assert report.check("cache").output == "down"

    db = Part("database", result=CheckResult.failing("disk full"))
    report = await probes_factory(Target([db])).ready()
    assert report.status is F
    assert report.http_status == 503
    assert "database" in report.output


async def test_ready_fails_for_a_critical_component_not_running(probes_factory: Make) -> None:
    db = Part("database", state="restarting")
    report = await probes_factory(Target([db])).ready()
    assert report.status is F
    assert report.check("database").state == "restarting"
    assert db.calls == 0


async def test_a_hung_check_fails_within_the_timeout(probes_factory: Make) -> None:
    db = Part("database", hang=asyncio.Event())
    start = time.monotonic()
    report = await probes_factory(Target([db])).ready()
    assert time.monotonic() - start < 2.0
    assert report.status is F
    assert "did not answer within 0.2s" in report.check("database").output


async def test_a_check_that_ignores_its_cancellation_fails_within_a_bound(
    probes_factory: Make,
) -> None:
    release = asyncio.Event()
    db = Part("database", stubborn=release)
    probes = probes_factory(Target([db]))
    try:
        for _ in range(2):  # the second probe joins the stuck check, bounded the same
            start = time.monotonic()
            report = await probes.ready()
            assert time.monotonic() - start < 2.0
            assert report.status is F
            assert report.check("database").reason == "check_timeout"
        assert db.calls == 1
    finally:
        release.set()


async def test_a_check_that_raises_is_a_failing_check(probes_factory: Make) -> None:
    db = Part("database", error=RuntimeError("connection lost"))
    report = await probes_factory(Target([db])).ready()
    assert report.status is F
    assert "RuntimeError: connection lost" in report.check("database").output


async def test_checks_are_cached_and_concurrent_probes_share_one(probes_factory: Make) -> None:
    gate = asyncio.Event()
    db = Part("database", hang=gate)
    probes = probes_factory(Target([db]), ProbeSettings(check_timeout=5.0, cache_ttl=30.0))
    waiting = [asyncio.ensure_future(probes.ready()) for _ in range(5)]
    await db.entered.wait()
    gate.set()
    reports = await asyncio.gather(*waiting)
    assert {r.status for r in reports} == {P}
    assert db.calls == 1
    again = await probes.ready()
    assert db.calls == 1
    assert again.check("database").cached


async def test_cache_expires_after_its_ttl(probes_factory: Make) -> None:
    db = Part("database")
    probes = probes_factory(Target([db]), ProbeSettings(cache_ttl=0.0))
    await probes.ready()
    db.result = CheckResult.failing("now broken")
    report = await probes.ready()
    assert db.calls == 2
    assert report.status is F


async def test_ready_fails_the_moment_a_stop_begins(probes_factory: Make) -> None:
    db = Part("database")
    target = Target([db])
    probes = probes_factory(target)
    assert (await probes.ready()).ok
    target.stopping = True
    report = await probes.ready()
    assert report.status is F
    assert report.output == "the runtime is stopping"
    assert db.calls == 1


async def test_begin_drain_fails_ready_but_not_live(probes_factory: Make) -> None:
    probes = probes_factory(Target([Part("database")]))
    probes.begin_drain()
    assert probes.draining
    assert (await probes.ready()).status is F
    assert (await probes.live()).status is P


async def test_live_never_runs_checks_and_fails_on_a_terminally_failed_component(
    probes_factory: Make,
) -> None:
    db = Part("database", result=CheckResult.failing("db down"))
    target = Target([db])
    probes = probes_factory(target)
    report = await probes.live()
    assert report.status is P
    assert db.calls == 0
    assert report.check("supervisor").status is P
    assert report.check("eventloop").component_type == "system"
    db.state = "failed"
    report = await probes.live()
    assert report.status is F
    assert db.calls == 0


async def test_live_fails_when_the_supervisor_does_not_answer(probes_factory: Make) -> None:
    report = await probes_factory(Target([], supervisor_hangs=True)).live()
    assert report.status is F
    assert "did not answer" in report.check("supervisor").output


async def test_live_reports_a_stalled_event_loop(probes_factory: Make) -> None:
    settings = ProbeSettings(lag_interval=0.02, lag_warn=0.1, lag_fail=10.0)
    probes = probes_factory(Target([]), settings)
    probes.start()
    # A blocking callback stalls the loop: the very thing the probe detects.
    asyncio.get_running_loop().call_soon(time.sleep, 0.3)
    while probes.lag_monitor.worst() < 0.2:
        await probes.lag_monitor.wait_sample()
    report = await probes.live()
    assert report.status is W
    loop = report.check("eventloop")
    assert loop.observed["lag_ms"] >= 200
    assert "lagged" in loop.output


async def test_startup_waits_for_every_component_and_its_startup_work(probes_factory: Make) -> None:
    migrator = Part("migrator", critical=False, startup_complete=False)
    db = Part("database", state="starting")
    probes = probes_factory(Target([db, migrator]))
    report = await probes.startup()
    assert report.status is F
    assert report.check("database").output == "not started (starting)"
    assert report.check("migrator").output == "startup work still in progress"
    db.state = "running"
    migrator.startup_complete = True
    assert (await probes.startup()).status is P


async def test_an_unknown_probe_name_is_rejected(probes_factory: Make) -> None:
    with pytest.raises(ValueError, match="unknown probe 'alive'"):
        await probes_factory(Target([])).evaluate("alive")  # type: ignore[arg-type]
