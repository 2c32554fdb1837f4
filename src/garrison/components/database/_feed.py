"""The change feed: committed changes, in commit order, to every watcher of a prefix.

The actor publishes each write group right after it commits, synchronously and
without awaiting, so subscribers see changes in exactly the order they were
committed, and only committed ones. The changes are in the subscribers'
buffers at once; their waiting tasks are woken at the event loop's next turn,
after the writers the commit answered have sent their next writes, so the
actor starts the next commit before the watchers' own work runs.

Backpressure, by design, never reaches writers: each subscriber has a bounded
buffer (``watch_buffer``). A subscriber that falls further behind than that
*loses its place*: its buffer is dropped and its next read raises
:class:`~garrison.ChangesLostError` (``reason="overflow"``). It then knows the
changes it holds are incomplete, reads the current state again (``scan``), and
watches anew. The same error (``reason="restart"`` or ``"restore"``) ends a
feed when the database component restarts or a backup is restored, since
changes may be missed across either. When the runtime stops, feeds simply end.

Subscriptions are held weakly: a watcher that is dropped (a loop that
``break``-s out and lets go of the iterator) unsubscribes itself.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from garrison.exceptions import ChangesLostError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["ChangeEvent", "ChangeFeed", "Subscription", "Waitable"]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One committed change (``durability = "debounced"``: one acknowledged change).

    ``key`` is the key text, ``op`` ``"put"`` or ``"delete"``, ``value`` the
    value written (:data:`~garrison.stores._protocol.MISSING` for a delete).
    ``seq`` increases by one per change in commit order within one run of the
    component; ``at`` is the commit time (POSIX seconds), or with
    ``debounced`` the acknowledgement's (the order is the same).
    """

    seq: int
    key: str
    op: Literal["put", "delete"]
    value: Any
    at: float


