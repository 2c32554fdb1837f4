"""What a migrate, validate or export run reports: counts, problems, and a readable summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from garrison.stores import Comparison

__all__ = ["ExportSummary", "MigrationSummary", "ValidationReport"]

_SHOWN = 10


def _listed(title: str, keys: list[str] | tuple[str, ...], limit: int = _SHOWN) -> list[str]:
    if not keys:
        return []
    lines = [f"{title}: {len(keys)}"]
    lines += [f"  {key}" for key in keys[:limit]]
    if len(keys) > limit:
        lines.append(f"  … and {len(keys) - limit} more")
    return lines


@dataclass(slots=True)
class MigrationSummary:
    """The outcome of one migration run (also stored, in short, as its progress record).

    - ``written``: keys written (new or, with ``overwrite``, replaced);
      ``unchanged``: keys the database already held with the same value;
      ``overwritten``: of ``written``, keys that held different data before;
    - ``conflicts``: keys the database holds with *different* data, left as
      they were (``overwrite=False``), with a short diff each (``diffs``);
    - ``by_kind``: keys of the file per entity kind (after the prefix filter);
    - ``skipped``: key → why it was not migrated (conflicts, filtered out);
    - ``lenient_keys``: keys that are, or whose values hold, keywords Clojure
      cannot read back (migrated anyway); ``duplicate_keys``: keys the file
      holds more than once (the last value was migrated);
    - ``dropped_index_keys``: the legacy hand-kept index keys left out
      (``index_keys = "drop"``).
    """

    source: str
    database: str
    dry_run: bool = False
    resumed: bool = False
    resumed_from: int = 0
    total: int = 0
    file_keys: int = 0
    bytes_read: int = 0
    written: int = 0
    unchanged: int = 0
    overwritten: int = 0
    batches: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: Conflicts of an interrupted earlier run beyond the keys its record lists.
    unlisted_conflicts: int = 0
    #: Keys another writer wrote around the migrator's own write of them.
    raced: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    filtered_out: int = 0
    lenient_keys: list[str] = field(default_factory=list)
    duplicate_keys: list[str] = field(default_factory=list)
    dropped_index_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every selected key is in the database with the file's value."""
        return not self.conflicts and not self.unlisted_conflicts and not self.raced

    @property
    def conflict_count(self) -> int:
        """Every conflict, listed or not (an interrupted run's included after a resume)."""
        return len(self.conflicts) + self.unlisted_conflicts

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for the component's replies, logs and JSON output)."""
        return {
            "source": self.source,
            "database": self.database,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "resumed_from": self.resumed_from,
            "total": self.total,
            "file_keys": self.file_keys,
            "bytes_read": self.bytes_read,
            "written": self.written,
            "unchanged": self.unchanged,
            "overwritten": self.overwritten,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "by_kind": dict(self.by_kind),
            "order": list(self.order),
            "conflicts": list(self.conflicts),
            "unlisted_conflicts": self.unlisted_conflicts,
            "raced": list(self.raced),
            "filtered_out": self.filtered_out,
            "lenient_keys": list(self.lenient_keys),
            "duplicate_keys": list(self.duplicate_keys),
            "dropped_index_keys": list(self.dropped_index_keys),
        }

    def render(self) -> str:
        """The human summary printed at the end of ``garrison migrate``."""
        verb = "would write" if self.dry_run else "written"
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{'DRY RUN: ' if self.dry_run else ''}migrated {self.source} -> {self.database}",
            f"keys: {self.total} selected of {self.file_keys} in the file; "
            f"{verb} {self.written}, unchanged {self.unchanged}, "
            f"conflicts {self.conflict_count}"
            + (f", overwritten {self.overwritten}" if self.overwritten else ""),
            "by kind: "
            + ", ".join(
                f"{kind} {self.by_kind[kind]}" for kind in self.order if kind in self.by_kind
            ),
            (
                f"bytes read: {self.bytes_read:,}; time: {self.seconds:.2f}s "
                f"({rate:,.0f} keys/s); batches: {self.batches}"
            ),
        ]
        if self.resumed:
            lines.append(f"resumed after {self.resumed_from} keys committed by an earlier run")
        skipped: list[str] = []
        if self.filtered_out:
            skipped.append(f"{self.filtered_out} outside the --prefix filter")
        if self.dropped_index_keys:
            skipped.append(
                f'{len(self.dropped_index_keys)} hand-kept index keys (index_keys = "drop"): '
                + ", ".join(self.dropped_index_keys[:_SHOWN])
                + (" …" if len(self.dropped_index_keys) > _SHOWN else "")
            )
        if self.conflict_count:
            skipped.append(
                f"{self.conflict_count} hold different data in the database "
                "(not overwritten; --overwrite replaces them)"
            )
        lines.append("skipped: " + ("; ".join(skipped) if skipped else "none"))
        lines.extend(
            f"  conflict {key}: {self.diffs.get(key, '')}" for key in self.conflicts[:_SHOWN]
        )
        if self.conflict_count > _SHOWN:
            lines.append(f"  … and {self.conflict_count - _SHOWN} more conflicts")
        lines += _listed(
            "keys another writer changed while they were migrated (in a running dual-write "
            "or sqlite-first garrison they are repaired from the EDN side; otherwise "
            "validate, and in dual-write the EDN side is right: migrate again with --overwrite)",
            self.raced,
        )
        lines += _listed(
            "keys with keywords Clojure cannot read back (migrated as read)", self.lenient_keys
        )
        lines += _listed(
            "duplicate keys in the file (the last value was used)", self.duplicate_keys
        )
        return "\n".join(lines)


