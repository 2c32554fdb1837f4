"""A store command traced and exported when the ``OTEL_*`` variables ask for it.

``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 garrison migrate`` sends one
trace per command: a root span ``garrison <command>`` with the database actor's
message and store spans under it. The pipeline is flushed before the process
exits, and one line on stderr says how many spans went where (a JSON line with
``--json``; nothing with ``--quiet``). Without an ``OTEL_*`` variable nothing
is imported: a command pays no start-up for telemetry it does not use.
``run`` has its telemetry component; ``probe``, ``version`` and ``completion``
are never traced (a probe every few seconds is no trace worth keeping).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["UNTRACED", "run_traced"]

#: Commands that never start a pipeline of their own.
UNTRACED = frozenset({"run", "probe", "version", "completion"})

# The bound of the final flush: a collector that does not answer costs this
# much at exit, never a hang.
_FLUSH_TIMEOUT = 5.0


def run_traced(command: str, args: argparse.Namespace, func: Callable[[Any], int]) -> int:
    """``func(args)``, inside a ``garrison <command>`` span when OTEL_* asks for export."""
    if command in UNTRACED or not any(name.startswith("OTEL_") for name in os.environ):
        return func(args)
    import asyncio  # noqa: PLC0415 - only when asked for

    from opentelemetry import trace  # noqa: PLC0415

    from garrison import __version__  # noqa: PLC0415
    from garrison.telemetry import setup_telemetry  # noqa: PLC0415

    pipeline = setup_telemetry()
    if pipeline.state != "sdk" or pipeline.tracer_provider is None:
        asyncio.run(pipeline.aclose(timeout=_FLUSH_TIMEOUT))
        return func(args)
    tracer = trace.get_tracer("garrison.cli", __version__)
    try:
        with tracer.start_as_current_span(
            f"garrison {command}", attributes={"garrison.cli.command": command}
        ) as span:
            status = func(args)
            span.set_attribute("process.exit.code", status)
            return status
    finally:
        flushed = asyncio.run(pipeline.aclose(timeout=_FLUSH_TIMEOUT))
        _report(args, pipeline, flushed=flushed)


def _report(args: argparse.Namespace, pipeline: Any, *, flushed: bool) -> None:
    """One line on stderr: how many spans went where (a JSON document with ``--json``)."""
    if getattr(args, "quiet", False):
        return
    stats = pipeline.statistics()
    exported = sum(s.spans_exported for s in stats)
    failed = sum(s.spans_failed + s.spans_dropped for s in stats)
    settings = pipeline.settings
    where = (
        f"{','.join(settings.traces_exporter)} ({settings.traces_endpoint})"
        if "otlp" in settings.traces_exporter
        else ",".join(settings.traces_exporter)
    )
    if getattr(args, "json", False):
        document = {
            "event": "telemetry.exported",
            "spans_exported": exported,
            "spans_lost": failed,
            "to": where,
            "flushed": flushed,
        }
        sys.stderr.write(json.dumps(document) + "\n")
        return
    line = f"garrison: telemetry: {exported} spans sent to {where}"
    if failed or not flushed:
        line += f"; {failed} lost" + ("" if flushed else f", flush cut at {_FLUSH_TIMEOUT:g}s")
    sys.stderr.write(line + "\n")
