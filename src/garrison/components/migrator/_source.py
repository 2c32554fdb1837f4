"""Reading ``memory.edn`` for a migration: every entry parsed before anything is written.

:func:`read_source` parses the file's top-level map *entry by entry*: the
outer ``{`` and ``}`` are blanked in the file's bytes (replaced by spaces, so
every line and column stays where it was) and the codec's
:func:`iter_values` yields the keys and values in turn. The text is decoded
once and no map of the whole file is built by the codec; only the entries
under the requested prefixes are kept. A file whose shape the fast path cannot
recognise (a comment after the map, a ``#:ns{}`` map at the top) is read with
``loads`` instead, with the same result.

The whole file is parsed before the caller writes anything, so a file that
does not parse stops the migration with file, line and column and nothing
written. It also reports what the lenient reader had to accept: keys that
are (or whose values hold) keywords Clojure cannot read back, such as
``:embed-token/5fe3``, and duplicate keys (the last value wins, as in the
lenient reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from garrison.components.migrator._heap import promote_young_objects

# The codec's pause of the collector, shared so that its count stays right.
from garrison.edn import MAX_DIGITS, EdnMap, Keyword, collector_paused, dumps, iter_values, loads
from garrison.exceptions import EdnEncodeError, EdnSyntaxError, StoreLoadError
from garrison.stores import StringKey, key_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from os import PathLike

    from garrison.components.migrator._progress import MigrationProgress, ProgressListener

__all__ = [
    "SourceFile",
    "absolute_path",
    "clojure_readable_keyword",
    "read_source",
    "read_source_reporting",
]

_OPEN: Final = re.compile(rb"(?:[\s,]++|;[^\n]*+)*+\{")
_TRAILING: Final = b" \t\r\n\f\v,"
_BOM: Final = b"\xef\xbb\xbf"
_PAUSE_GC_FROM: Final = 1 << 16  # characters; as the codec's loads
_READ_CHUNK: Final = 1 << 20  # bytes between two read-progress reports
_TOKEN_END: Final = r'(?=[\s,()\[\]{}"\\;]|\Z)'  # noqa: S105 - a regex, not a password
# Keyword bodies that strict mode might reject: a part starting with a digit
# after "/", a trailing ":" or "/", ":/" (see clojure_readable_keyword, which
# decides). A cheap C-speed pre-filter; the codec's strict writer decides.
_SUSPECT_TOKEN: Final = re.compile(
    # Possessive and stopping at the first "/" or ":": linear, and a URL in a
    # string ("https://host/1") is not taken for a keyword.
    r':([^\s,()\[\]{}"\\;/:]*+(?:/[0-9]|:/|[:/]' + _TOKEN_END + r')[^\s,()\[\]{}"\\;]*+)'
)
_SUSPECT_KEY: Final = re.compile(r"/[0-9]|:/|[:/]\Z|\A/.")
# ns/name with one slash and a name starting with a digit: never readable
# (Clojure's symbol pattern needs a name that starts with neither digit nor "/").
_DIGIT_NAME: Final = re.compile(r"[^/]+/[0-9][^/]*")


@dataclass(slots=True)
class SourceFile:
    """What :func:`read_source` found in a ``memory.edn``.

    ``entries`` maps key texts to values in file order (only keys under the
    requested prefixes). ``lenient_keys`` lists the keys whose key or value
    holds a keyword Clojure's reader would refuse; ``duplicate_keys`` the keys
    written more than once (the last value was taken).
    """

    path: str
    size: int
    sha256: str
    entries: dict[str, Any]
    total_keys: int
    lenient_keys: list[str] = field(default_factory=list)
    duplicate_keys: list[str] = field(default_factory=list)
    prefixes: tuple[str, ...] = ()
    #: Keys of the file left out by the prefix filter.
    filtered_out: int = 0
    #: Filled by :func:`migrate`: key -> :func:`text_digest` of the stored
    #: text it wrote (or found already stored) for that key's value, which
    #: :func:`validate` reusing this source compares instead of encoding again.
    stored_digests: dict[str, bytes] = field(default_factory=dict)

    def still_current(self) -> bool:
        """Whether the file still holds exactly the bytes that were read (blocking)."""
        try:
            return hashlib.sha256(Path(self.path).read_bytes()).hexdigest() == self.sha256
        except OSError:
            return False


def clojure_readable_keyword(text: str) -> bool:
    """Whether ``clojure.edn`` reads the keyword ``:text`` back (strict mode's rule)."""
    if _DIGIT_NAME.fullmatch(text) is not None:
        return False  # the common case (:embed-token/5fe3), without the writer's setup
    try:
        dumps(Keyword(text), strict=True)
    except EdnEncodeError:
        return False
    return True


def absolute_path(path: str | PathLike[str]) -> Path:
    """``path`` made absolute against the working directory (no file system access)."""
    return Path(os.path.abspath(path))


def _located(exc: EdnSyntaxError, path: Path) -> EdnSyntaxError:
    located = exc.with_source(str(path))
    located.__cause__ = exc
    return located


def _decode(raw: bytes | bytearray, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise EdnSyntaxError(
            f"invalid UTF-8 ({exc.reason})", line=line, column=column, source=str(path)
        ) from exc


def _blank_braces(raw: bytearray) -> bool:
    """Turn the outer ``{`` and ``}`` of a plain top-level map into spaces, in place.

    Done on the bytes, before decoding, so the text exists once (a 25 MB file
    with one emoji is a 100 MB ``str``). False when the file does not have that
    shape (a comment after the map, ``#:ns{}``, not a map): then nothing changed.
    """
    opening = _OPEN.match(raw)
    end = len(raw.rstrip(_TRAILING)) - 1
    if opening is None or end < opening.end() or raw[end] != ord("}"):
        return False
    raw[opening.end() - 1] = raw[end] = ord(" ")
    return True


def _whole_map(text: str, max_digits: int) -> Any:
    whole = loads(text, max_digits=max_digits)
    if not isinstance(whole, dict | EdnMap):  # EdnMap: keys Python's == would merge
        raise EdnSyntaxError(
            f"the top level is {type(whole).__name__}, not a map", line=1, column=1
        )
    return whole.items()


def _entries(text: str, blanked: bool, max_digits: int) -> Iterator[tuple[Any, Any]]:
    """Yield (key, value) of the top-level map, one entry at a time."""
    if not blanked:
        yield from _whole_map(text, max_digits)
        return
    values = iter_values(text, max_digits=max_digits)
    missing = object()
    for key in values:
        value = next(values, missing)
        if value is missing:
            raise EdnSyntaxError("a map key has no value", line=1, column=1)
        yield key, value


def file_size(path: Path) -> int:
    """The size of the file at ``path`` in bytes, 0 when it cannot be had (blocking).

    For progress only: :func:`read_source` reports a file it cannot read.
    """
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_source(
    path: Path,
    *,
    prefixes: Sequence[str] = (),
    lenient: bool = True,
    max_digits: int = MAX_DIGITS,
    on_read: Callable[[int], None] | None = None,
) -> SourceFile:
    """Parse the whole file at ``path`` (blocking: run it in a worker thread).

    ``max_digits`` is the codec's limit on the digits of one number (the
    database component's ``edn_max_digits``). ``lenient=False`` skips the
    search for lenient-only keywords (validation does not report them).
    ``on_read`` is called (in this thread) with the bytes read so far, every
    megabyte while the file is read, before the parse.
    Raises :class:`EdnSyntaxError` naming the file, line and column when the
    file is not one EDN map, :class:`StoreLoadError` when it cannot be read.
    """
    try:
        raw = _read_bytes(path, on_read)
    except OSError as exc:
        raise StoreLoadError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    size = len(raw)
    if raw.startswith(_BOM):
        del raw[: len(_BOM)]  # editors add it; it is not EDN whitespace
    blanked = _blank_braces(raw)
    text = _decode(raw, path)
    del raw
    wanted = tuple(prefixes)
    entries: dict[str, Any] = {}
    duplicates: list[str] = []
    total = 0
    filtered_out = 0
    # Like the codec's loads, the parse of a big file runs with the cyclic
    # garbage collector paused (through the codec's own process-wide pause
    # count, so concurrent loads never turn it back on early): the entries
    # hold no cycles, and its passes over the growing heap of millions of
    # parsed objects cost ~10% of the read. It runs as usual afterwards.
    pause = collector_paused() if len(text) >= _PAUSE_GC_FROM else contextlib.nullcontext()
    try:
        with pause:
            for key, value in _entries(text, blanked, max_digits):
                if type(key) is Keyword:
                    name = key.text
                else:
                    name = key_text(StringKey(key) if type(key) is str else key)
                total += 1
                if wanted and not name.startswith(wanted):
                    filtered_out += 1
                    continue
                if name in entries:
                    duplicates.append(name)
                entries[name] = value
            # Before the collector runs again, so that it does not take the
            # whole file for young objects (see promote_young_objects).
            promote_young_objects()
    except EdnSyntaxError as exc:
        if not blanked:
            raise _located(exc, path) from exc.__cause__
        # With the braces blanked the reader may blame the wrong place (an
        # unclosed vector rather than the brace that closed it too early):
        # read the original file once more so the error is exactly the codec's.
        del text, entries
        original = path.read_bytes()
        try:
            _whole_map(
                _decode(original[len(_BOM) :] if original.startswith(_BOM) else original, path),
                max_digits,
            )
        except EdnSyntaxError as exact:
            raise _located(exact, path) from exact.__cause__
        raise _located(exc, path) from exc.__cause__
    lenient_keys = _lenient_keys(text, entries) if lenient else []
    return SourceFile(
        path=str(path),
        size=size,
        sha256=digest,
        entries=entries,
        total_keys=total,
        lenient_keys=lenient_keys,
        duplicate_keys=sorted(set(duplicates)),
        prefixes=wanted,
        filtered_out=filtered_out,
    )


def _read_bytes(path: Path, on_read: Callable[[int], None] | None) -> bytearray:
    with path.open("rb") as file:
        if on_read is None:
            return bytearray(file.read())
        raw = bytearray()
        while chunk := file.read(_READ_CHUNK):
            raw += chunk
            on_read(len(raw))
        return raw


async def read_source_reporting(
    path: Path,
    progress: MigrationProgress,
    listener: ProgressListener,
    *,
    prefixes: Sequence[str] = (),
    lenient: bool = True,
    max_digits: int = MAX_DIGITS,
) -> SourceFile:
    """:func:`read_source` in a worker thread, reporting the read phase to ``listener``.

    The phase counts bytes: 0 of the file's size, the bytes read so far as
    the file is read, then all of them once it is parsed.
    """
    loop = asyncio.get_running_loop()
    progress.set_phase("read", total=await asyncio.to_thread(file_size, path), unit="bytes")
    listener(progress)

    def advance(done: int) -> None:
        progress.done = done
        listener(progress)

    def on_read(done: int) -> None:  # in the worker thread
        loop.call_soon_threadsafe(advance, done)

    source = await asyncio.to_thread(
        read_source,
        path,
        prefixes=prefixes,
        lenient=lenient,
        max_digits=max_digits,
        on_read=on_read,
    )
    progress.set_phase("read", total=source.size, done=source.size, unit="bytes")
    listener(progress)
    return source


def _lenient_keys(text: str, entries: dict[str, Any]) -> list[str]:
    """Keys that are, or whose values hold, keywords ``clojure.edn`` cannot read back."""
    found = {
        name
        for name in entries
        if _SUSPECT_KEY.search(name) is not None and not clojure_readable_keyword(name)
    }
    occurrences = Counter(m.group(1) for m in _SUSPECT_TOKEN.finditer(text))
    # Where every occurrence of a bad keyword is a key, no value needs a look;
    # otherwise ask the strict writer about each value (the rare slow path).
    if any(
        count > (1 if body in entries else 0) and not clojure_readable_keyword(body)
        for body, count in occurrences.items()
    ):
        for name, value in entries.items():
            if name in found:
                continue
            try:
                dumps(value, strict=True)
            except EdnEncodeError:
                found.add(name)
    return sorted(found)
