"""atheris harness: cmw_attestation extraction (attquic.expat.extract).

The first byte picks the shape: a whole Certificate message decoded from the input (offered or
not), or a fixed two-entry Certificate whose leaf (or second) entry carries the input as the
cmw_attestation extension_data. Checks: only AttquicError subclasses escape; an extraction
that succeeds only ever reads the leaf entry.
"""

from __future__ import annotations

from collections.abc import Iterator

import atheris

with atheris.instrument_imports(include=["attquic"]):
    from attquic import expat, profile
    from attquic.cmw import CMWRecord, encode_cbor
    from attquic.ea.messages import CertificateEntry, CertificateMessage, Extension
    from attquic.errors import AttquicError, MisplacedExtension, UnofferedExtension

TARGET = "attquic.expat.extract"
_CODEPOINT = profile.CMW_ATTESTATION_EXTENSION


def _wrapped(extension_data: bytes, *, on_leaf: bool) -> CertificateMessage:
    carrier = (Extension(_CODEPOINT, extension_data),)
    leaf = CertificateEntry(b"\x30\x00", carrier if on_leaf else ())
    other = CertificateEntry(b"\x30\x01\x00", () if on_leaf else carrier)
    return CertificateMessage(bytes(32), (leaf, other))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    try:
        if mode < 2:
            certificate = CertificateMessage.decode(body)
            expat.extract(certificate, offered=mode == 1)
        elif mode == 2:
            if len(body) > 0xFFFF:
                return
            expat.extract(_wrapped(body, on_leaf=True), offered=True)
        else:
            if len(body) > 0xFFFF:
                return
            try:
                expat.extract(_wrapped(body, on_leaf=False), offered=True)
            except MisplacedExtension:
                return
            raise AssertionError("cmw_attestation on a non-leaf entry was accepted")
    except (UnofferedExtension, MisplacedExtension):
        if mode == 2:
            raise
    except AttquicError:
        return


def seeds() -> Iterator[bytes]:
    cmw = CMWRecord("application/vnd.attquic.tdx-quote", b"\x04\x00" + bytes(30), ind=4)
    extension = expat.leaf_extension(cmw)
    certificate = CertificateMessage(bytes(32), (CertificateEntry(b"\x30\x00", (extension,)),))
    yield b"\x01" + certificate.encode()
    yield b"\x00" + certificate.encode()
    yield b"\x02" + extension.data
    yield b"\x03" + extension.data
    yield b"\x02" + len(encode_cbor(cmw)).to_bytes(2, "big") + encode_cbor(cmw)


if __name__ == "__main__":
    from _common import main

    main(test_one_input, seeds)
