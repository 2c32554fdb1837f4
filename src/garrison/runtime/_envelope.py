"""The envelope: one message in a mailbox, with its reply slot and trace context.

Batch handlers (``Actor.receive_batch``) work with envelopes directly: they read
``message``, answer with :meth:`Envelope.reply` or :meth:`Envelope.fail`, and
open a per-message handler span with :meth:`Envelope.handler_span`.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context

from garrison.tracing import NO_SPAN, keep_parent, trace_roots, tracer, tracing_active

if TYPE_CHECKING:
    import asyncio
    from contextlib import AbstractContextManager

    from opentelemetry.trace import Span, SpanContext

__all__ = ["ASK_CHAIN", "Envelope"]

# Identities of the actors whose handlers are, in this logical call chain,
# waiting on the current code. An ask to any of them could never complete.
ASK_CHAIN: ContextVar[tuple[int, ...]] = ContextVar("garrison_ask_chain", default=())


#: The context variables whose values travel with messages (see :func:`carry`).
CARRIED: list[ContextVar[Any]] = []


def carry(var: ContextVar[Any]) -> None:
    """Make ``var``'s value travel with every message to the handler that runs it.

    An actor's handler runs in the actor's own task, not in the sender's
    context; a carried variable is set to the sender's value while the handler
    runs (and put back after), so what the sender's context says (who acts, on
    whose behalf) holds through any chain of asks and tells. Messages handled
    by an actor's own ``receive_batch`` are not set: they carry what they need
    in their fields. Idempotent.
    """
    if var not in CARRIED:
        CARRIED.append(var)


def carried_values() -> tuple[Any, ...] | None:
    """The current values of the carried variables, for an envelope (``None``: none)."""
    if not CARRIED:
        return None
    return tuple([var.get(NOT_SET) for var in CARRIED])


#: A carried variable the sender had no value for.
NOT_SET: Any = object()


class Envelope:
    """One queued message: the message, where its reply goes, and who sent it.

    ``message``
        The message object as sent.
    ``is_ask``
        True for :meth:`ActorRef.ask` (a caller waits for :meth:`reply` or
        :meth:`fail`); false for ``tell``.
    ``context`` / ``sender_span``
        The sender's OpenTelemetry context and span context, captured only when
        tracing is live and the sender was inside a valid span (else ``None``).
    ``chain``
        The actors waiting on this message (deadlock detection).
    ``carried``
        The sender's values of the :func:`carried <carry>` context variables,
        in registration order (``None`` while none is registered).
    """

    __slots__ = ("_failed", "carried", "chain", "context", "future", "message", "sender_span")

    def __init__(  # noqa: PLR0917 - positional: one envelope per message, keywords cost more
        self,
        message: object,
        future: asyncio.Future[Any] | None,
        chain: tuple[int, ...] = (),
        context: Context | None = None,
        sender_span: SpanContext | None = None,
        carried: tuple[Any, ...] | None = None,
    ) -> None:
        self.message = message
        self.future = future
        self.chain = chain
        self.context = context
        self.sender_span = sender_span
        self.carried = carried
        self._failed = False

    @property
    def is_ask(self) -> bool:
        """True when a caller waits for this message's reply."""
        return self.future is not None

    @property
    def done(self) -> bool:
        """True once answered (or for a tell, never waited on; or the asker gave up)."""
        return self.future is None or self.future.done()

    @property
    def failed(self) -> bool:
        """True when :meth:`fail` was called on this envelope."""
        return self._failed

    def reply(self, value: object) -> None:
        """Deliver ``value`` to the asker. A no-op for a tell or an asker that gave up."""
        future = self.future
        if future is not None and not future.done():
            future.set_result(value)

    def fail(self, exc: BaseException) -> None:
        """Raise ``exc`` in the asker. For a tell, only marks the message failed."""
        self._failed = True
        future = self.future
        if future is not None and not future.done():
            future.set_exception(exc)

    def handler_span(self, actor: str) -> AbstractContextManager[Span]:
        """Open the span of handling this message in ``actor``.

        An ask's span is a child of the asker's span; a tell's span starts a new
        trace with a link to the sender's span. A message sent outside any span
        gets no span, unless :func:`garrison.tracing.trace_roots` is on (then
        it starts a trace of its own). Use it as ``with
        envelope.handler_span(name): ...``; the span records an exception
        raised inside it.

        When the asker's span is not sampled, no span is made (garrison's rule
        for its own spans, see :mod:`garrison.tracing`): the asker's
        span becomes current for the block, so nested spans skip too, and the
        block receives a non-recording span of it. While nobody traces the
        block receives the invalid span (:data:`garrison.tracing.NO_SPAN`).
        """
        if not tracing_active():
            return NO_SPAN
        future = self.future
        if future is not None:
            sender = self.sender_span
            if sender is not None and not sender.trace_flags.sampled:
                # Checked before the name and attributes are built: at a 1%
                # sampling ratio this is nearly every ask in a sampled-out trace.
                return keep_parent(sender)
            context = self.context
            if context is None:
                if not trace_roots():
                    return NO_SPAN
                context = Context()
            parent = context
            links = None
            kind = "ask"
        else:
            parent = Context()
            sender = self.sender_span
            if sender is None:
                if not trace_roots():
                    return NO_SPAN
                links = None
            else:
                links = [trace.Link(sender)]
            kind = "tell"
        message_type = type(self.message)
        return tracer().start_current_unchecked(
            f"{actor} handle {message_type.__name__}",
            parent,
            trace.SpanKind.CONSUMER,
            {
                "garrison.actor": actor,
                "garrison.message.type": message_type.__qualname__,
                "garrison.message.kind": kind,
            },
            links,
        )

    def __repr__(self) -> str:
        kind = "ask" if self.future is not None else "tell"
        return f"<Envelope {kind} {self.message!r}>"
