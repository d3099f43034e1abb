"""Specific CMW errors. Every one derives from :class:`attquic.errors.CMWError`.

Callers that only care whether a CMW is acceptable catch ``CMWError``; tests and diagnostics
can tell the failed check apart by class.
"""

from __future__ import annotations

from attquic.errors import CMWError

__all__ = [
    "CMWError",
    "DepthExceeded",
    "DuplicateLabel",
    "EmptyCollection",
    "InvalidBase64",
    "InvalidCollectionType",
    "InvalidContentFormat",
    "InvalidIndicator",
    "InvalidLabel",
    "InvalidMediaType",
    "InvalidRecord",
    "InvalidTagNumber",
    "MalformedEncoding",
    "MissingExtension",
    "NotRepresentable",
    "TrailingBytes",
    "WrongType",
]


class MalformedEncoding(CMWError):
    """The bytes are not well-formed CBOR or JSON (truncated, bad UTF-8, unknown first byte)."""


class TrailingBytes(MalformedEncoding):
    """Bytes follow the end of the CMW."""


class DepthExceeded(CMWError):
    """Collections are nested deeper than the decoder's limit."""


class WrongType(CMWError):
    """A CMW field holds the wrong kind of data item (e.g. a float where a uint belongs)."""


class InvalidRecord(CMWError):
    """A record does not have two or three entries."""


class InvalidMediaType(CMWError):
    """A record type string is not a Content-Type (RFC 9110 media-type with parameters)."""


class InvalidContentFormat(CMWError):
    """A CoAP Content-Format number is outside 0..65535 (or has no TN() tag)."""


class InvalidTagNumber(CMWError):
    """A CBOR tag number is not one RFC 9277 TN() derives from a Content-Format."""


class InvalidIndicator(CMWError):
    """The ``ind`` bitmap is zero or sets bits no conceptual-message type is defined for."""


class InvalidBase64(CMWError):
    """A JSON record value is not unpadded, canonical base64url."""


class EmptyCollection(CMWError):
    """A collection holds no CMW (at most its ``__cmwc_t``)."""


class DuplicateLabel(CMWError):
    """A CBOR map or JSON object repeats a key."""


class InvalidLabel(CMWError):
    """A collection label is not an int or a non-blank text other than ``__cmwc_t``."""


class InvalidCollectionType(CMWError):
    """``__cmwc_t`` is neither an absolute URI nor a dotted OID."""


class NotRepresentable(CMWError):
    """The CMW cannot be written in the requested serialisation (e.g. a tag in JSON)."""


class MissingExtension(CMWError):
    """The certificate carries no id-pe-cmw extension."""


def in_member(error: CMWError, label: object) -> CMWError:
    """``error`` (same class) with a message that names the collection member it occurred in.

    Nested members read outermost first: ``member 'a': member 'b': invalid media type ...``.
    """
    located = type(error)(f"member {label!r}: {error}")
    located.__cause__ = error.__cause__
    return located
