"""atheris harness: the TDX quote parser (attquic.tdx.quote.parse_quote) and the lazily parsed
parts of a quote (PCK chain PEM, leaf DER, FMSPC, issuing CA, TD attributes).

Checks: only QuoteFormatError escapes (a DecodeError: malformed evidence).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic.errors import QuoteFormatError
    from attquic.tdx.quote import parse_quote

from _common import data_files

TARGET = "attquic.tdx.quote.parse_quote"


def test_one_input(data: bytes) -> None:
    try:
        quote = parse_quote(data)
    except QuoteFormatError:
        return
    assert len(quote.report_data) == 64 and len(quote.mrtd) == 48
    quote.td_attributes.to_dict()
    for lazy in ("pck_chain_der", "pck_leaf", "fmspc", "ca"):
        with contextlib.suppress(QuoteFormatError):
            getattr(quote, lazy)
    quote.chain_ends_with(b"\x30\x03\x02\x01\x00")


def seeds() -> Iterator[bytes]:
    yield from data_files("tdx-samples/**/*.dat", "tdx-samples/phala-dcap-qvl/tdx_quote*")
    import warnings

    from attquic.tdx.simulated import SimulatedTdxHierarchy, SimulatedTdxWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimulatedTdxWarning)
        hierarchy = SimulatedTdxHierarchy.default()
        for version in (4, 5):
            yield hierarchy.quote(bytes(64), version=version)


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