class Waitable:
    """What a subscriber of the actor's feeds has: an end, a lost place, a wake-up.

    The actor ends it (:meth:`_end`, with the :class:`~garrison.ChangesLostError`
    that lost its place, if any) and wakes it; its reader sleeps in
    :meth:`_sleep` until then. :class:`Subscription` and the attribute
    watches of the live queries are both.
    """

    __slots__ = ("__weakref__", "_ended", "_lost", "_waiter")

    def __init__(self) -> None:
        self._ended = False
        self._lost: ChangesLostError | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        """True once it ended or lost its place."""
        return self._ended or self._lost is not None

    def _end(self, error: ChangesLostError | None) -> None:
        if error is not None and self._lost is None:
            self._lost = error
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self) -> None:
        """Wait for the next :meth:`_wake` (or :meth:`_end`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    async def _wait_while(self, idle: Callable[[], bool]) -> bool:
        """Sleep while ``idle()``: ``True`` once it is not; ``False`` once it ended.

        Raises its :class:`~garrison.ChangesLostError` once it lost its place.
        """
        while idle():
            if self._lost is not None:
                raise self._lost
            if self._ended:
                return False
            await self._sleep()
        return True


class Subscription(Waitable):
    """One watcher's bounded buffer; iterate it with ``async for``.

    Made by the actor for a :class:`~garrison.components.database.Subscribe`
    message; :meth:`Store.watch` wraps it.
    """

    __slots__ = ("_buffer", "capacity", "prefix")

    def __init__(self, prefix: str, capacity: int) -> None:
        super().__init__()
        self.prefix = prefix
        self.capacity = capacity
        self._buffer: deque[ChangeEvent] = deque()

    @property
    def pending(self) -> int:
        """Changes buffered and not read yet."""
        return len(self._buffer)

    def _offer(self, event: ChangeEvent) -> bool:
        """Buffer ``event``; False (and the subscriber loses its place) when full."""
        if self._ended or self._lost is not None:
            return True
        if len(self._buffer) >= self.capacity:
            self._buffer.clear()
            self._lost = ChangesLostError(
                f"watcher of {self.prefix!r} fell more than {self.capacity} changes behind "
                "and lost its place; read the current state and watch again",
                prefix=self.prefix,
                reason="overflow",
            )
            self._wake()
            return False
        self._buffer.append(event)
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        while True:
            if self._lost is not None:
                # The overflow dropped the buffer already; a restart/restore keeps
                # what was delivered before it, so drain that first.
                if self._buffer:
                    return self._buffer.popleft()
                raise self._lost
            if self._buffer:
                return self._buffer.popleft()
            if self._ended:
                raise StopAsyncIteration
            await self._sleep()

    async def wait(self) -> bool:
        """Wait until a change is buffered: ``True``; ``False`` once the feed ended.

        Raises :class:`~garrison.ChangesLostError` once the subscriber lost its
        place and nothing is buffered. With :meth:`take`, the way to read a
        burst at once (a live query) instead of a change at a time.
        """
        return await self._wait_while(lambda: not self._buffer)

    def take(self) -> list[ChangeEvent]:
        """Every change buffered, in commit order, and none left.

        Raises :class:`~garrison.ChangesLostError` when the subscriber lost its
        place: the changes it holds are then not all there were.
        """
        if self._lost is not None:
            self._buffer.clear()
            raise self._lost
        taken = list(self._buffer)
        self._buffer.clear()
        return taken

    def close(self) -> None:
        """Stop receiving changes (iteration ends after what is buffered)."""
        self._end(None)


class ChangeFeed:
    """The actor's side of the feed: subscribers by prefix, publishing after each commit."""

    def __init__(self, default_capacity: int) -> None:
        self.default_capacity = default_capacity
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        # Open subscribers by prefix, and the prefix lengths to try, kept between
        # publishes (weakly: a dropped watcher still unsubscribes itself); None
        # after a subscribe, or once a publish met a closed or dropped one.
        self._index: tuple[dict[str, list[weakref.ref[Subscription]]], list[int]] | None = None
        self._seq = 0
        self.published = 0
        self.overflows = 0

    @property
    def watchers(self) -> int:
        """Live subscriptions."""
        return sum(1 for s in self._subscribers if not s.closed)

    @property
    def listening(self) -> bool:
        """Whether any subscription may want changes: a cheap check before building them."""
        return bool(self._subscribers)

    def skip(self, count: int) -> None:
        """Number ``count`` committed changes that nobody listens to (seq counts them all)."""
        self._seq += count

    def subscribe(self, prefix: str, capacity: int | None = None) -> Subscription:
        """A new subscription to changes of keys starting with ``prefix``."""
        size = self.default_capacity if capacity is None else capacity
        if size < 1:
            raise ValueError(f"a watch buffer must hold at least 1 change, got {size}")
        subscription = Subscription(prefix, size)
        self._subscribers.add(subscription)
        self._index = None
        return subscription

    def _built(self) -> tuple[dict[str, list[weakref.ref[Subscription]]], list[int]]:
        by_prefix: dict[str, list[weakref.ref[Subscription]]] = {}
        for subscriber in self._subscribers:
            if not subscriber.closed:
                by_prefix.setdefault(subscriber.prefix, []).append(weakref.ref(subscriber))
        self._index = (by_prefix, sorted({len(prefix) for prefix in by_prefix}))
        return self._index

    def publish(self, changes: Iterable[tuple[str, Literal["put", "delete"], Any]]) -> None:
        """Deliver committed ``(key, op, value)`` changes, in order, to matching watchers."""
        # Subscribers by prefix, and the prefix lengths to try: a change costs a
        # dict lookup per distinct length, not a test per subscriber.
        by_prefix, lengths = self._index if self._index is not None else self._built()
        if not by_prefix:
            # Nobody listens: still number the changes so seq counts commits.
            for _ in changes:
                self._seq += 1
            return
        at = time.time()
        stale = False
        offered: dict[Subscription, None] = {}
        for key, op, value in changes:
            self._seq += 1
            event = ChangeEvent(self._seq, key, op, value, at)
            self.published += 1
            for length in lengths:
                if length > len(key):
                    break
                for ref in by_prefix.get(key[:length], ()):
                    subscriber = ref()
                    if subscriber is None or subscriber.closed:
                        stale = True
                    elif subscriber._offer(event):
                        offered[subscriber] = None
                    else:
                        self.overflows += 1
                        stale = True
        if stale:
            self._index = None
        if offered:
            # Woken from the loop's next turn: the writers this commit answers send
            # their next writes, and the actor starts committing them, before the
            # watchers' tasks run, so their work overlaps that commit.
            asyncio.get_running_loop().call_later(0, _wake_all, offered)

    def close(self, error: ChangesLostError | None = None) -> None:
        """End every subscription: cleanly (``error=None``) or with ``error``."""
        for subscriber in list(self._subscribers):
            subscriber._end(error)
        self._subscribers = weakref.WeakSet()
        self._index = None

    def lose_all(self, reason: str) -> None:
        """Make every current subscriber lose its place (e.g. after a restore)."""
        for subscriber in list(self._subscribers):
            subscriber._end(
                ChangesLostError(
                    f"watcher of {subscriber.prefix!r} lost its place: {reason}; "
                    "read the current state and watch again",
                    prefix=subscriber.prefix,
                    reason=reason,
                )
            )
        self._subscribers = weakref.WeakSet()
        self._index = None


def _wake_all(subscriptions: dict[Subscription, None]) -> None:
    for subscription in subscriptions:
        subscription._wake()
