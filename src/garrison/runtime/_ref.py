"""ActorRef: the only way to reach an actor, and its statistics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.exceptions import (
    AskTimeoutError,
    DeadlockError,
    MailboxFullError,
    UnknownMessageError,
)
from garrison.runtime._envelope import ASK_CHAIN, CARRIED, NOT_SET, Envelope, carried_values
from garrison.tracing import capture_sender, tracing_active

if TYPE_CHECKING:
    from garrison.runtime._cell import ActorCell

__all__ = ["ActorRef", "ActorStatistics"]


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """A snapshot of one actor's counters.

    ``processed`` counts every message handled (including failed ones);
    ``failed`` those whose handler raised; ``restarts`` how often a supervisor
    restarted the actor.
    """

    name: str
    mailbox_depth: int
    mailbox_capacity: int
    processed: int
    failed: int
    restarts: int


class ActorRef:
    """A handle to a running actor: send with ``tell`` or ``ask``.

    Refs stay valid across restarts of a supervised actor: messages sent while
    it restarts wait in its mailbox for the new instance.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        """The actor's name."""
        return self._cell.name

    def _check(self, message: object) -> None:
        """Refuse a message type the actor has no handler for, in the sender."""
        cell = self._cell
        if type(message) not in cell.accepted and not cell.admit(type(message)):
            raise UnknownMessageError(
                f"actor {cell.name!r} has no handler for {type(message).__qualname__}",
                actor=cell.name,
            )

    async def tell(self, message: object) -> None:
        """Queue ``message`` without waiting for it to be handled.

        Waits while the mailbox is full (backpressure). Raises
        :class:`~garrison.ActorStoppedError` if the actor takes no messages, and
        :class:`~garrison.DeadlockError` if an actor would wait on its own full
        mailbox.
        """
        self._check(message)
        cell = self._cell
        mailbox = cell.mailbox
        if mailbox.full and cell.ident in ASK_CHAIN.get():
            raise DeadlockError(
                f"actor {cell.name!r} would wait on its own full mailbox", actor=cell.name
            )
        await mailbox.put(self._tell_envelope(message))

    def tell_nowait(self, message: object) -> None:
        """Queue ``message`` or raise :class:`~garrison.MailboxFullError` at once."""
        self._check(message)
        self._cell.mailbox.put_nowait(self._tell_envelope(message))

    @staticmethod
    def _tell_envelope(message: object) -> Envelope:
        if tracing_active():
            _, sender_span = capture_sender()
            return Envelope(message, None, (), None, sender_span, carried_values())
        return Envelope(message, None, (), None, None, carried_values())

    async def ask(self, message: object, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the documented ask API
        """Send ``message`` and return the handler's reply.

        Raises the handler's own exception (with a note naming the actor and
        message), :class:`~garrison.AskTimeoutError` after ``timeout`` seconds
        (covering both the wait for mailbox space and for the reply),
        :class:`~garrison.DeadlockError` when the target is already waiting on
        this caller (a self-ask or an ask cycle), and
        :class:`~garrison.UnknownMessageError` for a type it does not handle.
        Cancelling the caller cancels the wait; the actor still handles a
        message it has taken, and its reply goes nowhere.
        """
        cell = self._cell
        if type(message) not in cell.accepted:  # a call less per ask for the known types
            self._check(message)
        chain = ASK_CHAIN.get()
        if chain and cell.ident in chain:
            raise DeadlockError(
                f"ask to actor {cell.name!r} with {type(message).__qualname__} would wait on "
                "itself (the actor is already waiting on this caller)",
                actor=cell.name,
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # carried_values(), inlined: this runs once per ask.
        carried = tuple([var.get(NOT_SET) for var in CARRIED]) if CARRIED else None
        if tracing_active():
            context, sender_span = capture_sender()
            envelope = Envelope(message, future, chain, context, sender_span, carried)
        else:
            envelope = Envelope(message, future, chain, None, None, carried)
        mailbox = cell.mailbox
        if timeout is None:
            try:
                mailbox.put_nowait(envelope)
            except MailboxFullError:
                await mailbox.put(envelope)
            return await future
        try:
            async with asyncio.timeout(timeout):
                await mailbox.put(envelope)
                return await future
        except TimeoutError as exc:
            raise AskTimeoutError(
                f"no reply from actor {cell.name!r} to {type(message).__qualname__} "
                f"within {timeout:g}s",
                actor=cell.name,
            ) from exc

    def statistics(self) -> ActorStatistics:
        """Mailbox depth and capacity, messages processed and failed, restarts."""
        cell = self._cell
        return ActorStatistics(
            name=cell.name,
            mailbox_depth=len(cell.mailbox),
            mailbox_capacity=cell.mailbox.capacity,
            processed=cell.processed,
            failed=cell.failed,
            restarts=cell.restarts,
        )

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self._cell.ident)
