"""Build garrison's optional C accelerators (the EDN codec, the stored-value encoder).

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
_SRC = Path("src")
#: Extension modules, each built from the C file of the same name beside it
#: (and the headers in its folder).
_ACCELERATORS = (
    "garrison.edn._creader",
    "garrison.edn._cwriter",
    "garrison.stores._cvalues",
)


def _extensions() -> list[Extension]:
    if os.environ.get("GARRISON_NO_EXTENSIONS"):
        return []
    sources = {name: _SRC.joinpath(*name.split(".")).with_suffix(".c") for name in _ACCELERATORS}
    return [
        Extension(
            name,
            [str(source)],
            # The headers beside a C file are its own (rebuilt when they change).
            depends=sorted(str(h.relative_to(_HERE)) for h in (_HERE / source).parent.glob("*.h")),
            optional=True,
            extra_compile_args=["-O2", "-std=c11"] if os.name == "posix" else [],
        )
        for name, source in sources.items()
        if (_HERE / source).exists()
    ]


setup(ext_modules=_extensions())
