"""The health status document: what the runtime writes and ``garrison probe`` reads.

This module stays on the standard library so that ``garrison probe`` (run
every few seconds by an exec probe or a Docker HEALTHCHECK) does not pay for
importing the runtime. :mod:`garrison.health._status_file` writes the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import os

__all__ = ["PROBES", "read_status_file"]

#: The three probes, in the order they are reported.
PROBES: tuple[Literal["live", "ready", "startup"], ...] = ("live", "ready", "startup")


def read_status_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a status file written by :class:`StatusFileWriter` (blocking; for CLIs and tests).

    Raises ``OSError`` when it cannot be read and ``ValueError`` when it is not
    a status document.
    """
    data = Path(path).read_bytes()
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "probes" not in doc or "time" not in doc:
        raise ValueError(f"{path}: not a garrison status file (no 'probes'/'time')")
    return doc
