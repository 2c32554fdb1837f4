"""Embedding: open_runtime with config files, factories, typed sections, two runtimes."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.exceptions import ConfigError, LifecycleError
from garrison.runtime import ComponentState, open_runtime
from tests.runtime._lifecycle_components import Ping, make

MODULE = """
from __future__ import annotations

from dataclasses import dataclass

from garrison.runtime import Component, handler


@dataclass(frozen=True)
class Get:
    key: str


@dataclass(frozen=True)
class CacheConfig:
    size: int = 10
    prefix: str = ""


class Cache(Component):
    name = "cache"
    config_class = CacheConfig
    config: CacheConfig

    @handler
    async def get(self, msg: Get) -> str:
        return f"{self.config.prefix}{msg.key}/{self.config.size}"


class NotAComponent:
    pass
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"garrison_test_app_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "garrison.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


async def test_components_named_in_the_config_by_import_path(
    tmp_path: Path, app_module: str
) -> None:
    path = write_config(
        tmp_path,
        f"""
        [runtime]
        data_dir = "{(tmp_path / "data").as_posix()}"

        [components.cache]
        factory = "{app_module}:Cache"
        size = 3

        [components.second]
        factory = "{app_module}:Cache"
        depends_on = ["cache"]
        prefix = "2:"
        """,
    )
    async with open_runtime(path, environ={"GARRISON_COMPONENTS__SECOND__SIZE": "8"}) as rt:
        get = sys.modules[app_module].Get
        assert await rt.ref("cache").ask(get("k")) == "k/3"
        assert await rt.ref("second").ask(get("k")) == "2:k/8"
        assert rt.graph.dependencies["second"] == ("cache",)
        assert rt.data_dir == tmp_path / "data"
        assert rt.data_dir.is_dir()
        assert rt.component("second").data_dir == rt.data_dir


async def test_component_config_errors_name_the_key_path(tmp_path: Path, app_module: str) -> None:
    path = write_config(
        tmp_path,
        f"""
        [components.cache]
        factory = "{app_module}:Cache"
        size = "large"
        """,
    )
    with pytest.raises(
        ConfigError, match=r"components\.cache\.size: expected an integer, got 'large'"
    ):
        async with open_runtime(path, environ={}, data_dir=tmp_path):
            pass


@pytest.mark.parametrize(
    ("factory", "fragment"),
    [
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        ("{app}:Missing", "has no 'Missing'"),
        ("{app}:NotAComponent", "is not a Component subclass"),
        ("just-a-name", 'expected "package.module:Class"'),
    ],
)
async def test_bad_factories_are_config_errors(
    tmp_path: Path, app_module: str, factory: str, fragment: str
) -> None:
    config = {"components": {"thing": {"factory": factory.format(app=app_module)}}}
    with pytest.raises(ConfigError, match=r"components\.thing\.factory") as info:
        async with open_runtime(config, environ={}, data_dir=tmp_path):
            pass
    assert fragment in str(info.value)


async def test_component_without_factory_that_is_not_built_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a factory"):
        async with open_runtime({"components": {"mystery": {}}}, environ={}, data_dir=tmp_path):
            pass


async def test_disabled_components_are_skipped_and_cannot_be_depended_on(
    tmp_path: Path,
) -> None:
    a = make("a", events=[])
    config = {"components": {"a": {"enabled": False}}}
    async with open_runtime(config, components=[make("b", events=[])], data_dir=tmp_path) as rt:
        assert rt.component_names == ["b"]
    with pytest.raises(ConfigError, match="'a', which is disabled"):
        async with open_runtime(
            config, components=[a, make("b", "a", events=[])], data_dir=tmp_path
        ):
            pass


async def test_config_table_overrides_class_declarations(tmp_path: Path) -> None:
    events: list[str] = []
    comps = [make("a", events=events), make("b", events=events)]
    config = {"components": {"a": {"depends_on": ["b"], "restart": "temporary"}}}
    async with open_runtime(config, components=comps, data_dir=tmp_path) as rt:
        assert rt.spec("a").restart == "temporary"
    assert events[:2] == ["start b", "start a"]


async def test_two_runtimes_in_one_process_are_independent(tmp_path: Path) -> None:
    comp = make("svc", events=[])
    async with (
        open_runtime({}, components=[comp], data_dir=tmp_path / "one") as one,
        open_runtime({}, components=[comp], data_dir=tmp_path / "two") as two,
    ):
        _, id_one = await one.ref("svc").ask(Ping())
        name_two, id_two = await two.ref("svc").ask(Ping())
        assert id_one != id_two
        await one.aclose()
        assert two.state("svc") is ComponentState.RUNNING
        assert await two.ref("svc").ask(Ping()) == (name_two, id_two)


async def test_observation_api(tmp_path: Path) -> None:
    transitions: list[tuple[str, str, str]] = []
    comps = [make("a", events=[]), make("b", "a", events=[], critical=False)]
    rt_holder = []
    async with open_runtime({}, components=comps, data_dir=tmp_path) as rt:
        rt_holder.append(rt)
        remove = rt.add_state_listener(lambda n, old, new: transitions.append((n, old, new)))
        await rt.wait_ready()
        assert rt.started
        assert rt.ready
        assert not rt.stopping
        assert rt.spec("b").critical is False
        assert rt.statistics()["a"].mailbox_capacity == 1000
        with pytest.raises(ConfigError, match="no component named 'zzz'"):
            rt.ref("zzz")
        stopping = asyncio.create_task(rt.wait_stopping())
    assert stopping.done()
    rt = rt_holder[0]
    assert ("b", "running", "stopping") in transitions
    assert ("a", "stopping", "stopped") in transitions
    remove()
    with pytest.raises(LifecycleError, match="stopping"):
        await rt.wait_ready()
    with pytest.raises(LifecycleError, match="'a' is stopped"):
        rt.component("a")


async def test_keyword_overrides_win_over_environment(tmp_path: Path) -> None:
    environ = {"GARRISON_RUNTIME__MAILBOX_CAPACITY": "5", "GARRISON_RUNTIME__STOP_TIMEOUT": "3"}
    async with open_runtime(
        {},
        components=[make("a", events=[])],
        environ=environ,
        data_dir=tmp_path,
        mailbox_capacity=7,
    ) as rt:
        assert rt.ref("a").statistics().mailbox_capacity == 7
        assert rt.config.runtime.stop_timeout == 3.0


def test_built_in_components_need_no_factory() -> None:
    from garrison.config import BUILTIN_FACTORIES, build_config
    from garrison.runtime import Runtime

    runtime = Runtime(build_config({"components": {"telemetry": {}}}))
    cls = runtime.spec("telemetry").component_class
    assert f"{cls.__module__}:{cls.__qualname__}" == BUILTIN_FACTORIES["telemetry"]
    assert runtime.graph.levels == [["telemetry"]]


async def test_a_data_dir_under_a_file_is_a_config_error_naming_setting_and_path(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        async with open_runtime({}, data_dir=str(blocker / "data")):
            pass
    assert info.value.path == "runtime.data_dir"
    assert f"is under {str(blocker)!r}, which is a file, not a directory" in str(info.value)
