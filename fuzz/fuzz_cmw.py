"""atheris harness: the CMW decoders (attquic.cmw.decode: CBOR record/tag/collection, JSON).

Checks: only CMWError escapes; whatever decodes re-encodes (CBOR and JSON, when representable)
to bytes that decode to an equal CMW.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic.cmw import CMWRecord, decode, encode_cbor, encode_json
    from attquic.errors import CMWError

from _common import data_files

TARGET = "attquic.cmw.decode"


def test_one_input(data: bytes) -> None:
    try:
        cmw = decode(data)
    except CMWError:
        return
    assert decode(encode_cbor(cmw)) == cmw, "CBOR round trip changed the CMW"
    try:
        as_json = encode_json(cmw)
    except CMWError:
        return  # not representable in JSON (e.g. a CBOR tag): allowed
    assert decode(as_json) == cmw, "JSON round trip changed the CMW"


def seeds() -> Iterator[bytes]:
    yield from data_files("vectors/cmw/**/*.cbor", "vectors/cmw/**/*.json")
    record = CMWRecord("application/vnd.attquic.tdx-quote", b"\x04\x00" + bytes(30), ind=4)
    yield encode_cbor(record)
    yield encode_json(record)
    yield json.dumps({"__cmwc_t": "tag:example.com,2024:x", "a": ["text/plain", "AA"]}).encode()


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
