"""The embedding surface: :func:`open_runtime` and :class:`Runtime`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison._log import get_logger
from garrison.exceptions import ConfigError, EscalationError, LifecycleError, ShutdownError
from garrison.runtime._assembly import ConfigSource, build_specs, resolve_config
from garrison.runtime._component import Component, ComponentState
from garrison.runtime._graph import ComponentGraph, ComponentSpec
from garrison.runtime._ref import ActorRef, ActorStatistics
from garrison.runtime._runtime_health import probes_for
from garrison.runtime._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from garrison.components.database import Store
    from garrison.config import GarrisonConfig
    from garrison.runtime._health import HealthReport, ProbeKind

__all__ = ["Runtime", "StateListener", "open_runtime"]

log = get_logger("garrison.runtime")

#: ``listener(component, old_state, new_state)``, called on every lifecycle transition.
StateListener = Callable[[str, ComponentState, ComponentState], None]


class Runtime:
    """A running set of supervised components. Create it with :func:`open_runtime`.

    Lifecycle observation (for health probes and dashboards):
    :meth:`state` / :meth:`states`, :meth:`add_state_listener`, :attr:`started`
    (startup finished), :attr:`stopping` (a full stop has begun),
    :meth:`wait_ready`, :meth:`wait_stopping`.
    """

    def __init__(self, config: GarrisonConfig, components: Sequence[type[Component]] = ()) -> None:
        self.config = config
        self.data_dir = config.runtime.data_dir
        self.graph = ComponentGraph(build_specs(config, components))
        self._supervisor = Supervisor(
            self.graph,
            config.runtime,
            create=self._create,
            on_state=self._state_changed,
            on_escalation=self._escalated,
        )
        self._refs = {name: ActorRef(slot.cell) for name, slot in self._supervisor.slots.items()}
        self._listeners: list[StateListener] = []
        self._changed = asyncio.Event()
        self._started = False
        self._entered = False
        self._host: asyncio.Task[Any] | None = None
        self._cancelled_host = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Create the data directory and start every component (see ``Supervisor``)."""
        if self._started or self.stopping:
            raise LifecycleError("a Runtime starts once; open a new one to start again")
        data_dir = self.data_dir.expanduser()
        if not data_dir.is_absolute():
            data_dir = Path.cwd() / data_dir
        self.data_dir = data_dir
        await asyncio.to_thread(_make_data_dir, data_dir)
        await self._supervisor.start()
        self._started = True
        self._notify()
        log.info("runtime.started", components=list(self.graph.order))

    async def aclose(self) -> None:
        """Stop every component in reverse dependency order. Idempotent.

        Raises :class:`~garrison.ShutdownError` naming the components that did
        not stop cleanly (all the others were still stopped). A hook or loop
        that ignores its cancellation is abandoned and named in the error: it
        keeps running, and ``asyncio.run`` would wait for it at exit, so end
        the process yourself then (``garrison run`` exits with ``os._exit``).
        """
        failures = await self._supervisor.stop()
        self._notify()
        log.info("runtime.stopped", failures=sorted(failures))
        if failures:
            raise ShutdownError(failures)

    async def __aenter__(self) -> Runtime:
        self._host = asyncio.current_task()
        await self.start()
        if self._supervisor.escalation is not None:
            # Escalated while the last components were starting: nothing runs.
            await self._supervisor.stop()
            raise self._supervisor.escalation
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        try:
            await self.aclose()
        except ShutdownError:
            if exc is None and self._supervisor.escalation is None:
                raise
            log.warning("runtime.stop_failed_during_error", exc_info=True)
        escalation = self._supervisor.escalation
        if escalation is not None:
            if self._cancelled_host and self._host is not None:
                self._host.uncancel()
            raise escalation

    def _escalated(self, error: EscalationError) -> None:
        self._notify()
        # Like a task group: interrupt the body of `async with` so the
        # escalation surfaces there instead of waiting for the body to finish.
        if self._entered and self._host is not None and not self._host.done():
            self._cancelled_host = True
            self._host.cancel(msg=str(error))

    # -- lookup ------------------------------------------------------------------

    def ref(self, name: str) -> ActorRef:
        """The ref of component ``name`` (valid across its restarts)."""
        try:
            return self._refs[name]
        except KeyError:
            raise self._unknown(name) from None

    def component(self, name: str) -> Component:
        """The live instance of ``name`` (for facades); fails while it is not running."""
        instance = self._supervisor.instance(self.ref(name).name)
        if instance is None:
            state = self.state(name)
            raise LifecycleError(f"component {name!r} is {state}; it has no live instance")
        return instance

    @property
    def store(self) -> Store:
        """The typed facade of the ``database`` component (see ``garrison.components.database``).

        ``await rt.store.put("session/abc", {...})``; a new, cheap
        :class:`~garrison.components.database.Store` each time.
        """
        from garrison.components.database import Store  # noqa: PLC0415 - only when used

        return Store(self)

    @property
    def component_names(self) -> list[str]:
        """Every enabled component, in start order."""
        return list(self.graph.order)

    def spec(self, name: str) -> ComponentSpec:
        """The resolved declaration of ``name`` (class, dependencies, restart, critical)."""
        try:
            return self.graph.specs[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> ConfigError:
        known = ", ".join(self.graph.order) or "none"
        return ConfigError(f"no component named {name!r} (known: {known})", path=name)

    # -- observation ---------------------------------------------------------------

    def state(self, name: str) -> ComponentState:
        """The lifecycle state of ``name``."""
        self.ref(name)
        return self._supervisor.slots[name].state

    def states(self) -> dict[str, ComponentState]:
        """Every component's state, in start order."""
        return {name: slot.state for name, slot in self._supervisor.slots.items()}

    def last_error(self, name: str) -> BaseException | None:
        """Why ``name`` last failed to start or was marked failed (``None`` if it did not)."""
        self.ref(name)
        return self._supervisor.slots[name].error

    async def health(self, probe: ProbeKind = "ready") -> HealthReport:
        """Evaluate the ``"live"``, ``"ready"`` or ``"startup"`` probe; never hangs.

        ``report.status`` is pass/warn/fail, ``report.to_dict(verbose=True)``
        the ``application/health+json`` document (see docs/operations.md).
        """
        return await probes_for(self).evaluate(probe)

    def statistics(self) -> dict[str, ActorStatistics]:
        """Per-component actor statistics (mailbox depth, processed, failed, restarts)."""
        return {name: ref.statistics() for name, ref in self._refs.items()}

    @property
    def started(self) -> bool:
        """True once every component has started once (the startup phase is over)."""
        return self._started

    @property
    def stopping(self) -> bool:
        """True once a full stop has begun (shutdown or escalation); it never resets."""
        return self._supervisor.stopping

    @property
    def supervising(self) -> bool:
        """False once the supervisor's watch loop has exited while the runtime is not
        stopping: nothing would restart a crashed component then."""
        return self.stopping or not self._supervisor.watch_ended

    @property
    def escalation(self) -> EscalationError | None:
        """The escalation that stopped this runtime, if any."""
        return self._supervisor.escalation

    @property
    def ready(self) -> bool:
        """Started, not stopping, and every critical component running."""
        if not self._started or self.stopping:
            return False
        return all(
            slot.state is ComponentState.RUNNING
            for slot in self._supervisor.slots.values()
            if slot.spec.critical
        )

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(name, old, new)`` on every transition; returns a remover.

        Listeners run synchronously in the supervisor: keep them quick. An
        exception from one is logged and ignored.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_ready(self) -> None:
        """Wait until :attr:`ready`.

        Raises :class:`~garrison.LifecycleError` when it cannot happen any more:
        the runtime is stopping, or a critical component has failed for good.
        """
        while not self.ready:
            if self.stopping:
                raise LifecycleError("the runtime is stopping; it will not become ready")
            failed = [
                name
                for name, slot in self._supervisor.slots.items()
                if slot.spec.critical and slot.state is ComponentState.FAILED
            ]
            if failed:
                raise LifecycleError(
                    f"critical component(s) {failed} failed and will not be restarted"
                )
            await self._next_change()

    async def wait_stopping(self) -> None:
        """Wait until a full stop has begun (e.g. after an escalation)."""
        while not self.stopping:
            await self._next_change()

    async def _next_change(self) -> None:
        await self._changed.wait()

    def _state_changed(self, name: str, old: ComponentState, new: ComponentState) -> None:
        for listener in list(self._listeners):
            try:
                listener(name, old, new)
            except Exception:
                log.exception("runtime.listener_failed", component=name)
        self._notify()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _create(self, spec: ComponentSpec) -> Component:
        instance = spec.component_class()
        instance.bind(name=spec.name, config=spec.config, data_dir=self.data_dir, runtime=self)
        return instance


def _make_data_dir(path: Path) -> None:
    """Create the data directory; a path that cannot be one is a ConfigError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            where = "is" if blocker == path else f"is under {str(blocker)!r}, which is"
            reason = f"{str(path)!r} {where} a file, not a directory"
        else:
            reason = f"cannot create {str(path)!r}: {exc.strerror or exc}"
        raise ConfigError(
            f"{reason}; set [runtime] data_dir (or GARRISON_RUNTIME__DATA_DIR) to a directory",
            path="runtime.data_dir",
        ) from exc


@contextlib.asynccontextmanager
async def open_runtime(
    config: ConfigSource = None,
    *,
    components: Sequence[type[Component]] = (),
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[Runtime]:
    """Start a runtime for the duration of the block; stop it on exit.

    ``config`` is a :class:`~garrison.config.GarrisonConfig`, a path to a TOML
    file, a mapping shaped like the TOML, or ``None`` (defaults). File and
    mapping configs take ``GARRISON_*`` variables from ``environ``
    (``os.environ`` when ``None``). ``components`` are Component classes given in
    code (their ``[components.<name>]`` table, if any, still applies).
    ``overrides`` win over everything: ``stop_timeout=2`` sets
    ``runtime.stop_timeout``; ``__`` nests (``restart__max_restarts=1``,
    ``components__cache__size=10``)::

        async with garrison.open_runtime("config/garrison.toml", components=[Cache]) as rt:
            await rt.wait_ready()
            await rt.ref("cache").ask(Get("k"))

    An escalation interrupts the block and is raised from it as
    :class:`~garrison.EscalationError`; a failed start raises
    :class:`~garrison.StartupError` before the block runs.
    """
    resolved = await resolve_config(config, environ, overrides)
    # Building a runtime imports the configured factories: file I/O that must
    # not block the event loop (nothing in the constructor needs the loop).
    runtime = await asyncio.to_thread(Runtime, resolved, components)
    async with runtime:
        yield runtime
