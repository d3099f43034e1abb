"""atheris harness: EAR token parsing (attquic.ear).

The first byte picks the layer: the strict claims-set JSON parser and claims decoder
(parse_claims_json + decode_claims), the compact-JWS front end of EarVerifier (the input as a
token), or a token whose payload is the input, correctly signed by a trusted key, through the
whole EarVerifier.verify. Checks: only AttquicError subclasses escape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic.ear.claims import decode_claims, parse_claims_json
    from attquic.ear.keys import generate_signing_key, public_jwk
    from attquic.ear.token import EarVerifier
    from attquic.errors import AttquicError

from _common import data_files
from joserfc import jws

TARGET = "attquic.ear (claims JSON, JWS front end, EarVerifier.verify)"

_KEY = generate_signing_key()
_VERIFIER = EarVerifier([public_jwk(_KEY)], required_status="none")
_NOW = 1_760_000_000.0
_NONCE = bytes(32)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    try:
        if mode == 0:
            decode_claims(parse_claims_json(body))
        elif mode == 1:
            _VERIFIER.decode(body, now=_NOW)
        else:
            token = jws.serialize_compact({"alg": "ES256"}, body, _KEY, algorithms=["ES256"])
            _VERIFIER.verify(token, now=_NOW, expected_nonce=_NONCE)
    except AttquicError:
        return


def seeds() -> Iterator[bytes]:
    # draft-ietf-rats-ear-03's own examples (JSON claims-sets), then the older vectors
    for raw in data_files("ear/draft-ietf-rats-ear-03/*.diag", "vectors/ear/**/*claims*.json"):
        yield b"\x00" + raw
        yield b"\x02" + raw
    for raw in data_files("vectors/ear/tokens.json"):
        for value in _strings(json.loads(raw)):
            if value.count(".") == 2:
                yield b"\x01" + value.encode()


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
