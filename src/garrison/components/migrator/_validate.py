"""Validation: the EDN file and the database compared key by key.

Both sides are restricted to the same key prefixes. The result is a
:class:`~garrison.stores.Comparison` (the mode router's type: keys only in
the file, keys only in the database, keys whose values differ) plus a short
readable diff for the first differing keys. Values are compared strictly
(see :mod:`garrison.components.migrator._diff`); the database's keys and
stored texts are read together in key order a page at a time (one walk of
its primary key index) and compared in a worker thread, so the event loop
stays free.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from garrison.components.database import DatabaseLink, open_sqlite_owner
from garrison.components.migrator._diff import (
    same_as_stored,
    short_diff,
    stored_digest,
    stored_text,
)
from garrison.components.migrator._heap import heap_frozen
from garrison.components.migrator._plan import DEFAULT_KIND_MAPPING, dropped_index_keys
from garrison.components.migrator._progress import MigrationProgress
from garrison.components.migrator._report import ValidationReport
from garrison.components.migrator._source import SourceFile, absolute_path, read_source_reporting
from garrison.edn import MAX_DIGITS
from garrison.stores import Comparison, PostgresStore, SqliteStore
from garrison.telemetry import metrics
from garrison.tracing import MIGRATOR_SCOPE, tracer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from os import PathLike

    from garrison.components.migrator._plan import IndexKeys, KindMapping
    from garrison.components.migrator._progress import ProgressListener

__all__ = ["validate"]

_PAGE: Final = 2000
_DIFFS_SHOWN: Final = 20


def _compare_page(
    page: list[tuple[str, bytes]],
    entries: dict[str, Any],
    want_diffs: int,
    digests: dict[str, bytes],
    encoding: str,
) -> tuple[int, list[str], dict[str, str]]:
    """How many keys of ``page`` the file has, those whose values differ, and diffs (a thread).

    ``page`` holds (key, stored text as UTF-8) pairs from the database; keys
    the file does not have are counted elsewhere. ``digests`` holds the
    digests of the stored texts a migration of this very parse wrote: a
    stored text with the same digest is the encoding of the file's value, so
    that value need not be encoded again (nor the text decoded). ``encoding``
    is the database's (see :func:`text_encoding`).
    """
    common = 0
    different: list[str] = []
    diffs: dict[str, str] = {}
    expected_digests = digests.get
    for key, data in page:
        if key not in entries:
            continue
        common += 1
        expected = expected_digests(key)
        if expected is not None and stored_digest(data) == expected:
            continue
        value = entries[key]
        same, existing = same_as_stored(value, stored_text(data, key, encoding), key)
        if not same:
            different.append(key)
            if len(diffs) < want_diffs:
                diffs[key] = short_diff(value, existing)
    return common, different, diffs


def _disjoint(prefixes: Sequence[str]) -> list[str]:
    """``prefixes`` without those another one covers, so no key is scanned twice."""
    kept: list[str] = []
    # Sorted, every string a prefix covers directly follows that prefix.
    for prefix in sorted(set(prefixes or ("",))):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


async def validate(
    store: DatabaseLink | SqliteStore | PostgresStore,
    edn: str | PathLike[str],
    *,
    prefixes: Sequence[str] = (),
    index_keys: IndexKeys = "keep",
    kinds: KindMapping = DEFAULT_KIND_MAPPING,
    listener: ProgressListener | None = None,
    progress: MigrationProgress | None = None,
    source: SourceFile | None = None,
    max_digits: int = MAX_DIGITS,
) -> ValidationReport:
    """Compare every key under ``prefixes`` (every key when empty) of the file and the store.

    ``source`` is the file as :func:`read_source` read it for the migration
    just made; it is used only when the file still has the same SHA-256 (and
    the same prefixes), which proves a new parse would give the same values;
    ``max_digits`` is the codec's limit on the digits of one number.
    ``index_keys="drop"``: the keys ``kinds`` makes kind ``index`` were left
    out by the migration (see :func:`migrate`); such a key missing from the
    database is expected, not reported (one the database holds is compared
    as any other). ``store`` is the actor owning the database, or an open store with no
    owner yet, which gets one for the run (see :func:`migrate`).
    Raises :class:`EdnSyntaxError` (file, line, column) when the file does
    not parse. The store may change while a validation runs; validate with
    writes paused (or in a mode that writes both sides) when it must be exact.
    """
    if isinstance(store, (SqliteStore, PostgresStore)):
        async with open_sqlite_owner(store) as link:
            return await validate(
                link, edn, prefixes=prefixes, index_keys=index_keys, kinds=kinds,
                listener=listener, progress=progress, source=source, max_digits=max_digits,
            )  # fmt: skip
    path = absolute_path(edn)
    state = progress if progress is not None else MigrationProgress("validate")
    notify = listener if listener is not None else (lambda _progress: None)
    started = time.perf_counter()
    with tracer(MIGRATOR_SCOPE).start_as_current_span("migrator.validate") as span:
        span.set_attribute("garrison.migration.source", str(path))
        if source is not None and (
            source.path != str(path)
            or source.prefixes != tuple(prefixes)
            or not await asyncio.to_thread(source.still_current)
        ):
            source = None  # another file, other prefixes, or changed since: read it again
        if source is None:
            source = await read_source_reporting(
                path, state, notify, prefixes=prefixes, lenient=False, max_digits=max_digits
            )
        entries = source.entries
        # Digests are of UTF-8 texts, what a garrison database holds and
        # scan_stored reads undecoded; in any other they would never match.
        encoding = await store.text_encoding()
        digests = source.stored_digests if encoding == "utf-8" else {}
        # One walk over the database's keys under the prefixes, a page of
        # (key, stored text) at a time, compared in a worker thread. Until the
        # walk ends, the number of keys both sides have is not known: progress
        # counts the file's keys met so far against the file's key count.
        sqlite_keys: set[str] = set()
        state.set_phase("validate", total=len(entries))
        notify(state)
        common = 0
        different: list[str] = []
        diffs: dict[str, str] = {}
        with heap_frozen():  # the parsed file is left out of the collector's passes
            for prefix in _disjoint(prefixes):
                after: str | None = None
                while True:
                    page = await store.scan_stored(prefix, after, _PAGE)
                    if not page:
                        break
                    after = page[-1][0]
                    sqlite_keys.update(key for key, _ in page)
                    page_common, page_different, page_diffs = await asyncio.to_thread(
                        _compare_page, page, entries, _DIFFS_SHOWN - len(diffs), digests, encoding
                    )
                    common += page_common
                    different += page_different
                    diffs.update(page_diffs)
                    state.done = common
                    notify(state)
                    if len(page) < _PAGE:
                        break
        dropped = dropped_index_keys(entries, kinds, index_keys)
        comparison = Comparison(
            only_left=tuple(sorted(entries.keys() - sqlite_keys - dropped)),
            only_right=tuple(sorted(sqlite_keys - entries.keys())),
            different=tuple(sorted(different)),
            common=common,
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
            dropped_index_keys=sorted(dropped - sqlite_keys),
        )
        metrics().migration_keys.add(common, {"garrison.migration.outcome": "validated"})
        span.set_attributes(
            {
                "garrison.migration.agree": report.agree,
                "garrison.migration.common": comparison.common,
                "garrison.migration.only_in_edn": len(comparison.only_left),
                "garrison.migration.only_in_sqlite": len(comparison.only_right),
                "garrison.migration.different": len(comparison.different),
            }
        )
        state.set_phase("done", total=common, done=common)
        notify(state)
    return report
