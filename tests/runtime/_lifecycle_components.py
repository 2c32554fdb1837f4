"""Small components for the lifecycle tests, built per test with :func:`make`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from garrison.runtime import Component, ComponentState, Runtime, handler

Hook = Callable[[Component], Awaitable[None]]


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Crash:
    """Ask the component to crash itself (a restart-worthy failure)."""

    text: str = "boom"


@dataclass(frozen=True)
class CrashInBackground:
    text: str = "background boom"


@dataclass(frozen=True)
class StopNormally:
    pass


@dataclass(frozen=True)
class Sleep:
    gate: asyncio.Event
    entered: asyncio.Event | None = None


class Probe(Component):
    """Answers Ping with (name, id of the instance); can crash on demand."""

    @handler
    async def ping(self, msg: Ping) -> tuple[str, int]:
        return self.name, id(self)

    @handler
    async def crash_now(self, msg: Crash) -> None:
        self.crash(RuntimeError(msg.text))

    @handler
    async def crash_later(self, msg: CrashInBackground) -> None:
        async def fail() -> None:
            raise OSError(msg.text)

        self.spawn(fail())

    @handler
    async def stop_normally(self, msg: StopNormally) -> None:
        self.stop()

    @handler
    async def sleep(self, msg: Sleep) -> None:
        if msg.entered is not None:
            msg.entered.set()
        await msg.gate.wait()


def make(
    name: str,
    *depends_on: str,
    events: list[str],
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
    **attrs: Any,
) -> type[Component]:
    """A Probe subclass named ``name`` that records 'start x' / 'stop x' in ``events``."""

    async def start(self: Component) -> None:
        events.append(f"start {name}")
        if on_start is not None:
            await on_start(self)

    async def stop(self: Component) -> None:
        events.append(f"stop {name}")
        if on_stop is not None:
            await on_stop(self)

    namespace: dict[str, Any] = {
        "name": name,
        "depends_on": tuple(depends_on),
        "on_start": start,
        "on_stop": stop,
        **attrs,
    }
    return type(f"Probe_{name}", (Probe,), namespace)


async def hang(_: Component) -> None:
    """A hook that never finishes (until cancelled)."""
    await asyncio.Event().wait()


class Transitions:
    """Records every lifecycle transition of a runtime; lets a test wait for one."""

    def __init__(self, runtime: Runtime) -> None:
        self.seen: list[tuple[str, ComponentState]] = []
        self._changed = asyncio.Condition()
        runtime.add_state_listener(self._record)

    def _record(self, name: str, old: ComponentState, new: ComponentState) -> None:
        self.seen.append((name, new))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def count(self, name: str, state: ComponentState) -> int:
        return self.seen.count((name, state))

    async def wait_for(self, name: str, state: ComponentState, count: int = 1) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: self.count(name, state) >= count)
