"""The public surface: ``__all__`` lists exactly what each public module exports."""

from __future__ import annotations

import importlib
import types

import pytest

PUBLIC_MODULES = [
    "garrison.components.migrator",
    "garrison.components.database",
    "garrison",
    "garrison.exceptions",
    "garrison.edn",
    "garrison.edn",
    "garrison.telemetry",
    "garrison.stores",
    "garrison.runtime",
    "garrison.config",
    "garrison.tracing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist_and_nothing_public_is_missing(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    missing = sorted(n for n in exported if not hasattr(module, n))
    assert not missing, f"{name}.__all__ names things that do not exist: {missing}"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and isinstance(v, type | types.FunctionType)
        and v.__module__.startswith("garrison")
    }
    unlisted = sorted(public - exported)
    assert not unlisted, f"{name} has public names missing from __all__: {unlisted}"


def test_every_error_is_a_garrison_error() -> None:
    import garrison

    for n in garrison.__all__:
        obj = getattr(garrison, n)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, garrison.GarrisonError), n
