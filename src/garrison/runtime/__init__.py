"""Actors, components, the lifecycle supervisor and the runtime that embeds them.

* :class:`Actor` / :func:`handler` / :class:`ActorRef`: typed messages handled
  one at a time (or in batches) by an actor's own task.
* :class:`Component`: an actor with a name, dependencies, lifecycle hooks,
  typed config and a health check.
* :func:`open_runtime` / :class:`Runtime`: start, supervise and stop components.
"""

from __future__ import annotations

from garrison.runtime._actor import Actor, handler
from garrison.runtime._asgi import HealthApp
from garrison.runtime._assembly import BUILTIN_COMPONENTS
from garrison.runtime._component import Component, ComponentState
from garrison.runtime._deferred import RuntimeProbes
from garrison.runtime._envelope import Envelope
from garrison.runtime._graph import ComponentGraph, ComponentSpec
from garrison.runtime._health import (
    HEALTH_CONTENT_TYPE,
    CheckResult,
    ComponentHealth,
    HealthReport,
    HealthStatus,
    ProbeKind,
    aggregate,
    worst,
)
from garrison.runtime._http import ProbeServer
from garrison.runtime._loop_lag import LoopLagMonitor
from garrison.runtime._probes import ComponentView, HealthProbes, ProbeSettings, ProbeTarget
from garrison.runtime._ref import ActorRef, ActorStatistics
from garrison.runtime._runtime import Runtime, StateListener, open_runtime
from garrison.runtime._runtime_health import RuntimeProbeTarget, probes_for
from garrison.runtime._serve import (
    DEFAULT_HEALTH_PORT,
    HealthService,
    HealthSettings,
    add_health_arguments,
    serving_health,
)
from garrison.runtime._standalone import open_actor
from garrison.runtime._status_file import StatusFileWriter, read_status_file
from garrison.tracing import tracing_active

__all__ = [
    "Actor",
    "ActorRef",
    "ActorStatistics",
    "BUILTIN_COMPONENTS",
    "CheckResult",
    "Component",
    "ComponentGraph",
    "ComponentSpec",
    "ComponentState",
    "Envelope",
    "HealthStatus",
    "Runtime",
    "RuntimeProbes",
    "StateListener",
    "handler",
    "open_actor",
    "open_runtime",
    "tracing_active",
    "worst",
    # health: probes, reports, serving them
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
    "StatusFileWriter",
    "add_health_arguments",
    "aggregate",
    "probes_for",
    "read_status_file",
    "serving_health",
]
