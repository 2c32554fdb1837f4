"""The EDN archive: a store's data as one gzip-compressed EDN map, with its SHA-256.

The archive is the final copy of the legacy data that outlives the migration.
Its text is exactly what the EDN file store writes for the same map
(Clojure's ``pr-str`` form), gzip-compressed (``gunzip`` gives a
``memory.edn`` that the legacy system and Clojure read). Beside it,
``<archive>.sha256`` holds the SHA-256 of the compressed file in
``sha256sum`` form, so ``sha256sum -c memory.edn.gz.sha256`` checks it
anywhere.

:func:`write_archive` never replaces a file: an archive or checksum file
already at the path is refused (the file is written beside the target and
hard-linked into place, which fails rather than overwrites). It then reads the
archive back from disk, checks the checksum and compares every entry with the
data it was given by EDN value (:func:`~garrison.stores._compare.same_value`);
an archive that does not read back equal is removed and an error raised.

These functions block; callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.edn import loads
from garrison.exceptions import EdnSyntaxError, StoreError, StoreLoadError
from garrison.stores._atomic import fsync_directory
from garrison.stores._compare import same_value
from garrison.stores._edn_file_format import entry_text, file_pieces
from garrison.stores._keys import StringKey, key_text

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["Archive", "checksum_path", "read_archive", "write_archive"]


@dataclass(frozen=True, slots=True)
class Archive:
    """A written and verified archive."""

    path: Path
    checksum_path: Path
    sha256: str
    keys: int
    #: Size of the compressed file, and of the EDN text in it.
    size: int
    text_size: int


def checksum_path(path: Path) -> Path:
    """Where the checksum of the archive ``path`` is kept: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def write_archive(entries: Sequence[tuple[str, Any]], target: Path) -> Archive:
    """Write ``entries`` (key text, value) as a verified archive at ``target``.

    Raises :class:`StoreError` when ``target`` or its checksum file exists
    (nothing is written), or when the archive does not read back equal
    (nothing is left behind).
    """
    checksum = checksum_path(target)
    for path in (target, checksum):
        if os.path.lexists(path):
            raise StoreError(
                f"{path} exists: an archive is never overwritten "
                "(choose another path, or move the old archive away first)"
            )
    text = b"".join(file_pieces([entry_text(k, v) for k, v in sorted(entries)]))
    data = gzip.compress(text, mtime=0)
    digest = hashlib.sha256(data).hexdigest()
    target.parent.mkdir(parents=True, exist_ok=True)
    _create(target, data)
    try:
        _create(checksum, f"{digest}  {target.name}\n".encode())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    try:
        _verify(target, entries)
    except BaseException:
        target.unlink(missing_ok=True)
        checksum.unlink(missing_ok=True)
        raise
    return Archive(target, checksum, digest, len(entries), len(data), len(text))


def read_archive(path: Path) -> dict[str, Any]:
    """The entries of the archive ``path`` by key text, after checking its checksum file.

    Raises :class:`StoreLoadError` naming the file for a missing or wrong
    checksum, a file that is not gzip, or EDN that does not parse.
    """
    checksum = checksum_path(path)
    try:
        data = path.read_bytes()
        recorded = checksum.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreLoadError(f"cannot read the archive {path} and its checksum: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if not recorded or recorded[0] != digest:
        raise StoreLoadError(
            f"{path}: SHA-256 {digest} does not match {checksum} "
            f"({recorded[0] if recorded else 'empty'})"
        )
    try:
        text = gzip.decompress(data).decode("utf-8")
        parsed = loads(text)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise StoreLoadError(f"{path}: not a gzip-compressed UTF-8 EDN file: {exc}") from exc
    except EdnSyntaxError as exc:
        raise StoreLoadError(str(exc.with_source(str(path)))) from exc
    if not isinstance(parsed, dict):
        raise StoreLoadError(f"{path}: the archive holds {type(parsed).__name__}, not a map")
    return {key_text(StringKey(k) if type(k) is str else k): v for k, v in parsed.items()}


def _verify(path: Path, entries: Sequence[tuple[str, Any]]) -> None:
    back = read_archive(path)
    expected = dict(entries)
    missing = sorted(expected.keys() - back.keys())
    extra = sorted(back.keys() - expected.keys())
    different = [k for k, v in expected.items() if k in back and not same_value(v, back[k])]
    if missing or extra or different:
        raise StoreError(
            f"the archive {path} did not read back equal (missing {missing[:3]}, "
            f"extra {extra[:3]}, different {different[:3]}); it was removed"
        )


def _create(target: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``target``, durably; fail if ``target`` exists."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, target)  # unlike a rename, never replaces an existing file
        except FileExistsError as exc:
            raise StoreError(
                f"{target} exists: an archive is never overwritten "
                "(choose another path, or move the old archive away first)"
            ) from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
