"""Every error garrison raises on purpose.

All of them derive from :class:`GarrisonError`, so ``except GarrisonError``
catches anything garrison itself decided to raise. Each carries the context a
user needs to act on it (component, phase, key, file, line, column) as
attributes as well as in its message, and wraps its cause with ``raise … from``.

::

    GarrisonError
    ├── ConfigError              bad config value, unknown/duplicate component, dependency cycle
    ├── LifecycleError
    │   ├── StartupError         a component failed to start (what started, what never did)
    │   ├── ShutdownError        one or more components failed to stop cleanly
    │   └── EscalationError      restart intensity exceeded; the supervisor gave up
    ├── ActorError
    │   ├── MailboxFullError     tell_nowait() on a full mailbox
    │   ├── ActorStoppedError    the actor no longer takes messages
    │   ├── AskTimeoutError      no reply within the ask timeout (also a TimeoutError)
    │   ├── DeadlockError        an ask that would wait on itself
    │   └── UnknownMessageError  no handler for the message type
    ├── EdnError
    │   ├── EdnSyntaxError       text that is not EDN (line, column, excerpt)
    │   ├── EdnDepthError        nesting deeper than the configured limit
    │   └── EdnEncodeError       a Python value with no EDN form
    └── StoreError
        ├── StoreLoadError       a store file that cannot be read; nothing was overwritten
        ├── SchemaVersionError   a database written by a newer garrison
        ├── FlushError           the EDN writer could not write the file (data kept in memory)
        ├── RefusedWriteError    a key or value a store of the mode cannot hold; nothing written
        │   └── SchemaError      an entry that breaks its kind's schema (key, attribute, rule)
        ├── ValidationError      the two sides of a migration disagree
        ├── ChangesLostError     a change-feed subscriber lost changes and must resync
        ├── VersionConflictError a compare-and-set put found another version (says which)
        └── QueryError           a Datalog query that cannot be answered (names the clause)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "ActorError",
    "ActorStoppedError",
    "AskTimeoutError",
    "ChangesLostError",
    "ConfigError",
    "DeadlockError",
    "EdnDepthError",
    "EdnEncodeError",
    "EdnError",
    "EdnSyntaxError",
    "EscalationError",
    "FlushError",
    "GarrisonError",
    "LifecycleError",
    "MailboxFullError",
    "QueryError",
    "RefusedWriteError",
    "SchemaError",
    "SchemaVersionError",
    "ShutdownError",
    "StartupError",
    "StoreError",
    "StoreLoadError",
    "UnknownMessageError",
    "ValidationError",
    "VersionConflictError",
]


class GarrisonError(Exception):
    """Base class of every error garrison raises on purpose."""


class ConfigError(GarrisonError):
    """Invalid configuration or component graph.

    ``path`` is the dotted key path (``components.database.mode``) when the error
    is about one value.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class LifecycleError(GarrisonError):
    """A start, stop or restart of the component graph went wrong."""


class StartupError(LifecycleError):
    """A component failed to start; everything that had started was stopped again."""

    def __init__(
        self,
        component: str,
        *,
        phase: str = "start",
        started: Sequence[str] = (),
        not_started: Sequence[str] = (),
        reason: str = "",
    ) -> None:
        self.component = component
        self.phase = phase
        self.started = tuple(started)
        self.not_started = tuple(not_started)
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"component {component!r} failed to {phase}{detail}; "
            f"started then stopped again: {list(self.started)}; "
            f"never started: {list(self.not_started)}"
        )


class ShutdownError(LifecycleError):
    """One or more components did not stop cleanly (all others were still stopped)."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = dict(failures)
        parts = ", ".join(f"{name!r}: {exc!r}" for name, exc in self.failures.items())
        super().__init__(f"components failed to stop cleanly: {parts}")


class EscalationError(LifecycleError):
    """A component crashed more often than its restart intensity allows."""

    def __init__(self, component: str, *, restarts: int, period: float) -> None:
        self.component = component
        self.restarts = restarts
        self.period = period
        super().__init__(
            f"component {component!r} crashed more than {restarts} times in {period:g}s; "
            "the supervisor gave up and stopped every component"
        )


class ActorError(GarrisonError):
    """Errors of message delivery. ``actor`` names the target actor."""

    def __init__(self, message: str, *, actor: str) -> None:
        super().__init__(message)
        self.actor = actor


class MailboxFullError(ActorError):
    """``tell_nowait`` found the mailbox at capacity."""


class ActorStoppedError(ActorError):
    """The actor is stopping or stopped and takes no new messages."""


class AskTimeoutError(ActorError, TimeoutError):
    """No reply arrived within the ``ask`` timeout."""


class DeadlockError(ActorError):
    """An ``ask`` that could only complete after itself (self-ask or an ask cycle)."""


class UnknownMessageError(ActorError, TypeError):
    """The actor has no handler for the message's type."""


