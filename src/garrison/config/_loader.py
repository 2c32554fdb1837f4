"""Loading the configuration: defaults < TOML file < GARRISON_* environment < arguments."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from garrison.config._coerce import join_path, parse_section
from garrison.config._model import ComponentSettings, GarrisonConfig, RuntimeSettings
from garrison.config._search import PACKAGED_CONFIG
from garrison.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "build_config", "environment_layer", "load_config", "merge_settings"]

ENV_PREFIX = "GARRISON_"
_RESERVED = ("factory", "depends_on", "enabled", "restart", "critical")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> GarrisonConfig:
    """Read, merge and validate the configuration.

    Later sources win: built-in defaults, then the TOML file at ``path``, then
    ``GARRISON_*`` variables from ``environ`` (``os.environ`` when ``None``),
    then ``overrides``.

    Environment names map to key paths with ``__`` between levels, lower-cased:
    ``GARRISON_RUNTIME__STOP_TIMEOUT=5`` sets ``runtime.stop_timeout``,
    ``GARRISON_COMPONENTS__DATABASE__MODE=sqlite-only`` sets
    ``components.database.mode``. A value that parses as a TOML literal (``5``,
    ``true``, ``["a", "b"]``) is used as that; anything else is a string.
    Variables without ``__`` (e.g. ``GARRISON_REQUIRE_CLOJURE``) are ignored.

    ``overrides`` keys may be nested mappings or dotted paths
    (``{"runtime.stop_timeout": 2}``).

    A relative ``[runtime] data_dir`` or ``[health] status_file`` in the file
    is relative to the file's directory, so the same file names the same data
    from any working directory (``garrison stats --config
    /etc/myapp/garrison.toml``). The packaged default config is the
    exception: its ``data_dir = "data"`` is relative to the working directory,
    as it documents. A relative value from the environment or ``overrides`` is
    relative to the working directory.

    This reads a file: from async code call it via ``asyncio.to_thread``.
    """
    data: dict[str, Any] = {}
    source = Path(path) if path is not None else None
    if source is not None:
        data = _read_toml(source)
        _anchor_paths(data, source)
    env_layer = environment_layer(os.environ if environ is None else environ)
    merge_settings(data, env_layer)
    if overrides:
        merge_settings(data, _expand_dotted(overrides))
    return build_config(data, source=source)


#: The settings that name a file or directory, as (table, key): relative values
#: in a config file are relative to the file's directory.
_PATH_SETTINGS = (("runtime", "data_dir"), ("health", "status_file"))


def _anchor_paths(data: dict[str, Any], source: Path) -> None:
    if Path(os.path.realpath(source)) == PACKAGED_CONFIG:
        return  # its relative paths are the working directory's, as it documents
    for table_name, key in _PATH_SETTINGS:
        table = data.get(table_name)
        if not isinstance(table, dict) or not isinstance(table.get(key), str) or not table[key]:
            continue  # missing, empty ("none") or mistyped: the defaults or the owner's error
        path = Path(table[key]).expanduser()
        if not path.is_absolute():
            table[key] = os.path.normpath(Path(os.path.abspath(source)).parent / path)


def build_config(data: Mapping[str, Any], *, source: Path | None = None) -> GarrisonConfig:
    """Validate a merged mapping into a :class:`GarrisonConfig`."""
    runtime = parse_section(RuntimeSettings, data.get("runtime", {}), path="runtime")
    raw_components = data.get("components", {})
    if not isinstance(raw_components, Mapping):
        raise ConfigError(f"expected a table, got {raw_components!r}", path="components")
    components: dict[str, ComponentSettings] = {}
    for name, table in raw_components.items():
        components[str(name)] = _component_settings(str(name), table)
    sections: dict[str, Mapping[str, Any]] = {}
    for key, value in data.items():
        if key in ("runtime", "components"):
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"unexpected top-level value {value!r} (settings live in tables such as "
                "[runtime] or [components.<name>])",
                path=str(key),
            )
        sections[str(key)] = dict(value)
    return GarrisonConfig(runtime=runtime, components=components, sections=sections, source=source)


def _component_settings(name: str, table: Any) -> ComponentSettings:
    path = join_path("components", name)
    if not isinstance(table, Mapping):
        raise ConfigError(f"expected a table, got {table!r}", path=path)
    reserved = {k: table[k] for k in _RESERVED if k in table}
    options = {str(k): v for k, v in table.items() if k not in _RESERVED}
    settings = parse_section(ComponentSettings, reserved, path=path)
    return ComponentSettings(
        factory=settings.factory,
        depends_on=settings.depends_on,
        enabled=settings.enabled,
        restart=settings.restart,
        critical=settings.critical,
        options=options,
    )


def merge_settings(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``layer`` into ``base`` in place (tables merge, other values replace)."""
    for key, value in layer.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merge_settings(current, value)
        elif isinstance(value, Mapping):
            base[key] = merge_settings({}, value)
        else:
            base[key] = value
    return base


def _read_toml(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read config file {str(source)!r}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_POSITION.search(str(exc))
        position = f":{where.group(1)}:{where.group(2)}" if where else ""
        msg = f"{source}{position}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc


def environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested settings that ``GARRISON_*__*`` variables in ``environ`` stand for."""
    layer: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            raise ConfigError(f"environment variable {name} has an empty key part")
        node = layer
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name} nests under a value")
            node = child
        node[parts[-1]] = _env_value(raw)
    return layer


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping):
            merge_settings(node.setdefault(parts[-1], {}), _expand_dotted(value))
        else:
            node[parts[-1]] = value
    return result
