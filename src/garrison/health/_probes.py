"""The live, ready and startup probes, as Kubernetes defines them.

- **live**: the supervisor loop answers, the event loop is not stalled (its lag
  is measured by a small monitor task), and no component is in a terminal
  ``failed`` state. It never runs a component's health check, so it never
  touches the database: a slow disk must not get the process killed.
- **ready**: every critical component is ``running`` and its health check
  passes, and every component has finished its startup work (traffic must not
  arrive during a blocking migration, while the startup probe still fails).
  Checks are cached briefly (``cache_ttl``) so a burst of probes runs each
  check once, and each is bounded by ``check_timeout`` so a probe never hangs.
  It fails as soon as a stop begins, so load balancers drain traffic
  before any component stops.
- **startup**: every component has started and has finished its startup work
  (a component whose ``startup_complete`` is false, e.g. the migrator during a
  blocking migration, holds it back).

Aggregation is worst-of; a failing component that is not critical only makes
the report ``warn`` (see :func:`garrison.runtime.aggregate`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace

from garrison._status_format import PROBES
from garrison.health._loop_lag import LoopLagMonitor, measure_lag
from garrison.health._report import ComponentHealth, HealthReport, ProbeKind, aggregate
from garrison.runtime import CheckResult, HealthStatus
from garrison.tracing import tracer, tracing_active

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["ComponentView", "HealthProbes", "ProbeSettings", "ProbeTarget"]


# Lifecycle states (the values of the runtime's state enum) the probes care about.
_RUNNING = "running"
_FAILED = "failed"
_STARTED_STATES = frozenset({"running", "restarting"})
# How long past check_timeout a probe waits for a check that ignores its cancellation.
_CHECK_GRACE = 0.5


# The parent of an untraced probe: a valid span context whose trace is not
# sampled, which garrison's spans (and ParentBased samplers) follow by making
# no span. It is never exported, so its fixed ids name nothing.
_UNTRACED = trace.NonRecordingSpan(
    trace.SpanContext(
        trace_id=0x6761727269736F6E2070726F62657321,
        span_id=0x70726F6265737321,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
    )
)


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Timing of the probes; the defaults suit Kubernetes' default probe timeouts (1 s).

    ``check_timeout`` bounds each component health check (a check that does not
    answer in time fails). ``cache_ttl`` is how long a check result is reused.
    The event-loop monitor samples every ``lag_interval`` seconds and the live
    probe looks at the worst lag of the last ``lag_window`` seconds: at or above
    ``lag_warn`` it warns, at or above ``lag_fail`` it fails.
    ``supervisor_timeout`` bounds the supervisor ping. ``trace``: each
    evaluation is a span ``health.probe <probe>`` with the spans of the checks
    under it; off (the default), a probe and its checks make no span at all, so
    a kubelet probing every few seconds does not fill the collector with root
    traces.
    """

    check_timeout: float = 0.8
    cache_ttl: float = 1.0
    lag_interval: float = 0.25
    lag_window: float = 10.0
    lag_warn: float = 0.5
    lag_fail: float = 5.0
    supervisor_timeout: float = 0.5
    trace: bool = False


@dataclass(frozen=True, slots=True)
class ComponentView:
    """What the probes need to know about one component, at one moment.

    ``state`` is the lifecycle state's value (``starting``, ``running``,
    ``restarting``, ``stopping``, ``stopped``, ``failed``);
    ``startup_complete`` is false while the component's startup work (a
    blocking migration…) is still going on; ``check`` runs its health check.
    ``observed`` holds what the runtime itself knows and costs nothing to read
    (mailbox depth, restarts); it is reported by every probe, next to what
    the check observed.
    """

    name: str
    state: str
    critical: bool
    startup_complete: bool
    check: Callable[[], Awaitable[CheckResult]]
    observed: Mapping[str, Any] = field(default_factory=dict)


class ProbeTarget(Protocol):
    """What :class:`HealthProbes` probes: a runtime, seen through three questions."""

    @property
    def stopping(self) -> bool:
        """True from the moment a stop begins."""

    def component_views(self) -> Sequence[ComponentView]:
        """Every declared component, in dependency order."""

    async def ping_supervisor(self) -> None:
        """Return once the supervisor loop has answered; raise if it cannot."""


@dataclass(slots=True)
class _CacheEntry:
    health: ComponentHealth
    at: float = field(default=0.0)


