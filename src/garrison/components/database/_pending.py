"""Writes acknowledged but not committed yet (``durability = "debounced"``).

With ``durability = "debounced"`` the database actor answers a put or a
delete once it is admitted (every store of the mode can hold it) and recorded
here, and commits what is recorded later, in one go (see :mod:`._commit_loop`).
:class:`PendingWrites` keeps the writes in the order they were acknowledged
and, for reads, the newest value of every key they touch, so that every
reader sees every acknowledged write (read-your-writes) before it is committed.

The order is kept as *segments*: a run of puts, or a run of deletes, of one
audit (who and why: a transaction records one). A commit
replays the segments in order, one router call (one transaction on each side
the mode writes) per segment, so the history records every acknowledged
version and a crash keeps a prefix of the acknowledged writes: never a later
write without an earlier one, never part of one caller's write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from garrison.stores import Audit

__all__ = ["DELETED", "PendingWrites"]


class _Deleted:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETED"


#: The newest pending write of a key removed it.
DELETED: Final = _Deleted()

PUT: Final = "put"
DELETE: Final = "delete"


class Segment:
    """A run of puts (``(key text, value)`` entries) or of deletes (key text entries)."""

    __slots__ = ("audit", "entries", "first_at", "kind")

    def __init__(self, kind: str, first_at: float, audit: Audit) -> None:
        self.kind = kind
        self.audit = audit
        self.entries: list[Any] = []
        #: Loop time of the segment's oldest write.
        self.first_at = first_at

    def texts(self) -> list[str]:
        """The key texts the segment writes."""
        if self.kind is PUT:
            return [text for text, _ in self.entries]
        return list(self.entries)


class PendingWrites:
    """Acknowledged writes in acknowledgement order, with the newest value per key.

    A commit takes the writes pending at its start (:meth:`detach`); writes
    acknowledged meanwhile wait for the next one. Until it is done the
    detached writes still count as pending and stay readable.
    """

    __slots__ = ("_count", "inflight", "last_at", "latest", "segments")

    def __init__(self) -> None:
        #: Writes no commit has taken yet, oldest first.
        self.segments: list[Segment] = []
        #: Writes the running commit has taken and not committed yet, oldest first.
        self.inflight: list[Segment] = []
        #: Key text -> its newest pending value (taken or not), or :data:`DELETED`.
        self.latest: dict[str, Any] = {}
        #: Loop time of the newest write.
        self.last_at = 0.0
        self._count = 0

    def __len__(self) -> int:
        """The number of pending entries (a put or a delete of one key each)."""
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    @property
    def first_at(self) -> float | None:
        """Loop time of the oldest pending write; ``None`` when nothing is pending."""
        oldest = self.inflight or self.segments
        return oldest[0].first_at if oldest else None

    def add_puts(self, pairs: list[tuple[str, Any]], now: float, audit: Audit) -> None:
        """Record admitted ``(key text, value)`` puts, acknowledged at loop time ``now``."""
        self._segment(PUT, now, audit).entries.extend(pairs)
        latest = self.latest
        for text, value in pairs:
            latest[text] = value
        self._added(len(pairs), now)

    def add_deletes(self, texts: list[str], now: float, audit: Audit) -> None:
        """Record deletes of ``texts``, acknowledged at loop time ``now``."""
        self._segment(DELETE, now, audit).entries.extend(texts)
        latest = self.latest
        for text in texts:
            latest[text] = DELETED
        self._added(len(texts), now)

    def _segment(self, kind: str, now: float, audit: Audit) -> Segment:
        segments = self.segments
        if segments and segments[-1].kind is kind and segments[-1].audit == audit:
            return segments[-1]
        segment = Segment(kind, now, audit)
        segments.append(segment)
        return segment

    def _added(self, count: int, now: float) -> None:
        self.last_at = now
        self._count += count

    def detach(self) -> list[Segment]:
        """Hand the writes no commit has taken to a commit (they stay readable)."""
        self.inflight, self.segments = self.segments, []
        return self.inflight

    def committed_first(self) -> None:
        """The commit's oldest segment is committed: it is no longer pending."""
        done = self.inflight.pop(0)
        self._count -= len(done.entries)

    def commit_done(self) -> None:
        """The commit is over: what it did not commit is pending again, before the rest."""
        if self.inflight:
            self.segments[:0] = self.inflight
            self.inflight = []
        latest: dict[str, Any] = {}
        for segment in self.segments:
            if segment.kind is PUT:
                latest.update(segment.entries)
            else:
                latest.update(dict.fromkeys(segment.entries, DELETED))
        self.latest = latest
