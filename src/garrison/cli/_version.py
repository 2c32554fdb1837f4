"""``garrison version``: the version, the Python, and whether the C accelerators are in use."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_OK, emit

if TYPE_CHECKING:
    import argparse

__all__ = ["accelerators", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``version`` command to the ``garrison`` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "version",
        help="print the version and the C accelerators' status",
        description=(
            "Print garrison's version, the Python it runs on, and for each C accelerator\n"
            "(the EDN reader and writer, the SQLite value encoder) whether it is in use,\n"
            "not built (the pure-Python code runs, slower), or turned off by\n"
            "GARRISON_NO_EXTENSIONS."
        ),
    )
    parser.set_defaults(func=run)
    return parser


def accelerators() -> dict[str, str]:
    """Each C accelerator's status: ``"in use"``, ``"not built"`` or ``"disabled"``."""
    from importlib.util import find_spec  # noqa: PLC0415 - only this command needs it

    from garrison.edn import _accel  # noqa: PLC0415 - ditto
    from garrison.stores import _values  # noqa: PLC0415 - loads the accelerators

    loaded = {
        "edn reader": ("garrison.edn._creader", _accel.reader),
        "edn writer": ("garrison.edn._cwriter", _accel.writer),
        "value encoder": ("garrison.stores._cvalues", _values.accelerator),
    }
    status: dict[str, str] = {}
    for name, (module, active) in loaded.items():
        if active is not None:
            status[name] = "in use"
        elif _accel.disabled_by_environment():
            status[name] = "disabled (GARRISON_NO_EXTENSIONS)"
        else:
            status[name] = "not built" if find_spec(module) is None else "failed to load"
    return status


def run(args: argparse.Namespace) -> int:
    """Run ``garrison version``."""
    from garrison import __version__  # noqa: PLC0415 - the package is loaded already

    status = accelerators()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    if args.json:
        emit({"version": __version__, "python": python, "accelerators": status})
        return EXIT_OK
    lines = [f"garrison {__version__}", f"python {python}"]
    lines += [f"{name}: {state}" for name, state in status.items()]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
