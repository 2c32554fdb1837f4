"""The ``[components.migrator]`` settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from garrison.components.migrator._plan import (
    DEFAULT_ORDER,
    IndexKeys,
    normalize_prefixes,
)

__all__ = ["AutoMode", "MigratorConfig"]

#: ``off``: migrate only when asked; ``background``: migrate (and validate)
#: after start while the runtime is ready; ``blocking``: startup is complete
#: only after the migration and its validation.
AutoMode = Literal["off", "background", "blocking"]


@dataclass(frozen=True, slots=True)
class MigratorConfig:
    """The settings of the ``migrator`` component (all optional).

    ``auto``
        ``"off"`` (default), ``"background"`` or ``"blocking"`` (see
        :data:`AutoMode`). An automatic run resumes an interrupted one.
    ``edn_path`` / ``sqlite_path``
        The files to migrate between. Left out: the ``database`` component's
        (the database's own SQLite store is used; the EDN file is only read).
    ``prefixes``
        Key namespaces or prefixes to migrate (``["session", "presence"]``);
        empty means every key.
    ``order``
        Entity kinds migrated first, in this order; the rest follow by name.
        The kinds are those of the ``database`` component's kind mapping
        (``[components.database.kinds]``), the one every write uses.
    ``batch_size``
        Keys per transaction.
    ``overwrite``
        Replace keys the database holds with different data (default: report them).
    ``validate``
        Validate after an automatic migration (a blocking start fails when the
        two sides disagree).
    ``index_keys``
        The legacy store's hand-kept index keys (those the kind mapping makes
        kind ``index``: ``learning/tag-index``, ``learning/index``): ``"keep"``
        (default) migrates them; ``"drop"`` leaves them out, as a query over
        the attribute index answers what they held, and validation then
        expects them missing from the database (see :data:`IndexKeys`).
    """

    auto: AutoMode = "off"
    edn_path: str | None = None
    sqlite_path: str | None = None
    prefixes: tuple[str, ...] = ()
    order: tuple[str, ...] = DEFAULT_ORDER
    batch_size: int = 1000
    overwrite: bool = False
    validate: bool = True
    index_keys: IndexKeys = "keep"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.index_keys not in ("keep", "drop"):
            raise ValueError(f'index_keys must be "keep" or "drop", got {self.index_keys!r}')
        normalize_prefixes(self.prefixes)

    def key_prefixes(self) -> tuple[str, ...]:
        """``prefixes`` as key-text prefixes (``session`` → ``session/``)."""
        return normalize_prefixes(self.prefixes)
