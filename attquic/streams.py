"""Application streams of an attested connection, as anyio byte streams.

Three types, one per QUIC stream direction:

* :class:`AttestedStream`: a bidirectional stream (either side opened it);
* :class:`AttestedReceiveStream`: the peer's unidirectional stream (we only read);
* :class:`AttestedSendStream`: our own unidirectional stream (we only write).

A stream exists only once the connection's gate is open, so every byte it yields or accepts
belongs to an attested channel. Every failure the application can see is an attquic exception
(:mod:`attquic.errors`): :class:`~attquic.errors.StreamReset` (the peer reset its side),
:class:`~attquic.errors.StreamStopped` (the peer asked us to stop sending),
:class:`~attquic.errors.StreamClosed` (we closed it), :class:`~attquic.errors.StreamIncomplete`
(``receive_exactly`` hit the end) and :class:`~attquic.errors.ConnectionClosed`. The stream
errors also derive from the anyio exceptions the :class:`anyio.abc.ByteStream` contract names.
:class:`anyio.EndOfStream` is the normal end of the peer's data, as for every anyio stream.

Each stream tells its owner once both of its directions are done (see
:meth:`_StreamOwner._stream_finished`), so that the connection can forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, ByteStream

from attquic._reraise import fresh_copy
from attquic.attestation import AttestationResult
from attquic.errors import (
    AttquicError,
    StreamClosed,
    StreamIncomplete,
    StreamReset,
    StreamStopped,
)

__all__ = [
    "AttestationAttribute",
    "AttestedReceiveStream",
    "AttestedSendStream",
    "AttestedStream",
    "PeerStreamIds",
    "is_unidirectional",
]


def is_unidirectional(stream_id: int) -> bool:
    """RFC 9000 §2.1: bit 0x2 of a stream ID marks a unidirectional stream."""
    return bool(stream_id & 0x2)


class AttestationAttribute(anyio.TypedAttributeSet):
    """Typed attributes of an attested stream (``stream.extra(AttestationAttribute.x)``)."""

    peer_attestation: AttestationResult | None = anyio.typed_attribute()
    """The peer's latest verified attestation (None if this side does not verify it)."""
    stream_id: int = anyio.typed_attribute()


class _StreamOwner(Protocol):
    def _stream_send(self, stream_id: int, data: bytes, end_stream: bool) -> None: ...

    def _stream_stop(self, stream_id: int) -> None: ...

    def _stream_finished(self, stream_id: int) -> None: ...

    @property
    def peer_attestation(self) -> AttestationResult | None: ...


class _Stream:
    """State of both directions of one stream; the public types expose one or both."""

    def __init__(
        self, owner: _StreamOwner, stream_id: int, *, readable: bool, writable: bool
    ) -> None:
        self._owner = owner
        self._stream_id = stream_id
        self._buffer = bytearray()
        self._eof = False
        self._receive_error: AttquicError | None = None
        self._receive_done = not readable
        """No more bytes will be fed (end of stream, reset, stopped, or not readable)."""
        self._send_error: AttquicError | None = None
        self._send_done = not writable
        """No more bytes will be sent (FIN sent, reset, or not writable)."""
        self._reader: asyncio.Future[None] | None = None
        """What a suspended :meth:`receive` waits on (one at a time, as anyio's byte streams)."""
        self._released = False

    @property
    def stream_id(self) -> int:
        return self._stream_id

    # --- fed by the protocol ------------------------------------------------------------

    def _feed(self, data: bytes, end_stream: bool) -> None:
        if self._receive_done:
            return  # we stopped reading (or never do, on our unidirectional stream): dropped
        self._buffer += data
        self._wake_reader()
        if end_stream:
            self._eof = True
            self._receive_done = True
            self._check_finished()

    def _wake_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _peer_reset(self, code: int) -> None:
        """RESET_STREAM from the peer: its sending side is gone."""
        if not self._receive_done:
            self._receive_error = StreamReset(
                f"stream {self._stream_id} reset by the peer (code {code})", code
            )
            self._receive_done = True
            self._wake_reader()
        self._check_finished()

    def _peer_stopped(self, code: int) -> None:
        """STOP_SENDING from the peer (aioquic has already reset our sending side)."""
        if not self._send_done:
            self._send_error = StreamStopped(
                f"the peer stopped stream {self._stream_id} (code {code})", code
            )
            self._send_done = True
        self._check_finished()

    def _connection_closed(self, error: AttquicError) -> None:
        """The connection is gone: whatever was not finished fails with ``error``."""
        if not self._receive_done:
            self._receive_error = error
            self._receive_done = True
            self._wake_reader()
        if not self._send_done:
            self._send_error = error
            self._send_done = True
        self._check_finished()

    def _check_finished(self) -> None:
        if self._receive_done and self._send_done and not self._released:
            self._released = True
            self._owner._stream_finished(self._stream_id)

    # --- shared application calls ---------------------------------------------------------

    async def aclose(self) -> None:
        """Finish our side (FIN) and stop reading the peer's (STOP_SENDING); idempotent."""
        if not self._send_done:
            self._send_done = True
            # the connection or stream may already be gone: nothing left to finish then
            with contextlib.suppress(AttquicError):
                self._owner._stream_send(self._stream_id, b"", True)
        if not self._receive_done:
            self._receive_done = True
            self._owner._stream_stop(self._stream_id)
        closed = StreamClosed(f"stream {self._stream_id} was closed by this side")
        if self._receive_error is None and not self._eof:
            self._receive_error = closed
        if self._send_error is None:
            self._send_error = closed
        self._buffer.clear()
        self._wake_reader()
        self._check_finished()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            AttestationAttribute.peer_attestation: lambda: self._owner.peer_attestation,
            AttestationAttribute.stream_id: lambda: self._stream_id,
        }


