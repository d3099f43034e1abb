"""The ``cmw_attestation`` extension of draft-fossati-seat-expat on RFC 9261 messages.

* In an authenticator request, an **empty** ``cmw_attestation`` extension is the offer: "send
  me attestation" (:func:`offer`, :func:`is_offered`). A non-empty one is an offer too, its
  content ignored.
* In an authenticator's Certificate, the extension travels only in the first (leaf)
  CertificateEntry, with ``extension_data = uint16 length ‖ CMW`` (:func:`leaf_extension`,
  :func:`extract`). attquic sends a CBOR CMW (a record, by design) and accepts every CMW form.

The codepoint defaults to :data:`attquic.profile.CMW_ATTESTATION_EXTENSION` and can be
overridden per call, since the draft has no IANA assignment yet.
"""

from __future__ import annotations

from typing import Final

from attquic import profile
from attquic._wire import Reader, vec16
from attquic.cmw import CMW, CMWError, decode, encode_cbor
from attquic.ea.messages import AuthenticatorRequest, CertificateMessage, Extension
from attquic.errors import (
    ConfigurationError,
    MisplacedExtension,
    UnofferedExtension,
)

__all__ = ["MAX_CMW_LENGTH", "extract", "is_offered", "leaf_extension", "offer"]

#: ``opaque cmw_data<1..2^16-1>``.
MAX_CMW_LENGTH: Final = 0xFFFF


def offer(codepoint: int = profile.CMW_ATTESTATION_EXTENSION) -> Extension:
    """The empty ``cmw_attestation`` extension that asks the peer for attestation."""
    return Extension(codepoint, b"")


def is_offered(
    request: AuthenticatorRequest, codepoint: int = profile.CMW_ATTESTATION_EXTENSION
) -> bool:
    """Whether ``request`` asks for attestation.

    The draft's offer is an empty extension. A non-empty one is still an offer: its content is
    ignored (format negotiation is an open question in draft-fossati-seat-expat -04, so a
    future peer may put a preference there; attquic answers with its own format).
    """
    return request.extension(codepoint) is not None


def leaf_extension(cmw: CMW, codepoint: int = profile.CMW_ATTESTATION_EXTENSION) -> Extension:
    """The ``cmw_attestation`` extension for the leaf CertificateEntry, carrying ``cmw`` in CBOR.

    Raises :class:`~attquic.errors.ConfigurationError` if the encoded CMW exceeds 65535 bytes.
    """
    encoded = encode_cbor(cmw)
    if len(encoded) > MAX_CMW_LENGTH:
        raise ConfigurationError(f"CMW of {len(encoded)} bytes does not fit cmw_data<1..2^16-1>")
    return Extension(codepoint, vec16(encoded))


def _decode_extension_data(data: bytes) -> CMW:
    reader = Reader(data, CMWError)
    cmw_data = reader.vec16("cmw_attestation cmw_data")
    reader.expect_end("cmw_attestation extension_data")
    if not cmw_data:
        raise CMWError("cmw_attestation carries an empty CMW (cmw_data<1..2^16-1>)")
    return decode(cmw_data)


def extract(
    certificate: CertificateMessage,
    *,
    offered: bool,
    codepoint: int = profile.CMW_ATTESTATION_EXTENSION,
) -> CMW | None:
    """The CMW in ``certificate``'s leaf entry, or ``None`` if no entry carries one.

    ``offered`` says whether the request this Certificate answers offered ``cmw_attestation``.
    Raises :class:`~attquic.errors.UnofferedExtension` if the extension appears without an
    offer (unsupported_extension), :class:`~attquic.errors.MisplacedExtension` if it appears in
    any entry but the first, and :class:`~attquic.errors.CMWError` if it is malformed.
    """
    carriers = [
        index
        for index, entry in enumerate(certificate.entries)
        if entry.extension(codepoint) is not None
    ]
    if not carriers:
        return None
    if not offered:
        raise UnofferedExtension("cmw_attestation in a Certificate whose request did not offer it")
    if carriers != [0]:
        misplaced = next(index for index in carriers if index != 0)
        raise MisplacedExtension(f"cmw_attestation in certificate entry {misplaced}, not the leaf")
    extension = certificate.entries[0].extension(codepoint)
    assert extension is not None
    return _decode_extension_data(extension.data)
