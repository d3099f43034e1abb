"""atheris harness: RFC 9261 messages and the authenticator receiver checklist.

The first input byte picks the decoder: an authenticator request (with or without its
handshake header), an authenticator (SHA-256 or SHA-384 Finished length), a Certificate
message, or full validation of an authenticator against an outstanding request on a fixed
exporter (which parses certificates and verifies signatures and Finished MACs). Checks: only
AttquicError subclasses escape, and decoded messages re-encode to the input.
"""

from __future__ import annotations

from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic import expat
    from attquic.ea.authenticator import ExportedAuthenticators
    from attquic.ea.identity import generate_self_signed
    from attquic.ea.messages import (
        Authenticator,
        AuthenticatorRequest,
        CertificateMessage,
        Role,
    )
    from attquic.errors import AttquicError
    from attquic.keyschedule import ExporterSecret

TARGET = "attquic.ea (messages and ExportedAuthenticators.validate)"

_EXPORTER = ExporterSecret("sha256", bytes(range(32)))
_CONTEXT = bytes(range(100, 132))
_IDENTITY = generate_self_signed("p256", common_name="fuzz attester")


def _requester() -> tuple[ExportedAuthenticators, AuthenticatorRequest]:
    requester = ExportedAuthenticators(_EXPORTER, Role.CLIENT, random_bytes=lambda n: _CONTEXT[:n])
    return requester, requester.request([expat.offer()])


def _decode(mode: int, body: bytes) -> None:
    if mode == 0:
        request = AuthenticatorRequest.decode(body)
        assert request.encode() == body
    elif mode == 1:
        request = AuthenticatorRequest.decode(body, with_header=False)
        assert request.encode_body() == body
    elif mode in (2, 3):
        authenticator = Authenticator.decode(body, hash_length=32 if mode == 2 else 48)
        assert authenticator.encode() == body
    elif mode == 4:
        certificate = CertificateMessage.decode(body)
        assert certificate.encode() == body
    else:
        requester, _ = _requester()
        validated = requester.validate(body)
        assert validated.context == _CONTEXT
        assert not requester.outstanding


def test_one_input(data: bytes) -> None:
    if not data:
        return
    try:
        _decode(data[0] % 6, data[1:])
    except AttquicError:
        return


def seeds() -> Iterator[bytes]:
    _, request = _requester()
    attester = ExportedAuthenticators(_EXPORTER, Role.SERVER)
    leaf = [expat.leaf_extension(_cmw())]
    authenticator = attester.authenticate(request, _IDENTITY, leaf)
    refusal = ExportedAuthenticators(_EXPORTER, Role.SERVER).refuse(request)
    yield b"\x00" + request.encode()
    yield b"\x01" + request.encode_body()
    yield b"\x02" + authenticator
    yield b"\x02" + refusal
    yield b"\x04" + Authenticator.decode(authenticator, hash_length=32).certificate.encode()  # type: ignore[union-attr]
    yield b"\x05" + authenticator
    yield b"\x05" + refusal


def _cmw():  # type: ignore[no-untyped-def]
    from attquic.cmw import CMWRecord

    return CMWRecord("application/vnd.attquic.tdx-quote", b"\x04\x00" + bytes(30), ind=4)


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
