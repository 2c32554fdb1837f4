"""The store file's format: parsing it into key texts, and writing it entry by entry.

The file is one EDN map. :class:`~garrison.stores._edn_file.EdnFileStore`
caches each entry's text (``"<key> <value>"``, from :func:`entry_text`) and
builds the file by joining the cached texts (:func:`join_entries`), so only
changed entries are serialised again. The result is exactly what the codec's
``dumps`` writes for the whole map (Clojure's ``pr-str`` form, on one line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from garrison.exceptions import EdnSyntaxError, StoreLoadError
from garrison.stores._atomic import remove_stale_temp_files
from garrison.stores._keys import EDN_KEY_PREFIX, StringKey, edn_key, key_text
from garrison.stores.edn import MAP_ENTRY_SEPARATOR, Keyword, dumps_entry, loads

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["entry_text", "join_entries", "load_file"]


def entry_text(text: str, value: Any) -> str:
    """The ``"<key> <value>"`` text of one top-level entry, as ``dumps`` writes it in a map."""
    # edn_key turns the key text back into the EDN key: a Keyword for the
    # usual namespaced keys, the parsed value for "#edn " texts.
    key = Keyword(text) if not text.startswith(EDN_KEY_PREFIX) else edn_key(text)
    return dumps_entry(key, value)


def join_entries(texts: list[str]) -> bytes:
    """The whole file for these entry texts, in this order, as UTF-8.

    Byte for byte what ``dumps`` writes for the whole map (the codec promises
    that joining its entry texts with ``MAP_ENTRY_SEPARATOR`` equals ``dumps``),
    so the file looks the same whether written incrementally or at once.
    """
    return ("{" + MAP_ENTRY_SEPARATOR.join(texts) + "}").encode()


def load_file(path: Path) -> dict[str, Any]:
    """Read and parse the store file into a map keyed by key text (in a thread)."""
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
