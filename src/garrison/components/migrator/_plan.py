"""Which entity kind each key is, and in which order the kinds are migrated.

The legacy plan moved operational data out of ``memory.edn`` sessions first.
:class:`KindMapping` (the stores' one kind mapping, re-exported here) classifies
a key text by exact key first, then by its keyword namespace, then falls back
to a default kind; :func:`plan_entries`
orders the entries kind by kind (the configured order first, the remaining
kinds after them by name), and by key text within a kind, so a plan is the
same every time for the same file and options (resumption relies on that).

Key order within a kind rather than file order: the ``entries`` table is
keyed by the key text, so rows written in key order append to the end of its
B-tree instead of landing on a random page each. Legacy files list keys in
whatever order Clojure's hash map printed them; written in that order, each
batch of 1000 keys dirtied ~1000 pages, and the write-ahead log and its
checkpoints grew with them (about 2.5x slower for a 100k-key file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from garrison.exceptions import ConfigError
from garrison.stores import DEFAULT_KIND_MAPPING, KindMapping

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_KIND_MAPPING",
    "DEFAULT_ORDER",
    "INDEX_KIND",
    "IndexKeys",
    "KindMapping",
    "normalize_prefixes",
    "plan_entries",
]

#: The legacy plan's order: sessions, projects, learning records, then the rest.
DEFAULT_ORDER: Final = ("session", "project", "learning")

#: The kind of the legacy store's hand-kept index keys (``learning/tag-index``,
#: ``learning/index`` in the default mapping): what they held, a query over the
#: attribute index answers.
INDEX_KIND: Final = "index"

#: What a migration does with the keys of kind :data:`INDEX_KIND`: ``keep``
#: migrates them as any other key; ``drop`` leaves them out, and validation
#: then expects them missing from the database.
IndexKeys = Literal["keep", "drop"]


def normalize_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Key-text prefixes from ``--prefix`` values: a bare namespace ``session`` means ``session/``.

    A value that holds a ``/`` is used as it is (``session/abc`` selects keys
    starting with that text). Duplicates are dropped; order is kept.
    """
    out: list[str] = []
    for prefix in prefixes:
        if not prefix:
            raise ConfigError("a prefix must not be empty (leave --prefix out to take every key)")
        text = prefix if "/" in prefix else prefix + "/"
        if text not in out:
            out.append(text)
    return tuple(out)


def kind_order(present: Iterable[str], order: Sequence[str] = DEFAULT_ORDER) -> list[str]:
    """The kinds in ``present`` in migration order: ``order`` first, then the rest by name."""
    kinds = set(present)
    first = [kind for kind in dict.fromkeys(order) if kind in kinds]
    return first + sorted(kinds - set(first))


def plan_entries(
    entries: Mapping[str, Any],
    mapping: KindMapping = DEFAULT_KIND_MAPPING,
    order: Sequence[str] = DEFAULT_ORDER,
) -> list[tuple[str, list[str]]]:
    """The migration plan: ``[(kind, [key text, ...]), ...]`` in migration order.

    Within a kind, keys are in key-text order (code point order, which is
    the database's order for key texts).
    """
    groups: dict[str, list[str]] = {}
    kind_of = mapping.kind_of
    for text in entries:
        kind = kind_of(text)
        group = groups.get(kind)
        if group is None:
            group = groups[kind] = []
        group.append(text)
    return [(kind, sorted(groups[kind])) for kind in kind_order(groups, order)]


def dropped_index_keys(
    keys: Iterable[str], mapping: KindMapping, index_keys: IndexKeys
) -> frozenset[str]:
    """The ``keys`` a migration leaves out: those of kind ``index`` when ``index_keys`` is drop."""
    if index_keys == "keep":
        return frozenset()
    if index_keys != "drop":
        raise ConfigError(f'index_keys is "keep" or "drop", not {index_keys!r}')
    kind_of = mapping.kind_of
    return frozenset(key for key in keys if kind_of(key) == INDEX_KIND)
