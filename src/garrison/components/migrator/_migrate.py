"""The migration engine: ``memory.edn`` into the database, batch by batch, by message.

The engine never touches the store: it sends its batches and reads to the
actor that owns it (:class:`~garrison.components.database.DatabaseLink`),
inside a runtime the ``database`` component, elsewhere an owner opened for
the run (:func:`~garrison.components.database.open_sqlite_owner`). So the
database's read cache forgets what a batch wrote, watchers see it, and its
writes are traced like any other.

1. The whole file is parsed first (in a worker thread, see
   :func:`read_source`): a file that does not parse stops the run with file,
   line and column, and nothing is written.
2. The selected entries are ordered by entity kind (:func:`plan_entries`)
   and written in batches of ``batch_size`` keys of one kind, each batch one
   ``put_many`` transaction that also stores the key's kind.
3. Each batch's values are encoded once, in a worker thread, while the batch
   before it is written (:class:`~garrison.components.migrator._ahead.EncodeAhead`,
   :func:`~garrison.stores._sqlite_bulk.encode_rows`); the texts serve the
   comparison below, the write (:func:`~garrison.stores._sqlite_bulk.put_rows`,
   exactly what ``put_many`` writes, sent as one
   :class:`~garrison.components.database.LoadRows`) and the digests a validation of the same
   parse compares with (:attr:`SourceFile.stored_digests`).
   Before a batch is written, the database's current values of its keys are
   read: a key already holding the same value is left alone (so running the
   migration again changes nothing, not even the history), a key holding
   *different* data is a conflict, reported with a short diff and left as it
   is unless ``overwrite=True``. When none of the keys exists (a first
   migration), that read and the write are one transaction
   (:func:`~garrison.stores._sqlite_bulk.put_new_rows`): no thread hop
   between them, and no other writer either.
4. Each batch's transaction also stores a progress record in the meta table
   (``garrison.migrator.progress``): the file's SHA-256, the options, and how
   many keys of the plan are done, so a batch and its record commit together
   (a batch with nothing to write stores the record alone). ``resume=True``
   continues after the last recorded batch when the file and options are the
   same. Keys written again anyway (a record from an older version, a run
   started over) are found unchanged (step 3), so nothing is written twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from garrison.components.database import DatabaseLink, LoadRows, open_sqlite_owner
from garrison.components.migrator._ahead import EncodeAhead as _EncodeAhead
from garrison.components.migrator._diff import same_as_stored, short_diff
from garrison.components.migrator._heap import heap_frozen
from garrison.components.migrator._plan import (
    DEFAULT_KIND_MAPPING,
    DEFAULT_ORDER,
    INDEX_KIND,
    IndexKeys,
    KindMapping,
    dropped_index_keys,
    plan_entries,
)
from garrison.components.migrator._progress import MigrationProgress
from garrison.components.migrator._report import MigrationSummary
from garrison.components.migrator._source import (
    SourceFile,
    absolute_path,
    read_source_reporting,
)
from garrison.edn import MAX_DIGITS
from garrison.exceptions import StoreError
from garrison.stores import DEFAULT_ACTOR, Audit, PostgresStore, SqliteStore, current_audit
from garrison.telemetry import metrics
from garrison.tracing import MIGRATOR_SCOPE, tracer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from os import PathLike

    from garrison.components.migrator._progress import ProgressListener
    from garrison.stores import EncodedRow

__all__ = ["PROGRESS_META", "migrate"]

#: The meta-table entry holding the progress record of the last migration.
PROGRESS_META: Final = "garrison.migrator.progress"
# 2: plans order keys by key text within a kind (1 used file order), so a
# record of version 1 counts keys of another order and is not resumed from
# (the run starts over; keys already written are found unchanged).
_RECORD_VERSION: Final = 2
_DIFFS_KEPT: Final = 50
_CONFLICTS_KEPT: Final = 1000


def _plan_identity(
    source: SourceFile,
    prefixes: Sequence[str],
    kinds: KindMapping,
    order: Sequence[str],
    index_keys: IndexKeys,
) -> dict[str, Any]:
    """What must be the same for a resume to continue where the last run stopped."""
    identity: dict[str, Any] = {
        "source": source.path,
        "sha256": source.sha256,
        "size": source.size,
        "prefixes": list(prefixes),
        "order": list(order),
        "kinds": {
            "namespaces": dict(sorted(kinds.namespaces.items())),
            "keys": dict(sorted(kinds.keys.items())),
            "default": kinds.default,
        },
    }
    if index_keys != "keep":  # a record of a run that kept them has no such entry
        identity["index_keys"] = index_keys
    return identity


async def _resume_point(
    store: DatabaseLink | None, identity: dict[str, Any], total: int
) -> tuple[int, dict[str, Any]]:
    """How many keys of the plan an earlier run committed, and its record ((0, {}): nothing)."""
    if store is None:
        return 0, {}
    record = await store.get_meta(PROGRESS_META)
    if not isinstance(record, dict) or record.get("version") != _RECORD_VERSION:
        return 0, {}
    if record.get("finished"):
        return 0, {}  # nothing was interrupted: a full (idempotent) pass
    previous = record.get("plan")
    if previous != identity:
        changed = sorted(
            name
            for name in identity
            if not isinstance(previous, dict) or previous.get(name) != identity[name]
        )
        raise StoreError(
            f"cannot resume: the interrupted run had a different {', '.join(changed)} "
            f"(it read {record.get('plan', {}).get('source')!r}); run without --resume "
            "to migrate again from the start (unchanged keys are left alone)"
        )
    done = int(record.get("done", 0))
    return min(max(done, 0), total), record


def _record(
    identity: dict[str, Any], summary: MigrationSummary, done: int, *, finished: bool
) -> dict[str, Any]:
    return {
        "version": _RECORD_VERSION,
        "plan": identity,
        "done": done,
        "total": summary.total,
        "finished": finished,
        "written": summary.written,
        "unchanged": summary.unchanged,
        "conflicts": len(summary.conflicts) + summary.unlisted_conflicts,
        # Kept so that a resumed run still reports (and exits 1 for) the
        # conflicts found before the interruption; capped to keep it small.
        "conflict_keys": summary.conflicts[:_CONFLICTS_KEPT],
        "updated_at": datetime.now(UTC).isoformat(),
    }


def _compare_batch(
    batch: list[tuple[str, Any]], rows: list[EncodedRow], stored: dict[str, str]
) -> list[tuple[str, bool, Any]]:
    """For each existing key of the batch: (key, same?, stored value) (runs in a thread)."""
    out: list[tuple[str, bool, Any]] = []
    for (key, value), row in zip(batch, rows, strict=True):
        text = stored.get(key)
        if text is not None:
            same, decoded = same_as_stored(value, text, key, encoded=row[3])
            out.append((key, same, decoded))
    return out


def _batches(
    plan: list[tuple[str, list[str]]], skip: int, batch_size: int
) -> Iterator[tuple[str, list[str], int]]:
    """(kind, keys, keys of the plan done after it) of every batch after the first ``skip`` keys."""
    position = 0
    for kind, keys in plan:
        for first in range(max(0, skip - position), len(keys), batch_size):
            batch_keys = keys[first : first + batch_size]
            yield kind, batch_keys, position + first + len(batch_keys)
        position += len(keys)


async def migrate(
    store: DatabaseLink | SqliteStore | PostgresStore | None,
    edn: str | PathLike[str],
    *,
    prefixes: Sequence[str] = (),
    batch_size: int = 1000,
    resume: bool = False,
    dry_run: bool = False,
    overwrite: bool = False,
    kinds: KindMapping = DEFAULT_KIND_MAPPING,
    order: Sequence[str] = DEFAULT_ORDER,
    index_keys: IndexKeys = "keep",
    listener: ProgressListener | None = None,
    progress: MigrationProgress | None = None,
    database: str | None = None,
    source: SourceFile | None = None,
    max_digits: int = MAX_DIGITS,
) -> MigrationSummary:
    """Migrate the EDN file ``edn`` into the database ``store``; return what happened.

    ``store`` is the actor owning the database (a :class:`DatabaseLink`), or
    an open :class:`SqliteStore` or :class:`PostgresStore` with no owner
    yet, which gets one for the run (:func:`open_sqlite_owner`).

    ``prefixes`` are key-text prefixes (see :func:`normalize_prefixes`);
    empty means every key. ``index_keys="drop"`` leaves out the keys
    ``kinds`` makes kind ``index`` (the legacy hand-kept index keys; see
    :data:`IndexKeys`), listed in :attr:`MigrationSummary.dropped_index_keys`.
    ``store`` may be ``None`` only for a dry run
    against a database that does not exist yet. ``listener`` is called with
    ``progress`` after every batch. ``source`` is the file already read with
    :func:`read_source` (so a caller can refuse a bad file before it opens,
    and so creates, the database); ``max_digits`` is the codec's limit on the
    digits of one number when the file is read here. Raises
    :class:`EdnSyntaxError` (file, line, column) for a file that does not
    parse, with nothing written.
    Keys another writer touched around a batch's write are reported
    (:attr:`MigrationSummary.raced`); the database component queues them for
    repair (their SQLite value may be the file's older one).

    >>> async with SqliteStore("garrison.db") as store:           # doctest: +SKIP
    ...     summary = await migrate(store, "memory.edn", prefixes=["session/"])
    ...     print(summary.render())
    """
    if isinstance(store, (SqliteStore, PostgresStore)):
        async with open_sqlite_owner(store) as link:
            return await migrate(
                link, edn, prefixes=prefixes, batch_size=batch_size, resume=resume,
                dry_run=dry_run, overwrite=overwrite, kinds=kinds, order=order,
                index_keys=index_keys, listener=listener, progress=progress, database=database,
                source=source, max_digits=max_digits,
            )  # fmt: skip
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if store is None and not dry_run:
        raise StoreError("a migration that writes needs an open store")
    path = absolute_path(edn)
    state = progress if progress is not None else MigrationProgress("migrate")
    notify = listener if listener is not None else (lambda _progress: None)
    started = time.perf_counter()
    with tracer(MIGRATOR_SCOPE).start_as_current_span("migrator.migrate") as span:
        span.set_attribute("garrison.migration.source", str(path))
        span.set_attribute("garrison.migration.dry_run", dry_run)
        if source is None:
            source = await read_source_reporting(
                path, state, notify, prefixes=prefixes, max_digits=max_digits
            )
        else:
            state.set_phase("read", total=source.size, done=source.size, unit="bytes")
            notify(state)
        dropped = dropped_index_keys(source.entries, kinds, index_keys)
        plan = plan_entries(source.entries, kinds, order)
        if dropped:
            plan = [(kind, keys) for kind, keys in plan if kind != INDEX_KIND]
        total = len(source.entries) - len(dropped)
        summary = MigrationSummary(
            source=str(path),
            database=database or (store.path if store is not None else "(none)"),
            dry_run=dry_run,
            total=total,
            file_keys=source.total_keys,
            bytes_read=source.size,
            by_kind={kind: len(keys) for kind, keys in plan},
            order=[kind for kind, _ in plan],
            filtered_out=source.filtered_out,
            lenient_keys=source.lenient_keys,
            duplicate_keys=source.duplicate_keys,
            dropped_index_keys=sorted(dropped),
        )
        identity = _plan_identity(source, prefixes, kinds, order, index_keys)
        skip, earlier = await _resume_point(store, identity, total) if resume else (0, {})
        summary.resumed = resume and skip > 0
        summary.resumed_from = skip
        if earlier:
            listed = [str(key) for key in earlier.get("conflict_keys", [])]
            summary.conflicts.extend(listed)
            summary.unlisted_conflicts = max(0, int(earlier.get("conflicts", 0)) - len(listed))
        instruments = metrics()
        instruments.migration_remaining.add(total - skip)
        state.set_phase("migrate", total=total, done=skip)
        notify(state)
        entries = source.entries
        current_kind = None
        # Batch n + 1 is encoded in a worker thread while batch n is compared
        # and written: SQLite releases the GIL while it steps (most of a
        # write), and the C value encoder is quick enough to fit beside it.
        # The parsed file is left out of the collector's passes (see _heap).
        with heap_frozen():
            ahead = _EncodeAhead(_batches(plan, skip, batch_size), entries, digests=not dry_run)
            try:
                while (encoded := await ahead.next()) is not None:
                    kind, batch, done, rows, row_digests, payload = encoded
                    if kind != current_kind:
                        current_kind = state.kind = kind
                        span.add_event(
                            "migrator.kind",
                            {"garrison.migration.kind": kind, "keys": summary.by_kind[kind]},
                        )
                    await _one_batch(
                        store,
                        batch,
                        rows,
                        summary,
                        source.stored_digests,
                        row_digests=row_digests,
                        payload=payload,
                        encode_next=ahead.start,
                        record=partial(_record, identity, summary, done, finished=False),
                        dry_run=dry_run,
                        overwrite=overwrite,
                    )
                    instruments.migration_remaining.add(-len(batch))
                    state.done = done
                    notify(state)
                if store is not None and not dry_run:
                    await store.set_meta(
                        PROGRESS_META, _record(identity, summary, total, finished=True)
                    )
            except BaseException:
                # Keys not processed are no longer "remaining" for this (ended) run.
                instruments.migration_remaining.add(-(total - state.done))
                raise
            finally:
                ahead.close()
        summary.seconds = time.perf_counter() - started
        state.set_phase("done", total=total, done=total)
        notify(state)
        span.set_attributes(
            {
                "garrison.migration.keys": total,
                "garrison.migration.written": summary.written,
                "garrison.migration.unchanged": summary.unchanged,
                "garrison.migration.conflicts": len(summary.conflicts),
                "garrison.migration.batches": summary.batches,
            }
        )
    return summary


async def _one_batch(
    store: DatabaseLink | None,
    batch: list[tuple[str, Any]],
    rows: list[EncodedRow],
    summary: MigrationSummary,
    digests: dict[str, bytes],
    *,
    row_digests: list[bytes],
    payload: str | bool | None,
    encode_next: Callable[[], None],
    record: Callable[[], dict[str, Any]],
    dry_run: bool,
    overwrite: bool,
) -> None:
    """Compare one batch with the database and write what is new or (if asked) different.

    ``rows`` are the batch's values encoded (:func:`encode_rows`), in batch
    order, ``row_digests`` their texts' digests (empty for a dry run) and
    ``payload`` their rows_json (made while encoding, see EncodeAhead);
    ``digests`` receives the digest of every key the database now holds the
    file's value for (see :attr:`SourceFile.stored_digests`). ``record()``
    is the progress record after this batch, committed in the batch's own
    transaction. ``encode_next()`` starts encoding the next batch (on the
    loop); it is called as soon as this batch's Python work leaves the GIL
    to SQLite, so that the two do not wait on each other for it.
    """
    keys = [key for key, _ in batch]
    if store is not None and not dry_run:
        loop = asyncio.get_running_loop()
        # A batch none of whose keys the database holds yet (a first
        # migration) is checked and written in one transaction: nothing to
        # compare, and no other writer between the check and the write, so
        # no race to look for afterwards.
        loaded = await store.load(
            LoadRows(
                rows,
                [value for _, value in batch],
                meta=(PROGRESS_META, {**record(), "written": summary.written + len(rows)}),
                only_new=True,
                writing=partial(loop.call_soon_threadsafe, encode_next),
                payload=payload,
                audit=migrator_audit(),
            )
        )
        if loaded.written:
            summary.written += len(rows)
            summary.batches += 1
            digests.update(zip(keys, row_digests, strict=True))
            metrics().migration_keys.add(len(rows), {"garrison.migration.outcome": "migrated"})
            return
        # Some keys exist (nothing was written): compare, then write what is new.
        encode_next()
        stored, before = loaded.stored, loaded.versions
    else:
        encode_next()
        # Values and versions read together: the versions are those the decision
        # to write (or not) was made on, which the race check compares with.
        stored, before = await store.read_stored(keys) if store is not None else ({}, {})
    writes = rows
    written_values = [value for _, value in batch]
    conflicts: set[str] = set()
    if stored:
        verdicts = await asyncio.to_thread(_compare_batch, batch, rows, stored)
        values = dict(batch)
        skip: set[str] = set()
        for key, is_same, existing in verdicts:
            if is_same:
                summary.unchanged += 1
                skip.add(key)
            elif overwrite:
                summary.overwritten += 1
            else:
                summary.conflicts.append(key)
                skip.add(key)
                conflicts.add(key)
                if len(summary.diffs) < _DIFFS_KEPT:
                    summary.diffs[key] = short_diff(values[key], existing)
        writes = [row for row in rows if row[0] not in skip]
        written_values = [value for key, value in batch if key not in skip]
    summary.written += len(writes)
    summary.batches += 1
    if not dry_run and store is not None:
        # The progress record (counts included) commits with the batch it
        # counts: a resume never finds a batch committed but not recorded.
        # Reading a key and writing the batch are two messages, so a write by
        # the application between them (possible in dual-write while the
        # runtime serves) would be overwritten by the file's older value. Each
        # write adds one to a key's version, so any other number than ours
        # means someone else wrote it too: reported (never silent), queued for
        # repair by the database, and a validation shows what it holds.
        loaded = await store.load(
            LoadRows(
                writes,
                written_values,
                meta=(PROGRESS_META, record()),
                versions=before,
                audit=migrator_audit(),
            )
        )
        summary.raced += loaded.raced
    # The database now holds the file's value for every key but the conflicts
    # left alone; a validation right after compares stored texts with these.
    if not row_digests:
        pass  # a dry run: the database holds nothing new
    elif conflicts:
        digests.update(
            (key, digest)
            for key, digest in zip(keys, row_digests, strict=True)
            if key not in conflicts
        )
    else:
        digests.update(zip(keys, row_digests, strict=True))
    if not dry_run:
        outcome = metrics().migration_keys
        outcome.add(len(writes), {"garrison.migration.outcome": "migrated"})
        if len(writes) != len(batch):
            outcome.add(len(batch) - len(writes), {"garrison.migration.outcome": "skipped"})


#: The actor of the migrator's writes.
MIGRATOR_ACTOR = "migrator"


def migrator_audit() -> Audit:
    """The audit of the migrator's writes: actor ``migrator``; the reason given by
    whoever runs it (an ``acting_as`` block), else who that is (``run by cli:ann``)."""
    outer = current_audit()
    if outer.reason is not None:
        return Audit(MIGRATOR_ACTOR, outer.reason)
    if outer.actor in (DEFAULT_ACTOR, MIGRATOR_ACTOR):
        return Audit(MIGRATOR_ACTOR)
    return Audit(MIGRATOR_ACTOR, f"run by {outer.actor}")
