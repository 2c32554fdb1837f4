"""The :class:`Actor` base class and the :func:`handler` decorator.

An actor is an object whose ``@handler`` methods run one message at a time in
the actor's own task. What happens when something goes wrong:

* A **handler exception** is the sender's problem, not the actor's: an ``ask``
  re-raises it in the caller (same exception object, with a note naming the
  actor and the message); a ``tell`` logs it (``actor.message_failed``). Either
  way the actor keeps running and its ``failed`` count goes up.
* A **crash** is the actor's own failure and is what a supervisor restarts: an
  exception escaping the actor's loop, an explicit :meth:`Actor.crash`, or an
  exception from a background task started with :meth:`Actor.spawn`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

if TYPE_CHECKING:
    import asyncio

    from garrison.runtime._cell import ActorCell
    from garrison.runtime._envelope import Envelope
    from garrison.runtime._ref import ActorRef

__all__ = ["Actor", "attach_cell", "handler"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")

_HANDLER_ATTR = "__garrison_handles__"
_NO_TYPE = object()
# Methods the runtime calls on actors and components; a handler must not shadow them.
_RESERVED = frozenset(
    {
        "accepts",
        "actor_name",
        "bind",
        "check_health",
        "crash",
        "find_handler",
        "handler_table",
        "on_start",
        "on_stop",
        "receive_batch",
        "ref",
        "runtime",
        "self_ref",
        "spawn",
        "stop",
    }
)


@overload
def handler(fn: F, /) -> F: ...
@overload
def handler(message_type: type, /) -> Callable[[F], F]: ...
def handler(arg: Any, /) -> Any:
    """Mark an ``async`` method as the handler of one message type.

    The type comes from the annotation of the method's message parameter, or is
    given explicitly (needed when the annotation cannot be resolved, e.g. for a
    message class defined inside a function)::

        class Counter(Actor):
            @handler
            async def add(self, msg: Add) -> int: ...

            @handler(Reset)
            async def reset(self, msg: Reset) -> None: ...

    A handler also receives subclasses of its type unless they have their own.
    """
    if isinstance(arg, type):
        message_type = arg

        def mark(fn: F) -> F:
            _check_coroutine(fn)
            setattr(fn, _HANDLER_ATTR, message_type)
            return fn

        return mark
    _check_coroutine(arg)
    setattr(arg, _HANDLER_ATTR, _NO_TYPE)
    return arg


def _check_coroutine(fn: Callable[..., Any]) -> None:
    if not inspect.iscoroutinefunction(fn):
        msg = f"@handler needs an 'async def' method, got {fn!r}"
        raise TypeError(msg)


def _annotated_message_type(fn: Callable[..., Any]) -> type:
    params = list(inspect.signature(fn).parameters)
    if len(params) != 2:
        msg = f"handler {fn.__qualname__} must take (self, message)"
        raise TypeError(msg)
    try:
        hints = typing.get_type_hints(fn)
    except NameError as exc:
        msg = (
            f"cannot resolve the message type of handler {fn.__qualname__}: {exc}; "
            "define the message class at module level or write @handler(MessageType)"
        )
        raise TypeError(msg) from exc
    message_type = hints.get(params[1])
    if not isinstance(message_type, type):
        msg = f"handler {fn.__qualname__} needs a class annotation on {params[1]!r}"
        raise TypeError(msg)
    return message_type


class Actor:
    """Base class of actors: handlers by message type, a batch hook, crash helpers.

    Subclasses declare handlers with :func:`handler`. Run an actor with
    :func:`garrison.runtime.open_actor` (standalone) or as a
    :class:`~garrison.runtime.Component` under a runtime.

    ``max_batch``
        How many ready envelopes the loop takes from the mailbox at once (never
        waiting for more). With the default 1 and the default
        :meth:`receive_batch`, messages are handled one by one.
    """

    max_batch: ClassVar[int] = 1
    _handlers: ClassVar[dict[type, Callable[..., Awaitable[Any]]]] = {}
    _cell: ActorCell | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr, value in vars(cls).items():
            if getattr(value, _HANDLER_ATTR, None) is not None and attr in _RESERVED:
                msg = (
                    f"handler {cls.__qualname__}.{attr} would replace the actor method "
                    f"{attr!r}; give the handler another name"
                )
                raise TypeError(msg)
        # Resolved lazily: annotations may name classes defined later in the module.
        cls._handlers = {}
        cls.__garrison_resolved__ = False  # type: ignore[attr-defined]

    @classmethod
    def handler_table(cls) -> dict[type, Callable[..., Awaitable[Any]]]:
        """Message type → handler function for this class (resolved once, then cached)."""
        if cls.__dict__.get("__garrison_resolved__", True):
            return cls._handlers
        table: dict[type, Callable[..., Awaitable[Any]]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                marker = getattr(value, _HANDLER_ATTR, None)
                if marker is None:
                    continue
                message_type = _annotated_message_type(value) if marker is _NO_TYPE else marker
                table[message_type] = value
        cls._handlers = table
        cls.__garrison_resolved__ = True  # type: ignore[attr-defined]
        return table

    @classmethod
    def find_handler(cls, message_type: type) -> Callable[..., Awaitable[Any]] | None:
        """The handler for ``message_type`` (or its nearest handled base class)."""
        table = cls.handler_table()
        found = table.get(message_type)
        if found is not None:
            return found
        for base in message_type.__mro__[1:]:
            found = table.get(base)
            if found is not None:
                table[message_type] = found  # cache the subclass lookup
                return found
        return None

    @classmethod
    def accepts(cls, message_type: type) -> bool:
        """Whether messages of ``message_type`` can be sent to this actor.

        Checked at send time so an unknown type fails in the sender. Override in
        an actor whose :meth:`receive_batch` handles types without ``@handler``.
        """
        return cls.find_handler(message_type) is not None

    async def receive_batch(self, batch: list[Envelope]) -> None:
        """Handle envelopes taken from the mailbox together (up to ``max_batch``).

        The default calls the handler of each envelope in turn. An override must
        answer every ask with ``envelope.reply(value)`` or ``envelope.fail(exc)``
        (an unanswered ask fails with :class:`~garrison.ActorError`), and may
        wrap each message in ``envelope.handler_span(self.actor_name)``.
        """
        cell = self._require_cell()
        for envelope in batch:
            await cell.handle(self, envelope)

    @property
    def actor_name(self) -> str:
        """The name this actor runs under."""
        return self._require_cell().name

    @property
    def self_ref(self) -> ActorRef:
        """A reference to this actor, e.g. to hand to others for replies."""
        from garrison.runtime._ref import ActorRef  # noqa: PLC0415 - import cycle

        return ActorRef(self._require_cell())

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a background task owned by this actor.

        If it raises, the actor crashes (and its supervisor restarts it). The
        task is cancelled when the actor stops or restarts.
        """
        return self._require_cell().spawn(coro, name=name)

    def crash(self, exc: BaseException) -> None:
        """Declare this actor broken: its loop is cancelled and ``exc`` reported as a crash."""
        self._require_cell().crash(exc)

    def stop(self) -> None:
        """Stop normally: take no new messages, drain the mailbox, then end.

        A normal exit is not a crash: ``transient`` and ``temporary`` components
        are not restarted after it; ``permanent`` ones are.
        """
        self._require_cell().request_stop()

    def _require_cell(self) -> ActorCell:
        cell = self._cell
        if cell is None:
            msg = f"{type(self).__name__} is not running (start it with open_actor or a runtime)"
            raise RuntimeError(msg)
        return cell


def attach_cell(actor: Actor, cell: ActorCell | None) -> None:
    """Make ``cell`` the running side of ``actor`` (the runtime's call, from ActorCell)."""
    actor._cell = cell
