"""The messages the operator commands (``garrison put``, ``stats``, ...) add to the usual ones.

A writing command runs the ``database`` component in its own process and
sends it the :class:`Store` facade's messages; before a write in the modes
that write the EDN file it sends :class:`WriteEdnFirst`, so that a write the
file cannot take leaves both sides untouched (a command cannot leave the
data in memory for the EDN writer to retry, as a long-running runtime does).

A reading command runs beside a possibly running garrison, on the actor of
:func:`~garrison.components.database.open_sqlite_owner` (no owner lock), and
reads SQLite with :class:`~garrison.components.database.GetMany`,
:class:`~garrison.components.database.Scan`,
:class:`~garrison.components.database.Backup`, the audit trail's
:class:`~garrison.components.database.History`,
:class:`~garrison.components.database.Changes` and
:class:`~garrison.components.database.Events`, and the messages below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path  # noqa: TC003 - a dataclass field type, resolved at run time
from typing import TYPE_CHECKING, Any

from garrison.exceptions import StoreError
from garrison.stores import (
    MISSING,
    PostgresStore,
    RepairBacklog,
    count_history_pg,
    key_prefix,
    levelled_view,
    lookup_text,
    write_key_text,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from garrison.stores import (
        DatabaseStore,
        EdnFileStore,
        EntitySchema,
        KindMapping,
        ModeRouter,
        Reversion,
    )

__all__ = [
    "CheckSchema",
    "CountHistory",
    "LastSeq",
    "LevelledEdn",
    "ReindexKinds",
    "RevertPlan",
    "WriteEdnFirst",
    "count_history",
    "levelled_edn",
    "revert_plan",
    "write_edn_first",
]


@dataclass(frozen=True, slots=True)
class WriteEdnFirst:
    """Write ``changes`` (a value, or ``MISSING`` to delete) to the EDN file and wait for the disk.

    Only in the modes that write the EDN file (elsewhere it does nothing but
    admit the values). Every value is admitted first (a refused one raises
    :class:`~garrison.RefusedWriteError` and nothing is touched). When the
    file cannot be written the in-memory map is put back as it was and a
    :class:`~garrison.StoreError` saying that nothing was written is raised.
    The write message sent next reaches SQLite (or, when SQLite fails,
    records the keys for repair from the file).

    ``clear``: instead of ``changes``, remove every key of the EDN file under
    this prefix; the keys are first recorded as behind in SQLite, so a kill
    between the file and SQLite's transaction is repaired from the file.
    """

    changes: Sequence[tuple[str, Any]] = ()
    clear: str | None = None

    def __post_init__(self) -> None:
        changes = tuple([
            (lookup_text(k) if v is MISSING else write_key_text(k), v) for k, v in self.changes
        ])  # fmt: skip
        object.__setattr__(self, "changes", changes)
        if self.clear is not None:
            object.__setattr__(self, "clear", key_prefix(self.clear))


@dataclass(frozen=True, slots=True)
class ReindexKinds:
    """Apply ``mapping`` to every stored row's kind (see ``SqliteStore.reindex_kinds``).

    Replies how many rows changed kind.
    """

    mapping: KindMapping


@dataclass(frozen=True, slots=True)
class CheckSchema:
    """Every rule the SQLite side's entries break (see ``SqliteStore.schema_violations``).

    Replies the list of :class:`~garrison.stores.Violation`, each entry
    checked by its stored kind (``garrison schema check``).
    """

    schema: EntitySchema = field(compare=False)


@dataclass(frozen=True, slots=True)
class CountHistory:
    """How many rows the SQLite side's history holds."""


@dataclass(frozen=True, slots=True)
class LevelledEdn:
    """The EDN file's map ``data`` as the database serves it in the modes that write both sides.

    SQLite's committed state replaces the file's for the keys SQLite changed
    after the file's recorded level, except the keys of the repair backlog at
    ``backlog`` (see :func:`garrison.stores.levelled_view`). Replies ``data``, updated.
    """

    data: dict[str, Any] = field(compare=False)
    backlog: Path


@dataclass(frozen=True, slots=True)
class LastSeq:
    """The ``seq`` of the newest history row (``0`` for an empty history): what ``watch`` polls."""


@dataclass(frozen=True, slots=True)
class RevertPlan:
    """What reverting ``keys`` (a key prefix, or a tuple of keys) to ``to`` would change.

    ``to`` is an aware datetime or POSIX seconds. Replies the list of
    :class:`~garrison.stores.Reversion` that
    :class:`~garrison.components.database.Revert` would write, writing nothing
    (``garrison revert --dry-run``, beside a running garrison).
    """

    keys: str | tuple[str, ...]
    to: Any

    def __post_init__(self) -> None:
        if isinstance(self.keys, str):
            object.__setattr__(self, "keys", key_prefix(self.keys))
        else:
            object.__setattr__(self, "keys", tuple([lookup_text(k) for k in self.keys]))


async def write_edn_first(router: ModeRouter, message: WriteEdnFirst) -> list[str]:
    """:class:`WriteEdnFirst` on ``router``; returns the keys it changed in the EDN file."""
    changes = list(message.changes)
    for key, value in changes:
        if value is not MISSING:
            router.admit(key, value)  # refused: nothing is touched
    if not router.mode.writes_edn:
        return []
    edn = router.edn
    if message.clear is not None:
        keys = await edn.keys(message.clear)
        await router.note_sqlite_behind(keys)
        changes = [(key, MISSING) for key in keys]
    before = await edn.get_many([key for key, _ in changes])
    await _apply(edn, changes)
    try:
        await edn.flush()
    except StoreError as exc:
        await _apply(edn, [(key, before.get(key, MISSING)) for key, _ in changes])
        raise StoreError(f"nothing was written: the EDN side failed: {exc}") from exc
    return [key for key, _ in changes]


async def _apply(edn: EdnFileStore, changes: Sequence[tuple[str, Any]]) -> None:
    gone = [key for key, value in changes if value is MISSING]
    if gone:
        await edn.delete_many(gone)
    kept = [(key, value) for key, value in changes if value is not MISSING]
    if kept:
        await edn.put_many(kept)


async def count_history(store: DatabaseStore) -> int:
    """:class:`CountHistory`."""
    if isinstance(store, PostgresStore):
        return await count_history_pg(store)
    rows = await store.connection.execute_fetchall("SELECT count(*) FROM history")
    return int(next(iter(rows))[0])


async def levelled_edn(store: DatabaseStore, message: LevelledEdn) -> dict[str, Any]:
    """:class:`LevelledEdn`."""
    backlog = RepairBacklog(message.backlog)
    await backlog.load()
    return await levelled_view(message.data, store, backlog)


async def revert_plan(store: DatabaseStore, message: RevertPlan) -> list[Reversion]:
    """:class:`RevertPlan`."""
    keys = message.keys
    return await store.revert_plan(keys if isinstance(keys, str) else list(keys), message.to)
