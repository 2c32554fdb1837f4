"""Build the optional C accelerators of the EDN codec.

Everything else about the package is declared in pyproject.toml. Each
extension is ``optional``: without a C compiler (or Python's headers) the
build warns and installs the pure-Python codec, which gives the same results,
more slowly. ``GARRISON_NO_EXTENSIONS=1`` skips them on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

_HERE = Path(__file__).parent
_EDN = Path("src", "garrison", "stores", "edn")
_ACCELERATORS = ("_creader", "_cwriter")


def _extensions() -> list[Extension]:
    if os.environ.get("GARRISON_NO_EXTENSIONS"):
        return []
    return [
        Extension(
            f"garrison.stores.edn.{name}",
            [str(_EDN / f"{name}.c")],
            optional=True,
            extra_compile_args=["-O2", "-std=c11"] if os.name == "posix" else [],
        )
        for name in _ACCELERATORS
        if (_HERE / _EDN / f"{name}.c").exists()
    ]


setup(ext_modules=_extensions())
