"""The store mode, mirrored in a small file beside the EDN file (``memory.edn.mode``).

The mode lives in SQLite's meta table (see :mod:`garrison.stores._router`).
When the database cannot be opened at all, the ``database`` component still
has to know whether the EDN file is a complete copy it may run on: it is in
``edn-only`` and ``dual-write`` (and ``sqlite-first``), and it is not in
``sqlite-only``, whose writes never reach it. The mode router keeps this file
in step with the recorded mode so that the answer does not depend on the
database: it writes it on every open, and on every switch — before recording
a switch *into* ``sqlite-only`` (a mirror that cannot be written stops the
switch), after recording any other (a failure is logged; the mirror then
still names a mode whose EDN file is complete, or ``sqlite-only``). So the
mirror never names a mode that writes the EDN file while the database is in
``sqlite-only``.

These functions block; callers run them in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.stores._atomic import replace_file
from garrison.stores._mode import Mode

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["mode_file", "read_mode_file", "write_mode_file"]


def mode_file(edn_path: Path) -> Path:
    """The mirror of the mode for the EDN file ``edn_path``: ``<edn_path>.mode``."""
    return edn_path.with_name(edn_path.name + ".mode")


def read_mode_file(edn_path: Path) -> Mode | None:
    """The mirrored mode, or ``None`` when there is none (or it is not a mode)."""
    try:
        text = mode_file(edn_path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return Mode(text)
    except ValueError:
        return None


def write_mode_file(edn_path: Path, mode: Mode) -> None:
    """Atomically make the mirror name ``mode``."""
    replace_file(mode_file(edn_path), f"{mode}\n".encode())
