"""``garrison run``: start the runtime from a config and keep it running until a signal.

::

    garrison run [--config PATH] [--log-format console|json]

Without ``--config`` it uses ``./config/garrison.toml`` when that exists, else
the default config shipped inside the package (so it works from anywhere).
Lifecycle events are logged as structlog events. SIGINT or SIGTERM stops every
component in reverse dependency order, then the process exits 0. A bad config
exits 2; a failed start, an escalation or an unclean stop exits 1 with a
one-paragraph explanation on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from garrison.config import load_config
from garrison.exceptions import ConfigError, GarrisonError
from garrison.runtime import Runtime, add_health_arguments, serving_health

if TYPE_CHECKING:
    import argparse

    from garrison.config import GarrisonConfig

__all__ = ["default_config_path", "register", "run", "serve"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

log = structlog.get_logger("garrison.cli")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` command to the ``garrison`` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="start the runtime and keep it running until Ctrl-C or SIGTERM",
        description=__doc__.split("::")[0].strip() if __doc__ else None,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: ./config/garrison.toml, else the packaged default)",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="log rendering (default: console on a terminal, json otherwise)",
    )
    add_health_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def default_config_path(cwd: Path | None = None) -> Path:
    """``./config/garrison.toml`` if it exists, else the copy inside the package."""
    local = (cwd or Path.cwd()) / "config" / "garrison.toml"
    if local.is_file():
        return local
    return Path(str(resources.files("garrison.config").joinpath("default.toml")))


def run(args: argparse.Namespace) -> int:
    """Run ``garrison run`` with parsed arguments; returns the exit status."""
    _configure_logging(args.log_format)
    path = args.config if args.config is not None else default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        _report(exc, "the configuration is invalid")
        return EXIT_CONFIG
    log.info("runtime.config_loaded", path=str(path))
    try:
        return asyncio.run(
            serve(config, health_host=args.health_host, health_port=args.health_port)
        )
    except ConfigError as exc:
        _report(exc, "the configuration is invalid")
        return EXIT_CONFIG
    except GarrisonError as exc:
        _report(exc, "garrison stopped")
        return EXIT_FAILED


async def serve(
    config: GarrisonConfig,
    stop: asyncio.Event | None = None,
    *,
    health_host: str | None = None,
    health_port: int | None = None,
) -> int:
    """Start a runtime for ``config``, wait for SIGINT/SIGTERM (or ``stop``), stop it.

    The probes are served (``[health]``, overridden by ``health_host`` /
    ``health_port``) from before the components start until after they stop;
    on a stop request readiness fails first and ``[health] drain_delay``
    passes before the components stop.

    Raises the runtime's errors (StartupError, EscalationError, ShutdownError).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, _request_stop, stop, signum)
            installed.append(signum)
    try:
        runtime = Runtime(config)
        async with (
            serving_health(runtime, host=health_host, port=health_port) as health,
            runtime,
        ):
            log.info("runtime.running", components=runtime.component_names)
            await stop.wait()
            await health.drain()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return EXIT_OK


def _request_stop(stop: asyncio.Event, signum: signal.Signals) -> None:
    log.info("runtime.stop_requested", signal=signum.name)
    stop.set()


def _configure_logging(log_format: str | None) -> None:
    json = log_format == "json" or (log_format is None and not sys.stderr.isatty())
    try:
        from garrison.telemetry import configure_logging  # noqa: PLC0415 - optional part
    except ImportError:  # telemetry not installed in this build: structlog defaults
        return
    configure_logging(json=json)


def _report(exc: BaseException, headline: str) -> None:
    """One paragraph on stderr: what happened, then each cause in the chain."""
    parts = [f"garrison: {headline}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__
    print("; ".join(parts) + ".", file=sys.stderr)  # noqa: T201 - the CLI's own output
