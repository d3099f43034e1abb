"""Control-stream frames of the "attquic/2" wire profile.

Every frame is ``varint type ‖ varint length ‖ payload`` (QUIC variable-length integers).

=====================  ====  ==========================================================
frame                  type  payload
=====================  ====  ==========================================================
SETUP                  0x01  varint SETUP version ‖ varint flags (bit 0: will request
                             the peer's attestation; bit 1: will attest when asked; bit 2:
                             accepts batched evidence as relying party)
AUTHENTICATOR_REQUEST  0x02  an RFC 9261 request (with its handshake header)
AUTHENTICATOR          0x03  an RFC 9261 authenticator (or the empty authenticator)
RESULT                 0x04  uint8 verdict (1 = accepted) ‖ opaque context<0..255>
=====================  ====  ==========================================================

Unknown frame types, unknown flag bits, trailing bytes and frames above the configured size
bound are protocol violations (:class:`~attquic.errors.FrameError`).
"""

from __future__ import annotations

from dataclasses import dataclass

from attquic import profile
from attquic._wire import Reader, encode_varint, u8, vec8
from attquic.errors import FrameError

__all__ = [
    "AuthenticatorFrame",
    "AuthenticatorRequestFrame",
    "Frame",
    "FrameDecoder",
    "ResultFrame",
    "SetupFrame",
    "encode_frame",
]

_FLAG_REQUESTS = 0x1
_FLAG_ATTESTS = 0x2
_FLAG_ACCEPTS_BATCHED = 0x4
_KNOWN_FLAGS = _FLAG_REQUESTS | _FLAG_ATTESTS | _FLAG_ACCEPTS_BATCHED
_VERDICT_ACCEPTED = 1


@dataclass(frozen=True)
class SetupFrame:
    """Each side's first frame: its profile version and which roles it takes."""

    version: int
    requests_attestation: bool
    """This side will send authenticator requests (it requires the peer's attestation)."""
    attests: bool
    """This side answers authenticator requests with evidence."""
    accepts_batched: bool = False
    """As relying party, this side accepts batched evidence (a quote covering a Merkle tree of
    bindings plus this connection's inclusion proof)."""


@dataclass(frozen=True)
class AuthenticatorRequestFrame:
    request: bytes


@dataclass(frozen=True)
class AuthenticatorFrame:
    authenticator: bytes


@dataclass(frozen=True)
class ResultFrame:
    """The relying party accepted the attestation answering the request ``context``."""

    context: bytes


Frame = SetupFrame | AuthenticatorRequestFrame | AuthenticatorFrame | ResultFrame


def _payload(frame: Frame) -> tuple[int, bytes]:
    if isinstance(frame, SetupFrame):
        flags = (
            (_FLAG_REQUESTS if frame.requests_attestation else 0)
            | (_FLAG_ATTESTS if frame.attests else 0)
            | (_FLAG_ACCEPTS_BATCHED if frame.accepts_batched else 0)
        )
        return profile.FRAME_SETUP, encode_varint(frame.version) + encode_varint(flags)
    if isinstance(frame, AuthenticatorRequestFrame):
        return profile.FRAME_AUTHENTICATOR_REQUEST, frame.request
    if isinstance(frame, AuthenticatorFrame):
        return profile.FRAME_AUTHENTICATOR, frame.authenticator
    return profile.FRAME_RESULT, u8(_VERDICT_ACCEPTED) + vec8(frame.context)


def encode_frame(frame: Frame) -> bytes:
    """The wire encoding of one frame."""
    frame_type, payload = _payload(frame)
    return encode_varint(frame_type) + encode_varint(len(payload)) + payload


def _decode_payload(frame_type: int, payload: bytes) -> Frame:
    if frame_type == profile.FRAME_SETUP:
        reader = Reader(payload, FrameError)
        version = reader.varint("SETUP version")
        flags = reader.varint("SETUP flags")
        reader.expect_end("SETUP frame")
        if flags & ~_KNOWN_FLAGS:
            raise FrameError(f"unknown SETUP flags 0x{flags:x}")
        return SetupFrame(
            version,
            requests_attestation=bool(flags & _FLAG_REQUESTS),
            attests=bool(flags & _FLAG_ATTESTS),
            accepts_batched=bool(flags & _FLAG_ACCEPTS_BATCHED),
        )
    if frame_type == profile.FRAME_AUTHENTICATOR_REQUEST:
        if not payload:
            raise FrameError("empty AUTHENTICATOR_REQUEST frame")
        return AuthenticatorRequestFrame(payload)
    if frame_type == profile.FRAME_AUTHENTICATOR:
        if not payload:
            raise FrameError("empty AUTHENTICATOR frame")
        return AuthenticatorFrame(payload)
    if frame_type == profile.FRAME_RESULT:
        reader = Reader(payload, FrameError)
        verdict = reader.u8("RESULT verdict")
        context = reader.vec8("RESULT context")
        reader.expect_end("RESULT frame")
        if verdict != _VERDICT_ACCEPTED:
            raise FrameError(f"unknown RESULT verdict {verdict}")
        return ResultFrame(context)
    raise FrameError(f"unknown control frame type 0x{frame_type:x}")


class FrameDecoder:
    """Incremental decoder for the control stream.

    ``feed`` returns every complete frame. A frame whose declared length exceeds
    ``max_frame_size`` is rejected as soon as its header is read, before any payload is
    buffered, so a peer cannot make us hold more than the bound.
    """

    def __init__(self, max_frame_size: int = profile.DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size <= 0:
            raise ValueError("max_frame_size must be positive")
        self._max = max_frame_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        if not self._buffer:
            return self._feed_fresh(bytes(data))
        self._buffer += data
        frames: list[Frame] = []
        while self._buffer:
            header = _parse_header(bytes(self._buffer[:16]))
            if header is None:
                break
            frame_type, length, header_size = header
            if length > self._max:
                raise FrameError(f"control frame of {length} bytes exceeds the {self._max} bound")
            end = header_size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[header_size:end])
            del self._buffer[:end]
            frames.append(_decode_payload(frame_type, payload))
        return frames

    def _feed_fresh(self, data: bytes) -> list[Frame]:
        """:meth:`feed` with nothing buffered: whole frames are read from ``data`` in place
        (the usual case, a frame per read), and only an incomplete tail is buffered."""
        frames: list[Frame] = []
        pos = 0
        size = len(data)
        while pos < size:
            header = _parse_header(data, pos)
            if header is None:
                break
            frame_type, length, start = header
            if length > self._max:
                self._buffer += data[pos:]  # as feed() would hold it (at most a header)
                raise FrameError(f"control frame of {length} bytes exceeds the {self._max} bound")
            end = start + length
            if end > size:
                break
            pos = end
            frames.append(_decode_payload(frame_type, data[start:end]))
        if pos < size:
            self._buffer += data[pos:]
        return frames


def _varint_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """The QUIC varint at ``data[pos:]`` and the offset after it, or None if incomplete."""
    if pos >= len(data):
        return None
    first = data[pos]
    end = pos + (1 << (first >> 6))
    if end > len(data):
        return None
    value = first & 0x3F
    for byte in data[pos + 1 : end]:
        value = (value << 8) | byte
    return value, end


def _parse_header(data: bytes, pos: int = 0) -> tuple[int, int, int] | None:
    """(type, length, offset of the payload) if ``data[pos:]`` holds a whole frame header."""
    frame_type = _varint_at(data, pos)
    if frame_type is None:
        return None  # incomplete header: wait for more bytes
    length = _varint_at(data, frame_type[1])
    if length is None:
        return None
    return frame_type[0], length[0], length[1]
