"""The messages the ``database`` component handles, one frozen dataclass per operation.

Application code normally uses the :class:`~garrison.components.database.Store`
facade, which sends these with ``ask``. Sending them directly works too::

    await rt.ref("database").ask(Put("session/abc", {"user": 42}))

Keys are key texts (a ``str`` means the keyword with that text, with or
without its colon) or any EDN key (see :func:`garrison.stores._keys.key_text`).
A message normalises its keys and prefixes when it is built, so its fields
hold key texts and nothing below checks them again: ``Put(":a/b", 1).key`` is
``"a/b"``, and a write whose key has no EDN form raises
:class:`~garrison.RefusedWriteError` naming the key as the message is built.
Replies are given per message; replies name keys by their key text.

The grouped messages below write their ``__init__`` out (the dataclass keeps
it): one call less per operation than a generated ``__init__`` plus
``__post_init__``, on the path of every put and get. The others normalise in
``__post_init__``.

:class:`Put`, :class:`PutMany`, :class:`Delete` and :class:`DeleteMany` are
*writes*; :class:`Get` and :class:`GetMany` are *point reads*. The actor groups
consecutive writes into one transaction and consecutive point reads into one
query; every other message is handled on its own, in mailbox order.

Every message that changes data carries an ``audit`` (who and why, see
:func:`garrison.stores.acting_as`), taken from the sender's context when the
message is built; the database actor runs it under that audit context, and
groups only writes of one audit into one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path  # noqa: TC003 - a dataclass field type, resolved at run time
from typing import Any

from garrison.exceptions import StoreError
from garrison.stores import (
    MISSING,
    Audit,
    current_audit,
    key_prefix,
    lookup_text,
    write_key_text,
)

__all__ = [
    "Backup",
    "Changes",
    "Clear",
    "Count",
    "Delete",
    "DeleteMany",
    "Events",
    "Find",
    "Flush",
    "Get",
    "GetAsOf",
    "GetMany",
    "GetStatistics",
    "History",
    "Put",
    "PutIfVersion",
    "PutMany",
    "Query",
    "Restore",
    "Revert",
    "Scan",
    "SetMode",
    "Subscribe",
    "WatchAttributes",
]


@dataclass(frozen=True, slots=True)
class Put:
    """Set ``key`` to ``value``. Replies ``None`` once the write is committed.

    With ``durability = "debounced"``: once it is admitted and readable (it is
    committed within ``flush_max_delay``).
    """

    key: Any
    value: Any
    audit: Audit = field(default_factory=current_audit)

    def __init__(self, key: Any, value: Any, audit: Audit | None = None) -> None:
        object.__setattr__(self, "key", write_key_text(key))
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "audit", current_audit() if audit is None else audit)


@dataclass(frozen=True, slots=True)
class PutIfVersion:
    """Set ``key`` to ``value`` only if it is at version ``expected`` (``0``: absent).

    Replies ``None`` once committed (in every durability setting: the version
    is compared in the write's transaction); a key at another version raises
    :class:`~garrison.exceptions.VersionConflictError` naming it, with
    nothing written.
    """

    key: Any
    value: Any
    expected: int
    audit: Audit = field(default_factory=current_audit)

    def __init__(self, key: Any, value: Any, expected: int, audit: Audit | None = None) -> None:
        if type(expected) is not int or expected < 0:
            raise StoreError(f"if_version must be an integer 0 or more, not {expected!r}")
        object.__setattr__(self, "key", write_key_text(key))
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "expected", expected)
        object.__setattr__(self, "audit", current_audit() if audit is None else audit)


@dataclass(frozen=True, slots=True)
class PutMany:
    """Set several keys in one transaction. Replies ``None`` as :class:`Put` does."""

    items: tuple[tuple[Any, Any], ...]
    audit: Audit = field(default_factory=current_audit)

    def __init__(self, items: tuple[tuple[Any, Any], ...], audit: Audit | None = None) -> None:
        object.__setattr__(self, "items", tuple([(write_key_text(k), v) for k, v in items]))
        object.__setattr__(self, "audit", current_audit() if audit is None else audit)


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove ``key``. Replies ``True`` if it existed."""

    key: Any
    audit: Audit = field(default_factory=current_audit)

    def __init__(self, key: Any, audit: Audit | None = None) -> None:
        object.__setattr__(self, "key", lookup_text(key))
        object.__setattr__(self, "audit", current_audit() if audit is None else audit)


@dataclass(frozen=True, slots=True)
class DeleteMany:
    """Remove several keys. Replies how many existed."""

    keys: tuple[Any, ...]
    audit: Audit = field(default_factory=current_audit)

    def __init__(self, keys: tuple[Any, ...], audit: Audit | None = None) -> None:
        object.__setattr__(self, "keys", tuple([lookup_text(k) for k in keys]))
        object.__setattr__(self, "audit", current_audit() if audit is None else audit)


@dataclass(frozen=True, slots=True)
class Clear:
    """Remove every key starting with ``prefix`` (``""``: every key). Replies how many.

    In the modes that write SQLite it is one transaction there, recorded in the
    history as one delete per key; the EDN file loses the keys at its next
    flush. Watchers see a delete per key, in key order; the read cache forgets them.
    """

    prefix: str = ""
    audit: Audit = field(default_factory=current_audit)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))


