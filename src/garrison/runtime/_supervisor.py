"""The lifecycle supervisor: start by levels, watch, restart by strategy, stop in reverse.

What a caller sees while a component restarts: its ref stays valid and its
mailbox is kept, so ``tell`` and ``ask`` queue as usual and are handled by the
new instance; an ask therefore waits (bounded by its own timeout) instead of
failing at once. Only a component that will not come back (``failed`` or
``stopped``) refuses messages with :class:`~garrison.ActorStoppedError`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from garrison._log import get_logger
from garrison.exceptions import EscalationError, GarrisonError, LifecycleError, StartupError
from garrison.runtime._cell import ActorCell, ExitKind, abandoned, wait_bounded
from garrison.runtime._component import ComponentState
from garrison.tracing import NO_SPAN, tracer, tracing_active

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from opentelemetry.trace import Span

    from garrison.config import RestartSettings, RuntimeSettings
    from garrison.runtime._component import Component
    from garrison.runtime._graph import ComponentGraph, ComponentSpec

__all__ = ["Supervisor", "backoff_delay"]

log = get_logger("garrison.runtime")


class _Slot:
    """One component's place in the supervisor: its cell survives restarts."""

    __slots__ = ("cell", "error", "instance", "restarts", "spec", "state")

    def __init__(self, spec: ComponentSpec, cell: ActorCell) -> None:
        self.spec = spec
        self.cell = cell
        self.instance: Component | None = None
        self.state = ComponentState.STOPPED
        self.error: BaseException | None = None
        #: Restarts by reason: ``crash`` (it crashed, or a restart of it failed
        #: to start), ``exit`` (a permanent component returned), ``strategy``
        #: (restarted with another that crashed: one_for_all, rest_for_one).
        self.restarts: Counter[str] = Counter()


