"""The CMW X.509 extension (id-pe-cmw, 1.3.6.1.5.5.7.1.35).

The extension value (the contents of ``extnValue``) is the DER encoding of::

    CMW ::= CHOICE { json UTF8String, cbor OCTET STRING }

The JSON choice must hold a JSON CMW and the CBOR choice a CBOR CMW.
"""

from __future__ import annotations

from typing import Final, Literal

from cryptography import x509

from attquic.cmw.cbor_codec import DEFAULT_MAX_DEPTH, decode_cbor, encode_cbor
from attquic.cmw.errors import MalformedEncoding, MissingExtension, TrailingBytes, WrongType
from attquic.cmw.json_codec import decode_json, encode_json
from attquic.cmw.model import CMW

__all__ = [
    "ID_PE_CMW",
    "extension_contents",
    "from_x509_extension",
    "to_x509_extension",
    "to_x509_extension_value",
]

#: id-pe-cmw: { id-pe 35 }.
ID_PE_CMW: Final = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.35")

_DER_OCTET_STRING: Final = 0x04
_DER_UTF8_STRING: Final = 0x0C


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _parse_der_choice(value: bytes) -> tuple[int, bytes]:
    """(tag, contents) of a single DER primitive TLV filling ``value``; DER length rules."""
    if len(value) < 2:
        raise MalformedEncoding("id-pe-cmw value is truncated")
    tag, first = value[0], value[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise MalformedEncoding("id-pe-cmw value has an unsupported DER length form")
        if len(value) < 2 + count:
            raise MalformedEncoding("id-pe-cmw value is truncated")
        raw = value[2 : 2 + count]
        length, offset = int.from_bytes(raw, "big"), 2 + count
        if raw[0] == 0 or length < 0x80:
            raise MalformedEncoding("id-pe-cmw value length is not minimal DER")
    if len(value) - offset < length:
        raise MalformedEncoding("id-pe-cmw value is truncated")
    if len(value) - offset > length:
        raise TrailingBytes(f"{len(value) - offset - length} trailing bytes after id-pe-cmw value")
    return tag, value[offset:]


def _extension_value(
    source: x509.Certificate | x509.Extension[x509.ExtensionType] | x509.ExtensionType | bytes,
) -> bytes:
    if isinstance(source, x509.Certificate):
        try:
            source = source.extensions.get_extension_for_oid(ID_PE_CMW)
        except x509.ExtensionNotFound as exc:
            raise MissingExtension("certificate has no id-pe-cmw extension") from exc
        except (ValueError, x509.DuplicateExtension) as exc:  # parsed lazily by cryptography
            raise MalformedEncoding(f"certificate extensions are malformed: {exc}") from exc
    if isinstance(source, x509.Extension):
        if source.oid != ID_PE_CMW:
            raise MissingExtension(f"extension {source.oid.dotted_string} is not id-pe-cmw")
        source = source.value
    if isinstance(source, x509.UnrecognizedExtension):
        if source.oid != ID_PE_CMW:
            raise MissingExtension(f"extension {source.oid.dotted_string} is not id-pe-cmw")
        return source.value
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    raise WrongType(f"cannot read a CMW extension from {type(source).__name__}")


def extension_contents(
    source: x509.Certificate | x509.Extension[x509.ExtensionType] | x509.ExtensionType | bytes,
) -> tuple[Literal["cbor", "json"], bytes]:
    """The serialised CMW in an id-pe-cmw extension and which CHOICE carried it.

    ``source`` is as for :func:`from_x509_extension`.
    """
    tag, contents = _parse_der_choice(_extension_value(source))
    if tag == _DER_UTF8_STRING:
        return "json", contents
    if tag == _DER_OCTET_STRING:
        return "cbor", contents
    raise WrongType(f"id-pe-cmw value must be a UTF8String or OCTET STRING, not tag 0x{tag:02x}")


def from_x509_extension(
    source: x509.Certificate | x509.Extension[x509.ExtensionType] | x509.ExtensionType | bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> CMW:
    """The CMW in an id-pe-cmw extension.

    ``source`` is a certificate (its id-pe-cmw extension is used), the extension object (or
    its ``UnrecognizedExtension`` value) as ``cryptography`` returns it, or the raw extension
    value bytes (the DER ``CMW`` CHOICE, i.e. the contents of ``extnValue``).
    """
    form, contents = extension_contents(source)
    if form == "json":
        return decode_json(contents, max_depth=max_depth)
    return decode_cbor(contents, max_depth=max_depth)


def to_x509_extension_value(cmw: CMW, *, form: Literal["cbor", "json"]) -> bytes:
    """The DER ``CMW`` CHOICE for ``cmw`` (the contents of the extension's ``extnValue``)."""
    if form == "cbor":
        tag, contents = _DER_OCTET_STRING, encode_cbor(cmw)
    elif form == "json":
        tag, contents = _DER_UTF8_STRING, encode_json(cmw)
    else:
        raise WrongType(f"form must be 'cbor' or 'json', not {form!r}")
    return bytes([tag]) + _der_length(len(contents)) + contents


def to_x509_extension(cmw: CMW, *, form: Literal["cbor", "json"]) -> x509.UnrecognizedExtension:
    """An extension for ``x509.CertificateBuilder.add_extension(ext, critical=False)``."""
    return x509.UnrecognizedExtension(ID_PE_CMW, to_x509_extension_value(cmw, form=form))
