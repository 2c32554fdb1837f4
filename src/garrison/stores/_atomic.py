"""Atomic, durable replacement of a whole file: the EDN store's only way to write.

:func:`replace_file` writes a temporary file in the target's own folder,
fsyncs it, renames it over the target and fsyncs the folder. A reader (or a
process starting after a crash at any instant) sees either the whole old file or
the whole new one, never a torn mix: ``os.replace`` is atomic within one file
system, which is why the temporary file lives next to the target and not in
``/tmp``. The folder fsync makes the rename itself survive a power cut.

These functions block; callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from typing import TYPE_CHECKING, Final

from garrison.exceptions import StoreError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["TEMP_MARKER", "place_file", "remove_stale_temp_files", "replace_file"]

#: Part of every temporary file's name, so stale ones can be recognised.
TEMP_MARKER: Final = ".garrison-tmp-"


def _temp_path(target: Path) -> Path:
    # A random suffix keeps two writers (or a writer and a crashed writer's
    # leftover) from ever sharing a temporary file.
    return target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")


def replace_file(target: Path, data: bytes) -> None:
    """Atomically and durably make ``target`` hold exactly ``data``.

    The new file keeps the permission bits of the one it replaces (a new file
    gets the process's default). On any failure the temporary file is removed
    and ``target`` is untouched.
    """
    tmp = _temp_path(target)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        # BaseException on purpose: even a KeyboardInterrupt in the middle must
        # not leave a half-written temporary file behind; it is re-raised.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(target.parent)


def fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open folders; its rename is durable enough there
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def place_file(temp: Path, target: Path, *, overwrite: bool, exists: str) -> None:
    """Move the finished (fsynced) ``temp`` to ``target``, then fsync the folder.

    Without ``overwrite`` an existing ``target`` is never replaced, not even
    one that appears meanwhile: the file is hard-linked into place (atomic,
    and refused over an existing name), or, on a file system without hard
    links, checked and then renamed. A refusal raises :class:`StoreError`
    with ``exists`` (formatted with ``target``) and leaves ``temp`` to the
    caller.
    """
    if overwrite:
        os.replace(temp, target)
    else:
        try:
            os.link(temp, target)
        except FileExistsError as exc:
            raise StoreError(exists.format(target=str(target))) from exc
        except OSError:
            if target.exists():
                raise StoreError(exists.format(target=str(target))) from None
            os.replace(temp, target)
        else:
            temp.unlink()
    fsync_directory(target.parent)


def remove_stale_temp_files(target: Path) -> list[Path]:
    """Delete temporary files a crashed writer of ``target`` left behind; return them.

    Only this store's own marker is matched, so nothing else in the folder is
    touched. The target itself is never a temporary file and is never removed.
    """
    removed: list[Path] = []
    pattern = f".{target.name}{TEMP_MARKER}*"
    for path in target.parent.glob(pattern):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
