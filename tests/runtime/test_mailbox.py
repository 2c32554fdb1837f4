"""The bounded mailbox: backpressure, cancellation of waiting senders, close."""

from __future__ import annotations

import asyncio

import pytest

from garrison.exceptions import ActorStoppedError, MailboxFullError
from garrison.runtime._mailbox import Mailbox


async def test_a_cancelled_waiting_sender_passes_its_slot_on() -> None:
    box: Mailbox[int] = Mailbox("m", 1)
    box.put_nowait(0)
    first = asyncio.create_task(box.put(1))
    second = asyncio.create_task(box.put(2))
    await asyncio.sleep(0)  # both senders are now waiting (one loop turn, no timing)
    assert box.pop_nowait() == 0  # frees the slot and wakes `first`
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)  # the freed slot went to `second`
    assert box.pop_nowait() == 2


async def test_take_returns_at_most_the_limit_and_wakes_waiting_senders() -> None:
    box: Mailbox[int] = Mailbox("m", 3)
    for i in range(3):
        box.put_nowait(i)
    waiting = [asyncio.create_task(box.put(i)) for i in (3, 4)]
    await asyncio.sleep(0)
    assert box.take(2) == [0, 1]
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert box.take(10) == [2, 3, 4]


async def test_close_keeps_queued_items_refuses_new_ones_and_releases_senders() -> None:
    box: Mailbox[int] = Mailbox("m", 1)
    box.put_nowait(1)
    blocked = asyncio.create_task(box.put(2))
    await asyncio.sleep(0)
    box.close()
    with pytest.raises(ActorStoppedError, match="'m' is stopped"):
        await asyncio.wait_for(blocked, 5)
    with pytest.raises(ActorStoppedError):
        box.put_nowait(3)
    assert list(box.drain()) == [1]


def test_full_mailbox_names_its_owner_and_capacity() -> None:
    box: Mailbox[int] = Mailbox("orders", 2)
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(MailboxFullError, match="'orders' is full \\(2 messages\\)") as info:
        box.put_nowait(3)
    assert info.value.actor == "orders"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox("m", 0)
