"""Health for programs that serve no HTTP: a status file, rewritten atomically.

Every ``interval`` seconds the writer evaluates the three probes and replaces
the file with one JSON document::

    {"status": "pass", "time": "2026-11-22T02:14:52.123Z", "interval": 5.0,
     "pid": 4242, "probes": {"live": {...}, "ready": {...}, "startup": {...}}}

where each probe is its terse health+json report (statuses and reason codes,
no error text: see :mod:`garrison.health._report`) and the top-level
``status`` is readiness. The file is written to a temporary file in the same directory
and renamed over the old one, so a reader sees a whole old or a whole new
document, never a torn one. There is no fsync: after a power loss the file is
old, and an old file is exactly what ``garrison probe --file --max-age``
detects. When the writer stops it writes once more, with readiness ``fail``
(the runtime is stopping), so a checker sees the stop at once instead of
waiting for the file to go stale. All file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from garrison._log import get_logger
from garrison._status_format import PROBES, read_status_file

if TYPE_CHECKING:
    from garrison.health._probes import HealthProbes

__all__ = ["StatusFileWriter", "read_status_file"]

log = get_logger("garrison.health")


class StatusFileWriter:
    """Keeps ``path`` holding the current health of ``probes``; see the module docs.

    Use as an async context manager, or call :meth:`start` and :meth:`aclose`.
    :meth:`write_once` writes immediately (and is what the loop calls).
    """

    def __init__(
        self, probes: HealthProbes, path: str | os.PathLike[str], *, interval: float = 5.0
    ):
        if interval <= 0:
            raise ValueError(f"status file interval must be positive, got {interval!r}")
        self.probes = probes
        self.path = Path(path)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._written: asyncio.Event | None = None
        #: How many times the file has been written.
        self.writes = 0

    async def start(self) -> None:
        """Write the file once (so it exists when this returns), then keep refreshing it."""
        if self._task is not None:
            return
        await self.write_once()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="garrison.health.status-file"
        )

    async def aclose(self) -> None:
        """Stop refreshing and write the final document (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        try:
            await self.write_once(final=True)
        except OSError:
            log.warning("health.status_file.final_write_failed", path=str(self.path), exc_info=True)

    async def __aenter__(self) -> StatusFileWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def write_once(self, *, final: bool = False) -> dict[str, Any]:
        """Evaluate the probes and replace the file; returns the document written."""
        reports = {probe: await self.probes.evaluate(probe) for probe in PROBES}
        doc: dict[str, Any] = {
            "status": reports["ready"].status.value,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "interval": self.interval,
            "pid": os.getpid(),
            "probes": {probe: report.to_dict() for probe, report in reports.items()},
        }
        if final:
            doc["status"] = "fail"
            doc["probes"]["ready"]["status"] = "fail"
            doc["probes"]["ready"]["reason"] = "stopped"
            doc["stopped"] = True
        await asyncio.to_thread(_atomic_write, self.path, orjson.dumps(doc, default=str))
        self.writes += 1
        if self._written is not None:
            self._written.set()
            self._written = None
        return doc

    async def wait_write(self) -> None:
        """Return after the next successful write of the file."""
        if self._written is None:
            self._written = asyncio.Event()
        await self._written.wait()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.write_once()
            except OSError:
                # A full disk or a vanished directory must not stop the runtime;
                # the file goes stale, which is what a checker detects.
                log.warning("health.status_file.write_failed", path=str(self.path), exc_info=True)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
