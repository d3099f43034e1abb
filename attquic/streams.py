"""Application streams of an attested connection, as anyio byte streams.

An :class:`AttestedStream` exists only once the connection's gate is open, so every byte it
yields or accepts belongs to an attested channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import ByteStream

from attquic.attestation import AttestationResult

__all__ = ["AttestationAttribute", "AttestedStream"]


class AttestationAttribute(anyio.TypedAttributeSet):
    """Typed attributes of an attested stream (``stream.extra(AttestationAttribute.x)``)."""

    peer_attestation: AttestationResult | None = anyio.typed_attribute()
    """The peer's latest verified attestation (None if this side does not verify it)."""
    stream_id: int = anyio.typed_attribute()


class _StreamOwner(Protocol):
    def _stream_send(self, stream_id: int, data: bytes, end_stream: bool) -> None: ...

    def _stream_abort(self, stream_id: int) -> None: ...

    @property
    def peer_attestation(self) -> AttestationResult | None: ...


class AttestedStream(ByteStream):
    """A bidirectional QUIC stream on an attested connection."""

    def __init__(self, owner: _StreamOwner, stream_id: int) -> None:
        self._owner = owner
        self._stream_id = stream_id
        self._buffer = bytearray()
        self._eof = False
        self._sent_eof = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()

    @property
    def stream_id(self) -> int:
        return self._stream_id

    # --- fed by the protocol ------------------------------------------------------------

    def _feed(self, data: bytes, end_stream: bool) -> None:
        self._buffer += data
        if end_stream:
            self._eof = True
        self._readable.set()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._readable.set()

    # --- anyio ByteStream ---------------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise anyio.BrokenResourceError from self._error
            if self._eof:
                raise anyio.EndOfStream
            self._readable.clear()
            await self._readable.wait()
        chunk = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        return chunk

    async def send(self, item: bytes) -> None:
        if self._error is not None:
            raise anyio.BrokenResourceError from self._error
        if self._sent_eof:
            raise anyio.ClosedResourceError
        self._owner._stream_send(self._stream_id, bytes(item), False)

    async def send_eof(self) -> None:
        if self._sent_eof or self._error is not None:
            return
        self._sent_eof = True
        self._owner._stream_send(self._stream_id, b"", True)

    async def aclose(self) -> None:
        if not self._sent_eof and self._error is None:
            await self.send_eof()
        if not self._eof:
            self._owner._stream_abort(self._stream_id)
        self._fail(anyio.ClosedResourceError())

    async def receive_exactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or :class:`anyio.IncompleteRead` at end of stream."""
        out = bytearray()
        while len(out) < size:
            try:
                out += await self.receive(size - len(out))
            except anyio.EndOfStream:
                raise anyio.IncompleteRead from None
        return bytes(out)

    async def receive_all(self) -> bytes:
        """Everything until the peer's end of stream."""
        out = bytearray()
        while True:
            try:
                out += await self.receive()
            except anyio.EndOfStream:
                return bytes(out)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            AttestationAttribute.peer_attestation: lambda: self._owner.peer_attestation,
            AttestationAttribute.stream_id: lambda: self._stream_id,
        }