class HealthProbes:
    """Evaluates the three probes against a :class:`ProbeTarget` (normally a runtime).

    Health checks are cached for ``settings.cache_ttl`` and run at most once at
    a time per component: concurrent probes share the check in flight.
    """

    def __init__(
        self,
        target: ProbeTarget,
        settings: ProbeSettings | None = None,
        *,
        monitor_until: Callable[[], bool] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings or ProbeSettings()
        self.lag_monitor = LoopLagMonitor(
            interval=self.settings.lag_interval,
            window=self.settings.lag_window,
            until=monitor_until,
        )
        self._cache: dict[str, _CacheEntry] = {}
        self._inflight: dict[str, asyncio.Future[ComponentHealth]] = {}
        self._draining = False

    @property
    def draining(self) -> bool:
        """True after :meth:`begin_drain`, or once the target has begun to stop."""
        return self._draining or self.target.stopping

    def begin_drain(self) -> None:
        """Make readiness fail from now on, before anything stops.

        ``garrison run`` calls this on SIGTERM/SIGINT, waits the configured
        drain delay so load balancers stop sending traffic, then stops the
        runtime. Liveness is unaffected: a draining process is alive.
        """
        self._draining = True

    def start(self) -> None:
        """Start the event-loop lag monitor (idempotent; probes also start it lazily)."""
        self.lag_monitor.start()

    async def aclose(self) -> None:
        """Stop the monitor and cancel health checks still in flight (idempotent)."""
        await self.lag_monitor.aclose()
        pending = [f for f in self._inflight.values() if not f.done()]
        for fut in pending:
            fut.cancel()
        if pending:
            # A check that ignores its cancellation is left behind, not awaited.
            await asyncio.wait(pending, timeout=_CHECK_GRACE)
        self._inflight.clear()

    async def evaluate(self, probe: ProbeKind = "ready") -> HealthReport:
        """Run one probe and return its report; never raises for an unhealthy runtime.

        With tracing live and ``settings.trace`` on, each evaluation is one span
        ``health.probe <probe>`` carrying the probe and its resulting status, so
        a collector shows when and why a runtime was reported unready. With it
        off, the evaluation runs under an unsampled parent: neither garrison nor
        a parent-based sampler makes a span for it or for the checks it runs.
        """
        run = {"live": self.live, "ready": self.ready, "startup": self.startup}.get(probe)
        if run is None:
            raise ValueError(f"unknown probe {probe!r}; expected one of {', '.join(PROBES)}")
        if not tracing_active():
            return await run()
        if not self.settings.trace:
            with trace.use_span(_UNTRACED, end_on_exit=False):
                return await run()
        with tracer().start_as_current_span(
            f"health.probe {probe}", attributes={"garrison.health.probe": probe}
        ) as span:
            report = await run()
            span.set_attribute("garrison.health.status", str(report.status))
            return report

    async def live(self) -> HealthReport:
        """The liveness probe: supervisor answers, loop not stalled, nothing failed for good."""
        self.start()
        checks = [await self._supervisor_health(), await self._loop_health()]
        for view in self.target.component_views():
            if view.state == _FAILED:
                status, output = HealthStatus.FAIL, "component failed and will not be restarted"
            else:
                status, output = HealthStatus.PASS, ""
            checks.append(
                ComponentHealth(
                    view.name,
                    status,
                    view.critical,
                    view.state,
                    observed=view.observed,
                    output=output,
                    reason="component_failed" if output else "",
                )
            )
        return _report("live", checks)

    async def ready(self) -> HealthReport:
        """The readiness probe: critical components running with passing checks, each one's
        startup work done, and not stopping."""
        self.start()
        views = self.target.component_views()
        if self.draining:
            checks = [
                ComponentHealth(
                    v.name,
                    HealthStatus.FAIL,
                    v.critical,
                    v.state,
                    output="stopping",
                    reason="stopping",
                )
                for v in views
            ]
            return HealthReport(
                "ready",
                HealthStatus.FAIL,
                tuple(checks),
                output="the runtime is stopping",
                reason="stopping",
            )
        results = await asyncio.gather(*(self._component_health(v) for v in views))
        held_back = [
            health
            if view.startup_complete or health.status is HealthStatus.FAIL
            else replace(
                health,
                status=HealthStatus.FAIL,
                critical=True,
                output="startup work still in progress",
            )
            for view, health in zip(views, results, strict=True)
        ]
        return _report("ready", held_back)

    async def startup(self) -> HealthReport:
        """The startup probe: every component started and done with its startup work."""
        checks = []
        for view in self.target.component_views():
            if view.state not in _STARTED_STATES:
                status, reason = HealthStatus.FAIL, "not_started"
                output = f"not started ({view.state})"
            elif not view.startup_complete:
                status, reason = HealthStatus.FAIL, "startup_in_progress"
                output = "startup work still in progress"
            else:
                status, reason, output = HealthStatus.PASS, "", ""
            # A component that has not started holds startup back whether or
            # not it is critical: the probe means "everything is up".
            checks.append(
                ComponentHealth(
                    view.name,
                    status,
                    critical=True,
                    state=view.state,
                    output=output,
                    reason=reason,
                )
            )
        return _report("startup", checks)

    async def _supervisor_health(self) -> ComponentHealth:
        timeout = self.settings.supervisor_timeout
        start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await self.target.ping_supervisor()
        except TimeoutError:
            status, reason = HealthStatus.FAIL, "supervisor_timeout"
            output = f"the supervisor did not answer within {timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding itself
            status, reason = HealthStatus.FAIL, "supervisor_down"
            output = f"the supervisor cannot answer: {exc!r}"
        else:
            status, reason, output = HealthStatus.PASS, "", ""
        elapsed_ms = (time.monotonic() - start) * 1000
        return ComponentHealth(
            "supervisor",
            status,
            output=output,
            observed={"response_time_ms": round(elapsed_ms, 3)},
            duration_ms=elapsed_ms,
            component_type="system",
            reason=reason,
        )

    async def _loop_health(self) -> ComponentHealth:
        settings = self.settings
        now_lag = await measure_lag()
        lag = max(now_lag, self.lag_monitor.worst())
        if lag >= settings.lag_fail:
            status = HealthStatus.FAIL
            output = f"the event loop stalled for {lag:.2f}s (limit {settings.lag_fail:g}s)"
        elif lag >= settings.lag_warn:
            status = HealthStatus.WARN
            output = f"the event loop lagged {lag:.2f}s (warning at {settings.lag_warn:g}s)"
        else:
            status, output = HealthStatus.PASS, ""
        return ComponentHealth(
            "eventloop",
            status,
            output=output,
            observed={"lag_ms": round(lag * 1000, 3), "current_lag_ms": round(now_lag * 1000, 3)},
            component_type="system",
            reason="event_loop_lag" if output else "",
        )

    async def _component_health(self, view: ComponentView) -> ComponentHealth:
        if view.state != _RUNNING:
            return ComponentHealth(
                view.name,
                HealthStatus.FAIL,
                view.critical,
                view.state,
                output=f"{view.state}",
                reason="not_running",
            )
        entry = self._cache.get(view.name)
        if entry is not None and time.monotonic() - entry.at < self.settings.cache_ttl:
            return _replace_meta(entry.health, view, cached=True)
        fut = self._inflight.get(view.name)
        if fut is None or fut.done():
            fut = asyncio.ensure_future(self._run_check(view))
            self._inflight[view.name] = fut
        # Shielded: a probe that gives up (client gone) must not cancel the
        # check other probes are waiting on. Bounded here as well: a check
        # that ignores the cancellation of its timeout never ends, and every
        # probe after it would wait on it.
        try:
            async with asyncio.timeout(self.settings.check_timeout + _CHECK_GRACE):
                health = await asyncio.shield(fut)
        except TimeoutError:
            return ComponentHealth(
                view.name,
                HealthStatus.FAIL,
                view.critical,
                view.state,
                view.observed,
                output=f"health check did not answer within {self.settings.check_timeout:g}s "
                "and ignores its cancellation",
                reason="check_timeout",
            )
        return _replace_meta(health, view, cached=False)

    async def _run_check(self, view: ComponentView) -> ComponentHealth:
        timeout = self.settings.check_timeout
        started_at = datetime.now(UTC)
        start = time.monotonic()
        reason: str | None = None  # the result's own: check_failed / check_warned
        try:
            async with asyncio.timeout(timeout):
                result = await view.check()
            if not isinstance(result, CheckResult):  # user code may ignore its annotation
                reason = "check_invalid"  # type: ignore[unreachable]
                result = CheckResult.failing(
                    f"check_health() returned {type(result).__name__}, not a CheckResult"
                )
        except TimeoutError:
            reason = "check_timeout"
            result = CheckResult.failing(f"health check did not answer within {timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - a crashing check is reported as a failing check
            reason = "check_error"
            result = CheckResult.failing(f"health check raised {type(exc).__name__}: {exc}")
        finally:
            self._inflight.pop(view.name, None)
        elapsed = time.monotonic() - start
        # The draft's conventional measurement: how long the check took.
        result = CheckResult(
            result.status,
            {"responseTime_ms": round(elapsed * 1000, 3), **result.observed},
            result.output,
        )
        health = ComponentHealth.from_result(
            view.name,
            result,
            critical=view.critical,
            state=view.state,
            time=started_at,
            duration_ms=elapsed * 1000,
            reason=reason,
        )
        self._cache[view.name] = _CacheEntry(health, time.monotonic())
        return health


def _replace_meta(health: ComponentHealth, view: ComponentView, *, cached: bool) -> ComponentHealth:
    return ComponentHealth(
        health.name,
        health.status,
        view.critical,
        view.state,
        {**view.observed, **health.observed},
        health.output,
        health.time,
        health.duration_ms,
        cached,
        health.component_type,
        health.reason,
    )


def _report(probe: ProbeKind, checks: Sequence[ComponentHealth]) -> HealthReport:
    status = aggregate((c.status, c.critical) for c in checks)
    failing = [c.name for c in checks if c.status is HealthStatus.FAIL and c.critical]
    output = f"failing: {', '.join(failing)}" if failing else ""
    return HealthReport(probe, status, tuple(checks), output=output)