class Supervisor:
    """Owns the component cells; see the module docstring for the restart contract."""

    def __init__(
        self,
        graph: ComponentGraph,
        settings: RuntimeSettings,
        *,
        create: Callable[[ComponentSpec], Component],
        on_state: Callable[[str, ComponentState, ComponentState], None],
        on_escalation: Callable[[EscalationError], None],
    ) -> None:
        self.graph = graph
        self.settings = settings
        self._create = create
        self._on_state = on_state
        self._on_escalation = on_escalation
        self.slots: dict[str, _Slot] = {}
        for name in graph.order:
            spec = graph.specs[name]
            cell = ActorCell(name, settings.mailbox_capacity, spec.component_class, self._exited)
            # Until its first start, sends fail fast instead of queueing forever.
            cell.mailbox.close()
            self.slots[name] = _Slot(spec, cell)
        self._events: asyncio.Queue[tuple[str, int, ExitKind, BaseException | None]] = (
            asyncio.Queue()
        )
        self._watcher: asyncio.Task[None] | None = None
        self._restart_times: deque[float] = deque()
        self._history: dict[str, deque[float]] = {name: deque() for name in self.slots}
        self._stopping = False
        self._stop_task: asyncio.Task[dict[str, BaseException]] | None = None
        self.escalation: EscalationError | None = None

    # -- state -------------------------------------------------------------------

    def _set_state(self, slot: _Slot, state: ComponentState) -> None:
        old = slot.state
        if old is state:
            return
        slot.state = state
        self._on_state(slot.spec.name, old, state)

    @property
    def stopping(self) -> bool:
        """True once a full stop (shutdown or escalation) has begun."""
        return self._stopping

    @property
    def watching(self) -> bool:
        """True while the watch loop that restarts crashed components runs."""
        return self._watcher is not None and not self._watcher.done()

    # -- start -------------------------------------------------------------------

    async def start(self) -> None:
        """Start every component, level by level, independent ones concurrently.

        On a failure, stop what started (reverse order) and raise StartupError.
        """
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name="garrison:supervisor"
        )
        started: list[str] = []
        for level in self.graph.levels:
            results = await asyncio.gather(
                *(self._start_slot(self.slots[name]) for name in level), return_exceptions=True
            )
            failure: tuple[str, BaseException] | None = None
            for name, result in zip(level, results, strict=True):
                if isinstance(result, BaseException):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    failure = failure or (name, result)
                else:
                    started.append(name)
            if self._stopping:
                # An escalation (a component crashing through its restarts)
                # stopped everything while later levels were still to start.
                await self.stop()
                raise self.escalation or LifecycleError("the runtime stopped while starting")
            if failure is not None:
                name, cause = failure
                not_started = [n for n in self.graph.order if n not in started]
                await self.stop()
                for failed_name in not_started:
                    slot = self.slots[failed_name]
                    if slot.error is not None:
                        self._set_state(slot, ComponentState.FAILED)
                raise StartupError(
                    name,
                    started=started,
                    not_started=not_started,
                    reason=f"{type(cause).__name__}: {cause}",
                ) from cause

    async def _start_slot(self, slot: _Slot) -> None:
        name = slot.spec.name
        self._set_state(slot, ComponentState.STARTING)
        begun = time.perf_counter()
        log.info("component.starting", component=name)
        with _span(f"component.start {name}"):
            try:
                await self._bring_up(slot)
            except Exception as exc:
                slot.error = exc
                if isinstance(exc, GarrisonError):
                    # An expected refusal (a locked database, a bad file) says
                    # what is wrong in its message; a traceback would bury it.
                    log.error("component.start_failed", component=name, error=_describe(exc))
                else:
                    log.error("component.start_failed", component=name, exc_info=exc)
                raise
        slot.error = None
        self._set_state(slot, ComponentState.RUNNING)
        duration_ms = round((time.perf_counter() - begun) * 1000, 3)
        log.info("component.started", component=name, duration_ms=duration_ms)

    async def _bring_up(self, slot: _Slot) -> None:
        cell = slot.cell
        instance = self._create(slot.spec)
        cell.attach(instance)
        task = asyncio.get_running_loop().create_task(
            instance.on_start(), name=f"{slot.spec.name}:on_start"
        )
        timeout = self.settings.start_timeout
        if not await wait_bounded(task, timeout):
            await cell.cancel_background()
            msg = (
                f"on_start of {slot.spec.name!r} did not finish within {timeout:g}s"
                f"{abandoned(task)}"
            )
            raise TimeoutError(msg)
        exc = task.exception()
        if exc is None and cell.crash_error is not None:
            exc = cell.crash_error
        if exc is not None:
            await cell.cancel_background()
            raise exc
        # Only a started instance is ever stopped: on_stop may rely on on_start.
        slot.instance = instance
        cell.run()

    # -- stop --------------------------------------------------------------------

    async def stop(self) -> dict[str, BaseException]:
        """Stop everything in reverse dependency order; idempotent and never hangs.

        Returns the components that failed to stop cleanly and why.
        """
        if self._stop_task is None:
            self._stopping = True
            from_watcher = asyncio.current_task() is self._watcher
            self._stop_task = asyncio.get_running_loop().create_task(self._stop_all(from_watcher))
        return await asyncio.shield(self._stop_task)

    async def _stop_all(self, from_watcher: bool) -> dict[str, BaseException]:
        watcher = self._watcher
        if watcher is not None and not from_watcher and not watcher.done():
            watcher.cancel()
            await asyncio.wait({watcher})
        failures: dict[str, BaseException] = {}
        for level in reversed(self.graph.levels):
            results = await asyncio.gather(*(self._stop_slot(self.slots[n]) for n in level))
            failures.update(
                (name, error)
                for name, error in zip(level, results, strict=True)
                if error is not None
            )
        return failures

    async def _stop_slot(self, slot: _Slot, *, final: bool = True) -> BaseException | None:
        """Stop one component; returns the error if it did not stop cleanly (never raises)."""
        name = slot.spec.name
        if slot.instance is None:
            # Never started, already stopped, or between instances (a stop that
            # interrupted a restart's backoff): nothing to run, only to settle.
            if final:
                slot.cell.fail_pending()
                if slot.state is not ComponentState.FAILED:
                    self._set_state(slot, ComponentState.STOPPED)
            return None
        instance, slot.instance = slot.instance, None
        if final:
            self._set_state(slot, ComponentState.STOPPING)
        log.info("component.stopping", component=name)
        begun = time.perf_counter()
        timeout = self.settings.stop_timeout
        deadline = asyncio.get_running_loop().time() + timeout
        error: BaseException | None = None
        with _span(f"component.stop {name}"):
            if final:
                drained = await slot.cell.stop(timeout)
            else:
                drained = await slot.cell.halt(timeout)
            if not drained:
                error = TimeoutError(f"{name!r} did not drain its mailbox within {timeout:g}s")
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.1 * timeout)
            hook = asyncio.get_running_loop().create_task(
                instance.on_stop(), name=f"{name}:on_stop"
            )
            if not await wait_bounded(hook, remaining):
                error = error or TimeoutError(
                    f"on_stop of {name!r} did not finish within {timeout:g}s{abandoned(hook)}"
                )
            elif not hook.cancelled() and hook.exception() is not None:
                error = error or hook.exception()
        if final:
            slot.cell.fail_pending()
        duration_ms = round((time.perf_counter() - begun) * 1000, 3)
        if error is not None:
            log.error(
                "component.stop_failed", component=name, duration_ms=duration_ms, exc_info=error
            )
        else:
            log.info("component.stopped", component=name, duration_ms=duration_ms)
        if final:
            self._set_state(slot, ComponentState.STOPPED)
        return error

    # -- supervision -------------------------------------------------------------

    def _exited(self, cell: ActorCell, kind: ExitKind, error: BaseException | None) -> None:
        if kind is ExitKind.HALTED or self._stopping:
            return
        self._events.put_nowait((cell.name, cell.incarnation, kind, error))

    async def _watch(self) -> None:
        while True:
            name, incarnation, kind, error = await self._events.get()
            slot = self.slots[name]
            stale = incarnation != slot.cell.incarnation
            if stale or slot.state is not ComponentState.RUNNING or self._stopping:
                continue
            try:
                await self._handle_exit(slot, kind, error)
            except Exception as exc:  # a bug here must not leave crashes unsupervised
                log.exception("supervisor.failed", component=name)
                await self._escalate(slot, exc)
                return
            if self.escalation is not None:
                return

    async def _handle_exit(self, slot: _Slot, kind: ExitKind, error: BaseException | None) -> None:
        name = slot.spec.name
        restart_type = slot.spec.restart
        if kind is ExitKind.CRASH:
            log.error("component.crashed", component=name, exc_info=error)
            wanted = restart_type != "temporary"
        else:
            log.info("component.exited", component=name)
            wanted = restart_type == "permanent"
        if not wanted:
            slot.error = error
            await self._stop_slot(slot)
            if kind is ExitKind.CRASH:
                self._set_state(slot, ComponentState.FAILED)
            return
        crashed: _Slot | None = slot
        cause = error
        reason = "crash" if kind is ExitKind.CRASH else "exit"
        while crashed is not None:
            if self._over_intensity(crashed.spec.name):
                await self._escalate(crashed, cause)
                return
            crashed, cause = await self._restart(crashed, cause, reason)
            reason = "crash"  # a restart that failed to start is another crash

    def _over_intensity(self, name: str) -> bool:
        policy = self.settings.restart
        now = time.monotonic()
        self._restart_times.append(now)
        history = self._history[name]
        history.append(now)
        for times in (self._restart_times, history):
            while times and now - times[0] > policy.period:
                times.popleft()
        return len(self._restart_times) > policy.max_restarts

    def backoff_delay(self, name: str) -> float:
        """Seconds to wait before restarting ``name`` again (see :func:`backoff_delay`)."""
        return backoff_delay(self.settings.restart, len(self._history[name]))

    def _restart_targets(self, name: str) -> list[str]:
        strategy = self.settings.restart.strategy
        if strategy == "one_for_one":
            targets = [name]
        elif strategy == "rest_for_one":
            targets = [name, *self.graph.dependents(name)]
        else:
            targets = list(self.graph.order)
        live = (ComponentState.RUNNING, ComponentState.RESTARTING, ComponentState.STARTING)
        return self.graph.sort({t for t in targets if t == name or self.slots[t].state in live})

    async def _restart(
        self, crashed: _Slot, error: BaseException | None, reason: str
    ) -> tuple[_Slot | None, BaseException | None]:
        """Restart ``crashed`` (and siblings by strategy). Returns a slot that failed to start."""
        name = crashed.spec.name
        targets = self._restart_targets(name)
        with _span(f"component.restart {name}"):
            for target in targets:
                self._set_state(self.slots[target], ComponentState.RESTARTING)
            for target in reversed(targets):
                await self._stop_slot(self.slots[target], final=False)
            delay = self.backoff_delay(name)
            log.warning(
                "component.restarting",
                component=name,
                restarting=targets,
                delay_ms=round(delay * 1000, 3),
                cause=repr(error),
            )
            await asyncio.sleep(delay)  # the backoff itself, not synchronisation
            for target in targets:
                slot = self.slots[target]
                slot.cell.restarts += 1
                slot.restarts[reason if slot is crashed else "strategy"] += 1
                try:
                    await self._start_slot(slot)
                except Exception as exc:  # noqa: BLE001 - any start failure is a crash to supervise
                    # A failed restart counts as another crash of that component.
                    for rest in targets[targets.index(target) + 1 :]:
                        self._set_state(self.slots[rest], ComponentState.RESTARTING)
                    self._set_state(slot, ComponentState.RESTARTING)
                    return slot, exc
        log.info("component.restarted", component=name, restarts=crashed.cell.restarts)
        return None, None

    async def _escalate(self, slot: _Slot, error: BaseException | None) -> None:
        policy = self.settings.restart
        escalation = EscalationError(
            slot.spec.name, restarts=policy.max_restarts, period=policy.period
        )
        escalation.__cause__ = error
        self.escalation = escalation
        log.critical("supervisor.escalated", component=slot.spec.name, exc_info=escalation)
        await self.stop()
        for other in self.slots.values():
            if other.error is not None or other is slot:
                self._set_state(other, ComponentState.FAILED)
        self._on_escalation(escalation)

    def iter_slots(self) -> Iterator[_Slot]:
        """Slots in start order."""
        return iter(self.slots.values())

    def instance(self, name: str) -> Component | None:
        """The live instance of ``name`` (``None`` while not running)."""
        return self.slots[name].instance

    def details(self, name: str) -> dict[str, Any]:
        """Lifecycle details of one component (state, last error)."""
        slot = self.slots[name]
        return {"state": slot.state, "error": slot.error}


def backoff_delay(policy: RestartSettings, attempt: int, rng: random.Random | None = None) -> float:
    """The wait before restart number ``attempt`` (1-based, counted within the period).

    ``backoff_initial * backoff_multiplier ** (attempt - 1)``, capped at
    ``backoff_max``, then spread uniformly by ``± backoff_jitter`` so that
    components crashing together do not restart in lockstep.
    """
    growth = policy.backoff_multiplier ** (max(attempt, 1) - 1)
    delay = min(policy.backoff_max, policy.backoff_initial * growth)
    spread = policy.backoff_jitter
    factor = (rng or _RANDOM).uniform(1 - spread, 1 + spread)
    return max(0.0, delay * factor)


_RANDOM = random.Random()


def _span(name: str) -> AbstractContextManager[Span]:
    if not tracing_active():
        return NO_SPAN
    return tracer().start_as_current_span(name)


def _describe(exc: BaseException) -> str:
    """``Type: message``, then each cause in the chain."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return "; ".join(parts)
