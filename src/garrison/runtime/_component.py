"""Components: named actors with dependencies, lifecycle hooks, config and health."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from garrison.runtime._actor import Actor
from garrison.runtime._check import CheckResult

if TYPE_CHECKING:
    from garrison.runtime._ref import ActorRef
    from garrison.runtime._runtime import Runtime

__all__ = ["Component", "ComponentState"]


class ComponentState(enum.StrEnum):
    """Where a component is in its lifecycle.

    ``starting`` → ``running`` → (``restarting`` → ``running``)* → ``stopping``
    → ``stopped``. ``failed`` means it crashed (or failed to start) and will not
    be restarted: a ``temporary`` component that crashed, or anything after an
    escalation or a failed start.
    """

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Component(Actor):
    """Base class of everything the runtime starts, supervises and stops.

    Declare on the class (the config's ``[components.<name>]`` table can
    override ``depends_on``, ``restart`` and ``critical``)::

        @dataclass(frozen=True)
        class CacheConfig:
            size: int = 1000

        class Cache(Component):
            name = "cache"
            depends_on = ("database",)
            config_class = CacheConfig
            config: CacheConfig

            async def on_start(self) -> None:
                self.db = self.ref("database")

            @handler
            async def get(self, msg: Get) -> bytes | None: ...

    The runtime constructs the class with no arguments (a fresh instance on
    every restart), then sets ``name``, ``config``, ``data_dir`` and ``runtime``
    before calling :meth:`on_start`.

    ``starts_first``
        Every other component implicitly depends on this one (telemetry).
    ``critical``
        Whether this component failing makes the whole runtime unhealthy
        (otherwise it only degrades health to ``warn``).
    ``restart``
        ``permanent`` (always restarted), ``transient`` (restarted after a
        crash, not after a normal :meth:`stop`) or ``temporary`` (never).
    ``facade``
        The typed facade class application code uses to reach this component
        (``rt.get(Store)``); built as ``facade(runtime, name=component_name)``.
    """

    name: str = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    critical: ClassVar[bool] = True
    starts_first: ClassVar[bool] = False
    restart: ClassVar[str] = "permanent"
    config_class: ClassVar[type[Any] | None] = None
    facade: ClassVar[type[Any] | None] = None

    config: Any = None
    data_dir: Path = Path("data")
    _runtime: Runtime | None = None
    #: False while startup work that outlives :meth:`on_start` (a blocking
    #: migration) is unfinished; the startup probe waits for it. Set it to
    #: False in ``on_start`` and back to True when the work is done.
    startup_complete: bool = True

    async def on_start(self) -> None:
        """Acquire resources. Dependencies are running. Bounded by the start timeout."""

    async def on_stop(self) -> None:
        """Release resources. The mailbox is already drained. Bounded by the stop timeout."""

    async def check_health(self) -> CheckResult:
        """This component's health; the default passes."""
        return CheckResult.passing()

    @property
    def runtime(self) -> Runtime:
        """The runtime this component runs in."""
        if self._runtime is None:
            msg = f"component {type(self).__name__} is not bound to a runtime"
            raise RuntimeError(msg)
        return self._runtime

    def ref(self, name: str) -> ActorRef:
        """A ref to the component ``name`` of the same runtime.

        Only declared dependencies are guaranteed to be running during
        :meth:`on_start`.
        """
        return self.runtime.ref(name)

    def bind(self, *, name: str, config: Any, data_dir: Path, runtime: Runtime) -> None:
        """Called by the runtime before :meth:`on_start` (not for user code)."""
        self.name = name
        self.config = config
        self.data_dir = data_dir
        self._runtime = runtime
