"""Which entity kind each key is, and in which order the kinds are migrated.

The legacy plan moved operational data out of ``memory.edn`` sessions first.
:class:`KindMapping` classifies a key text by exact key first, then by its
keyword namespace, then falls back to a default kind; :func:`plan_entries`
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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from garrison.exceptions import ConfigError
from garrison.stores import key_namespace

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_KIND_MAPPING",
    "DEFAULT_ORDER",
    "KindMapping",
    "normalize_prefixes",
    "plan_entries",
]

#: The legacy plan's order: sessions, projects, learning records, then the rest.
DEFAULT_ORDER: Final = ("session", "project", "learning")


@dataclass(frozen=True, slots=True)
class KindMapping:
    """Classifies key texts into entity kinds.

    ``keys`` maps exact key texts (``"learning/tag-index"``) to a kind and wins
    over ``namespaces``, which maps keyword namespaces (``"presence"``) to a
    kind; every other key (another namespace, no namespace, a non-keyword key)
    is ``default``.

    >>> DEFAULT_KIND_MAPPING.kind_of("presence/s-1"), DEFAULT_KIND_MAPPING.kind_of("learning/index")
    ('session', 'index')
    """

    namespaces: Mapping[str, str] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)
    default: str = "cache"

    def __post_init__(self) -> None:
        for table, what in ((self.namespaces, "namespace"), (self.keys, "key")):
            for name, kind in table.items():
                if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
                    raise ConfigError(
                        f"kind mapping needs non-empty text for each {what} and kind, "
                        f"got {name!r} = {kind!r}"
                    )
        if not self.default:
            raise ConfigError("the default kind must not be empty")

    def kind_of(self, text: str) -> str:
        """The entity kind of the key text ``text``."""
        exact = self.keys.get(text)
        if exact is not None:
            return exact
        namespace = key_namespace(text)
        if namespace is not None:
            return self.namespaces.get(namespace, self.default)
        return self.default

    @classmethod
    def from_config(
        cls,
        namespaces: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        default: str | None = None,
    ) -> KindMapping:
        """The default mapping with the given tables merged over it (config overrides)."""
        base = DEFAULT_KIND_MAPPING
        return cls(
            namespaces={**base.namespaces, **(namespaces or {})},
            keys={**base.keys, **(keys or {})},
            default=default or base.default,
        )


#: The legacy plan's mapping: presence, collab sessions and sessions are
#: sessions; projects; learning records, whose two index keys are indexes;
#: embed tokens, webhooks and everything else are cache entries.
DEFAULT_KIND_MAPPING: Final = KindMapping(
    namespaces={
        "presence": "session",
        "collab-session": "session",
        "session": "session",
        "project": "project",
        "learning": "learning",
        "embed-token": "cache",
        "webhook": "cache",
    },
    keys={"learning/tag-index": "index", "learning/index": "index"},
    default="cache",
)


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
