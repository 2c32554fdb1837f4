"""The typed configuration model: ``[runtime]``, ``[runtime.restart]``, ``[components.*]``."""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - get_type_hints() resolves it at run time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ComponentSettings",
    "GarrisonConfig",
    "RestartSettings",
    "RestartStrategy",
    "RestartType",
    "RuntimeSettings",
]

RestartStrategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
RestartType = Literal["permanent", "transient", "temporary"]


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        msg = f"{name} must be {bound}, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class RestartSettings:
    """``[runtime.restart]``: how the supervisor restarts crashed components.

    At most ``max_restarts`` restarts within ``period`` seconds (over all
    components); one more and the supervisor escalates. Between restarts of one
    component it waits ``backoff_initial * backoff_multiplier ** (n - 1)``
    seconds (n = that component's restarts within ``period``), capped at
    ``backoff_max`` and spread by ``± backoff_jitter`` (a fraction).
    """

    strategy: RestartStrategy = "one_for_one"
    max_restarts: int = 3
    period: float = 5.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    backoff_multiplier: float = 2.0
    backoff_jitter: float = 0.2

    def __post_init__(self) -> None:
        _positive("max_restarts", self.max_restarts, allow_zero=True)
        _positive("period", self.period)
        _positive("backoff_initial", self.backoff_initial, allow_zero=True)
        _positive("backoff_max", self.backoff_max, allow_zero=True)
        if self.backoff_multiplier < 1:
            msg = f"backoff_multiplier must be at least 1, got {self.backoff_multiplier!r}"
            raise ValueError(msg)
        if not 0 <= self.backoff_jitter <= 1:
            msg = f"backoff_jitter must be between 0 and 1, got {self.backoff_jitter!r}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """``[runtime]``: where data lives, mailbox size, start and stop timeouts (seconds).

    A relative ``data_dir`` read from a config file is relative to that file's
    directory (:func:`load_config`; the packaged default's is relative to the
    working directory); any other relative value, to the working directory.
    """

    data_dir: Path = Path("data")
    mailbox_capacity: int = 1000
    start_timeout: float = 30.0
    stop_timeout: float = 10.0
    restart: RestartSettings = field(default_factory=RestartSettings)

    def __post_init__(self) -> None:
        _positive("mailbox_capacity", self.mailbox_capacity)
        _positive("start_timeout", self.start_timeout)
        _positive("stop_timeout", self.stop_timeout)


@dataclass(frozen=True, slots=True)
class ComponentSettings:
    """One ``[components.<name>]`` table.

    ``factory`` is an import path ``"package.module:Class"`` (optional for the
    built-ins and for components given in code); ``depends_on``, ``restart`` and
    ``critical`` override the class's own declarations when set; every other
    key lands in ``options`` and is validated by the component's
    ``config_class``.
    """

    factory: str | None = None
    depends_on: tuple[str, ...] | None = None
    enabled: bool = True
    restart: RestartType | None = None
    critical: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GarrisonConfig:
    """The whole validated configuration.

    ``sections`` keeps the other top-level tables (``[telemetry]``,
    ``[probes]``, …) as plain mappings for the parts of garrison that own them;
    ``source`` is the file it was read from, if any.
    """

    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    components: Mapping[str, ComponentSettings] = field(default_factory=dict)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: Path | None = None

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level table other than runtime/components (empty if absent)."""
        return self.sections.get(name, {})


#: The components garrison ships: a ``[components.<name>]`` table of one of
#: these names needs no ``factory`` (the class is imported only when enabled).
BUILTIN_FACTORIES: Mapping[str, str] = {
    "database": "garrison.components.database:DatabaseComponent",
    "telemetry": "garrison.components.telemetry:TelemetryComponent",
    "migrator": "garrison.components.migrator:MigratorComponent",
}
