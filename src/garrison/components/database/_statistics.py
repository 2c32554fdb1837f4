"""What :meth:`Store.statistics` reports: the cache, batching, the feed and the stores."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatabaseStatistics"]


@dataclass(frozen=True, slots=True)
class DatabaseStatistics:
    """A snapshot of the ``database`` component (counters since it last started)."""

    #: The mode router's current mode (``"sqlite-only"``, ...).
    mode: str
    #: Read-cache capacity in entries (0: off), entries held, hits, misses.
    cache_capacity: int
    cache_entries: int
    cache_hits: int
    cache_misses: int
    #: ``cache_hits / (cache_hits + cache_misses)``; 0.0 before any cached read.
    cache_hit_ratio: float
    #: The Datalog query cache: capacity in answers (0: off), answers held,
    #: hits, misses, ``hits / (hits + misses)``, answers evicted for room and
    #: answers forgotten because a commit touched an attribute they read.
    query_cache_capacity: int
    query_cache_entries: int
    query_cache_hits: int
    query_cache_misses: int
    query_cache_hit_ratio: float
    query_cache_evictions: int
    query_cache_invalidations: int
    #: Open attribute watches (Datalog and find live queries), and how many
    #: times a commit woke one because it touched an attribute it reads.
    attribute_watches: int
    attribute_wakeups: int
    #: Write transactions / read queries the actor ran for grouped operations.
    write_batches: int
    read_batches: int
    #: Operations (messages) that went through those groups.
    batched_writes: int
    batched_reads: int
    #: The most messages one group carried.
    largest_batch: int
    #: Live change-feed subscribers, changes published, subscribers that overflowed.
    watchers: int
    changes_published: int
    watch_overflows: int
    #: History reads made to catch up with other instances' commits on a
    #: shared (PostgreSQL) database; this instance's own commits cause none.
    catch_up_reads: int
    #: Seconds since the oldest EDN write not yet on disk (0.0 when all is saved).
    edn_writer_lag: float
    #: The EDN writer's last flush error, or ``None``.
    edn_last_flush_error: str | None
    #: Key texts the EDN file cannot hold, kept in memory only (health fails meanwhile).
    edn_unwritable: tuple[str, ...]
    #: EDN flushes that finished later than ``flush_max_delay`` after the oldest
    #: write they saved: the durability bound was missed (see docs/storage.md).
    edn_late_flushes: int
    #: Keys whose SQLite side is behind EDN, and whether a full repair is pending.
    repair_backlog: int
    full_repair_pending: bool
    #: ``durability`` (``"commit"`` or ``"debounced"``), and with ``debounced``:
    #: acknowledged writes not committed yet, seconds since the oldest of them,
    #: commits made, commits that finished later than ``flush_max_delay`` after
    #: the oldest write they carried, and the last commit's error (or ``None``).
    durability: str
    uncommitted_writes: int
    commit_lag: float
    commits: int
    late_commits: int
    last_commit_error: str | None
    #: The SQLite and EDN files.
    sqlite_path: str
    edn_path: str
