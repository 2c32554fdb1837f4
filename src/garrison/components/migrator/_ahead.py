"""Encoding the migration's next batch while the current one is written.

A batch's write is mostly SQLite stepping (entries, the history trigger, the
index), which runs with the GIL released; encoding values to the store's
JSON texts (the C encoder, with the pure encoder for rare kinds) and hashing
the texts need the GIL but little time. So the migration asks
:class:`EncodeAhead` for each batch in turn, and while it compares and writes
that batch, the next one is already being encoded in a worker thread.

Encoding is pure (it reads the parsed file, which nothing changes), so doing
it early changes nothing but the timing: an error encoding batch *n + 1*
surfaces when the migration asks for batch *n + 1*, after batch *n* is
committed and recorded, exactly as without the look-ahead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from garrison.components.migrator._diff import text_digest
from garrison.stores import EncodedRow, encode_rows, rows_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["EncodeAhead", "EncodedBatch", "encode_batch"]

#: (kind, the batch's (key, value) pairs, keys of the plan done after it,
#: its encoded rows, their texts' digests in the same order, and the rows'
#: rows_json, or True when not made).
EncodedBatch: TypeAlias = tuple[
    str, list[tuple[str, Any]], int, list[EncodedRow], list[bytes], str | bool | None
]


def encode_batch(
    batch: list[tuple[str, Any]], kind: str, *, digests: bool
) -> tuple[list[EncodedRow], list[bytes], str | bool | None]:
    """The batch's rows, and for a write their texts' digests and rows_json (blocking)."""
    rows = encode_rows(batch, kind=kind)
    if not digests:
        return rows, [], True
    return rows, [text_digest(row[3]) for row in rows], rows_json(rows)


@dataclass(slots=True)
class _Planned:
    """A planned batch: its kind, (key, value) pairs, keys done after it, and its encoding."""

    kind: str
    batch: list[tuple[str, Any]]
    done: int
    encoding: asyncio.Future[tuple[list[EncodedRow], list[bytes], str | bool | None]] | None = None


class EncodeAhead:
    """The planned batches, each encoded in a worker thread one batch ahead of its use.

    ``batches`` yields ``(kind, keys, done)`` as the migration plans them;
    ``entries`` maps each key to its parsed value. The first batch's encoding
    starts at once; the next one's when :meth:`start` is called (the
    migration calls it, from any thread through the loop, when the current
    batch's rows go to SQLite: the encoding then runs while SQLite writes
    without the GIL, and not while the write's own Python needs it), or at
    the latest when :meth:`next` asks for it. Call :meth:`close` when done
    (also after an error or a cancellation) so no encoding is left pending.
    """

    def __init__(
        self,
        batches: Iterable[tuple[str, list[str], int]],
        entries: dict[str, Any],
        *,
        digests: bool,
    ) -> None:
        self._batches: Iterator[tuple[str, list[str], int]] = iter(batches)
        self._entries = entries
        self._digests = digests
        self._pending = self._plan()
        self.start()

    def _plan(self) -> _Planned | None:
        planned = next(self._batches, None)
        if planned is None:
            return None
        kind, keys, done = planned
        entries = self._entries
        return _Planned(kind, [(key, entries[key]) for key in keys], done)

    def start(self) -> None:
        """Start encoding the next batch, unless it has started (or there is none). On the loop."""
        pending = self._pending
        if pending is None or pending.encoding is not None:
            return
        pending.encoding = asyncio.ensure_future(
            asyncio.to_thread(encode_batch, pending.batch, pending.kind, digests=self._digests)
        )

    async def next(self) -> EncodedBatch | None:
        """The next batch, encoded (``None`` after the last)."""
        self.start()
        pending = self._pending
        if pending is None:
            return None
        self._pending = self._plan()
        assert pending.encoding is not None  # started above
        rows, digests, payload = await pending.encoding
        return pending.kind, pending.batch, pending.done, rows, digests, payload

    def close(self) -> None:
        """Stop waiting for the batch encoded ahead (its worker finishes on its own)."""
        pending, self._pending = self._pending, None
        if pending is None or pending.encoding is None:
            return
        encoding = pending.encoding
        if encoding.done():
            if not encoding.cancelled():
                encoding.exception()  # retrieved, so asyncio does not log it as lost
        else:
            encoding.cancel()
