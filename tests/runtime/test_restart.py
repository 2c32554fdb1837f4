"""Supervision: restart strategies, restart types, backoff, intensity, escalation."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from garrison.config import RestartSettings
from garrison.exceptions import ActorStoppedError, EscalationError, LifecycleError
from garrison.runtime import Component, ComponentState, Runtime, open_runtime
from garrison.runtime._supervisor import backoff_delay
from tests.runtime._lifecycle_components import (
    Crash,
    CrashInBackground,
    Ping,
    StopNormally,
    Transitions,
    make,
)

RUNNING = ComponentState.RUNNING


def settings(tmp_path: Path, strategy: str = "one_for_one", **restart: Any) -> dict[str, Any]:
    return {
        "data_dir": tmp_path,
        "start_timeout": 2.0,
        "stop_timeout": 0.5,
        "restart__strategy": strategy,
        "restart__backoff_initial": restart.pop("backoff_initial", 0.0),
        "restart__max_restarts": restart.pop("max_restarts", 10),
        **{f"restart__{k}": v for k, v in restart.items()},
    }


async def instance_ids(rt: Runtime, *names: str) -> dict[str, int]:
    return {n: (await rt.ref(n).ask(Ping(), timeout=5))[1] for n in names}


async def test_one_for_one_restarts_only_the_crashed_component(tmp_path: Path) -> None:
    events: list[str] = []
    comps = [make("a", events=events), make("b", "a", events=events)]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        before = await instance_ids(rt, "a", "b")
        await rt.ref("a").tell(Crash())
        await seen.wait_for("a", RUNNING)
        after = await instance_ids(rt, "a", "b")
        assert after["a"] != before["a"]
        assert after["b"] == before["b"]
        assert rt.statistics()["a"].restarts == 1
        assert rt.statistics()["b"].restarts == 0
        assert ("a", ComponentState.RESTARTING) in seen.seen
    assert events.count("start a") == 2
    assert events.count("stop a") == 2  # on_stop of the crashed instance, then shutdown


async def test_crash_of_a_spawned_background_task_restarts(tmp_path: Path) -> None:
    comps = [make("writer", events=[])]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("writer").ask(CrashInBackground())
        await seen.wait_for("writer", RUNNING)
        assert rt.statistics()["writer"].restarts == 1
        assert rt.last_error("writer") is None  # it came back


async def test_one_for_all_restarts_every_component(tmp_path: Path) -> None:
    comps = [make("a", events=[]), make("b", events=[]), make("c", "a", events=[])]
    async with open_runtime({}, components=comps, **settings(tmp_path, "one_for_all")) as rt:
        seen = Transitions(rt)
        before = await instance_ids(rt, "a", "b", "c")
        await rt.ref("b").tell(Crash())
        for name in ("a", "b", "c"):
            await seen.wait_for(name, RUNNING)
        after = await instance_ids(rt, "a", "b", "c")
        assert all(after[n] != before[n] for n in after)


async def test_rest_for_one_restarts_the_crashed_and_its_dependents_in_order(
    tmp_path: Path,
) -> None:
    events: list[str] = []
    comps = [
        make("a", events=events),
        make("b", "a", events=events),
        make("c", "b", events=events),
        make("d", "a", events=events),
    ]
    async with open_runtime({}, components=comps, **settings(tmp_path, "rest_for_one")) as rt:
        seen = Transitions(rt)
        before = await instance_ids(rt, "a", "b", "c", "d")
        events.clear()
        await rt.ref("b").tell(Crash())
        await seen.wait_for("c", RUNNING)
        after = await instance_ids(rt, "a", "b", "c", "d")
        assert after["b"] != before["b"]
        assert after["c"] != before["c"]
        assert after["a"] == before["a"]
        assert after["d"] == before["d"]
    # dependents stop first, then everything restarts in dependency order
    assert events[:4] == ["stop c", "stop b", "start b", "start c"]


async def test_asks_during_a_restart_wait_for_the_new_instance(tmp_path: Path) -> None:
    release = asyncio.Event()
    starts: list[int] = []

    async def slow_second_start(self: Component) -> None:
        starts.append(id(self))
        if len(starts) == 2:
            await release.wait()

    comps = [make("svc", events=[], on_start=slow_second_start)]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("svc").tell(Crash())
        await seen.wait_for("svc", ComponentState.STARTING, 1)
        pending = asyncio.create_task(rt.ref("svc").ask(Ping(), timeout=5))
        done, _ = await asyncio.wait({pending}, timeout=0.05)
        assert not done, "the ask waits while the component restarts"
        release.set()
        assert await pending == ("svc", starts[1])


async def test_transient_component_that_stops_normally_is_not_restarted(
    tmp_path: Path,
) -> None:
    comps = [make("job", events=[], restart="transient"), make("keep", events=[])]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("job").ask(StopNormally())
        await seen.wait_for("job", ComponentState.STOPPED)
        with pytest.raises(ActorStoppedError):
            await rt.ref("job").ask(Ping())
        assert rt.statistics()["job"].restarts == 0


async def test_permanent_component_that_stops_normally_is_restarted(tmp_path: Path) -> None:
    comps = [make("loop", events=[])]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("loop").ask(StopNormally())
        await seen.wait_for("loop", RUNNING)
        assert rt.statistics()["loop"].restarts == 1


async def test_temporary_component_that_crashes_is_failed_not_restarted(
    tmp_path: Path,
) -> None:
    comps = [make("once", events=[], restart="temporary", critical=False)]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("once").tell(Crash("gone"))
        await seen.wait_for("once", ComponentState.FAILED)
        assert str(rt.last_error("once")) == "gone"
        with pytest.raises(ActorStoppedError):
            await rt.ref("once").ask(Ping())
        assert rt.ready  # not critical: the runtime stays ready


async def test_repeated_crashes_escalate_and_stop_everything(tmp_path: Path) -> None:
    events: list[str] = []
    starts = 0

    async def crash_after_start(self: Component) -> None:
        nonlocal starts
        starts += 1
        if starts > 1:  # every restart crashes again at once
            raise RuntimeError(f"bad start {starts}")

    comps = [
        make("base", events=events),
        make("flaky", "base", events=events, on_start=crash_after_start),
    ]
    runtimes: list[Runtime] = []

    async def run() -> None:
        async with open_runtime(
            {}, components=comps, **settings(tmp_path, max_restarts=2, period=30.0)
        ) as rt:
            runtimes.append(rt)
            await rt.ref("flaky").tell(Crash("first"))
            await asyncio.Event().wait()  # interrupted by the escalation

    with pytest.raises(EscalationError) as info:
        await run()
    rt = runtimes[0]
    assert info.value.component == "flaky"
    assert info.value.restarts == 2
    assert isinstance(info.value.__cause__, RuntimeError)
    assert rt.stopping
    assert rt.state("base") is ComponentState.STOPPED
    assert rt.state("flaky") is ComponentState.FAILED
    assert events[-1] == "stop base"


async def test_restart_waits_with_backoff(tmp_path: Path) -> None:
    comps = [make("slow", events=[])]
    loop = asyncio.get_running_loop()
    async with open_runtime(
        {}, components=comps, **settings(tmp_path, backoff_initial=0.2, backoff_jitter=0.0)
    ) as rt:
        seen = Transitions(rt)
        begun = loop.time()
        await rt.ref("slow").tell(Crash())
        await seen.wait_for("slow", RUNNING)
        assert loop.time() - begun >= 0.2


def test_backoff_grows_exponentially_up_to_the_cap_with_bounded_jitter() -> None:
    policy = RestartSettings(
        backoff_initial=0.1, backoff_multiplier=2, backoff_max=1.0, backoff_jitter=0.0
    )
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4, 5, 9)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.0,
        1.0,
    ]
    jittery = RestartSettings(backoff_initial=1.0, backoff_jitter=0.25)
    rng = random.Random(7)
    delays = [backoff_delay(jittery, 1, rng) for _ in range(200)]
    assert all(0.75 <= d <= 1.25 for d in delays)
    assert max(delays) - min(delays) > 0.3  # really spread, not constant


async def test_wait_ready_fails_once_a_critical_component_is_failed_for_good(
    tmp_path: Path,
) -> None:
    comps = [make("once", events=[], restart="temporary")]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("once").tell(Crash("gone"))
        await seen.wait_for("once", ComponentState.FAILED)
        assert not rt.ready
        with pytest.raises(LifecycleError, match="'once'"):
            await rt.wait_ready()


async def test_transient_component_that_crashes_is_restarted(tmp_path: Path) -> None:
    comps = [make("job", events=[], restart="transient")]
    async with open_runtime({}, components=comps, **settings(tmp_path)) as rt:
        seen = Transitions(rt)
        await rt.ref("job").tell(Crash())
        await seen.wait_for("job", RUNNING)
        assert rt.statistics()["job"].restarts == 1


async def test_stopping_during_a_restart_backoff_does_not_wait_for_it(tmp_path: Path) -> None:
    comps = [make("a", events=[]), make("b", "a", events=[])]
    loop = asyncio.get_running_loop()
    async with open_runtime(
        {}, components=comps, **settings(tmp_path, backoff_initial=30.0, backoff_jitter=0.0)
    ) as rt:
        seen = Transitions(rt)
        await rt.ref("a").tell(Crash())
        await seen.wait_for("a", ComponentState.RESTARTING)
        begun = loop.time()
    assert loop.time() - begun < 5
    assert set(rt.states().values()) == {ComponentState.STOPPED}
    with pytest.raises(ActorStoppedError):
        await rt.ref("a").ask(Ping())
