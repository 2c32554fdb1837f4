"""ActorRef: the only way to reach an actor, and its statistics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.exceptions import AskTimeoutError, DeadlockError, UnknownMessageError
from garrison.runtime._envelope import ASK_CHAIN, Envelope
from garrison.runtime._tracing import _trace_api, capture_sender, tracing_active

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

    def _check(self, message: object) -> tuple[int, ...]:
        cell = self._cell
        if type(message) not in cell.accepted and not cell.admit(type(message)):
            raise UnknownMessageError(
                f"actor {cell.name!r} has no handler for {type(message).__qualname__}",
                actor=cell.name,
            )
        return ASK_CHAIN.get()

    async def tell(self, message: object) -> None:
        """Queue ``message`` without waiting for it to be handled.

        Waits while the mailbox is full (backpressure). Raises
        :class:`~garrison.ActorStoppedError` if the actor takes no messages, and
        :class:`~garrison.DeadlockError` if an actor would wait on its own full
        mailbox.
        """
        chain = self._check(message)
        cell = self._cell
        _, sender_span = capture_sender() if tracing_active() else (None, None)
        envelope = Envelope(message, None, (), None, sender_span)
        if cell.mailbox.full and cell.ident in chain:
            raise DeadlockError(
                f"actor {cell.name!r} would wait on its own full mailbox", actor=cell.name
            )
        await cell.mailbox.put(envelope)

    def tell_nowait(self, message: object) -> None:
        """Queue ``message`` or raise :class:`~garrison.MailboxFullError` at once."""
        self._check(message)
        _, sender_span = capture_sender() if tracing_active() else (None, None)
        self._cell.mailbox.put_nowait(Envelope(message, None, (), None, sender_span))

    def _ask_chain(self, message: object) -> tuple[int, ...]:
        """The send-time checks of an ask; return the caller's ask chain.

        The checks of :meth:`_check` for a message type the actor has not
        accepted before, and the deadlock check: the target already waits
        on this caller (a self-ask or an ask cycle).
        """
        cell = self._cell
        if type(message) not in cell.accepted and not cell.admit(type(message)):
            self._check(message)
        chain = ASK_CHAIN.get()
        if chain and cell.ident in chain:
            raise DeadlockError(
                f"ask to actor {cell.name!r} with {type(message).__qualname__} would wait on "
                "itself (the actor is already waiting on this caller)",
                actor=cell.name,
            )
        return chain

    def _send(self, message: object) -> asyncio.Future[Any] | None:
        """Queue ``message`` as an ask and return its reply future, without a coroutine.

        The fast path of :meth:`ask` without a timeout, for facades that await
        the future themselves (one coroutine frame fewer per call, on every
        suspension and resumption). Makes the same checks as :meth:`ask` and
        raises the same errors; returns ``None`` when the mailbox is full, and
        the caller then uses :meth:`ask`, which waits for space. Cancelling the
        caller cancels the future, as it does in :meth:`ask`.
        """
        cell = self._cell
        chain = self._ask_chain(message)
        mailbox = cell.mailbox
        items = mailbox._items
        if mailbox.closed:
            mailbox.refuse()
        if len(items) >= mailbox.capacity:
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if _trace_api._TRACER_PROVIDER is not None and tracing_active():
            context, sender_span = capture_sender()
            items.append(Envelope(message, future, chain, context, sender_span))
        else:
            items.append(Envelope(message, future, chain))
        # Mailbox.put_nowait's wake-up of the reader, inlined.
        getter = mailbox._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return future

    async def ask(self, message: object, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the documented ask API
        """Send ``message`` and return the handler's reply.

        Raises the handler's own exception (with a note naming the actor and
        message), :class:`~garrison.AskTimeoutError` after ``timeout`` seconds
        (covering both the wait for mailbox space and for the reply),
        :class:`~garrison.DeadlockError` when the target is already waiting on
        this caller (a self-ask or an ask cycle), and
        :class:`~garrison.UnknownMessageError` for a type it does not handle.
        """
        cell = self._cell
        chain = self._ask_chain(message)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if _trace_api._TRACER_PROVIDER is not None and tracing_active():
            context, sender_span = capture_sender()
            envelope = Envelope(message, future, chain, context, sender_span)
        else:
            envelope = Envelope(message, future, chain)
        mailbox = cell.mailbox
        if timeout is None:
            if mailbox.closed or len(mailbox._items) < mailbox.capacity:
                mailbox.put_nowait(envelope)
            else:
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
