"""Validation: the EDN file and the database compared key by key.

Both sides are restricted to the same key prefixes. The result is a
:class:`~garrison.stores.Comparison` (the mode router's type: keys only in
the file, keys only in the database, keys whose values differ) plus a short
readable diff for the first differing keys. Values are compared strictly
(see :mod:`garrison.components.migrator._diff`); the database's values are
read a page at a time and compared in a worker thread, so the event loop
stays free.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace

from garrison.components.migrator._diff import (
    fetch_stored,
    same_as_stored,
    short_diff,
    text_digest,
)
from garrison.components.migrator._progress import MigrationProgress
from garrison.components.migrator._report import ValidationReport
from garrison.components.migrator._source import SourceFile, absolute_path, read_source
from garrison.stores import Comparison
from garrison.telemetry import metrics

if TYPE_CHECKING:
    from collections.abc import Sequence
    from os import PathLike

    from garrison.components.migrator._progress import ProgressListener
    from garrison.stores import SqliteStore

__all__ = ["validate"]

_PAGE: Final = 2000
_DIFFS_SHOWN: Final = 20

_tracer = trace.get_tracer("garrison.migrator")


def _compare_page(
    page: list[str],
    entries: dict[str, Any],
    stored: dict[str, str],
    want_diffs: int,
    digests: dict[str, bytes],
) -> tuple[list[str], dict[str, str]]:
    """Keys of ``page`` whose values differ, and diffs for the first ``want_diffs`` (a thread).

    ``digests`` holds the digests of the stored texts a migration of this
    very parse wrote: a stored text with the same digest is the encoding of
    the file's value, so that value need not be encoded again.
    """
    different: list[str] = []
    diffs: dict[str, str] = {}
    for key in page:
        text = stored.get(key)
        value = entries[key]
        if text is None:
            different.append(key)  # deleted from the database while we compared
            continue
        expected = digests.get(key)
        if expected is not None and text_digest(text) == expected:
            continue
        same, existing = same_as_stored(value, text, key)
        if not same:
            different.append(key)
            if len(diffs) < want_diffs:
                diffs[key] = short_diff(value, existing)
    return different, diffs


async def validate(
    store: SqliteStore,
    edn: str | PathLike[str],
    *,
    prefixes: Sequence[str] = (),
    listener: ProgressListener | None = None,
    progress: MigrationProgress | None = None,
    source: SourceFile | None = None,
) -> ValidationReport:
    """Compare every key under ``prefixes`` (every key when empty) of the file and the store.

    ``source`` is the file as :func:`read_source` read it for the migration
    just made; it is used only when the file still has the same SHA-256 (and
    the same prefixes), which proves a new parse would give the same values.
    Raises :class:`EdnSyntaxError` (file, line, column) when the file does
    not parse. The store may change while a validation runs; validate with
    writes paused (or in a mode that writes both sides) when it must be exact.
    """
    path = absolute_path(edn)
    state = progress if progress is not None else MigrationProgress("validate")
    notify = listener if listener is not None else (lambda _progress: None)
    started = time.perf_counter()
    with _tracer.start_as_current_span("migrator.validate") as span:
        span.set_attribute("garrison.migration.source", str(path))
        if source is not None and (
            source.path != str(path)
            or source.prefixes != tuple(prefixes)
            or not await asyncio.to_thread(source.still_current)
        ):
            source = None  # another file, other prefixes, or changed since: read it again
        if source is None:
            state.set_phase("read")
            notify(state)
            source = await asyncio.to_thread(read_source, path, prefixes=prefixes, lenient=False)
        entries = source.entries
        digests = source.stored_digests
        sqlite_keys: set[str] = set()
        for prefix in prefixes or ("",):
            sqlite_keys.update(await store.keys(prefix))
        common = sorted(entries.keys() & sqlite_keys)
        state.set_phase("validate", total=len(common))
        notify(state)
        different: list[str] = []
        diffs: dict[str, str] = {}
        for start in range(0, len(common), _PAGE):
            page = common[start : start + _PAGE]
            stored = await fetch_stored(store, page)
            page_different, page_diffs = await asyncio.to_thread(
                _compare_page, page, entries, stored, _DIFFS_SHOWN - len(diffs), digests
            )
            different += page_different
            diffs.update(page_diffs)
            state.done = start + len(page)
            notify(state)
        comparison = Comparison(
            only_left=tuple(sorted(entries.keys() - sqlite_keys)),
            only_right=tuple(sorted(sqlite_keys - entries.keys())),
            different=tuple(different),
            common=len(common),
            left="edn",
            right="sqlite",
        )
        report = ValidationReport(
            source=str(path),
            database=store.path,
            comparison=comparison,
            edn_keys=len(entries),
            sqlite_keys=len(sqlite_keys),
            diffs=diffs,
            seconds=time.perf_counter() - started,
        )
        metrics().migration_keys.add(len(common), {"garrison.migration.outcome": "validated"})
        span.set_attributes(
            {
                "garrison.migration.agree": report.agree,
                "garrison.migration.common": comparison.common,
                "garrison.migration.only_in_edn": len(comparison.only_left),
                "garrison.migration.only_in_sqlite": len(comparison.only_right),
                "garrison.migration.different": len(comparison.different),
            }
        )
        state.set_phase("done", total=len(common), done=len(common))
        notify(state)
    return report
