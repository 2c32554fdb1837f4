"""The one kind mapping: which entity kind each key is, for every write.

:class:`KindMapping` classifies a key text by exact key first, then by its
keyword namespace, then falls back to a default kind. The SQLite store applies
it to every write (live puts, the CLI, the migrator's bulk load), so a key has
the same kind however it was written; :meth:`SqliteStore.reindex_kinds`
applies a changed mapping to the rows already stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from garrison.exceptions import ConfigError
from garrison.stores._keys import key_namespace

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_KIND_MAPPING", "KindMapping"]


@dataclass(frozen=True, slots=True)
class KindMapping:
    """Classifies key texts into entity kinds.

    ``keys`` maps exact key texts (``"learning/tag-index"``) to a kind and wins
    over ``namespaces``, which maps keyword namespaces (``"presence"``) to a
    kind; every other key (another namespace, no namespace, a non-keyword key)
    is ``default``. A mapping is also a store classifier: ``mapping(text,
    namespace)`` is ``mapping.kind_of(text)``.

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

    def __call__(self, text: str, namespace: str | None) -> str:
        """The kind of ``text`` whose namespace is ``namespace`` (the store's classifier call)."""
        exact = self.keys.get(text)
        if exact is not None:
            return exact
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
