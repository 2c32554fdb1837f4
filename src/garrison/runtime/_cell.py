"""The running side of an actor: its mailbox, its task, its counters.

A cell outlives the actor instances it runs. When a supervisor restarts a
component it starts a fresh instance in the same cell, so refs, the queued
messages and the statistics survive the restart.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import itertools
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context

from garrison._log import get_logger
from garrison.exceptions import ActorError, ActorStoppedError, UnknownMessageError
from garrison.runtime._actor import Actor, attach_cell
from garrison.runtime._envelope import ASK_CHAIN, CARRIED, NOT_SET, Envelope
from garrison.runtime._mailbox import Mailbox
from garrison.tracing import trace_roots

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["ActorCell", "ExitKind", "abandoned", "wait_bounded"]

T = TypeVar("T")
log = get_logger("garrison.runtime")
_idents = itertools.count(1)
# How long a task that ignores cancellation is waited for before it is abandoned.
_CANCEL_GRACE = 0.5


class ExitKind(enum.Enum):
    """Why an actor's loop ended."""

    NORMAL = "normal"  # the actor called stop(): mailbox closed and drained
    CRASH = "crash"  # an exception from the loop, crash(), or a spawned task
    HALTED = "halted"  # its owner stopped it (shutdown or a sibling's restart)


async def wait_bounded(task: asyncio.Task[Any], timeout: float) -> bool:  # noqa: ASYNC109
    """Wait up to ``timeout`` for ``task``; cancel it past that. True if it finished in time.

    (ASYNC109: the timeout cancels *another* task, which asyncio.timeout cannot do.)

    Never hangs: a task that ignores cancellation is abandoned after a short
    grace, and logged as ``runtime.task_abandoned``. An abandoned task keeps
    running, and ``asyncio.run`` waits for every task at exit: a program
    embedding garrison ends its process itself when a stop reports one
    (``garrison run`` does, with ``os._exit``, after reporting it).
    """
    done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
    if done:
        return True
    task.cancel()
    await asyncio.wait({task}, timeout=_CANCEL_GRACE)
    if not task.done():
        log.error(
            "runtime.task_abandoned",
            task=task.get_name(),
            reason="it ignored cancellation; it keeps running and will hold asyncio.run at exit",
        )
    return False


def abandoned(task: asyncio.Task[Any]) -> str:
    """``"; …abandoned…"`` for an error message when ``task`` still runs, else ``""``."""
    if task.done():
        return ""
    return f"; {task.get_name()} ignored cancellation and was abandoned (it still runs)"


