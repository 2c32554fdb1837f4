"""The mode router's repair backlog: keys whose SQLite side is behind EDN.

It lives in memory and in a small JSON file next to the EDN file (SQLite
cannot hold it: SQLite is what failed), written atomically before the failed
write returns, so it survives a restart. Besides keys it holds a *full* flag:
SQLite may be behind on keys nobody recorded (a failed ``clear()``, or writes
made in ``edn-only``), and only a full comparison can find them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import orjson

from garrison.exceptions import StoreError
from garrison.stores._atomic import replace_file

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["RepairBacklog"]

log = logging.getLogger("garrison.stores._router")


class RepairBacklog:
    """The set of keys to repair plus the full-repair flag, persisted at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set()
        self.full = False
        self._level = asyncio.Event()  # set while nothing is pending
        self._level.set()

    @property
    def pending(self) -> bool:
        """Whether SQLite is (or may be) behind EDN."""
        return bool(self.keys) or self.full

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    async def load(self) -> None:
        """Read the file a previous run left (none means nothing pending)."""
        self.keys, self.full = await asyncio.to_thread(_read, self.path)
        self._signal()

    async def add(self, keys: Iterable[str], *, full: bool = False) -> None:
        """Queue ``keys`` (and the full flag, if ``full``) and save."""
        self.keys.update(keys)
        self.full = self.full or full
        await self.save()

    async def reset(self, keys: Iterable[str] = (), *, full: bool = False) -> None:
        """Replace the whole backlog and save."""
        self.keys = set(keys)
        self.full = full
        await self.save()

    async def discard(self, keys: Iterable[str]) -> None:
        """Drop ``keys`` (now level on both sides); save only if that changed anything."""
        if self.keys:
            before = len(self.keys)
            self.keys.difference_update(keys)
            if len(self.keys) != before:
                await self.save()

    async def save(self) -> None:
        """Write the backlog file (or remove it when nothing is pending), off the loop."""
        try:
            await asyncio.to_thread(_write, self.path, sorted(self.keys), self.full)
        except OSError:
            # The in-memory backlog still drives repairs; only a restart would lose it.
            log.warning("could not save the repair backlog to %s", self.path, exc_info=True)
        finally:
            # After the file: whoever wait_empty() wakes finds the file gone too.
            self._signal()

    async def wait_empty(self) -> None:
        """Wait until nothing is pending."""
        while self.pending:
            if self._level.is_set():  # a change not signalled yet: never spin
                self._level.clear()
            await self._level.wait()

    def _signal(self) -> None:
        if self.pending:
            self._level.clear()
        else:
            self._level.set()


def _read(path: Path) -> tuple[set[str], bool]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return set(), False
    try:
        data = orjson.loads(raw)
        return set(data["keys"]), bool(data["full"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path}: the SQLite repair backlog is unreadable ({exc}); delete it and run a "
            "full repair (switch_mode to edn-only and back) to rebuild it"
        ) from exc


def _write(path: Path, keys: list[str], full: bool) -> None:
    if not keys and not full:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    replace_file(path, orjson.dumps({"keys": keys, "full": full}))
