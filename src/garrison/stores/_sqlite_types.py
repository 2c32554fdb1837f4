"""The small value types of the SQLite store's API: changes, times, kind classifiers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from garrison.stores._kinds import DEFAULT_KIND_MAPPING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "AuditEvent",
    "Change",
    "Reversion",
    "KindClassifier",
    "by_namespace_kind",
    "classifier_for",
    "to_micros",
]

#: Names the entity kind of a key: ``(key_text, namespace) -> kind`` (``None``: no kind).
KindClassifier: TypeAlias = "Callable[[str, str | None], str | None]"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change of one key, from :meth:`SqliteStore.history` or ``changed_since``.

    ``seq`` orders all changes of the store; ``op`` is ``"put"`` or
    ``"delete"``; ``value`` is the value written (:data:`MISSING` for a
    delete); ``version`` counts the key's writes since it was created;
    ``at_micros`` is the commit time in microseconds since the epoch;
    ``actor`` and ``reason`` say who made it and why (see
    :func:`~garrison.stores.acting_as`; ``None`` for changes recorded before
    schema 3).
    """

    seq: int
    key: str
    op: Literal["put", "delete"]
    value: Any
    version: int
    at_micros: int
    actor: str | None = None
    reason: str | None = None

    @property
    def at(self) -> dt.datetime:
        """The commit time as an aware UTC datetime."""
        return _EPOCH + dt.timedelta(microseconds=self.at_micros)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A recorded write that changes no key by itself: a mode switch, a restore, a revert.

    ``event`` says what happened (``"mode edn-only -> dual-write"``); the keys
    a revert or a clear changes have their own :class:`Change` rows.
    """

    event: str
    actor: str | None
    reason: str | None
    at_micros: int

    @property
    def at(self) -> dt.datetime:
        """The commit time as an aware UTC datetime."""
        return _EPOCH + dt.timedelta(microseconds=self.at_micros)


@dataclass(frozen=True, slots=True)
class Reversion:
    """One key a revert changes: its value now and the value it gets back.

    ``current`` and ``target`` are :data:`MISSING` when the key is absent
    (now, or at the time reverted to: the revert deletes it).
    """

    key: str
    current: Any
    target: Any


def to_micros(moment: Any) -> int:
    """Microseconds since the epoch of an aware datetime or of POSIX seconds (int or float).

    A naive datetime is refused: guessing its zone would silently shift as-of
    reads by hours.
    """
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"a naive datetime is ambiguous; give it a time zone: {moment!r}")
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        return round(moment * 1_000_000)
    raise TypeError(f"expected an aware datetime or POSIX seconds, got {type(moment).__name__}")


def by_namespace_kind(_key: str, namespace: str | None) -> str | None:
    """The default classifier: a key's entity kind is its namespace."""
    return namespace


def classifier_for(kinds: Mapping[str, str] | KindClassifier | None) -> KindClassifier:
    """The classifier for a ``kinds`` option: default, mapping namespace → kind, or a callable.

    The default is the one kind mapping, :data:`DEFAULT_KIND_MAPPING` (the
    migrator's too, so a key gets the same kind however it is written). With
    a plain mapping, a namespace it does not list is its own kind.
    """
    if kinds is None:
        return DEFAULT_KIND_MAPPING
    if callable(kinds):
        return kinds
    table = dict(kinds)

    def by_table(_key: str, namespace: str | None) -> str | None:
        if namespace is None:
            return None
        return table.get(namespace, namespace)

    return by_table
