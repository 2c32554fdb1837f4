"""Fixtures of the EDN codec tests.

Every test in this folder runs twice: with the C accelerators (when they are
built) and with the pure-Python reader and writer, which must agree exactly.
"""

from __future__ import annotations

import os

import pytest

from garrison.edn import _accel


@pytest.fixture(autouse=True, params=["accelerated", "pure"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which implementation the codec entry points use for this test."""
    kind: str = request.param
    if kind == "pure":
        monkeypatch.setattr(_accel, "reader", None)
        monkeypatch.setattr(_accel, "writer", None)
    elif _accel.reader is None or _accel.writer is None:
        missing = [n for n in ("reader", "writer") if getattr(_accel, n) is None]
        message = f"the C accelerators are not built or are disabled: {', '.join(missing)}"
        if os.environ.get("GARRISON_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail(message)
        pytest.skip(message)
    return kind
