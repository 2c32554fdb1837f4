"""A store used on its own owns its loop: a loop that fails fails the store, never in silence."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from garrison.edn import loads
from garrison.exceptions import StoreError
from garrison.stores import EdnFileStore

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_failed_writer_fails_later_writes_and_aclose_after_saving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = asyncio.Event()

    async def broken_debounce(self: Any) -> None:
        failed.set()
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(EdnFileStore, "_debounce", broken_debounce)
    path = tmp_path / "memory.edn"
    store = await EdnFileStore(path, max_delay=60.0).open()
    await store.put("a/1", "acknowledged")
    await failed.wait()

    with pytest.raises(StoreError, match=r"the EDN writer .* failed .*a bug in the writer"):
        await store.put("a/2", "nobody would save this")
    with pytest.raises(StoreError, match="a bug in the writer"):
        await store.aclose()
    # The final flush ran before the error was raised: what was acknowledged is on disk.
    assert loads(path.read_text(encoding="utf-8")) == {loads(":a/1"): "acknowledged"}