@dataclass(frozen=True, slots=True)
class Get:
    """Read ``key``. Replies its value, or ``default`` when it has none."""

    key: Any
    default: Any = None

    def __init__(self, key: Any, default: Any = None) -> None:
        object.__setattr__(self, "key", lookup_text(key))
        object.__setattr__(self, "default", default)


@dataclass(frozen=True, slots=True)
class GetMany:
    """Read several keys. Replies ``{key_text: value}`` for those that exist."""

    keys: tuple[Any, ...]

    def __init__(self, keys: tuple[Any, ...]) -> None:
        object.__setattr__(self, "keys", tuple([lookup_text(k) for k in keys]))


@dataclass(frozen=True, slots=True)
class GetAsOf:
    """Read the value ``key`` had at ``at`` (aware datetime or POSIX seconds), from history.

    Replies the value or ``default``. Needs the SQLite side (any mode but ``edn-only``).
    """

    key: Any
    at: Any
    default: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", lookup_text(self.key))


@dataclass(frozen=True, slots=True)
class Scan:
    """Entries whose key text starts with ``prefix``, in key order, paginated.

    Replies a list of ``(key_text, value)``.
    """

    prefix: str = ""
    after: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))
        if self.after is not None:
            object.__setattr__(self, "after", lookup_text(self.after))


@dataclass(frozen=True, slots=True)
class Count:
    """How many keys start with ``prefix``. Replies an ``int``."""

    prefix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))


@dataclass(frozen=True, slots=True)
class Find:
    """Entries whose value at the JSON ``path`` matches (see ``SqliteStore.find``).

    Replies a list of ``(key_text, value)``. Needs the SQLite side.
    """

    path: str
    eq: Any = MISSING
    lt: Any = MISSING
    le: Any = MISSING
    gt: Any = MISSING
    ge: Any = MISSING
    prefix: str = ""
    kind: str | None = None
    after: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))
        if self.after is not None:
            object.__setattr__(self, "after", lookup_text(self.after))


@dataclass(frozen=True, slots=True)
class Changes:
    """The audit trail: changes after ``since`` under ``prefix``, by ``actor`` (any: ``None``).

    Replies a list of ``Change`` in commit order (SQLite side); page with
    ``after_seq`` (the last change's ``seq``) and ``limit``.
    """

    since: Any = 0
    prefix: str = ""
    actor: str | None = None
    after_seq: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))


@dataclass(frozen=True, slots=True)
class Events:
    """The recorded events after ``since`` (by ``actor``). Replies a list of ``AuditEvent``."""

    since: Any = 0
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """A Datalog query over the attribute index (see ``SqliteStore.query``).

    Replies the result tuples, or with ``explain`` the SQL statement and its
    plan. Needs the SQLite side.
    """

    query: Any
    inputs: tuple[Any, ...] = ()
    explain: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """Every recorded change of ``key``, oldest first. Replies a list of ``Change``."""

    key: Any
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", lookup_text(self.key))


@dataclass(frozen=True, slots=True)
class SetMode:
    """Switch the mode router to ``mode``. Replies the recorded ``ModeSwitch``."""

    mode: str
    force: bool = False
    reason: str = ""
    audit: Audit = field(default_factory=current_audit)


@dataclass(frozen=True, slots=True)
class Flush:
    """Wait until every earlier write is committed and on disk in the EDN file too.

    Replies ``None``.
    """


@dataclass(frozen=True, slots=True)
class Backup:
    """Copy the SQLite database to ``path`` while in use. Replies the absolute path.

    An existing file at ``path`` is replaced only with ``overwrite=True``.
    """

    path: Path
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class Restore:
    """Replace the SQLite data with the backup at ``path`` (checked first).

    Replies the mode the backup had recorded, or ``None``.

    Watchers lose their place (:class:`ChangesLostError`, reason ``"restore"``)
    and the read cache is emptied.
    """

    path: Path
    audit: Audit = field(default_factory=current_audit)


@dataclass(frozen=True, slots=True)
class Revert:
    """Give ``keys`` (a key prefix, or a tuple of keys) the values they had at ``to``.

    ``to`` is an aware datetime or POSIX seconds. Replies the list of
    :class:`~garrison.stores.Reversion` (each key that changes, its value now
    and the value it gets back). The changes are new writes, in one SQLite
    transaction, recorded with the audit and an event naming the revert;
    ``dry_run`` writes nothing. Needs a mode that writes SQLite.
    """

    keys: str | tuple[Any, ...]
    to: Any
    dry_run: bool = False
    audit: Audit = field(default_factory=current_audit)

    def __post_init__(self) -> None:
        if isinstance(self.keys, str):
            object.__setattr__(self, "keys", key_prefix(self.keys))
        else:
            object.__setattr__(self, "keys", tuple([lookup_text(k) for k in self.keys]))


@dataclass(frozen=True, slots=True)
class GetStatistics:
    """Replies a :class:`DatabaseStatistics` snapshot."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Start a change feed of keys under ``prefix``. Replies a :class:`Subscription`.

    ``buffer`` overrides the configured ``watch_buffer`` for this subscriber.
    """

    prefix: str = ""
    buffer: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))


@dataclass(frozen=True, slots=True)
class WatchAttributes:
    """Follow the commits that touch ``reads`` under ``prefix``. Replies an ``AttributeWatch``.

    ``reads`` are attribute spellings (``"*"``: any attribute); ``None``: any
    change under the prefix. What a Datalog or ``find`` live query rides on.
    """

    prefix: str = ""
    reads: frozenset[str] | None = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", key_prefix(self.prefix))
