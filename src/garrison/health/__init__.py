"""Health: the probes of a runtime, and serving them to Kubernetes, Docker and load balancers.

* :func:`evaluate` / :func:`probes_for`: the ``live``, ``ready`` and
  ``startup`` probes of a :class:`~garrison.runtime.Runtime`, combining its
  components' checks into a :class:`HealthReport` (``application/health+json``).
* :class:`RuntimeProbes`: the probes of a runtime that starts later (an ASGI
  app's lifespan).
* :class:`HealthApp` (ASGI), :class:`ProbeServer` (a small HTTP/1.1 server),
  :func:`serving_health` (both, as ``garrison run`` serves them) and
  :class:`StatusFileWriter` (a status file for exec probes).

What one component's check returns (:class:`~garrison.runtime.CheckResult`)
belongs to the runtime; everything that combines and serves checks is here.
"""

from __future__ import annotations

from garrison.health._asgi import HealthApp
from garrison.health._deferred import RuntimeProbes
from garrison.health._http import ProbeServer
from garrison.health._loop_lag import LoopLagMonitor
from garrison.health._probes import ComponentView, HealthProbes, ProbeSettings, ProbeTarget
from garrison.health._report import (
    HEALTH_CONTENT_TYPE,
    ComponentHealth,
    HealthReport,
    ProbeKind,
    aggregate,
)
from garrison.health._runtime_health import RuntimeProbeTarget, evaluate, probes_for
from garrison.health._serve import (
    DEFAULT_HEALTH_PORT,
    HealthService,
    HealthSettings,
    add_health_arguments,
    serving_health,
)
from garrison.health._status_file import StatusFileWriter, read_status_file

__all__ = [
    "ComponentHealth",
    "ComponentView",
    "DEFAULT_HEALTH_PORT",
    "HEALTH_CONTENT_TYPE",
    "HealthApp",
    "HealthProbes",
    "HealthReport",
    "HealthService",
    "HealthSettings",
    "LoopLagMonitor",
    "ProbeKind",
    "ProbeServer",
    "ProbeSettings",
    "ProbeTarget",
    "RuntimeProbeTarget",
    "RuntimeProbes",
    "StatusFileWriter",
    "add_health_arguments",
    "aggregate",
    "evaluate",
    "probes_for",
    "read_status_file",
    "serving_health",
]
