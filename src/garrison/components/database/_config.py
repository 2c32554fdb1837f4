"""``[components.database]``: where the two stores live and how the actor batches.

::

    [components.database]
    backend = "sqlite"             # or "postgresql" (then dsn, or libpq's PG* variables)
    dsn = ""                       # "postgresql://user@host:5432/db" for backend = "postgresql"
    sqlite_path = "garrison.db"    # relative paths are under [runtime] data_dir
    edn_path = "memory.edn"
    mode = "sqlite-only"           # only for a database that has no mode yet
    synchronous = "NORMAL"
    durability = "commit"          # or "debounced": acknowledged before commit
    cache_size = 10000             # entries; 0 turns the read cache off
    query_cache_size = 1000        # Datalog answers kept; 0 turns the query cache off
    batch_limit = 512              # most messages one transaction or read query groups
    flush_quiet_period = 0.1       # EDN writer debounce (seconds)
    flush_max_delay = 1.0          # ... and a write is on disk at most this long after it
    watch_buffer = 1000            # changes buffered per watcher before it loses them
    indexes = ["$.user.id"]        # JSON paths with expression indexes, for find()
    edn_max_digits = 10000         # longest number the EDN file may hold, in digits

    [components.database.schema.session]   # a kind's schema: attribute -> rules
    ":session/id" = { type = "string", required = true, unique = true }
    ":session/user-id" = { type = "string", indexed = true }  # indexed: for queries
    ":session/project" = { reference = true }  # a keyword naming an entry's key
    ":session/tags" = { type = "keyword", cardinality = "many" }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from garrison.edn import MAX_DIGITS
from garrison.exceptions import ConfigError
from garrison.stores import EntitySchema, KindMapping

__all__ = ["DatabaseConfig", "KindsConfig"]


@dataclass(frozen=True, slots=True)
class KindsConfig:
    """``[components.database.kinds]``: changes to the kind mapping every write uses.

    ``namespaces`` maps a keyword namespace to a kind, ``keys`` an exact key
    text to a kind, and ``default`` is the kind of everything else; both
    tables are merged over the legacy plan's mapping
    (:data:`~garrison.stores.DEFAULT_KIND_MAPPING`).
    """

    namespaces: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    default: str = "cache"

    def __post_init__(self) -> None:
        try:
            self.mapping()
        except ConfigError as exc:  # said again as a setting's error, which names its path
            raise ValueError(exc.args[0]) from None

    def mapping(self) -> KindMapping:
        """The kind mapping these settings describe."""
        return KindMapping.from_config(self.namespaces, self.keys, self.default)


# The codec's lowest max_digits: CPython's own int(str) limit.
_LOWEST_MAX_DIGITS = 4300

ModeName = Literal["edn-only", "dual-write", "sqlite-first", "sqlite-only"]
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
Durability = Literal["commit", "debounced"]
Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """The settings of the ``database`` component (all optional).

    ``backend``
        Where the database side lives: ``sqlite`` (the file ``sqlite_path``,
        owned by one process) or ``postgresql`` (a server many instances
        share; see docs/postgresql.md). The EDN file and the modes are the
        same for both; ``sqlite_path``, ``synchronous`` and ``busy_timeout``
        are SQLite's alone.
    ``dsn``
        The PostgreSQL connection URI (``postgresql://user@host:5432/db``),
        only with ``backend = "postgresql"``; empty, libpq's ``PG*``
        environment variables say where (``PGHOST``, ``PGDATABASE``, ...).
        ``GARRISON_COMPONENTS__DATABASE__DSN`` sets it from the environment.
    ``sqlite_path`` / ``edn_path``
        The SQLite database and the legacy EDN file. Relative paths are taken
        relative to the runtime's ``data_dir``; the defaults are
        ``<data_dir>/garrison.db`` and ``<data_dir>/memory.edn``.
    ``mode``
        The mode a database starts in when it has none recorded yet. After
        that the mode recorded in the database wins (switch it with
        ``garrison mode set`` or :meth:`Store.set_mode`), so a restart never
        undoes an operator's switch. Left out: ``edn-only`` when the EDN file
        exists (a legacy installation), ``sqlite-only`` otherwise.
    ``synchronous``
        SQLite's durability level: ``NORMAL`` survives application crashes,
        ``FULL`` also power loss (slower commits).
    ``durability``
        When a write is acknowledged in the modes that write SQLite.
        ``commit``: once its SQLite transaction committed, so no crash loses
        it. ``debounced``: the legacy EDN store's contract, once it is
        admitted and readable; every reader sees it at once, and the actor
        commits the pending writes to SQLite within ``flush_max_delay``, after
        ``flush_quiet_period`` without writes (one transaction per run of puts
        or deletes; any other message commits them first). A crash loses at
        most the writes of the last ``flush_max_delay``, never part of one; a
        clean stop commits them all (docs/storage.md). ``edn-only`` writes the
        EDN file alone and is the same under both.
    ``busy_timeout``
        Seconds a write waits for another process's lock on the database.
    ``cache_size``
        Entries in the LRU read cache; ``0`` disables it.
    ``query_cache_size``
        Datalog answers kept, per query and inputs, in an LRU; a commit
        forgets the answers that read an attribute it touched (docs/queries.md).
        ``0`` disables it.
    ``batch_limit``
        The most messages one write transaction or one read query groups
        (a single ``put_many`` of many items is one message); each turn of
        the actor takes what is queued and cuts it into groups of at most this.
    ``flush_quiet_period`` / ``flush_max_delay``
        The EDN writer's debounce, and the bound within which an acknowledged
        write is on disk in the EDN file (the flush finished, fsynced), while a
        flush takes at most about half of it (docs/storage.md).
    ``watch_buffer``
        Changes buffered per :meth:`Store.watch` subscriber; past that the
        subscriber loses its place (see :class:`ChangesLostError`).
    ``indexes``
        JSON paths (``"$.user.id"``) with expression indexes, for ``find``.
    ``kinds``
        Changes to the one kind mapping that classifies every write (live,
        migrated, from the CLI; ``garrison reindex`` applies a changed one to
        the stored rows): ``kinds.namespaces`` (namespace → kind),
        ``kinds.keys`` (exact key → kind) and ``kinds.default`` (the kind of
        everything else), merged over the legacy plan's mapping (see
        :class:`KindsConfig`).
    ``schema``
        Per kind (as the kind mapping names them), its attributes' rules:
        ``schema.<kind>."<attribute>" = { type = "string", required = true }``,
        the attribute spelled as stored (``":session/user-id"`` for a
        keyword). The rules are ``type``, ``cardinality`` (``"one"`` or
        ``"many"``), ``unique``, ``required``, ``reference`` and ``indexed``
        (see docs/queries.md). A write that breaks them is refused with
        :class:`~garrison.SchemaError`; a start whose changed schema the
        stored data breaks fails, naming the violations (list them with
        ``garrison schema check``). ``indexed`` (and ``unique``) attributes
        are kept in the attribute index, which Datalog queries read; a query
        on any other attribute reads the stored values with SQLite's JSON
        functions (a scan). Writes pay for the index and the rules only for
        what is declared. ``unique`` and ``reference`` read the stored data,
        so they need ``durability = "commit"``.
    ``health_timeout``
        Seconds the health check's ``SELECT 1`` may take before it fails.
    ``max_writer_lag``
        Seconds of unflushed EDN writes past which health fails.
    ``edn_max_digits``
        The most digits of one number in the EDN file (the codec's
        ``max_digits``, at least 4300): a longer one stops the start with its
        line and column. Reading an *n*-digit number costs time that grows
        with *n*²; raise it for a file that holds longer numbers. The
        migrator reads the file with the same limit.
    """

    backend: Backend = "sqlite"
    dsn: str = ""
    sqlite_path: Path | None = None
    edn_path: Path | None = None
    mode: ModeName | None = None
    synchronous: Synchronous = "NORMAL"
    durability: Durability = "commit"
    busy_timeout: float = 5.0
    cache_size: int = 10_000
    query_cache_size: int = 1000
    batch_limit: int = 512
    flush_quiet_period: float = 0.1
    flush_max_delay: float = 1.0
    watch_buffer: int = 1000
    indexes: tuple[str, ...] = ()
    kinds: KindsConfig = field(default_factory=KindsConfig)
    schema: dict[str, dict[str, dict[str, bool | str]]] = field(default_factory=dict)
    health_timeout: float = 1.0
    max_writer_lag: float = 30.0
    edn_max_digits: int = MAX_DIGITS

    def __post_init__(self) -> None:
        for name in ("cache_size", "query_cache_size"):
            if getattr(self, name) < 0:
                msg = f"{name} must be zero or more, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("batch_limit", "watch_buffer"):
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("health_timeout", "max_writer_lag"):
            if getattr(self, name) <= 0:
                msg = f"{name} must be greater than zero, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("busy_timeout", "flush_quiet_period", "flush_max_delay"):
            if getattr(self, name) < 0:
                msg = f"{name} must be zero or more, got {getattr(self, name)!r}"
                raise ValueError(msg)

        if self.edn_max_digits < _LOWEST_MAX_DIGITS:
            msg = (
                f"edn_max_digits must be at least {_LOWEST_MAX_DIGITS}, got {self.edn_max_digits!r}"
            )
            raise ValueError(msg)
        schema = self.entity_schema  # a bad rule stops the start, named
        if schema.needs_lookups and self.durability == "debounced":
            msg = (
                "schema: unique and reference rules are checked against the committed data, "
                'so they need durability = "commit" (a debounced write is acknowledged '
                "before it is committed)"
            )
            raise ValueError(msg)
        if self.backend not in ("sqlite", "postgresql"):
            msg = f"backend must be 'sqlite' or 'postgresql', got {self.backend!r}"
            raise ValueError(msg)
        if self.dsn and self.backend != "postgresql":
            msg = 'dsn is for backend = "postgresql"; set the backend too (or drop the dsn)'
            raise ValueError(msg)
        if self.dsn and not self.dsn.startswith(("postgresql://", "postgres://")):
            msg = "dsn must be a postgresql:// URI (password hidden here)"
            raise ValueError(msg)

    @property
    def kind_mapping(self) -> KindMapping:
        """The kind mapping every write uses: ``kinds`` merged over the legacy plan's."""
        return self.kinds.mapping()

    @property
    def entity_schema(self) -> EntitySchema:
        """The parsed ``schema``: every kind's rules, and the attributes it keeps indexed."""
        return EntitySchema.parse(self.schema)

    def resolve_paths(self, data_dir: Path) -> tuple[Path, Path]:
        """``(sqlite_path, edn_path)``: defaults applied, relative paths under ``data_dir``."""
        sqlite = self.sqlite_path or Path("garrison.db")
        edn = self.edn_path or Path("memory.edn")
        sqlite = sqlite.expanduser()
        edn = edn.expanduser()
        return (
            sqlite if sqlite.is_absolute() else data_dir / sqlite,
            edn if edn.is_absolute() else data_dir / edn,
        )
