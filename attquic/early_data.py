"""Application data that arrives before the gate opens: held, bounded, released in order.

Two bounds apply. Each connection holds at most ``early_data_limit`` bytes; and all the
connections of one server together hold at most an :class:`EarlyDataBudget`, so that many
unattested peers flooding early data cannot make the server buffer without limit (each
connection's bound alone would still let N peers make it hold N times the bound). A stream
whose data would cross either bound is refused by the caller.

Streams count, not only bytes: every held stream is charged :data:`STREAM_CHARGE` bytes against
both bounds on top of its payload, so a flood of empty streams (FIN and no data) is refused
like a flood of bytes. With the defaults (256 KiB per connection, 8 MiB per server) one
connection holds at most 256 streams and a server at most 8,192, whatever their payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["STREAM_CHARGE", "EarlyDataBudget", "EarlyDataBuffer"]

#: Bytes each held stream costs against the early-data bounds, besides its payload: above
#: what holding one costs (measured: about 330 B of bookkeeping here and in aioquic per empty
#: stream), so the bounds stay bounds on memory.
STREAM_CHARGE: Final = 1024


class EarlyDataBudget:
    """Bytes held before attestation, summed over every connection that shares this budget."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("the early-data budget must not be negative")
        self.limit = limit
        self.held = 0

    def reserve(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


@dataclass
class _Stream:
    chunks: list[tuple[bytes, bool]] = field(default_factory=list)
    size: int = 0


class EarlyDataBuffer:
    """One connection's held stream data, in arrival order per stream and across streams."""

    def __init__(self, limit: int, budget: EarlyDataBudget | None = None) -> None:
        self._limit = limit
        self._budget = budget
        self._streams: dict[int, _Stream] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes held now, stream charges included."""
        return self._size

    @property
    def streams(self) -> int:
        """Streams held now."""
        return len(self._streams)

    def __contains__(self, stream_id: int) -> bool:
        return stream_id in self._streams

    def hold(self, stream_id: int, data: bytes, end_stream: bool) -> bool:
        """Hold ``data``; False if it would cross a bound (nothing is held then).

        The first chunk of a stream also costs :data:`STREAM_CHARGE`.
        """
        stream = self._streams.get(stream_id)
        size = len(data) + (STREAM_CHARGE if stream is None else 0)
        if self._size + size > self._limit:
            return False
        if self._budget is not None and not self._budget.reserve(size):
            return False
        if stream is None:
            stream = self._streams[stream_id] = _Stream()
        stream.chunks.append((data, end_stream))
        stream.size += size
        self._size += size
        return True

    def drop(self, stream_id: int) -> None:
        """Discard what one stream holds (refused or reset)."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._release(stream.size)

    def take(self) -> dict[int, list[tuple[bytes, bool]]]:
        """Everything held, per stream in arrival order, and forget it (the gate opened)."""
        streams, self._streams = self._streams, {}
        self._release(self._size)
        return {stream_id: stream.chunks for stream_id, stream in streams.items()}

    def clear(self) -> None:
        """Discard everything (the connection failed or closed)."""
        self._streams.clear()
        self._release(self._size)

    def _release(self, size: int) -> None:
        self._size -= size
        if self._budget is not None:
            self._budget.release(size)
