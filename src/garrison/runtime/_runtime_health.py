"""The probes of a :class:`~garrison.runtime.Runtime`: the adapter and one instance per runtime.

:func:`probes_for` returns the :class:`HealthProbes` of a runtime (created on
first use, kept as long as the runtime lives, never shared between runtimes);
``Runtime.health()`` and ``garrison run`` both use it, so a probe served over
HTTP and one asked from Python share the check cache and the drain flag.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from garrison.exceptions import LifecycleError
from garrison.runtime._component import ComponentState
from garrison.runtime._health import CheckResult
from garrison.runtime._probes import ComponentView, HealthProbes, ProbeSettings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from garrison.runtime._component import Component
    from garrison.runtime._runtime import Runtime

__all__ = ["RuntimeProbeTarget", "probes_for"]

# Keyed weakly by runtime: the probes die with their runtime, and two runtimes
# in one process each get their own.
_PROBES: weakref.WeakKeyDictionary[Runtime, HealthProbes] = weakref.WeakKeyDictionary()

_FINAL_STATES = frozenset({ComponentState.STOPPED, ComponentState.FAILED})


class RuntimeProbeTarget:
    """Presents a runtime to :class:`HealthProbes` (see :class:`ProbeTarget`).

    ``startup_complete`` is read from the component instance
    (``Component.startup_complete``, true unless the component says otherwise).
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = weakref.ref(runtime)

    @property
    def runtime(self) -> Runtime:
        """The runtime probed; ``RuntimeError`` once it has been garbage-collected."""
        runtime = self._runtime()
        if runtime is None:
            raise RuntimeError("the runtime these probes watched no longer exists")
        return runtime

    @property
    def stopping(self) -> bool:
        """True from the moment the runtime's stop begins."""
        return self.runtime.stopping

    @property
    def finished(self) -> bool:
        """The runtime has stopped (or was collected): nothing left to monitor."""
        runtime = self._runtime()
        if runtime is None:
            return True
        return runtime.stopping and all(s in _FINAL_STATES for s in runtime.states().values())

    def component_views(self) -> list[ComponentView]:
        """Every enabled component, in start order."""
        runtime = self.runtime
        statistics = runtime.statistics()
        views = []
        for name, state in runtime.states().items():
            instance = _live_instance(runtime, name) if state is ComponentState.RUNNING else None
            if instance is None:
                complete = False
                check = _not_running(name, state)
            else:
                complete = bool(instance.startup_complete)
                check = instance.check_health
            stats = statistics.get(name)
            observed = (
                {
                    "mailbox_depth": stats.mailbox_depth,
                    "mailbox_capacity": stats.mailbox_capacity,
                    "restarts": stats.restarts,
                }
                if stats is not None
                else {}
            )
            views.append(
                ComponentView(
                    name, state.value, runtime.spec(name).critical, complete, check, observed
                )
            )
        return views

    async def ping_supervisor(self) -> None:
        """Answer when the supervisor is alive; raise with the reason when it is not."""
        runtime = self.runtime
        if runtime.escalation is not None:
            raise RuntimeError(f"the supervisor gave up: {runtime.escalation}")
        if not runtime.supervising:
            raise RuntimeError("the supervisor's watch loop has exited")
        # One trip through the loop the supervisor runs on.
        await asyncio.sleep(0)


def _live_instance(runtime: Runtime, name: str) -> Component | None:
    try:
        return runtime.component(name)
    except LifecycleError:
        return None  # between our state read and now it stopped running


def _not_running(name: str, state: ComponentState) -> Callable[[], Awaitable[CheckResult]]:
    async def check() -> CheckResult:
        return CheckResult.failing(f"component {name!r} is {state.value}")

    return check


def probes_for(runtime: Runtime, settings: ProbeSettings | None = None) -> HealthProbes:
    """The probes of ``runtime``, created on first use and reused after.

    ``settings``, when given, replace the probes' timings from now on.
    """
    probes = _PROBES.get(runtime)
    if probes is not None and settings is not None:
        probes.settings = settings
    if probes is None:
        target = RuntimeProbeTarget(runtime)
        probes = HealthProbes(target, settings, monitor_until=lambda: target.finished)
        _PROBES[runtime] = probes
    return probes
