"""Actors: ask/tell, errors back to the sender, backpressure, deadlocks, batches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from garrison.exceptions import (
    ActorError,
    ActorStoppedError,
    AskTimeoutError,
    DeadlockError,
    MailboxFullError,
    UnknownMessageError,
)
from garrison.runtime import Actor, ActorRef, Envelope, handler, open_actor


@dataclass(frozen=True)
class Add:
    amount: int


@dataclass(frozen=True)
class Boom:
    text: str


@dataclass(frozen=True)
class Hold:
    """Block the actor until ``gate`` is set; ``entered`` says it is blocked."""

    gate: asyncio.Event
    entered: asyncio.Event


@dataclass(frozen=True)
class Unhandled:
    pass


@dataclass(frozen=True)
class AskOther:
    other: ActorRef


@dataclass(frozen=True)
class AskSelf:
    pass


@dataclass(frozen=True)
class SpecialAdd(Add):
    pass


class Counter(Actor):
    def __init__(self) -> None:
        self.total = 0
        self.seen: list[int] = []

    @handler
    async def add(self, msg: Add) -> int:
        self.total += msg.amount
        self.seen.append(msg.amount)
        return self.total

    @handler
    async def boom(self, msg: Boom) -> None:
        raise ValueError(msg.text)

    @handler
    async def hold(self, msg: Hold) -> None:
        msg.entered.set()
        await msg.gate.wait()

    @handler
    async def ask_other(self, msg: AskOther) -> object:
        return await msg.other.ask(AskOther(self.self_ref))

    @handler
    async def ask_self(self, msg: AskSelf) -> object:
        return await self.self_ref.ask(Add(1))


async def test_ask_returns_the_handler_reply_and_tell_keeps_order() -> None:
    actor = Counter()
    async with open_actor(actor, name="counter") as ref:
        assert await ref.ask(Add(2)) == 2
        for i in range(5):
            await ref.tell(Add(i))
        assert await ref.ask(Add(0)) == 12
    assert actor.seen == [2, 0, 1, 2, 3, 4, 0]


async def test_handler_error_reaches_the_asker_and_the_actor_survives() -> None:
    async with open_actor(Counter(), name="counter") as ref:
        with pytest.raises(ValueError, match="bad") as info:
            await ref.ask(Boom("bad"))
        assert any("'counter'" in note and "Boom" in note for note in info.value.__notes__)
        await ref.tell(Boom("again"))  # a failing tell is logged, not fatal
        assert await ref.ask(Add(1)) == 1
        stats = ref.statistics()
    assert stats.failed == 2
    assert stats.processed == 3


async def test_unknown_message_type_fails_in_the_sender() -> None:
    async with open_actor(Counter(), name="counter") as ref:
        with pytest.raises(UnknownMessageError, match="Unhandled"):
            await ref.ask(Unhandled())
        with pytest.raises(UnknownMessageError):
            await ref.tell(Unhandled())
        with pytest.raises(UnknownMessageError):
            ref.tell_nowait(Unhandled())


async def test_subclass_messages_use_the_base_handler() -> None:
    async with open_actor(Counter(), name="counter") as ref:
        assert await ref.ask(SpecialAdd(5)) == 5


async def test_full_mailbox_tell_nowait_raises_and_tell_waits() -> None:
    gate = asyncio.Event()
    actor = Counter()
    async with open_actor(actor, name="small", capacity=2) as ref:
        entered = asyncio.Event()
        await ref.tell(Hold(gate, entered))
        await entered.wait()  # the actor took Hold: the mailbox is empty again
        ref.tell_nowait(Add(1))
        ref.tell_nowait(Add(2))
        with pytest.raises(MailboxFullError, match="full"):
            ref.tell_nowait(Add(3))
        waiting = asyncio.create_task(ref.tell(Add(3)))
        done, _ = await asyncio.wait({waiting}, timeout=0.05)
        assert not done, "tell must wait while the mailbox is full"
        assert ref.statistics().mailbox_depth == 2
        gate.set()
        await waiting
        assert await ref.ask(Add(0)) == 6
    assert actor.seen == [1, 2, 3, 0]


async def test_ask_timeout_raises_ask_timeout_error() -> None:
    gate = asyncio.Event()
    async with open_actor(Counter(), name="slow") as ref:
        await ref.tell(Hold(gate, asyncio.Event()))
        with pytest.raises(AskTimeoutError, match="slow") as info:
            await ref.ask(Add(1), timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        gate.set()


async def test_self_ask_raises_deadlock_error() -> None:
    async with open_actor(Counter(), name="selfish") as ref:
        with pytest.raises(DeadlockError, match="selfish"):
            await ref.ask(AskSelf(), timeout=5)


async def test_ask_cycle_raises_deadlock_error_instead_of_hanging() -> None:
    async with (
        open_actor(Counter(), name="a") as a,
        open_actor(Counter(), name="b") as b,
    ):
        # a asks b, whose handler asks a back: a is busy waiting on b.
        with pytest.raises(DeadlockError, match="'a'"):
            await a.ask(AskOther(b), timeout=5)
        assert await a.ask(Add(1)) == 1  # both still work afterwards
        assert await b.ask(Add(1)) == 1


async def test_stop_drains_queued_messages_then_refuses_new_ones() -> None:
    actor = Counter()
    async with open_actor(actor, name="counter") as ref:
        for i in range(100):
            ref.tell_nowait(Add(i))
    assert actor.total == sum(range(100))
    with pytest.raises(ActorStoppedError):
        await ref.ask(Add(1))


class Batcher(Actor):
    max_batch = 50

    def __init__(self) -> None:
        self.sizes: list[int] = []

    @handler
    async def add(self, msg: Add) -> int:
        raise AssertionError("receive_batch handles Add")

    @handler
    async def hold(self, msg: Hold) -> None:
        msg.entered.set()
        await msg.gate.wait()

    async def receive_batch(self, batch: list[Envelope]) -> None:
        if isinstance(batch[0].message, Hold):
            await self.hold(batch[0].message)
            batch[0].reply(None)
            batch = batch[1:]
            if not batch:
                return
        self.sizes.append(len(batch))
        for envelope in batch:
            assert isinstance(envelope.message, Add)
            if envelope.message.amount < 0:
                envelope.fail(ValueError("negative"))
            else:
                envelope.reply(envelope.message.amount * 10)


async def test_batch_handler_receives_ready_envelopes_together() -> None:
    gate = asyncio.Event()
    actor = Batcher()
    async with open_actor(actor, name="batcher") as ref:
        entered = asyncio.Event()
        await ref.tell(Hold(gate, entered))
        await entered.wait()  # the Hold batch is taken; the rest queue behind it
        asks = [asyncio.create_task(ref.ask(Add(i))) for i in range(30)]
        failing = asyncio.create_task(ref.ask(Add(-1)))
        # Yield until every asking task has queued its message (no wall-clock wait).
        while ref.statistics().mailbox_depth < 31:  # noqa: ASYNC110
            await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*asks) == [i * 10 for i in range(30)]
        with pytest.raises(ValueError, match="negative"):
            await failing
        stats = ref.statistics()
    assert actor.sizes == [31]
    assert stats.processed == 32
    assert stats.failed == 1


class Crasher(Actor):
    @handler
    async def add(self, msg: Add) -> int:
        return msg.amount

    @handler
    async def start_work(self, msg: Boom) -> None:
        async def work() -> None:
            raise RuntimeError(msg.text)

        self.spawn(work())


async def _ask_until_refused(ref: ActorRef) -> None:
    # The crash lands within a few loop turns of the spawned task failing.
    for _ in range(100):
        await ref.ask(Add(0), timeout=1)
        await asyncio.sleep(0)


async def test_spawned_task_error_crashes_a_standalone_actor() -> None:
    async with open_actor(Crasher(), name="crasher") as ref:
        await ref.ask(Boom("disk gone"))
        with pytest.raises(ActorStoppedError) as info:
            await _ask_until_refused(ref)
        assert isinstance(info.value.__cause__, RuntimeError)


def test_handler_must_be_async() -> None:
    with pytest.raises(TypeError, match="async def"):

        class Bad(Actor):
            @handler  # type: ignore[type-var]
            def sync(self, msg: Add) -> None:
                pass


def test_unresolvable_annotation_is_a_clear_error() -> None:
    @dataclass(frozen=True)
    class Local:
        pass

    class Quiet(Actor):
        @handler
        async def local(self, msg: Local) -> None:
            pass

    with pytest.raises(TypeError, match=r"@handler\(MessageType\)"):
        Quiet.handler_table()

    class Explicit(Actor):
        @handler(Local)
        async def local(self, msg: Local) -> None:
            pass

    assert Explicit.accepts(Local)


def test_a_handler_cannot_shadow_an_actor_method() -> None:
    with pytest.raises(TypeError, match="would replace the actor method 'crash'"):

        class Shadow(Actor):
            @handler
            async def crash(self, msg: Boom) -> None:  # type: ignore[override]
                pass


@dataclass(frozen=True)
class TellSelf:
    count: int


class SelfTeller(Actor):
    @handler
    async def tell_self(self, msg: TellSelf) -> None:
        for _ in range(msg.count):
            await self.self_ref.tell(Add(1))

    @handler
    async def add(self, msg: Add) -> None:
        pass


async def test_telling_ones_own_full_mailbox_is_a_deadlock_error() -> None:
    async with open_actor(SelfTeller(), name="teller", capacity=3) as ref:
        await ref.ask(TellSelf(3))  # fits: no error
        with pytest.raises(DeadlockError, match="its own full mailbox"):
            await ref.ask(TellSelf(10), timeout=5)


class Forgetful(Actor):
    max_batch = 10

    @handler
    async def add(self, msg: Add) -> None:
        raise AssertionError("receive_batch handles Add")

    async def receive_batch(self, batch: list[Envelope]) -> None:
        for envelope in batch:
            if isinstance(envelope.message, Add) and envelope.message.amount:
                envelope.reply(envelope.message.amount)


async def test_an_ask_a_batch_handler_leaves_unanswered_fails_clearly() -> None:
    async with open_actor(Forgetful(), name="forgetful") as ref:
        assert await ref.ask(Add(3)) == 3
        with pytest.raises(ActorError, match="'forgetful' did not answer Add\\(amount=0\\)"):
            await ref.ask(Add(0), timeout=5)
