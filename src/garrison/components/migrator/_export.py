"""Export: the database written back as one EDN map, the rollback path.

The entries are read a page at a time in key order and written to a
temporary file beside the target (the EDN file store's temp-file naming, so a
crashed export's leftover is recognised and removed by
:func:`remove_stale_temp_files`); the file is fsynced and renamed over the
target, and the folder fsynced. A reader (Clojure, the EDN file store, a
process starting after a crash) sees the whole old file or the whole new one.
The text is what the EDN file store writes (Clojure's ``pr-str`` form), keys
turned back into the EDN keys they stand for, every value with its EDN kind.

An existing file is replaced only when asked (``overwrite=True``); otherwise
the export refuses before it starts, and the finished file is linked into
place, which fails rather than replace a file that appeared meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from typing import IO, TYPE_CHECKING, Final

from garrison.components.database import DatabaseLink, open_sqlite_owner
from garrison.components.migrator._diff import stored_text
from garrison.components.migrator._progress import MigrationProgress
from garrison.components.migrator._report import ExportSummary
from garrison.components.migrator._source import absolute_path
from garrison.edn import MAP_ENTRY_SEPARATOR, Keyword, dumps_entry
from garrison.exceptions import EdnEncodeError, StoreError
from garrison.stores import (
    EDN_KEY_PREFIX,
    TEMP_MARKER,
    PostgresStore,
    SqliteStore,
    decode_value,
    edn_key,
    place_file,
)
from garrison.tracing import MIGRATOR_SCOPE, tracer

if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path
    from typing import Any

    from garrison.components.migrator._progress import ProgressListener

__all__ = ["export"]

_PAGE: Final = 2000
_EXISTS: Final = "{target!r} exists; the export replaces an existing file only when asked (--force)"


def _open_temp(target: Path, overwrite: bool) -> tuple[Path, IO[bytes]]:
    if target.is_dir():
        raise StoreError(f"cannot export to {str(target)!r}: it is a folder")
    if not overwrite and target.exists():
        raise StoreError(_EXISTS.format(target=str(target)))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")
    # Closed by _finish or _abandon: the file stays open across the awaits between pages.
    return tmp, open(tmp, "xb")


def _entry(text: str, value: Any) -> str:
    # The key text back to the EDN key it stands for (a keyword, or the "#edn " form).
    key = edn_key(text) if text.startswith(EDN_KEY_PREFIX) else Keyword(text)
    try:
        return dumps_entry(key, value)
    except EdnEncodeError as exc:
        # sqlite-only admits values the EDN file cannot hold (a date, a naive
        # datetime): the user needs the key to change or delete the value.
        raise EdnEncodeError(f"cannot export key {text!r}: {exc}") from exc


def _decoded(key: str, data: bytes, encoding: str) -> Any:
    try:
        return decode_value(stored_text(data, key, encoding))
    except StoreError as exc:
        raise StoreError(f"cannot export key {key!r}: {exc}", key=key) from exc


def _write_page(fp: IO[bytes], rows: list[tuple[str, bytes]], first: bool, encoding: str) -> int:
    """Decode a page of stored texts and write their entries (in a worker thread)."""
    text = MAP_ENTRY_SEPARATOR.join(
        _entry(key, _decoded(key, data, encoding)) for key, data in rows
    )
    data = ((MAP_ENTRY_SEPARATOR if not first and rows else "") + text).encode()
    fp.write(data)
    return len(data)


def _finish(fp: IO[bytes], tmp: Path, target: Path, overwrite: bool) -> None:
    fp.write(b"}")
    fp.flush()
    os.fsync(fp.fileno())
    fp.close()
    place_file(tmp, target, overwrite=overwrite, exists=_EXISTS)


def _abandon(fp: IO[bytes], tmp: Path) -> None:
    with contextlib.suppress(OSError):
        fp.close()
    with contextlib.suppress(OSError):
        tmp.unlink()


async def export(
    store: DatabaseLink | SqliteStore | PostgresStore,
    edn: str | PathLike[str],
    *,
    prefix: str = "",
    listener: ProgressListener | None = None,
    progress: MigrationProgress | None = None,
    overwrite: bool = False,
) -> ExportSummary:
    """Write every entry of the database ``store`` (under ``prefix``) to ``edn``, atomically.

    ``store`` is the actor owning the database, or an open store with no
    owner yet, which gets one for the export (see :func:`migrate`). The
    SQLite side is what is exported, whatever the mode.

    Raises :class:`~garrison.exceptions.StoreError` when ``edn`` exists,
    unless ``overwrite`` is true, and
    :class:`~garrison.exceptions.EdnEncodeError` naming the key of the first
    value with no EDN form (``sqlite-only`` admits a ``date`` or a naive
    ``datetime``); either way no file is written.

    The store may change while an export runs (it reads page by page); pause
    writes, or export in a mode where the database is not written, when the
    file must be one moment's data.
    """
    if isinstance(store, (SqliteStore, PostgresStore)):
        async with open_sqlite_owner(store) as link:
            return await export(
                link, edn, prefix=prefix, listener=listener, progress=progress,
                overwrite=overwrite,
            )  # fmt: skip
    target = absolute_path(edn)
    state = progress if progress is not None else MigrationProgress("export")
    notify = listener if listener is not None else (lambda _progress: None)
    started = time.perf_counter()
    with tracer(MIGRATOR_SCOPE).start_as_current_span("migrator.export") as span:
        span.set_attribute("garrison.migration.target", str(target))
        state.set_phase("export", total=await store.count(prefix))
        notify(state)
        encoding = await store.text_encoding()
        tmp, fp = await asyncio.to_thread(_open_temp, target, overwrite)
        written = 1
        keys = 0
        try:
            await asyncio.to_thread(fp.write, b"{")
            after: str | None = None
            while True:
                rows = await store.scan_stored(prefix, after, _PAGE)
                if not rows:
                    break
                written += await asyncio.to_thread(_write_page, fp, rows, keys == 0, encoding)
                keys += len(rows)
                after = rows[-1][0]
                state.done = keys
                notify(state)
            await asyncio.to_thread(_finish, fp, tmp, target, overwrite)
            written += 1
        except BaseException:
            # BaseException on purpose: a cancelled export must not leave its
            # temporary file behind; the error or cancellation is re-raised.
            await asyncio.shield(asyncio.to_thread(_abandon, fp, tmp))
            raise
        span.set_attribute("garrison.migration.keys", keys)
        state.set_phase("done", total=keys, done=keys)
        notify(state)
    return ExportSummary(
        database=store.path,
        target=str(target),
        keys=keys,
        bytes_written=written,
        seconds=time.perf_counter() - started,
    )
