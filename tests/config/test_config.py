"""Config loading: precedence, environment parsing, typed errors naming the key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from garrison.config import RestartSettings, load_config, parse_section
from garrison.exceptions import ConfigError
from garrison.health import HealthSettings

TOML = """
[runtime]
data_dir = "var/data"
stop_timeout = 4
mailbox_capacity = 64

[runtime.restart]
strategy = "rest_for_one"
max_restarts = 7

[components.cache]
factory = "myapp.cache:Cache"
depends_on = ["database"]
size = 100
mode = "lru"

[telemetry]
exporter = "otlp"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "garrison.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


def test_file_values_are_typed_and_defaults_fill_the_rest(config_file: Path) -> None:
    config = load_config(config_file, environ={})
    assert config.runtime.data_dir == config_file.parent / "var/data"  # relative to the file
    assert config.runtime.stop_timeout == 4.0
    assert isinstance(config.runtime.stop_timeout, float)
    assert config.runtime.start_timeout == 30.0
    assert config.runtime.restart.strategy == "rest_for_one"
    assert config.runtime.restart.max_restarts == 7
    cache = config.components["cache"]
    assert cache.factory == "myapp.cache:Cache"
    assert cache.depends_on == ("database",)
    assert cache.enabled
    assert dict(cache.options) == {"size": 100, "mode": "lru"}
    assert config.section("telemetry") == {"exporter": "otlp"}
    assert config.source == config_file


def test_environment_overrides_file_and_arguments_override_environment(
    config_file: Path,
) -> None:
    environ = {
        "GARRISON_RUNTIME__STOP_TIMEOUT": "9.5",
        "GARRISON_RUNTIME__RESTART__STRATEGY": "one_for_all",
        "GARRISON_COMPONENTS__CACHE__MODE": "fifo",
        "GARRISON_COMPONENTS__CACHE__SIZE": "250",
        "GARRISON_COMPONENTS__DATABASE__MODE": "sqlite-only",
        "GARRISON_REQUIRE_CLOJURE": "1",  # no "__": not a setting
        "OTHER__THING": "x",
    }
    config = load_config(
        config_file, environ=environ, overrides={"runtime.stop_timeout": 1, "components": {}}
    )
    assert config.runtime.stop_timeout == 1.0
    assert config.runtime.restart.strategy == "one_for_all"
    assert config.components["cache"].options == {"size": 250, "mode": "fifo"}
    assert config.components["database"].options == {"mode": "sqlite-only"}


def test_defaults_without_any_file() -> None:
    config = load_config(environ={})
    assert config.runtime.data_dir == Path("data")
    assert config.runtime.restart == RestartSettings()
    assert config.components == {}


@pytest.mark.parametrize(
    ("environ", "path", "expected"),
    [
        ({"GARRISON_RUNTIME__STOP_TIMEOUT": "soon"}, "runtime.stop_timeout", "a number"),
        ({"GARRISON_RUNTIME__MAILBOX_CAPACITY": "1.5"}, "runtime.mailbox_capacity", "integer"),
        ({"GARRISON_RUNTIME__RESTART__STRATEGY": "all"}, "runtime.restart.strategy", "one_of"),
        ({"GARRISON_RUNTIME__COLOUR": "red"}, "runtime.colour", "unknown key"),
        ({"GARRISON_COMPONENTS__CACHE__ENABLED": "maybe"}, "components.cache.enabled", "boolean"),
    ],
)
def test_a_bad_value_names_the_key_path_the_value_and_what_was_expected(
    environ: dict[str, str], path: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert info.value.path == path
    message = str(info.value)
    assert message.startswith(path)
    assert expected.replace("one_of", "one of") in message
    value = next(iter(environ.values()))
    if "unknown" not in expected:
        assert repr(value) in message or value in message


def test_out_of_range_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="stop_timeout must be greater than zero") as info:
        load_config(environ={}, overrides={"runtime.stop_timeout": 0})
    assert info.value.path == "runtime"


@pytest.mark.parametrize(
    ("variable", "raw", "path"),
    [
        ("GARRISON_RUNTIME__START_TIMEOUT", "nan", "runtime.start_timeout"),
        ("GARRISON_RUNTIME__STOP_TIMEOUT", "inf", "runtime.stop_timeout"),
        ("GARRISON_RUNTIME__RESTART__PERIOD", "-inf", "runtime.restart.period"),
        ("GARRISON_HEALTH__CHECK_TIMEOUT", "nan", "health.check_timeout"),
    ],
)
def test_nan_and_infinity_are_config_errors_naming_the_setting(
    variable: str, raw: str, path: str
) -> None:
    def load() -> None:
        config = load_config(environ={variable: raw})
        HealthSettings.from_section(config.section("health"))

    with pytest.raises(ConfigError) as info:
        load()
    assert str(info.value) == f"{path}: expected a finite number, got {raw}"


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[runtime]\ndata_dir = "x"\nstop_timeout = = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml:3:\d+: not valid TOML"):
        load_config(path, environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml", environ={})


@dataclass(frozen=True)
class Limits:
    burst: int = 1


@dataclass(frozen=True)
class CacheConfig:
    size: int
    mode: Literal["lru", "fifo"] = "lru"
    ttl: float | None = None
    tags: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    path: Path = Path("cache")


def test_parse_section_builds_nested_typed_dataclasses() -> None:
    parsed = parse_section(
        CacheConfig,
        {"size": 3, "ttl": 2, "tags": ["a", "b"], "limits": {"burst": 5}, "path": "/tmp/c"},
        path="components.cache",
    )
    assert parsed == CacheConfig(
        size=3, ttl=2.0, tags=("a", "b"), limits=Limits(5), path=Path("/tmp/c")
    )


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({}, "components.cache.size", "missing required key (an integer)"),
        ({"size": True}, "components.cache.size", "expected an integer, got True"),
        ({"size": 1, "mode": "mru"}, "components.cache.mode", "one of 'lru', 'fifo', got 'mru'"),
        ({"size": 1, "tags": [1]}, "components.cache.tags[0]", "expected a string, got 1"),
        ({"size": 1, "limits": {"burst": "x"}}, "components.cache.limits.burst", "'x'"),
        ({"size": 1, "sise": 2}, "components.cache.sise", "unknown key"),
    ],
)
def test_parse_section_errors(data: dict[str, object], path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_section(CacheConfig, data, path="components.cache")
    assert info.value.path == path
    assert fragment in str(info.value)


def test_a_relative_data_dir_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "garrison.toml").write_text('[runtime]\ndata_dir = "data"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # the same file names the same directory from anywhere, even given as a relative path
    assert load_config("etc/garrison.toml", environ={}).runtime.data_dir == etc / "data"
    # from the environment, a relative value is the working directory's
    env = {"GARRISON_RUNTIME__DATA_DIR": '"here"'}
    assert load_config(etc / "garrison.toml", environ=env).runtime.data_dir == Path("here")


def test_the_packaged_default_keeps_data_relative_to_the_working_directory() -> None:
    from importlib import resources

    packaged = Path(str(resources.files("garrison.config").joinpath("default.toml")))
    assert load_config(packaged, environ={}).runtime.data_dir == Path("data")
