"""A bounded mailbox: a deque with one reader and waiting writers.

Hand-rolled instead of :class:`asyncio.Queue` because the actor loop needs
operations a queue lacks (take up to *n* ready items without waiting, close
while keeping what is queued, fail everything left) and because the ask round
trip is dominated by this structure's overhead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar

from garrison.exceptions import ActorStoppedError, MailboxFullError

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

__all__ = ["Mailbox"]


class Mailbox(Generic[T]):
    """Bounded FIFO with backpressure; owned by one actor, named after it."""

    __slots__ = ("_getter", "_items", "_putters", "capacity", "closed", "owner")

    def __init__(self, owner: str, capacity: int) -> None:
        if capacity < 1:
            msg = f"mailbox capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self.owner = owner
        self.capacity = capacity
        self.closed = False
        self._items: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """True when a put would have to wait."""
        return len(self._items) >= self.capacity

    def put_nowait(self, item: T) -> None:
        """Append ``item`` or raise :class:`MailboxFullError` / :class:`ActorStoppedError`."""
        if self.closed:
            self.refuse()
        if len(self._items) >= self.capacity:
            raise MailboxFullError(
                f"mailbox of actor {self.owner!r} is full ({self.capacity} messages)",
                actor=self.owner,
            )
        self._items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def refuse(self) -> NoReturn:
        """Raise the :class:`ActorStoppedError` of a put into this closed mailbox."""
        raise ActorStoppedError(
            f"actor {self.owner!r} is stopped and takes no messages", actor=self.owner
        )

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the mailbox is full (backpressure)."""
        while len(self._items) >= self.capacity and not self.closed:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Pass our wake-up on, or a free slot would go unused.
                if waiter.done() and not waiter.cancelled():
                    self._wake_putter()
                raise
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)
        self.put_nowait(item)

    async def wait(self) -> None:
        """Wait until an item is queued or the mailbox is closed (single reader)."""
        if self._items or self.closed:
            return
        getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getter = getter
        try:
            await getter
        finally:
            self._getter = None

    def wake_reader(self) -> None:
        """Wake a waiting reader without an item (it re-checks its own flags)."""
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def pop_nowait(self) -> T | None:
        """Remove and return the oldest item, or ``None`` when nothing is queued."""
        items = self._items
        if not items:
            return None
        item = items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def take(self, limit: int) -> list[T]:
        """Remove and return up to ``limit`` queued items without waiting."""
        items = self._items
        count = min(limit, len(items))
        batch = [items.popleft() for _ in range(count)]
        for _ in range(count):
            if not self._putters:
                break
            self._wake_putter()
        return batch

    def close(self) -> None:
        """Refuse new items; queued ones stay to be drained. Wakes everyone waiting."""
        self.closed = True
        self.wake_reader()
        while self._putters:
            self._wake_putter()

    def reopen(self) -> None:
        """Accept items again (a component restarted after a full stop)."""
        self.closed = False

    def drain(self) -> Iterator[T]:
        """Remove and yield every queued item (used to fail what is left)."""
        while self._items:
            yield self._items.popleft()

    def _wake_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
