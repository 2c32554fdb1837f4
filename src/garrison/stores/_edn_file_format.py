"""The store file's format: parsing it into key texts, and writing it entry by entry.

The file is one EDN map. :class:`~garrison.stores._edn_file.EdnFileStore`
caches each entry's text (``"<key> <value>"``, from :func:`entry_text`) and
builds the file by joining the cached texts (:func:`join_entries`), so only
changed entries are serialised again. One entry per line keeps the file
diffable and greppable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from garrison.exceptions import EdnSyntaxError, StoreLoadError
from garrison.stores._atomic import remove_stale_temp_files
from garrison.stores._keys import EDN_KEY_PREFIX, StringKey, key_text
from garrison.stores.edn._types import Keyword

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ENTRY_SEPARATOR", "entry_text", "join_entries", "load_file"]

#: Between two entries of the top-level map.
ENTRY_SEPARATOR: Final = "\n "


def entry_text(text: str, value: Any) -> str:
    """The ``"<key> <value>"`` text of one top-level entry."""
    # The codec is imported on first use so that importing garrison.stores stays
    # cheap for programs (and the crash test's writer) until they touch a file.
    from garrison.stores.edn import dumps  # noqa: PLC0415

    # A "#edn " key text holds the key's EDN form already; a keyword goes through
    # the codec, which rejects texts that are no valid keyword.
    if text.startswith(EDN_KEY_PREFIX):
        return f"{text[len(EDN_KEY_PREFIX) :]} {dumps(value)}"
    return f"{dumps(Keyword(text))} {dumps(value)}"


def join_entries(texts: list[str]) -> bytes:
    """The whole file for these entry texts, in this order, as UTF-8."""
    return ("{" + ENTRY_SEPARATOR.join(texts) + "}\n").encode()


def load_file(path: Path) -> dict[str, Any]:
    """Read and parse the store file into a map keyed by key text (in a thread)."""
    from garrison.stores.edn import loads  # noqa: PLC0415 - see entry_text

    remove_stale_temp_files(path)
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
        parsed = loads(source)
    except EdnSyntaxError as exc:
        located = exc.with_source(str(path))
        raise StoreLoadError(
            f"{located}; the file was left untouched and the store did not start"
        ) from located
    if not isinstance(parsed, dict):
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
