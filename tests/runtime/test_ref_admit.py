"""The send-time check remembers the message types an actor's ``accepts`` let through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from garrison.exceptions import UnknownMessageError
from garrison.runtime import Actor, Envelope, open_actor


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Other:
    n: int


class Batcher(Actor):
    """Answers Ping without a @handler, through its own receive_batch."""

    max_batch = 64
    asked: ClassVar[list[type]] = []

    @classmethod
    def accepts(cls, message_type: type) -> bool:
        cls.asked.append(message_type)
        return message_type is Ping

    async def receive_batch(self, batch: list[Envelope]) -> None:
        for envelope in batch:
            envelope.reply(envelope.message.n + 1)  # type: ignore[attr-defined]


async def test_accepts_is_asked_once_per_type_and_refusals_are_not_remembered() -> None:
    Batcher.asked.clear()
    async with open_actor(Batcher(), name="batcher") as ref:
        assert [await ref.ask(Ping(i)) for i in range(5)] == [1, 2, 3, 4, 5]
        ref.tell_nowait(Ping(9))
        for _ in range(2):
            with pytest.raises(UnknownMessageError):
                await ref.ask(Other(1))
    assert Batcher.asked.count(Ping) == 1
    # A refused type is asked again each time (and refused each time).
    assert Batcher.asked.count(Other) >= 2
