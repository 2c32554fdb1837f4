"""``garrison archive PATH``: the final EDN archive of the store's data, verified.

::

    garrison archive backups/memory-final.edn.gz

Writes what the runtime would read, in the mode it would start in (in
``sqlite-only`` the SQLite data, in ``edn-only`` and ``dual-write`` the EDN
file), as one gzip-compressed EDN map at PATH and its SHA-256 at
``PATH.sha256`` (``sha256sum -c`` in its directory checks it), then reads the
archive back from disk and compares it entry by entry, by EDN value, before
reporting success. An existing PATH (or ``PATH.sha256``) is never
overwritten. It only reads the stores; stop the application first when the
archive must hold its very last writes (in the EDN modes the file lags memory
by the flush delay).

Exit status: 0 written and verified; 1 not (PATH exists, or it did not read
back equal; nothing is left behind); 2 a bad config; 3 no data (no database
or EDN file) or a file that cannot be read or written. With ``--json`` the
result is one document (path, checksum file, sha256, keys, sizes, mode).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.cli._common import EXIT_FAILED, EXIT_OK, CommandError, emit

# The database commands' shared machinery (same package).
from garrison.cli._store import Database, _add, _print
from garrison.exceptions import StoreError
from garrison.stores import write_archive

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``garrison archive`` to the ``garrison`` CLI."""
    archive = _add(
        subparsers, "archive", "write the data as a compressed, checksummed EDN archive", _archive
    )
    archive.add_argument(
        "path", type=Path, metavar="PATH", help="the archive to create (e.g. memory.edn.gz)"
    )


async def _archive(args: argparse.Namespace, database: Database) -> int:
    target: Path = args.path
    async with database.reading() as side:
        entries = await side.scan("", None, None)
        mode = side.mode
    try:
        archive = await asyncio.to_thread(
            write_archive, entries, await asyncio.to_thread(target.absolute)
        )
    except StoreError as exc:  # PATH exists, or the archive did not read back equal
        raise CommandError(str(exc), EXIT_FAILED) from exc
    if args.json:
        emit({
            "archive": str(archive.path),
            "checksum_path": str(archive.checksum_path),
            "sha256": archive.sha256,
            "keys": archive.keys,
            "bytes": archive.size,
            "edn_bytes": archive.text_size,
            "mode": str(mode),
            "verified": True,
        })  # fmt: skip
        return EXIT_OK
    if args.quiet:  # the exit status says it was written and read back equal
        return EXIT_OK
    _print(
        f"archived {archive.keys} {'key' if archive.keys == 1 else 'keys'} ({mode} mode) "
        f"to {archive.path}: "
        f"{archive.size} bytes gzip ({archive.text_size} bytes EDN); "
        f"SHA-256 {archive.sha256} in {archive.checksum_path}; read back equal"
    )
    return EXIT_OK