class EdnError(GarrisonError):
    """Base of the EDN codec errors."""


class EdnSyntaxError(EdnError, ValueError):
    """Text that is not valid EDN.

    ``line`` and ``column`` are 1-based; ``excerpt`` is a short piece of the
    input around the error; ``source`` names the file when known.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int,
        column: int,
        excerpt: str = "",
        source: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.excerpt = excerpt
        self.source = source
        if source:
            text = f"{source}:{line}:{column}: {message}"
        else:
            text = f"{message} at line {line}, column {column}"
        if excerpt:
            text += f" near {excerpt!r}"
        super().__init__(text)

    def with_source(self, source: str) -> EdnSyntaxError:
        """Return a copy of this error that names the file it came from."""
        err = type(self)(
            self.reason, line=self.line, column=self.column, excerpt=self.excerpt, source=source
        )
        err.__cause__ = self.__cause__
        return err


class EdnDepthError(EdnSyntaxError):
    """Nesting deeper than the reader's or writer's depth limit."""


class EdnEncodeError(EdnError, TypeError):
    """A Python value that has no EDN form (or one the options forbid)."""


class StoreError(GarrisonError):
    """Errors of the data stores. ``key`` names the entry when there is one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{message} (key {key!r})" if key is not None else message)
        self.key = key


class StoreLoadError(StoreError):
    """A store file could not be read. The file was left exactly as it was."""


class SchemaVersionError(StoreError):
    """The database was written by a newer schema version than this garrison knows."""


class FlushError(StoreError):
    """The EDN writer failed to write the file. The data is still held in memory."""


class RefusedWriteError(StoreError):
    """A write refused before anything was written: a store the current mode writes
    cannot hold its key or value. ``key`` names the key; the cause says why."""


class SchemaError(RefusedWriteError):
    """Entries that break their kind's schema (``[components.database.schema]``).

    ``violations`` lists each rule broken (a
    :class:`~garrison.stores.Violation`: ``key``, ``attribute``, ``rule``,
    ``value``); ``key``, ``attribute`` and ``rule`` are the first one's. A
    refused write wrote nothing; at a start, the stored data breaks a changed
    schema and the database was not opened.
    """

    def __init__(self, message: str, *, violations: Sequence[Any]) -> None:
        first = violations[0] if violations else None
        # The message names the key already: not StoreError's "(key ...)" suffix.
        GarrisonError.__init__(self, message)
        self.key = getattr(first, "key", None)
        self.violations = tuple(violations)
        self.attribute: str | None = getattr(first, "attribute", None)
        self.rule: str | None = getattr(first, "rule", None)


class ValidationError(StoreError):
    """The EDN and SQLite sides disagree."""


class VersionConflictError(StoreError):
    """A compare-and-set put (``put(key, value, if_version=n)``) found the key at another
    version; nothing was written. ``expected`` is ``n``, ``current`` the version
    stored (``0``: the key does not exist)."""

    def __init__(self, key: str, *, expected: int, current: int) -> None:
        found = "the key does not exist" if current == 0 else f"it is at version {current}"
        super().__init__(
            f"version conflict: the put expected version {expected}, but {found}; "
            "nothing was written",
            key=key,
        )
        self.expected = expected
        self.current = current


class ChangesLostError(StoreError):
    """A change-feed subscriber missed changes; read the current state again and re-watch.

    ``prefix`` is the watched prefix; ``reason`` is ``"overflow"`` (the
    subscriber fell more than its buffer behind), ``"restart"`` (the database
    component restarted) or ``"restore"`` (the data was replaced from a backup).
    """

    def __init__(self, message: str, *, prefix: str, reason: str) -> None:
        super().__init__(message)
        self.prefix = prefix
        self.reason = reason


class QueryError(StoreError):
    """A Datalog query that cannot be answered: ``clause`` names the part at fault
    (``":find"``, ``":in"``, a ``:where`` clause as EDN text, or ``"query"``)."""

    def __init__(self, message: str, *, clause: str) -> None:
        super().__init__(f"{clause}: {message}")
        self.clause = clause
