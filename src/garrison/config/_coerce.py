"""Turning plain mappings (parsed TOML, environment values) into typed dataclasses.

Every error is a :class:`~garrison.ConfigError` whose ``path`` is the dotted key
path and whose message gives the value found and what was expected.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from garrison.exceptions import ConfigError

__all__ = ["coerce_value", "describe_type", "join_path", "parse_section"]

T = TypeVar("T")


def join_path(path: str, key: str) -> str:
    """``path.key`` (or just ``key`` at the top)."""
    return f"{path}.{key}" if path else key


def parse_section(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``, checking every value against its type.

    Unknown keys, missing required keys and values of the wrong type are
    :class:`~garrison.ConfigError` naming the key path, the value, and what was
    expected. A ``ValueError``/``TypeError`` from the dataclass's
    ``__post_init__`` becomes a ``ConfigError`` for the section.

    >>> @dataclass(frozen=True)
    ... class CacheConfig:
    ...     size: int = 100
    >>> parse_section(CacheConfig, {"size": "big"}, path="components.cache")
    Traceback (most recent call last):
    garrison.exceptions.ConfigError: components.cache.size: expected an integer, got 'big'
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        msg = f"parse_section needs a dataclass type, got {cls!r}"
        raise TypeError(msg)
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a table, got {data!r}", path=path or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key (expected one of: {', '.join(sorted(fields)) or 'none'})",
            path=join_path(path, str(unknown[0])),
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = join_path(path, name)
        if name in data:
            kwargs[name] = coerce_value(hints[name], data[name], path=key_path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key ({describe_type(hints[name])})", path=key_path)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), path=path or None) from exc


def describe_type(tp: Any) -> str:
    """A short English description of a type, for error messages."""
    origin = get_origin(tp)
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if tp is type(None):
        return "nothing (omit the key)"
    simple = {
        bool: "a boolean (true/false)",
        int: "an integer",
        float: "a number",
        str: "a string",
        Path: "a path string",
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (list, tuple, Sequence, frozenset, set):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = describe_type(args[0]) if args else "values"
        return f"a list of {inner}"
    if origin in (dict, Mapping):
        return "a table"
    return getattr(tp, "__name__", repr(tp))


def coerce_value(tp: Any, value: Any, *, path: str) -> Any:
    """Check ``value`` against ``tp`` and convert where TOML has no native form."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp) and not isinstance(value, bool):
            return value
        return _fail(tp, value, path)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce_value(arg, value, path=path)
            except ConfigError:
                continue
        return _fail(tp, value, path)
    if tp is bool:
        return value if isinstance(value, bool) else _fail(tp, value, path)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok else _fail(tp, value, path)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if not math.isfinite(number):
                # No setting means anything by nan or inf: a timeout of nan
                # fails every wait, one of inf is a wait that never ends.
                raise ConfigError(f"expected a finite number, got {value!r}", path=path)
            return number
        return _fail(tp, value, path)
    if tp is str:
        return value if isinstance(value, str) else _fail(tp, value, path)
    if tp is Path:
        return Path(value) if isinstance(value, str | Path) else _fail(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            return _fail(tp, value, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            return _fail(tp, value, path)
        return parse_section(tp, value, path=path)
    if origin in (list, tuple, Sequence, frozenset, set):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            return _fail(tp, value, path)
        item_args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = item_args[0] if item_args else Any
        items = [coerce_value(inner, v, path=f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is list:
            return items
        return frozenset(items) if origin in (frozenset, set) else tuple(items)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            return _fail(tp, value, path)
        args = get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        return {
            str(k): coerce_value(inner, v, path=join_path(path, str(k))) for k, v in value.items()
        }
    if isinstance(tp, type):
        return value if isinstance(value, tp) else _fail(tp, value, path)
    return value


def _fail(tp: Any, value: Any, path: str) -> Any:
    raise ConfigError(f"expected {describe_type(tp)}, got {value!r}", path=path)
