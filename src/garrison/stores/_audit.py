"""Who changes the data and why: the audit context every write is recorded with.

Every history row of the SQLite store names an *actor* (who: a component,
``cli:<os user>``, ``migrator``, or a principal the application names, such
as ``"user:42"``) and an optional *reason* (why). They come from a context
variable, so one ``with`` block covers every write made inside it::

    with acting_as("user:42", reason="gdpr request"):
        await store.delete("user/42")

The database messages read it when they are built (see
:mod:`garrison.components.database`), so it travels with each message to the
database actor, which runs the write under the same audit context; the
SQLite store reads it when it commits.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from garrison.exceptions import StoreError
from garrison.runtime import carry

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DEFAULT_ACTOR", "Audit", "acting_as", "current_audit", "running_as"]

#: The actor of a write made outside any :func:`acting_as` block.
DEFAULT_ACTOR: Final = "app"


@dataclass(frozen=True, slots=True)
class Audit:
    """Who makes a change (``actor``) and why (``reason``, ``None``: not given)."""

    actor: str = DEFAULT_ACTOR
    reason: str | None = None


_DEFAULT: Final = Audit()
_CURRENT: ContextVar[Audit] = ContextVar("garrison_audit", default=_DEFAULT)
# Who acts travels with messages: a component writing on a caller's behalf
# writes as that caller.
carry(_CURRENT)


#: ``current_audit()``: the audit context of the running code (``Audit("app")``
#: outside any block). The context variable's own ``get``: every database
#: message that changes data calls it as it is built.
current_audit: Final = _CURRENT.get


@contextlib.contextmanager
def acting_as(actor: str, *, reason: str | None = None) -> Iterator[Audit]:
    """Record the writes made inside the block as ``actor``'s, for ``reason``.

    Blocks nest; the innermost wins. An empty actor is refused: every change
    names someone.
    """
    if not isinstance(actor, str) or not actor.strip():
        raise StoreError(f"an actor must be a non-empty string, not {actor!r}")
    if reason is not None and not isinstance(reason, str):
        raise StoreError(f"a reason must be a string or None, not {reason!r}")
    audit = Audit(actor, reason or None)
    with running_as(audit):
        yield audit


class running_as:  # noqa: N801 - used as a function, like contextlib's helpers
    """Run the block under ``audit`` as it is (the database actor, for each message).

    A class rather than a generator context manager: the database actor enters
    one per write group, on the path of every write.
    """

    __slots__ = ("_audit", "_token")

    def __init__(self, audit: Audit) -> None:
        self._audit = audit
        self._token: Token[Audit] | None = None

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._audit)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
