"""Probes for a runtime that starts later: an ASGI app's lifespan makes it, the app serves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.health._report import HealthReport
from garrison.health._runtime_health import probes_for
from garrison.runtime import HealthStatus

if TYPE_CHECKING:
    from garrison.health._report import ProbeKind
    from garrison.runtime import Runtime

__all__ = ["RuntimeProbes"]


class RuntimeProbes:
    """The probes of :attr:`runtime` once it is set; every probe fails before then.

    An ASGI app is built before its lifespan starts the runtime, but the probe
    app mounted in it needs a source from the start::

        probes = RuntimeProbes()
        app = Starlette(routes=[Mount("/health", app=HealthApp(probes))], lifespan=lifespan)

        # in the lifespan:
        async with garrison.runtime.open_runtime(config) as rt:
            probes.runtime = rt
            yield
        probes.runtime = None
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        #: The runtime whose probes answer; ``None`` answers "not started".
        self.runtime = runtime

    async def evaluate(self, probe: ProbeKind) -> HealthReport:
        """The ``probe`` report of the runtime, or a failing one while there is none."""
        runtime = self.runtime
        if runtime is None:
            return HealthReport(probe, HealthStatus.FAIL, output="the runtime is not started")
        return await probes_for(runtime).evaluate(probe)