@dataclass(slots=True)
class ValidationReport:
    """The outcome of comparing the EDN file with the database, key by key.

    ``comparison`` holds the keys missing on each side and the keys whose
    values differ (``left`` is the EDN file, ``right`` the database);
    ``diffs`` a short readable diff for the first differing keys;
    ``dropped_index_keys`` the file's hand-kept index keys the database is
    expected not to hold (``index_keys = "drop"``): not reported missing.
    """

    source: str
    database: str
    comparison: Comparison
    edn_keys: int
    sqlite_keys: int
    diffs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    dropped_index_keys: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        """Whether both sides hold exactly the same entries."""
        return self.comparison.clean

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for the component's replies and JSON output)."""
        c = self.comparison
        return {
            "agree": self.agree,
            "source": self.source,
            "database": self.database,
            "edn_keys": self.edn_keys,
            "sqlite_keys": self.sqlite_keys,
            "common": c.common,
            "only_in_edn": list(c.only_left),
            "only_in_sqlite": list(c.only_right),
            "different": list(c.different),
            "diffs": dict(self.diffs),
            "seconds": round(self.seconds, 3),
            "dropped_index_keys": list(self.dropped_index_keys),
        }

    def render(self) -> str:
        """The human report printed by ``garrison validate``."""
        c = self.comparison
        verdict = "AGREE" if self.agree else "DISAGREE"
        lines = [
            (
                f"{verdict}: {self.source} ({self.edn_keys} keys) vs {self.database} "
                f"({self.sqlite_keys} keys); {c.common} on both sides; {self.seconds:.2f}s"
            ),
        ]
        if self.dropped_index_keys:
            lines.append(
                f"not expected in the database: {len(self.dropped_index_keys)} hand-kept "
                'index keys (index_keys = "drop")'
            )
        lines += _listed("missing in the database (only in the EDN file)", c.only_left)
        lines += _listed("missing in the EDN file (only in the database)", c.only_right)
        if c.different:
            lines.append(f"different values: {len(c.different)}")
            for key in c.different[:_SHOWN]:
                lines.append(f"  {key}: {self.diffs.get(key, '')}")
            if len(c.different) > _SHOWN:
                lines.append(f"  … and {len(c.different) - _SHOWN} more")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """The outcome of ``export``: how many keys went to which file, how big, how long."""

    database: str
    target: str
    keys: int
    bytes_written: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for the component's replies)."""
        return {
            "database": self.database,
            "target": self.target,
            "keys": self.keys,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
        }

    def render(self) -> str:
        """One line for ``garrison export``."""
        return (
            f"exported {self.keys} keys from {self.database} to {self.target} "
            f"({self.bytes_written:,} bytes, {self.seconds:.2f}s); the file was replaced atomically"
        )
