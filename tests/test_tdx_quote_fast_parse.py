"""parse_quote's hot path (whole structures unpacked at once) returns exactly what the
field-by-field parser returns, and declines (so that the precise error is raised) on
everything the field-by-field parser rejects."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic.errors import QuoteFormatError
from attquic.tdx.quote import TdxQuote, _parse_checked, _parse_well_formed, parse_quote
from attquic.tdx.simulated import SimulatedTdxHierarchy


@functools.cache
def _samples(tdx_samples_dir: Path) -> tuple[bytes, ...]:
    return (
        (tdx_samples_dir / "phala-dcap-qvl/tdx_quote").read_bytes(),
        (tdx_samples_dir / "phala-dcap-qvl/tdx_quote_outdated").read_bytes(),
        SimulatedTdxHierarchy.default().quote(bytes(range(64))),
    )


def _same_outcome(data: bytes) -> None:
    fast = _parse_well_formed(data)
    try:
        checked: TdxQuote | None = _parse_checked(data)
    except QuoteFormatError:
        checked = None
    if checked is None:
        assert fast is None
        with pytest.raises(QuoteFormatError):
            parse_quote(data)
    else:
        assert fast == checked  # a well-formed quote always takes the hot path
        assert fast.raw == checked.raw and fast.signed_bytes == checked.signed_bytes


def test_samples_take_the_hot_path(tdx_samples_dir: Path) -> None:
    samples = _samples(tdx_samples_dir)
    assert len({parse_quote(sample).version for sample in samples}) == 2  # v4 and v5
    for sample in samples:
        _same_outcome(sample)
        _same_outcome(sample + b"\0padding")


def test_every_truncation_and_length_field_agrees(tdx_samples_dir: Path) -> None:
    for sample in _samples(tdx_samples_dir):
        for cut in range(0, len(sample) + 1, 7):
            _same_outcome(sample[:cut])
        quote = parse_quote(sample)
        sig_at = len(quote.signed_bytes)
        for delta in (-1, 1, 2**31):
            patched = bytearray(sample + bytes(4))
            value = (struct.unpack_from("<I", sample, sig_at)[0] + delta) % 2**32
            struct.pack_into("<I", patched, sig_at, value)
            _same_outcome(bytes(patched))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_quotes_agree(tdx_samples_dir: Path, data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from(_samples(tdx_samples_dir))))
    for _ in range(data.draw(st.integers(1, 4))):
        # mostly the header, body descriptor, lengths and types: where parsing decides
        offset = data.draw(
            st.one_of(st.integers(0, 60), st.integers(620, 1300), st.integers(0, len(base) - 1))
        )
        if offset < len(base):
            base[offset] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    _same_outcome(bytes(base[:cut]))
