"""The switch between the EDN codec's C accelerators and its pure-Python code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from garrison.edn import _accel

_PROBE = """
from garrison.edn import _accel, dumps, loads
print(_accel.reader is None, _accel.writer is None)
print(dumps(loads('{:a/b [1 2.5 "x"], :c #{nil}}')))
"""


def _run(env_value: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "GARRISON_NO_EXTENSIONS"}
    if env_value is not None:
        env["GARRISON_NO_EXTENSIONS"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_no_extensions_environment_gives_the_pure_codec_with_the_same_text() -> None:
    pure = _run("1")
    assert pure[0] == "True True"
    default = _run(None)
    assert default[1] == pure[1] == '{:a/b [1 2.5 "x"], :c #{nil}}'


def test_zero_or_empty_leave_the_accelerators_on() -> None:
    # "0" and "" mean "not disabled", as for other boolean environment switches.
    assert _run("0")[0] == _run("")[0] == _run(None)[0]


@pytest.mark.skipif(
    os.environ.get("GARRISON_REQUIRE_EXTENSIONS", "") in ("", "0"),
    reason="GARRISON_REQUIRE_EXTENSIONS is not set (CI sets it)",
)
def test_ci_builds_both_accelerators() -> None:
    assert _accel.reader is not None, "garrison.edn._creader was not built"
    assert _accel.writer is not None, "garrison.edn._cwriter was not built"
