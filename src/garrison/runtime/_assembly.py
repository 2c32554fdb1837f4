"""Assembling a runtime's parts: config sources, component classes, specs."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from garrison.config import (
    BUILTIN_FACTORIES,
    ComponentSettings,
    GarrisonConfig,
    RestartType,
    build_config,
    environment_layer,
    find_config,
    load_config,
    merge_settings,
    parse_section,
)
from garrison.exceptions import ConfigError
from garrison.runtime._component import Component
from garrison.runtime._graph import ComponentSpec

__all__ = ["ConfigSource", "build_specs", "resolve_config"]

ConfigSource = GarrisonConfig | Mapping[str, Any] | str | os.PathLike[str] | None


async def resolve_config(
    config: ConfigSource, environ: Mapping[str, str] | None, overrides: Mapping[str, Any]
) -> GarrisonConfig:
    """Turn any accepted config source plus keyword overrides into a GarrisonConfig."""
    layer: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = key.split("__")
        if parts[0] not in ("runtime", "components") and not key.startswith("sections__"):
            parts = ["runtime", *parts]
        node = layer
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    if isinstance(config, GarrisonConfig):
        if not layer:
            return config
        return build_config(merge_settings(_as_mapping(config), layer), source=config.source)
    if isinstance(config, Mapping):
        data = merge_settings({}, config)
        merge_settings(data, environment_layer(os.environ if environ is None else environ))
        return build_config(merge_settings(data, layer))
    path = Path(config) if config is not None else await asyncio.to_thread(find_config)
    return await asyncio.to_thread(load_config, path, environ=environ, overrides=layer)


def _as_mapping(config: GarrisonConfig) -> dict[str, Any]:
    runtime = dataclasses.asdict(config.runtime)
    components: dict[str, Any] = {}
    for name, settings in config.components.items():
        table: dict[str, Any] = dict(settings.options)
        for key in ("factory", "depends_on", "restart", "critical"):
            value = getattr(settings, key)
            if value is not None:
                table[key] = value
        table["enabled"] = settings.enabled
        components[name] = table
    return {"runtime": runtime, "components": components, **config.sections}


def build_specs(
    config: GarrisonConfig, components: Sequence[type[Component]]
) -> list[ComponentSpec]:
    """Resolve the enabled components (code classes and config factories) into specs."""
    classes: dict[str, type[Component]] = {}
    for cls in components:
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise ConfigError(f"components must be Component subclasses, got {cls!r}")
        if not cls.name:
            raise ConfigError(f"component class {cls.__qualname__} has no name")
        if cls.name in classes:
            raise ConfigError(f"duplicate component name {cls.name!r}", path=cls.name)
        classes[cls.name] = cls
    names = [*classes, *(n for n in config.components if n not in classes)]
    disabled = {n for n, s in config.components.items() if not s.enabled}
    specs: list[ComponentSpec] = []
    for name in names:
        settings = config.components.get(name, ComponentSettings())
        if not settings.enabled:
            continue
        path = f"components.{name}"
        cls = classes.get(name) or _import_factory(name, settings.factory)
        depends_on = settings.depends_on if settings.depends_on is not None else cls.depends_on
        for dep in depends_on:
            if dep in disabled:
                raise ConfigError(
                    f"component {name!r} depends on {dep!r}, which is disabled",
                    path=f"{path}.depends_on",
                )
        restart = settings.restart or cls.restart
        if restart not in get_args(RestartType):
            raise ConfigError(
                f"expected one of {', '.join(get_args(RestartType))}, got {restart!r}",
                path=f"{path}.restart",
            )
        if cls.config_class is not None:
            typed = parse_section(cls.config_class, settings.options, path=path)
        elif settings.options:
            key = sorted(settings.options)[0]
            raise ConfigError(
                f"unknown key ({cls.__qualname__} takes no settings of its own)",
                path=f"{path}.{key}",
            )
        else:
            typed = None
        specs.append(
            ComponentSpec(
                name=name,
                component_class=cls,
                depends_on=tuple(depends_on),
                restart=restart,
                critical=cls.critical if settings.critical is None else settings.critical,
                starts_first=cls.starts_first,
                config=typed,
                options=settings.options,
            )
        )
    return specs


def _import_factory(name: str, factory: str | None) -> type[Component]:
    path = f"components.{name}.factory"
    target = factory or BUILTIN_FACTORIES.get(name)
    if target is None:
        raise ConfigError(
            f'component {name!r} needs a factory ("package.module:Class"); '
            f"built-ins without one: {', '.join(BUILTIN_FACTORIES)}",
            path=path,
        )
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f'expected "package.module:Class", got {target!r}', path=path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r}: {exc}", path=path) from exc
    try:
        cls = getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"module {module_name!r} has no {attr!r}", path=path) from exc
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise ConfigError(f"{target!r} is not a Component subclass", path=path)
    return cls
