"""Typed configuration: a TOML file plus ``GARRISON_*`` environment overrides.

Precedence (later wins): built-in defaults, the TOML file, the environment,
explicit arguments. Components validate their own section with
:func:`parse_section` against their ``config_class``.
"""

from __future__ import annotations

from garrison.config._coerce import parse_section
from garrison.config._loader import (
    ENV_PREFIX,
    build_config,
    environment_layer,
    load_config,
    merge_settings,
)
from garrison.config._model import (
    BUILTIN_FACTORIES,
    ComponentSettings,
    GarrisonConfig,
    RestartSettings,
    RestartStrategy,
    RestartType,
    RuntimeSettings,
)

__all__ = [
    "BUILTIN_FACTORIES",
    "ENV_PREFIX",
    "ComponentSettings",
    "GarrisonConfig",
    "RestartSettings",
    "RestartStrategy",
    "RestartType",
    "RuntimeSettings",
    "build_config",
    "environment_layer",
    "load_config",
    "merge_settings",
    "parse_section",
]