class ActorCell:
    """Mailbox, task and counters of one named actor (internal)."""

    def __init__(
        self,
        name: str,
        capacity: int,
        actor_class: type[Actor],
        on_exit: Callable[[ActorCell, ExitKind, BaseException | None], None] | None = None,
    ) -> None:
        self.name = name
        self.ident = next(_idents)
        self._own_chain = (self.ident,)
        self.mailbox: Mailbox[Envelope] = Mailbox(name, capacity)
        self.actor_class = actor_class
        #: message type -> handler; the send-time check reads it directly.
        self.dispatch = actor_class.handler_table()
        #: Message types the send-time check let through (see admit()).
        self.accepted: set[type] = set(self.dispatch)
        self.actor: Actor | None = None
        self.task: asyncio.Task[None] | None = None
        self.on_exit = on_exit
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self.incarnation = 0
        self.crash_error: BaseException | None = None
        self._halting = False
        self._owner_stopping = False
        self._background: set[asyncio.Task[Any]] = set()

    # -- running ---------------------------------------------------------------

    def start(self, actor: Actor) -> None:
        """Run ``actor`` in this cell: its loop starts taking from the mailbox."""
        self.attach(actor)
        self.run()

    def attach(self, actor: Actor) -> None:
        """Make ``actor`` this cell's current instance (spawn/crash work from here on)."""
        self.incarnation += 1
        self.actor = actor
        self.actor_class = type(actor)
        self.dispatch = self.actor_class.handler_table()
        self.accepted = set(self.dispatch)
        attach_cell(actor, self)
        self.crash_error = None
        self._halting = False
        self._owner_stopping = False
        self.mailbox.reopen()

    def admit(self, message_type: type) -> bool:
        """Whether the current actor class accepts ``message_type`` (remembered once true).

        ``Actor.accepts`` is asked once per message type per actor class:
        without this, a batching actor whose messages have no ``@handler``
        (the database's grouped operations) paid a class-method call on every send.
        """
        if self.actor_class.accepts(message_type):
            self.accepted.add(message_type)
            return True
        return False

    def run(self) -> None:
        """Start the loop of the attached instance."""
        actor = self.actor
        assert actor is not None
        task = asyncio.get_running_loop().create_task(self._run(actor), name=f"actor:{self.name}")
        self.task = task
        task.add_done_callback(self._loop_done)

    async def _run(self, actor: Actor) -> None:
        # The loop outlives the span it was started under (the component's
        # start): a message is handled under its sender's span or none. Only
        # when there is one: a context variable set in this task would make
        # every ask about 5% slower (measured with 64 concurrent askers).
        if otel_context.get_current():
            otel_context.attach(otel_context.Context())
        mailbox = self.mailbox
        batch_size = actor.max_batch
        one_by_one = batch_size == 1 and type(actor).receive_batch is Actor.receive_batch
        while not self._halting:
            if one_by_one:
                envelope = mailbox.pop_nowait()
                if envelope is not None:
                    await self.handle(actor, envelope)
                    continue
            elif batch := mailbox.take(batch_size):
                await self._run_batch(actor, batch)
                continue
            if mailbox.closed:
                return
            await mailbox.wait()

    def _unhandled(self, envelope: Envelope) -> None:
        self.processed += 1
        self.failed += 1
        envelope.fail(self._unknown(envelope.message))

    def _handler_failed(self, envelope: Envelope, exc: Exception) -> None:
        self.failed += 1
        message = envelope.message
        if envelope.future is not None:
            exc.add_note(f"raised by actor {self.name!r} handling {message!r}")
            envelope.fail(exc)
        else:
            log.warning(
                "actor.message_failed", actor=self.name, message=repr(message), exc_info=exc
            )

    async def handle(self, actor: Actor, envelope: Envelope) -> None:
        """Run the handler of one envelope; count it; deliver reply or error."""
        message = envelope.message
        fn = self.dispatch.get(type(message)) or type(actor).find_handler(type(message))
        if fn is None:
            self._unhandled(envelope)
            return
        # The chain of actors waiting on this message, for deadlock detection
        # in asks the handler makes. Set only when it changes, and left set
        # (the next message sets its own; a batch resets it after): a context
        # variable write copies the context, on every message otherwise.
        chain = (*envelope.chain, self.ident) if envelope.chain else self._own_chain
        if ASK_CHAIN.get() != chain:
            ASK_CHAIN.set(chain)
        # The sender's carried context variables, set for the handler where
        # they differ from what this task has (usually they do not: no write).
        restore: list[tuple[ContextVar[Any], Token[Any]]] | None = None
        carried = envelope.carried
        if carried is not None:
            for var, value in zip(CARRIED, carried, strict=False):
                if value is not NOT_SET and var.get(NOT_SET) is not value:
                    if restore is None:
                        restore = []
                    restore.append((var, var.set(value)))
        try:
            # Without a sender's span (and trace roots off) there is no span to
            # make: skip the no-op context manager too. A sender's span exists
            # only while tracing is live; handler_span checks that again.
            if envelope.sender_span is not None or trace_roots():
                with envelope.handler_span(self.name):
                    result = await fn(actor, message)
            else:
                result = await fn(actor, message)
        except asyncio.CancelledError:
            envelope.fail(self._stopped_error("while handling the message"))
            raise
        except Exception as exc:  # noqa: BLE001 - a handler error goes back to its sender
            self._handler_failed(envelope, exc)
        else:
            # Envelope.reply, inlined: this runs once per message.
            future = envelope.future
            if future is not None and not future.done():
                future.set_result(result)
        finally:
            self.processed += 1
            if restore is not None:
                for var, token in reversed(restore):
                    var.reset(token)

    async def _run_batch(self, actor: Actor, batch: list[Envelope]) -> None:
        custom = type(actor).receive_batch is not Actor.receive_batch
        # Most envelopes come from callers outside any actor (an empty chain):
        # skip them without a set update each.
        chains = [chain for envelope in batch if (chain := envelope.chain)]
        if chains:
            waiting: set[int] = {self.ident}
            for chain in chains:
                waiting.update(chain)
            token = ASK_CHAIN.set(tuple(waiting))
        else:
            token = ASK_CHAIN.set((self.ident,))
        try:
            await actor.receive_batch(batch)
        except asyncio.CancelledError:
            for envelope in batch:
                if not envelope.done:
                    envelope.fail(self._stopped_error("while handling the message"))
            raise
        except Exception as exc:
            exc.add_note(f"raised by actor {self.name!r} handling a batch of {len(batch)}")
            log.warning("actor.batch_failed", actor=self.name, size=len(batch), exc_info=exc)
            for envelope in batch:
                if not envelope.done:
                    envelope.fail(exc)
        finally:
            ASK_CHAIN.reset(token)
        # One pass: fail the asks left unanswered, count the failed messages.
        failed = 0
        for envelope in batch:
            future = envelope.future
            if future is not None and not future.done():
                envelope.fail(
                    ActorError(
                        f"actor {self.name!r} did not answer {envelope.message!r}",
                        actor=self.name,
                    )
                )
            if envelope.failed:
                failed += 1
        if custom:
            self.processed += len(batch)
            self.failed += failed

    def _unknown(self, message: object) -> UnknownMessageError:
        return UnknownMessageError(
            f"actor {self.name!r} has no handler for {type(message).__qualname__}",
            actor=self.name,
        )

    def _stopped_error(self, when: str = "") -> ActorStoppedError:
        detail = f" {when}" if when else ""
        err = ActorStoppedError(f"actor {self.name!r} stopped{detail}", actor=self.name)
        err.__cause__ = self.crash_error
        return err

    # -- crashes and background work ---------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Start a background task whose exception crashes this actor."""
        # Background work is not part of the handler that started it: it may
        # ask its own actor without that being a deadlock.
        context = contextvars.copy_context()
        context.run(ASK_CHAIN.set, ())
        # Nor is it part of the span current where it started (a component's
        # start, long finished by the time the work runs).
        if context.run(otel_context.get_current):
            context.run(otel_context.attach, otel_context.Context())
        task = asyncio.get_running_loop().create_task(
            coro, name=name or f"{self.name}:background", context=context
        )
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.crash(exc)

    def crash(self, exc: BaseException) -> None:
        """Record ``exc`` as this actor's crash and cancel its loop."""
        if self.crash_error is not None:
            return
        self.crash_error = exc
        task = self.task
        if task is not None and not task.done():
            task.cancel()

    def request_stop(self) -> None:
        """Close the mailbox; the loop drains it and exits normally."""
        self.mailbox.close()

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        if task is not self.task:
            return
        for background in list(self._background):
            background.cancel()
        if task.cancelled():
            error = self.crash_error
        else:
            error = task.exception() or self.crash_error
            if error is not None and self.crash_error is None:
                self.crash_error = error
        if error is not None:
            kind = ExitKind.CRASH
        elif self._owner_stopping or task.cancelled():
            kind = ExitKind.HALTED
        else:
            kind = ExitKind.NORMAL
        if self.on_exit is not None:
            self.on_exit(self, kind, error)

    # -- stopping ----------------------------------------------------------------

    async def stop(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounds another task
        """Close the mailbox and let the loop drain it, cancelling it past ``timeout``.

        Returns True when the loop finished on its own.
        """
        self._owner_stopping = True
        self.mailbox.close()
        return await self._wait_loop(timeout)

    async def halt(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounds another task
        """End the loop after the current message, keeping the mailbox open and queued."""
        self._owner_stopping = True
        self._halting = True
        self.mailbox.wake_reader()
        return await self._wait_loop(timeout)

    async def _wait_loop(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounds another task
        task = self.task
        in_time = True
        if task is not None and not task.done():
            in_time = await wait_bounded(task, timeout)
        await self.cancel_background()
        return in_time

    async def cancel_background(self) -> None:
        """Cancel the spawned background tasks and wait (bounded) for them."""
        tasks = list(self._background)
        for background in tasks:
            background.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_GRACE)

    def fail_pending(self) -> None:
        """Close the mailbox and fail every message still queued with ActorStoppedError."""
        self.mailbox.close()
        for envelope in self.mailbox.drain():
            envelope.fail(self._stopped_error("before handling the message"))
