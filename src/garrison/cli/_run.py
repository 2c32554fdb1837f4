"""``garrison run``: start the runtime from a config and keep it running until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from garrison.cli._common import EXIT_UNAVAILABLE, config_path, configured_logging, load
from garrison.exceptions import ConfigError, EdnError, GarrisonError, StoreError
from garrison.health import add_health_arguments, serving_health
from garrison.runtime import Runtime
from garrison.telemetry import prometheus_metrics

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from garrison.config import GarrisonConfig

__all__ = ["register", "run", "serve"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

#: Seconds that what is still running when the runtime has stopped gets to
#: end after its cancellation, before the process exits without it.
EXIT_GRACE = 0.5

log = structlog.get_logger("garrison.cli")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` command to the ``garrison`` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="start the runtime and keep it running until Ctrl-C or SIGTERM",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="log rendering (default: json with --json or off a terminal, else console)",
    )
    add_health_arguments(parser)
    parser.set_defaults(func=run)
    return parser


_DESCRIPTION = """\
Start the components the config declares (in dependency order), serve the
health probes (/livez, /readyz, /startupz, /healthz) on [health] host and
port, and keep running. SIGINT or SIGTERM stops every component in reverse
dependency order, then the process exits 0.

exit status: 0 stopped cleanly; 1 a failed start, an escalation or an
             unclean stop (one paragraph on stderr); 2 a bad config;
             3 the data is unavailable (e.g. the database is in use)

examples:
  garrison run --config /etc/myapp/garrison.toml
  garrison run --data-dir /var/lib/myapp --health-port 8090 --json
  garrison run --quiet        # warnings and errors only (no lifecycle lines)
"""


def run(args: argparse.Namespace) -> int:
    """Run ``garrison run`` with parsed arguments; returns the exit status."""
    with configured_logging(args, args.log_format):
        path = config_path(args)
        try:
            config = load(args)
        except ConfigError as exc:
            _report(exc, "the configuration is invalid")
            return EXIT_CONFIG
        log.info("runtime.config_loaded", path=str(path))
        return _run_to_exit(_serve_reporting(config, args))


async def _serve_reporting(config: GarrisonConfig, args: argparse.Namespace) -> int:
    try:
        return await serve(config, health_host=args.health_host, health_port=args.health_port)
    except ConfigError as exc:
        _report(exc, "the configuration is invalid")
        return EXIT_CONFIG
    except GarrisonError as exc:
        _report(exc, "garrison stopped")
        return _failure_status(exc)


def _run_to_exit(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)``, except that nothing left running can hold the exit.

    ``asyncio.run`` cancels the tasks still pending when ``main`` returns and
    waits for them without a bound, and the interpreter joins worker threads
    at exit: a component hook that ignores cancellation (abandoned and
    reported by the supervisor) or a thread that never returns would keep the
    process alive for ever. Here they get ``EXIT_GRACE`` seconds; whatever is
    still running then is logged (``runtime.exit_abandoning``) and the process
    ends with ``os._exit`` and the status it had: every component has already
    been stopped or reported, so nothing of garrison's is lost.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    threads_before = set(threading.enumerate())
    status = EXIT_FAILED
    try:
        status = loop.run_until_complete(main)
    finally:
        left = _finish(loop, threads_before)
        if left:
            log.error("runtime.exit_abandoning", still_running=left, exit_status=status)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        asyncio.set_event_loop(None)
        loop.close()
    return status


def _finish(loop: asyncio.AbstractEventLoop, threads_before: set[threading.Thread]) -> list[str]:
    """Cancel and settle what ``main`` left behind; the names of what is still running."""
    deadline = time.monotonic() + EXIT_GRACE
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=EXIT_GRACE))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception while garrison run was exiting",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    left = sorted(task.get_name() for task in tasks if not task.done())
    loop.run_until_complete(loop.shutdown_asyncgens())
    executor = loop.create_task(loop.shutdown_default_executor())
    remaining = max(deadline - time.monotonic(), 0.05)
    loop.run_until_complete(asyncio.wait({executor}, timeout=remaining))
    for thread in threading.enumerate():
        if thread in threads_before or thread.daemon:
            continue
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            left.append(f"thread {thread.name}")
    return left


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
            serving_health(
                runtime,
                host=health_host,
                port=health_port,
                routes={"/metrics": prometheus_metrics},
            ) as health,
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


def _failure_status(exc: BaseException) -> int:
    """3 when the data was unavailable (e.g. a database in use, an EDN file that does not
    parse), else 1."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, StoreError | EdnError):
            return EXIT_UNAVAILABLE
        cause = cause.__cause__
    return EXIT_FAILED


def _report(exc: BaseException, headline: str) -> None:
    """One paragraph on stderr: what happened, then each cause in the chain."""
    parts = [f"garrison: {headline}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__
    print("; ".join(parts) + ".", file=sys.stderr)  # noqa: T201 - the CLI's own output
