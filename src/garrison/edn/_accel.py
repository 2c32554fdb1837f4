"""The codec's optional C accelerators, and the switch that turns them off.

``_creader`` and ``_cwriter`` are C extensions built by ``setup.py`` when a C
compiler is available; without them (or with ``GARRISON_NO_EXTENSIONS=1`` in
the environment when garrison is imported) the pure-Python reader and writer
do all the work and give the same values and texts, more slowly.

The entry points read :data:`reader` and :data:`writer` at call time, so the
test suite can run every codec test both ways by setting them to ``None``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["disabled_by_environment", "reader", "writer"]


def disabled_by_environment() -> bool:
    """``True`` when ``GARRISON_NO_EXTENSIONS`` asks for the pure-Python codec."""
    return os.environ.get("GARRISON_NO_EXTENSIONS", "") not in ("", "0")


def _load(name: str) -> ModuleType | None:
    if disabled_by_environment():
        return None
    try:
        return importlib.import_module(f"garrison.edn.{name}")
    except ImportError:
        return None


#: The C reader (``garrison.edn._creader``), or ``None``.
reader: ModuleType | None = _load("_creader")
#: The C writer (``garrison.edn._cwriter``), or ``None``.
writer: ModuleType | None = _load("_cwriter")
