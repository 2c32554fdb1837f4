"""Which config file to use when none is named: the one search for the CLI and ``open_runtime``.

``./config/garrison.toml`` under the working directory (an application's
own file, as the repository lays it out), else the copy shipped inside the
package, so that a command or an embedded runtime started from anywhere has a
config: ``garrison stats`` from a shell in ``/``, ``open_runtime()`` in a
notebook.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGED_CONFIG", "find_config"]

#: The default config shipped in the package. Its relative ``data_dir`` is the
#: working directory's (every other file's is relative to the file).
PACKAGED_CONFIG = Path(os.path.realpath(Path(__file__).with_name("default.toml")))


def find_config(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``config/garrison.toml`` under ``cwd`` (the working directory), else the packaged default.

    This looks at the file system: from async code call it via ``asyncio.to_thread``.
    """
    local = Path(cwd if cwd is not None else os.getcwd()) / "config" / "garrison.toml"
    return local if local.is_file() else PACKAGED_CONFIG
