"""atheris harness: the control-stream frame decoder (attquic.frames.FrameDecoder).

The input is split into chunks at fuzzer-chosen points and fed incrementally. Checks: only
FrameError escapes; the decoder never buffers more than one header plus the frame bound; every
decoded frame re-encodes to bytes that decode to the same frame.
"""

from __future__ import annotations

from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic.errors import FrameError
    from attquic.frames import (
        AuthenticatorFrame,
        AuthenticatorRequestFrame,
        FrameDecoder,
        ResultFrame,
        SetupFrame,
        encode_frame,
    )

TARGET = "attquic.frames.FrameDecoder"
_MAX_HEADER = 16  # two 8-byte varints


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    bound = provider.ConsumeIntInRange(1, 4096)
    chunk_size = provider.ConsumeIntInRange(1, 64)
    stream = provider.ConsumeBytes(provider.remaining_bytes())
    decoder = FrameDecoder(max_frame_size=bound)
    try:
        for start in range(0, len(stream), chunk_size):
            for frame in decoder.feed(stream[start : start + chunk_size]):
                assert FrameDecoder(max_frame_size=1 << 20).feed(encode_frame(frame)) == [frame]
            assert decoder.buffered <= _MAX_HEADER + bound, "decoder buffered past the bound"
    except FrameError:
        return


def seeds() -> Iterator[bytes]:
    frames = [
        SetupFrame(1, True, True),
        SetupFrame(1, False, True),
        AuthenticatorRequestFrame(b"\x11\x00\x00\x05\x00\x00\x02\xff\xff"),
        AuthenticatorFrame(b"\x14\x00\x00\x20" + bytes(32)),
        ResultFrame(bytes(32)),
    ]
    prefix = b"\x00\xff\x00\x08"  # bound 255, chunk size 9
    yield prefix + b"".join(encode_frame(frame) for frame in frames)
    for frame in frames:
        yield prefix + encode_frame(frame)


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
