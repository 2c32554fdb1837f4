"""Actors, components, the lifecycle supervisor and the runtime that embeds them.

* :class:`Actor` / :func:`handler` / :class:`ActorRef`: typed messages handled
  one at a time (or in batches) by an actor's own task.
* :class:`Component`: an actor with a name, dependencies, lifecycle hooks,
  typed config and a health check.
* :func:`open_runtime` / :class:`Runtime`: start, supervise and stop components.
* :class:`CheckResult` / :class:`HealthStatus`: what a component's health check
  returns (the probes that combine them are :mod:`garrison.health`).
"""

from __future__ import annotations

from garrison.runtime._actor import Actor, handler
from garrison.runtime._check import CheckResult, HealthStatus, worst
from garrison.runtime._component import Component, ComponentState
from garrison.runtime._envelope import Envelope, carry
from garrison.runtime._graph import ComponentGraph, ComponentSpec
from garrison.runtime._ref import ActorRef, ActorStatistics
from garrison.runtime._runtime import Runtime, StateListener, open_runtime
from garrison.runtime._standalone import open_actor

__all__ = [
    "Actor",
    "ActorRef",
    "ActorStatistics",
    "CheckResult",
    "Component",
    "ComponentGraph",
    "ComponentSpec",
    "ComponentState",
    "Envelope",
    "carry",
    "HealthStatus",
    "Runtime",
    "StateListener",
    "handler",
    "open_actor",
    "open_runtime",
    "worst",
]
