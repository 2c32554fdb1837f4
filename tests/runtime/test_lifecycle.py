"""Start, stop and graph validation of the supervisor, with fault injection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from garrison.config import GarrisonConfig
from garrison.exceptions import (
    ActorStoppedError,
    ConfigError,
    MailboxFullError,
    ShutdownError,
    StartupError,
)
from garrison.runtime import Component, ComponentState, Runtime, open_runtime
from tests.runtime._lifecycle_components import Ping, Sleep, hang, make

FAST: dict[str, Any] = {"start_timeout": 2.0, "stop_timeout": 0.3}


async def test_start_in_dependency_order_and_stop_in_reverse(tmp_path: object) -> None:
    events: list[str] = []
    a = make("a", events=events)
    b = make("b", "a", events=events)
    c = make("c", "b", events=events)
    async with open_runtime({}, components=[c, b, a], data_dir=tmp_path, **FAST) as rt:
        await rt.wait_ready()
        assert rt.states() == dict.fromkeys(["a", "b", "c"], ComponentState.RUNNING)
        assert await rt.ref("c").ask(Ping()) == ("c", id(rt.component("c")))
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert set(rt.states().values()) == {ComponentState.STOPPED}


async def test_independent_components_of_a_level_start_concurrently(tmp_path: object) -> None:
    barrier = asyncio.Barrier(3)

    async def meet(_: Component) -> None:
        # Three components that all have to be inside on_start at the same
        # time: sequential starts would never get past the barrier.
        await barrier.wait()

    events: list[str] = []
    comps = [make(n, events=events, on_start=meet) for n in ("x", "y", "z")]
    async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST) as rt:
        assert rt.ready


async def test_failed_start_stops_what_started_and_names_everything(tmp_path: object) -> None:
    events: list[str] = []

    async def fail(_: Component) -> None:
        raise OSError("port in use")

    comps = [
        make("db", events=events),
        make("side", events=events),
        make("api", "db", events=events, on_start=fail),
        make("web", "api", events=events),
    ]
    with pytest.raises(StartupError) as info:
        async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST):
            pytest.fail("the body must not run after a failed start")
    err = info.value
    assert err.component == "api"
    assert set(err.started) == {"db", "side"}
    assert set(err.not_started) == {"api", "web"}
    assert isinstance(err.__cause__, OSError)
    assert "port in use" in str(err)
    assert "start web" not in events
    assert "stop api" not in events  # on_stop only ever follows a successful on_start
    assert events[-2:] in (["stop side", "stop db"], ["stop db", "stop side"])


async def test_start_that_hangs_is_cancelled_after_the_start_timeout(tmp_path: object) -> None:
    events: list[str] = []
    comps = [make("ok", events=events), make("stuck", "ok", events=events, on_start=hang)]
    begun = time.monotonic()
    with pytest.raises(StartupError) as info:
        async with open_runtime(
            {}, components=comps, data_dir=tmp_path, start_timeout=0.2, stop_timeout=0.3
        ):
            pass
    assert time.monotonic() - begun < 2
    assert info.value.component == "stuck"
    assert isinstance(info.value.__cause__, TimeoutError)
    assert events[-1] == "stop ok"


async def test_stop_that_hangs_is_cancelled_reported_and_the_rest_still_stop(
    tmp_path: object,
) -> None:
    events: list[str] = []
    comps = [
        make("base", events=events),
        make("stuck", "base", events=events, on_stop=hang),
        make("other", "base", events=events),
    ]
    begun = time.monotonic()
    with pytest.raises(ShutdownError) as info:
        async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST):
            pass
    assert time.monotonic() - begun < 3
    assert set(info.value.failures) == {"stuck"}
    assert isinstance(info.value.failures["stuck"], TimeoutError)
    assert "stop base" in events
    assert "stop other" in events


async def test_a_handler_that_hangs_cannot_hang_the_stop(tmp_path: object) -> None:
    events: list[str] = []
    comps = [make("busy", events=events)]
    pending: list[asyncio.Task[Any]] = []

    async def run() -> None:
        async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST) as rt:
            ref = rt.ref("busy")
            await ref.tell(Sleep(asyncio.Event()))  # never released
            pending.append(asyncio.create_task(ref.ask(Ping())))

    with pytest.raises(ShutdownError, match="busy"):
        await run()
    with pytest.raises(ActorStoppedError):
        await pending[0]
    assert events == ["start busy", "stop busy"]


async def test_stop_drains_the_mailbox_before_on_stop(tmp_path: object) -> None:
    events: list[str] = []
    seen: dict[str, int] = {}

    async def record(self: Component) -> None:
        seen["processed"] = self.self_ref.statistics().processed

    comps = [make("sink", events=events, on_stop=record)]
    async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST) as rt:
        for _ in range(200):
            rt.ref("sink").tell_nowait(Ping())
    assert seen["processed"] == 200


async def test_stop_is_idempotent(tmp_path: object) -> None:
    events: list[str] = []
    async with open_runtime(
        {}, components=[make("a", events=events)], data_dir=tmp_path, **FAST
    ) as rt:
        await rt.aclose()
        await rt.aclose()
        assert rt.stopping
        with pytest.raises(ActorStoppedError):
            await rt.ref("a").ask(Ping())
    assert events == ["start a", "stop a"]


async def test_flooding_a_mailbox_pushes_back_and_still_stops_cleanly(tmp_path: object) -> None:
    events: list[str] = []
    gate = asyncio.Event()
    async with open_runtime(
        {},
        components=[make("q", events=events)],
        data_dir=tmp_path,
        mailbox_capacity=10,
        **FAST,
    ) as rt:
        ref = rt.ref("q")
        entered = asyncio.Event()
        await ref.tell(Sleep(gate, entered))
        await entered.wait()
        accepted = 0
        try:
            for _ in range(1000):
                ref.tell_nowait(Ping())
                accepted += 1
        except MailboxFullError:
            pass
        assert accepted == 10
        assert ref.statistics().mailbox_depth == 10
        blocked = asyncio.create_task(ref.tell(Ping()))
        done, _ = await asyncio.wait({blocked}, timeout=0.05)
        assert not done
        gate.set()
        await blocked
        assert await ref.ask(Ping(), timeout=5) == ("q", id(rt.component("q")))
    assert rt.statistics()["q"].processed == accepted + 3


async def test_starts_first_component_precedes_everything(tmp_path: object) -> None:
    events: list[str] = []
    comps = [
        make("app", events=events),
        make("lib", events=events),
        make("telemetry", events=events, starts_first=True),
    ]
    async with open_runtime({}, components=comps, data_dir=tmp_path, **FAST) as rt:
        assert rt.graph.levels[0] == ["telemetry"]
    assert events[0] == "start telemetry"
    assert events[-1] == "stop telemetry"


def test_unknown_dependency_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown component 'ghost'") as info:
        Runtime(GarrisonConfig(), [make("a", "ghost", events=[])])
    assert info.value.path == "components.a.depends_on"


def test_dependency_cycle_is_a_config_error_that_prints_the_cycle() -> None:
    comps = [make("a", "c", events=[]), make("b", "a", events=[]), make("c", "b", events=[])]
    with pytest.raises(ConfigError, match="dependency cycle: a -> c -> b -> a"):
        Runtime(GarrisonConfig(), comps)


def test_duplicate_component_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="duplicate component name 'a'"):
        Runtime(GarrisonConfig(), [make("a", events=[]), make("a", events=[])])
