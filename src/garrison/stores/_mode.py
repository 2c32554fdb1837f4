"""The mode router's vocabulary: the four modes, how the current one is decided,
a recorded switch, its statistics."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.exceptions import StoreError

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["Mode", "ModeSwitch", "RouterStatistics", "decide_mode"]


class Mode(enum.StrEnum):
    """The four migration modes, in the order a migration goes through them."""

    EDN_ONLY = "edn-only"
    DUAL_WRITE = "dual-write"
    SQLITE_FIRST = "sqlite-first"
    SQLITE_ONLY = "sqlite-only"

    @property
    def writes_edn(self) -> bool:
        """Whether writes in this mode go to the EDN store."""
        return self is not Mode.SQLITE_ONLY

    @property
    def writes_sqlite(self) -> bool:
        """Whether writes in this mode go to SQLite."""
        return self is not Mode.EDN_ONLY


def decide_mode(recorded: str | None, *, configured: str | None, edn_file_exists: bool) -> Mode:
    """The mode a database is in: the one place that decides it.

    The mode ``recorded`` in the database (its meta table) wins; a database
    with none recorded yet starts in the ``configured`` mode, or, with none
    configured, in ``edn-only`` when the EDN file exists (a legacy
    installation) and ``sqlite-only`` otherwise. The runtime, when it opens
    the database, and every CLI command decide it here, so ``garrison mode
    get`` prints the mode the runtime starts in.

    >>> decide_mode(None, configured=None, edn_file_exists=True)
    <Mode.EDN_ONLY: 'edn-only'>
    >>> decide_mode("dual-write", configured="sqlite-only", edn_file_exists=False)
    <Mode.DUAL_WRITE: 'dual-write'>
    """
    if recorded is not None:
        try:
            return Mode(recorded)
        except ValueError:
            known = ", ".join(str(m) for m in Mode)
            raise StoreError(
                f"the database records an unknown store mode {recorded!r} (known: {known})"
            ) from None
    if configured is not None:
        return Mode(configured)
    return Mode.EDN_ONLY if edn_file_exists else Mode.SQLITE_ONLY


@dataclass(frozen=True, slots=True)
class ModeSwitch:
    """One recorded mode switch."""

    previous: Mode
    mode: Mode
    at: datetime
    forced: bool
    reason: str
    #: The validation made for the switch (entering or leaving sqlite-only), if any.
    validation: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON-friendly form kept in the meta table."""
        return {
            "from": str(self.previous),
            "to": str(self.mode),
            "at": self.at.isoformat(),
            "forced": self.forced,
            "reason": self.reason,
            "validation": self.validation,
        }


@dataclass(frozen=True, slots=True)
class RouterStatistics:
    """What the database health check reports about the router."""

    mode: Mode
    #: Keys whose SQLite side is known to be behind EDN.
    repair_backlog: int
    #: Whether SQLite may be behind on unrecorded keys (a full repair is due).
    full_repair_pending: bool
    #: The error of the last failed SQLite write or repair, if not repaired since.
    last_sqlite_error: str | None
    #: Keys repaired since open.
    repaired: int
    #: Reads in sqlite-first answered by EDN after a SQLite miss or error.
    fallback_reads: int
