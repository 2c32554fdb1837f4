"""The store file's format: parsing it into key texts, and writing it entry by entry.

The file is one EDN map. :class:`~garrison.stores._edn_file.EdnFileStore`
caches each entry's text (``", <key> <value>"``, from :func:`entry_text`) and
writes the file as the cached texts one after the other (:func:`file_pieces`), so only
changed entries are serialised again. The result is exactly what the codec's
``dumps`` writes for the whole map (Clojure's ``pr-str`` form, on one line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from garrison.edn import (
    MAP_ENTRY_SEPARATOR,
    MAX_DIGITS,
    EdnMap,
    Keyword,
    dumps_entry,
    loads,
)
from garrison.exceptions import EdnSyntaxError, StoreLoadError
from garrison.stores._atomic import remove_stale_temp_files
from garrison.stores._keys import EDN_KEY_PREFIX, StringKey, edn_key, key_text

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["entry_text", "file_pieces", "load_file", "open_file"]

_SEPARATOR: Final = MAP_ENTRY_SEPARATOR.encode()


def entry_text(text: str, value: Any) -> bytes:
    """One top-level entry as cached for the file: ``", <key> <value>"`` in UTF-8.

    The entry is ``dumps_entry`` of the key and value (what ``dumps`` writes
    for it inside a map), with the codec's separator in front, so the whole
    file is the cached pieces one after the other (see :func:`file_pieces`).
    Bytes, not text: joining and writing 100k cached pieces then needs no
    encoding of the whole file at every flush.
    """
    # edn_key turns the key text back into the EDN key: a Keyword for the
    # usual namespaced keys, the parsed value for "#edn " texts.
    key = Keyword(text) if not text.startswith(EDN_KEY_PREFIX) else edn_key(text)
    return _SEPARATOR + dumps_entry(key, value).encode()


def file_pieces(entries: list[bytes]) -> list[bytes]:
    """The whole file as pieces to join in order, from cached :func:`entry_text` values.

    Byte for byte what ``dumps`` writes for the whole map (the codec promises
    that its entry texts joined with ``MAP_ENTRY_SEPARATOR`` equal ``dumps``),
    so the file looks the same whether written incrementally or at once.
    """
    if not entries:
        return [b"{}"]
    pieces = list(entries)
    pieces[0] = b"{" + entries[0][len(_SEPARATOR) :]
    pieces.append(b"}")
    return pieces


def open_file(path: Path, *, max_digits: int = MAX_DIGITS) -> dict[str, Any]:
    """As the file's one owner: remove what a crashed writer left behind, then load it."""
    remove_stale_temp_files(path)
    return load_file(path, max_digits=max_digits)


def load_file(path: Path, *, max_digits: int = MAX_DIGITS) -> dict[str, Any]:
    """Read and parse the store file into a map keyed by key text (in a thread).

    It only reads: a reader beside a running store (the CLI) must not touch
    the temporary file that store's flush is writing. The store's owner
    removes stale ones when it opens (:func:`open_file`). ``max_digits``: the
    codec's limit on the digits of one number.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StoreLoadError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StoreLoadError(
            f"{path}:{line}:{column}: not UTF-8 text; the file was left untouched"
        ) from exc
    try:
        parsed = loads(source, max_digits=max_digits)
    except EdnSyntaxError as exc:
        located = exc.with_source(str(path))
        # The codec names its keyword argument; the file's owner sets it in config.
        hint = (
            " ([components.database] edn_max_digits raises the limit)"
            if "max_digits=" in str(located)
            else ""
        )
        raise StoreLoadError(
            f"{located}; the file was left untouched and the store did not start{hint}"
        ) from located
    # An EdnMap: top-level keys Python's == would merge (0 and false), each its own key.
    if not isinstance(parsed, dict | EdnMap):
        raise StoreLoadError(
            f"{path}:1:1: the top level is {type(parsed).__name__}, not a map; "
            "the file was left untouched and the store did not start"
        )
    data: dict[str, Any] = {}
    for key, value in parsed.items():
        # A str read from the file is an EDN *string* key; key_text takes a
        # plain str for a keyword, so mark it to keep the two apart.
        data[key_text(StringKey(key) if type(key) is str else key)] = value
    return data
