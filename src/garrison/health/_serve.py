"""Serving a runtime's health: the ``[health]`` settings, the probe server and the status file.

``garrison run`` uses :class:`HealthService`; an embedding application can too
(or mount :class:`~garrison.health.HealthApp` in its own ASGI app instead).

The ``[health]`` table of the config::

    [health]
    host = "127.0.0.1"      # loopback by default: probes are for the local kubelet/agent
    port = 8090             # 0 (the default) picks a free port and logs it; serve = false: no HTTP
    serve = true
    status_file = ""        # e.g. "/run/myapp/health.json": also write health to a file
    status_interval = 5.0   # seconds between status file writes
    drain_delay = 0.0       # seconds between "not ready" and the start of the stop
    check_timeout = 0.8     # bound of each component health check (seconds)
    cache_ttl = 1.0         # how long a check result is reused (seconds)
    lag_warn = 0.5          # event-loop lag that makes live warn (seconds)
    lag_fail = 5.0          # event-loop lag that makes live fail (seconds)
    trace = false           # a span per probe evaluation (off: probes leave no trace)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison._log import get_logger
from garrison.config import parse_section
from garrison.exceptions import ConfigError, StartupError
from garrison.health._asgi import HealthApp
from garrison.health._http import ProbeServer
from garrison.health._probes import HealthProbes, ProbeSettings
from garrison.health._runtime_health import probes_for
from garrison.health._status_file import StatusFileWriter

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
    from types import TracebackType

    from garrison.runtime import Runtime

__all__ = [
    "DEFAULT_HEALTH_PORT",
    "HealthService",
    "HealthSettings",
    "add_health_arguments",
    "serving_health",
]

log = get_logger("garrison.health")

#: The probe port when neither the config nor the command line names one: a free
#: port, logged. A fixed default would make every second garrison on a machine
#: (tests, a developer's run next to a service) fail to start; deployments name
#: their port in ``[health] port`` (the shipped config uses 8090).
DEFAULT_HEALTH_PORT = 0


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """The ``[health]`` config table; see the module docs for each key."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_HEALTH_PORT
    serve: bool = True
    status_file: str = ""
    status_interval: float = 5.0
    drain_delay: float = 0.0
    check_timeout: float = 0.8
    cache_ttl: float = 1.0
    lag_warn: float = 0.5
    lag_fail: float = 5.0
    trace: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        for name in ("status_interval", "check_timeout", "lag_warn", "lag_fail"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("drain_delay", "cache_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> HealthSettings:
        """Validate a ``[health]`` table; errors are ``ConfigError`` naming ``health.<key>``."""
        return parse_section(cls, section, path="health")

    def probe_settings(self) -> ProbeSettings:
        """The probe timings these settings ask for."""
        return ProbeSettings(
            check_timeout=self.check_timeout,
            cache_ttl=self.cache_ttl,
            lag_warn=self.lag_warn,
            lag_fail=self.lag_fail,
            trace=self.trace,
        )


class HealthService:
    """Serves ``probes`` over HTTP and/or a status file, as ``settings`` say.

    ``async with HealthService(probes, settings) as service:`` binds the server
    (``service.url``), writes the status file once, and keeps both going until
    the block ends. :meth:`begin_drain` turns readiness to ``fail`` ahead of a
    stop. A port that cannot be bound is a :class:`~garrison.StartupError`
    naming the address.
    """

    def __init__(
        self,
        probes: HealthProbes,
        settings: HealthSettings | None = None,
        *,
        routes: Mapping[str, Callable[[], Awaitable[tuple[int, str, bytes]]]] | None = None,
    ) -> None:
        self.probes = probes
        self.settings = settings or HealthSettings()
        self.routes = dict(routes or {})
        self.server: ProbeServer | None = None
        self.status_writer: StatusFileWriter | None = None

    @property
    def url(self) -> str | None:
        """The probe server's base URL, ``None`` when HTTP serving is off."""
        return self.server.url if self.server is not None else None

    def begin_drain(self) -> None:
        """Readiness fails from now on (see :meth:`HealthProbes.begin_drain`)."""
        self.probes.begin_drain()

    async def drain(self) -> None:
        """Fail readiness now, then wait ``drain_delay`` so balancers stop sending traffic."""
        self.begin_drain()
        log.info("health.draining", delay_s=self.settings.drain_delay)
        if self.settings.drain_delay > 0:
            # A deliberate delay, not synchronisation: load balancers need
            # time to see the failing readiness before anything stops.
            await asyncio.sleep(self.settings.drain_delay)

    async def start(self) -> None:
        """Start the lag monitor, the HTTP server and the status file writer."""
        settings = self.settings
        self.probes.start()
        if settings.serve:
            server = ProbeServer(
                HealthApp(self.probes, routes=self.routes), settings.host, settings.port
            )
            try:
                await server.start()
            except OSError as exc:
                hint = (
                    "; another process holds it: choose another [health] port or "
                    "--health-port (0 picks a free one)"
                    if exc.errno == errno.EADDRINUSE
                    else ""
                )
                raise StartupError(
                    "health",
                    phase="serve probes",
                    reason=f"cannot listen on {settings.host}:{settings.port}: "
                    f"{exc.strerror or exc}{hint}",
                ) from exc
            self.server = server
        if settings.status_file:
            writer = StatusFileWriter(
                self.probes, settings.status_file, interval=settings.status_interval
            )
            await writer.start()
            self.status_writer = writer
            log.info("health.status_file.writing", path=settings.status_file)

    async def aclose(self) -> None:
        """Stop the status file (final write) and the server (idempotent)."""
        writer, self.status_writer = self.status_writer, None
        server, self.server = self.server, None
        if writer is not None:
            await writer.aclose()
        if server is not None:
            await server.aclose()

    async def __aenter__(self) -> HealthService:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--health-host`` and ``--health-port`` (they override the ``[health]`` table)."""
    parser.add_argument(
        "--health-host",
        default=None,
        help="address the probe server listens on (default: [health] host, else 127.0.0.1)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="probe server port; 0 picks a free one and logs it (default: [health] port, else 0)",
    )


@contextlib.asynccontextmanager
async def serving_health(
    runtime: Runtime,
    *,
    host: str | None = None,
    port: int | None = None,
    routes: Mapping[str, Callable[[], Awaitable[tuple[int, str, bytes]]]] | None = None,
) -> AsyncIterator[HealthService]:
    """Serve ``runtime``'s probes (HTTP and/or status file) per its ``[health]`` table.

    Enter it *before* starting the runtime, so the startup probe answers while
    components start (a long migration shows as "startup: fail", not as a
    dead process)::

        runtime = Runtime(config)
        async with serving_health(runtime, port=0) as health, runtime:
            await stop_requested.wait()
            await health.drain()   # readiness fails, drain_delay passes
        # components stopped, then the probe server closed

    ``host`` / ``port`` (the command line) override the config; ``routes``
    are served beside the probes (see :class:`~garrison.health.HealthApp`).
    """
    settings = HealthSettings.from_section(runtime.config.section("health"))
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if changes:
        try:
            settings = dataclasses.replace(settings, **changes)
        except ValueError as exc:
            raise ConfigError(str(exc), path="health") from exc
    probes = probes_for(runtime, settings.probe_settings())
    async with HealthService(probes, settings, routes=routes) as service:
        yield service
