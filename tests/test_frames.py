"""Control-stream frame codec: round trips, bounds, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic._wire import encode_varint
from attquic.errors import FrameError
from attquic.frames import (
    AuthenticatorFrame,
    AuthenticatorRequestFrame,
    FrameDecoder,
    ResultFrame,
    SetupFrame,
    encode_frame,
)

FRAMES = [
    SetupFrame(1, requests_attestation=True, attests=False),
    SetupFrame(1, requests_attestation=False, attests=True),
    SetupFrame(7, requests_attestation=True, attests=True),
    SetupFrame(2, requests_attestation=True, attests=False, accepts_batched=True),
    AuthenticatorRequestFrame(b"\x11\x00\x00\x01\x00"),
    AuthenticatorFrame(b"\x14" + bytes(40)),
    ResultFrame(bytes(range(32))),
    ResultFrame(b""),
]


@pytest.mark.parametrize("frame", FRAMES)
def test_round_trip(frame: object) -> None:
    assert FrameDecoder().feed(encode_frame(frame)) == [frame]  # type: ignore[arg-type]


def test_setup_bytes() -> None:
    assert encode_frame(SetupFrame(1, True, False)) == bytes([0x01, 0x02, 0x01, 0x01])
    assert encode_frame(SetupFrame(1, False, True)) == bytes([0x01, 0x02, 0x01, 0x02])


def test_result_bytes() -> None:
    assert encode_frame(ResultFrame(b"\xaa\xbb")) == bytes([0x04, 0x04, 0x01, 0x02, 0xAA, 0xBB])


def test_byte_by_byte_feeding_yields_the_same_frames() -> None:
    stream = b"".join(encode_frame(f) for f in FRAMES)  # type: ignore[arg-type]
    decoder = FrameDecoder()
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == FRAMES
    assert decoder.buffered == 0


def test_unknown_frame_type_is_rejected() -> None:
    with pytest.raises(FrameError, match="unknown control frame type"):
        FrameDecoder().feed(encode_varint(0x21) + encode_varint(0))


def test_oversized_frame_rejected_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    header = encode_varint(profile.FRAME_AUTHENTICATOR) + encode_varint(1025)
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(header)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (encode_varint(1), "truncated"),
        (encode_varint(1) + encode_varint(0x8), "unknown SETUP flags"),
        (encode_varint(1) + encode_varint(1) + b"\x00", "trailing"),
    ],
)
def test_malformed_setup(payload: bytes, match: str) -> None:
    data = encode_varint(profile.FRAME_SETUP) + encode_varint(len(payload)) + payload
    with pytest.raises(FrameError, match=match):
        FrameDecoder().feed(data)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "truncated"),
        (b"\x02\x00", "unknown RESULT verdict"),
        (b"\x01\x05ab", "truncated"),
        (b"\x01\x01ab", "trailing"),
    ],
)
def test_malformed_result(payload: bytes, match: str) -> None:
    data = encode_varint(profile.FRAME_RESULT) + encode_varint(len(payload)) + payload
    with pytest.raises(FrameError, match=match):
        FrameDecoder().feed(data)


@pytest.mark.parametrize(
    "frame_type", [profile.FRAME_AUTHENTICATOR, profile.FRAME_AUTHENTICATOR_REQUEST]
)
def test_empty_exchange_frames_rejected(frame_type: int) -> None:
    with pytest.raises(FrameError, match="empty"):
        FrameDecoder().feed(encode_varint(frame_type) + encode_varint(0))


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_chunks_raise_only_frame_errors(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except FrameError:
        pass
