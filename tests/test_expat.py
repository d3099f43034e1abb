"""The cmw_attestation extension: offer, detection, leaf placement and extraction."""

from __future__ import annotations

import pytest

from attquic import cmw, expat, profile
from attquic._wire import vec16
from attquic.ea.messages import (
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    Extension,
    signature_algorithms_extension,
)
from attquic.errors import (
    CMWError,
    ConfigurationError,
    DecodeError,
    MisplacedExtension,
    UnofferedExtension,
)

CODEPOINT = profile.CMW_ATTESTATION_EXTENSION
EVIDENCE = cmw.CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, b"\x04\x00" + b"q" * 600, 4)
LEAF = b"leaf certificate DER"
INTERMEDIATE = b"intermediate certificate DER"


def request(*extensions: Extension) -> AuthenticatorRequest:
    return AuthenticatorRequest(
        profile.HS_CLIENT_CERTIFICATE_REQUEST,
        b"\x01" * profile.REQUEST_CONTEXT_LENGTH,
        (signature_algorithms_extension([0x0403]), *extensions),
    )


def certificate(*entries: CertificateEntry) -> CertificateMessage:
    return CertificateMessage(b"\x01" * profile.REQUEST_CONTEXT_LENGTH, entries)


def test_offer_is_empty_extension_with_profile_codepoint() -> None:
    assert expat.offer() == Extension(0xFFFF, b"")
    assert expat.offer(0xFF00) == Extension(0xFF00, b"")


def test_offer_detection_survives_the_wire() -> None:
    offered = AuthenticatorRequest.decode(request(expat.offer()).encode())
    assert expat.is_offered(offered)
    assert not expat.is_offered(offered, codepoint=0xFF00)
    assert not expat.is_offered(request())
    assert expat.is_offered(request(expat.offer(0xFF00)), codepoint=0xFF00)


@pytest.mark.parametrize("content", [b"\x00", b"application/cmw+cbor", bytes(300)])
def test_non_empty_offer_is_still_an_offer(content: bytes) -> None:
    """expat -04 leaves format negotiation open: content in the offer is ignored, not refused."""
    offered = AuthenticatorRequest.decode(request(Extension(CODEPOINT, content)).encode())
    assert expat.is_offered(offered)
    assert not expat.is_offered(offered, codepoint=0xFF00)


def test_leaf_extension_layout() -> None:
    extension = expat.leaf_extension(EVIDENCE)
    encoded = cmw.encode_cbor(EVIDENCE)
    assert extension.type == CODEPOINT
    assert extension.data == len(encoded).to_bytes(2, "big") + encoded
    assert encoded[0] == 0x83  # the CBOR record form
    assert expat.leaf_extension(EVIDENCE, codepoint=0xFF00).type == 0xFF00


def test_leaf_extension_round_trip_through_certificate_bytes() -> None:
    message = certificate(
        CertificateEntry(LEAF, (expat.leaf_extension(EVIDENCE),)), CertificateEntry(INTERMEDIATE)
    )
    received = CertificateMessage.decode(message.encode())
    assert expat.extract(received, offered=True) == EVIDENCE


def test_every_cmw_form_is_accepted_on_receipt() -> None:
    collection = cmw.CMWCollection({"q": EVIDENCE}, "1.2.3")
    for encoded in (
        cmw.encode_cbor(collection),
        cmw.encode_json(collection),
        cmw.encode_cbor(cmw.CMWTag.from_content_format(10005, b"eat")),
        cmw.encode_json(EVIDENCE),
    ):
        entry = CertificateEntry(LEAF, (Extension(CODEPOINT, vec16(encoded)),))
        assert expat.extract(certificate(entry), offered=True) == cmw.decode(encoded)


def test_absent_extension() -> None:
    assert expat.extract(certificate(CertificateEntry(LEAF)), offered=True) is None
    assert expat.extract(certificate(CertificateEntry(LEAF)), offered=False) is None
    assert expat.extract(certificate(), offered=True) is None
    other = CertificateEntry(LEAF, (expat.leaf_extension(EVIDENCE, codepoint=0xFF00),))
    assert expat.extract(certificate(other), offered=True) is None


def test_unoffered_extension_is_rejected() -> None:
    message = certificate(CertificateEntry(LEAF, (expat.leaf_extension(EVIDENCE),)))
    with pytest.raises(UnofferedExtension):
        expat.extract(message, offered=False)


def test_extension_in_non_leaf_entry_is_rejected() -> None:
    extension = expat.leaf_extension(EVIDENCE)
    only_intermediate = certificate(
        CertificateEntry(LEAF), CertificateEntry(INTERMEDIATE, (extension,))
    )
    with pytest.raises(MisplacedExtension):
        expat.extract(only_intermediate, offered=True)
    both = certificate(
        CertificateEntry(LEAF, (extension,)), CertificateEntry(INTERMEDIATE, (extension,))
    )
    with pytest.raises(MisplacedExtension):
        expat.extract(both, offered=True)
    with pytest.raises(UnofferedExtension):
        expat.extract(only_intermediate, offered=False)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no length
        b"\x00",  # truncated length
        b"\x00\x00",  # empty CMW (cmw_data<1..2^16-1>)
        b"\x00\x05\x82\x00",  # inner length longer than the data
        vec16(cmw.encode_cbor(EVIDENCE))[:-1],  # truncated CMW
        vec16(cmw.encode_cbor(EVIDENCE)) + b"\x00",  # trailing bytes after cmw_data
        vec16(cmw.encode_cbor(EVIDENCE) + b"\x00"),  # trailing bytes inside cmw_data
        vec16(b"\x82\x00\x00"),  # not a CMW
        cmw.encode_cbor(EVIDENCE),  # missing the inner uint16 length
    ],
)
def test_malformed_extension_data(data: bytes) -> None:
    message = certificate(CertificateEntry(LEAF, (Extension(CODEPOINT, data),)))
    with pytest.raises(CMWError):
        expat.extract(message, offered=True)
    with pytest.raises(DecodeError):
        expat.extract(message, offered=True)


def test_oversized_cmw_is_refused_when_sending() -> None:
    huge = cmw.CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, b"\x00" * 0xFFFF, 4)
    with pytest.raises(ConfigurationError):
        expat.leaf_extension(huge)