class _Receiving(_Stream):
    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` bytes; :class:`anyio.EndOfStream` once the peer finished.

        One call at a time per stream, as with anyio's byte streams: a second call while one
        waits raises :class:`anyio.BusyResourceError`.
        """
        while not self._buffer:
            if self._receive_error is not None:
                raise fresh_copy(self._receive_error)
            if self._eof:
                raise anyio.EndOfStream
            if self._reader is not None:
                raise anyio.BusyResourceError("receiving from")
            reader = self._reader = asyncio.get_running_loop().create_future()
            try:
                await reader
            finally:
                if self._reader is reader:  # cancelled: nobody woke it
                    self._reader = None
        if len(self._buffer) <= max_bytes:  # the usual case: all of it, one copy
            chunk = bytes(self._buffer)
            self._buffer.clear()
            return chunk
        chunk = bytes(memoryview(self._buffer)[:max_bytes])
        del self._buffer[:max_bytes]
        return chunk

    async def receive_exactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or :class:`~attquic.errors.StreamIncomplete` at the end."""
        out = bytearray()
        while len(out) < size:
            try:
                out += await self.receive(size - len(out))
            except anyio.EndOfStream:
                raise StreamIncomplete(
                    f"stream {self._stream_id} ended after {len(out)} of {size} bytes"
                ) from None
        return bytes(out)

    async def receive_all(self) -> bytes:
        """Everything until the peer's end of stream."""
        out = bytearray()
        while True:
            try:
                out += await self.receive()
            except anyio.EndOfStream:
                return bytes(out)


class _Sending(_Stream):
    async def send(self, item: bytes) -> None:
        if self._send_error is not None:
            raise fresh_copy(self._send_error)
        if self._send_done:
            raise StreamClosed(f"stream {self._stream_id}: end of stream already sent")
        self._owner._stream_send(self._stream_id, bytes(item), False)

    async def send_eof(self) -> None:
        """Finish our sending side (FIN); idempotent, and a no-op once the stream failed."""
        if self._send_done:
            return
        self._send_done = True
        self._owner._stream_send(self._stream_id, b"", True)
        self._check_finished()


class AttestedStream(_Receiving, _Sending, ByteStream):
    """A bidirectional QUIC stream on an attested connection."""

    def __init__(self, owner: _StreamOwner, stream_id: int) -> None:
        super().__init__(owner, stream_id, readable=True, writable=True)


class AttestedReceiveStream(_Receiving, ByteReceiveStream):
    """The peer's unidirectional QUIC stream on an attested connection: receive only."""

    def __init__(self, owner: _StreamOwner, stream_id: int) -> None:
        super().__init__(owner, stream_id, readable=True, writable=False)


class AttestedSendStream(_Sending, ByteSendStream):
    """Our own unidirectional QUIC stream on an attested connection: send only.

    :meth:`aclose` (or :meth:`send_eof`) finishes it.
    """

    def __init__(self, owner: _StreamOwner, stream_id: int) -> None:
        super().__init__(owner, stream_id, readable=False, writable=True)


class PeerStreamIds:
    """Which of the peer's stream IDs are new, in memory bounded by QUIC's stream limits.

    QUIC opens a peer's streams in ID order per type (opening one opens every lower one,
    RFC 9000 §3.2), so "seen" is one counter per type plus the gaps below it: IDs opened
    implicitly but not yet seen. A gap is a stream the QUIC stack still holds open (it has
    not finished), so there are never more gaps than the peer's concurrent-stream limit.
    A stream the connection has released is not new, so late frames for it are ignored
    instead of opening a fresh stream.
    """

    __slots__ = ("_gaps", "_next")

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._gaps: set[int] = set()

    def is_new(self, stream_id: int) -> bool:
        return stream_id >= self._next.get(stream_id & 0x3, 0) or stream_id in self._gaps

    def mark_seen(self, stream_id: int) -> None:
        kind = stream_id & 0x3
        first_unseen = self._next.get(kind, kind)
        if stream_id >= first_unseen:
            self._gaps.update(range(first_unseen, stream_id, 4))
            self._next[kind] = stream_id + 4
        else:
            self._gaps.discard(stream_id)

    @property
    def gaps(self) -> int:
        """IDs below the highest seen that were not seen yet (for tests and logs)."""
        return len(self._gaps)
