"""RATS Conceptual Message Wrapper (CMW, RFC 9999 / draft-ietf-rats-msg-wrap).

A standalone, typed CMW library: immutable :class:`CMWRecord`, :class:`CMWTag` and
:class:`CMWCollection` objects; CBOR and JSON codecs for every form; demultiplexing by the
first byte (:func:`decode`); RFC 9277 ``TN()``; and the id-pe-cmw X.509 extension.

Decoding never raises anything but :class:`~attquic.errors.CMWError` (or one of its subclasses
in :mod:`attquic.cmw.errors`), whatever the input::

    >>> from attquic import cmw
    >>> record = cmw.CMWRecord("application/eat+jwt", b"eyJ...", ind=8)
    >>> cmw.decode(cmw.encode_cbor(record)) == record
    True
"""

from __future__ import annotations

import enum

from attquic.cmw.cbor_codec import DEFAULT_MAX_DEPTH, decode_cbor, encode_cbor
from attquic.cmw.errors import (
    CMWError,
    DepthExceeded,
    DuplicateLabel,
    EmptyCollection,
    InvalidBase64,
    InvalidCollectionType,
    InvalidContentFormat,
    InvalidIndicator,
    InvalidLabel,
    InvalidMediaType,
    InvalidRecord,
    InvalidTagNumber,
    MalformedEncoding,
    MissingExtension,
    NotRepresentable,
    TrailingBytes,
    WrongType,
)
from attquic.cmw.json_codec import b64url_decode, b64url_encode, decode_json, encode_json
from attquic.cmw.model import (
    CMW,
    CMWC_T,
    MAX_CONTENT_FORMAT,
    MAX_TN_CONTENT_FORMAT,
    TN_FIRST,
    TN_LAST,
    CMWCollection,
    CMWRecord,
    CMWTag,
    Indicator,
    Label,
    cf_from_tn,
    is_valid_collection_type,
    is_valid_label,
    is_valid_media_type,
    iter_leaves,
    tn,
)
from attquic.cmw.x509 import (
    ID_PE_CMW,
    extension_contents,
    from_x509_extension,
    to_x509_extension,
    to_x509_extension_value,
)

__all__ = [
    "CMW",
    "CMWC_T",
    "DEFAULT_MAX_DEPTH",
    "ID_PE_CMW",
    "MAX_CONTENT_FORMAT",
    "MAX_TN_CONTENT_FORMAT",
    "TN_FIRST",
    "TN_LAST",
    "CMWCollection",
    "CMWError",
    "CMWRecord",
    "CMWTag",
    "DepthExceeded",
    "DuplicateLabel",
    "EmptyCollection",
    "Form",
    "Indicator",
    "InvalidBase64",
    "InvalidCollectionType",
    "InvalidContentFormat",
    "InvalidIndicator",
    "InvalidLabel",
    "InvalidMediaType",
    "InvalidRecord",
    "InvalidTagNumber",
    "Label",
    "MalformedEncoding",
    "MissingExtension",
    "NotRepresentable",
    "TrailingBytes",
    "WrongType",
    "b64url_decode",
    "b64url_encode",
    "cf_from_tn",
    "decode",
    "decode_cbor",
    "decode_json",
    "encode_cbor",
    "encode_json",
    "extension_contents",
    "from_x509_extension",
    "is_valid_collection_type",
    "is_valid_label",
    "is_valid_media_type",
    "iter_leaves",
    "sniff",
    "tn",
    "to_x509_extension",
    "to_x509_extension_value",
]


class Form(enum.Enum):
    """The serialisation a CMW's first byte announces (the draft's demultiplexing)."""

    CBOR_RECORD = "cbor-record"
    CBOR_TAG = "cbor-tag"
    CBOR_COLLECTION = "cbor-collection"
    JSON_RECORD = "json-record"
    JSON_COLLECTION = "json-collection"

    @property
    def is_cbor(self) -> bool:
        return self in (Form.CBOR_RECORD, Form.CBOR_TAG, Form.CBOR_COLLECTION)


def sniff(data: bytes) -> Form:
    """The form of a serialised CMW, from its first byte alone.

    CBOR arrays (0x80..0x9f), maps (0xa0..0xbf) and tags (0xc0..0xdb) are routed to the CBOR
    decoder, which then reports precisely what is wrong (e.g. a one-entry array), rather than
    only the draft's 0x82/0x83/0x9f record starts; ``[`` and ``{`` are JSON.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WrongType(f"expected bytes, not {type(data).__name__}")
    if not data:
        raise MalformedEncoding("empty input")
    first = data[0]
    if first == 0x5B:
        return Form.JSON_RECORD
    if first == 0x7B:
        return Form.JSON_COLLECTION
    if 0x80 <= first <= 0x9F:
        return Form.CBOR_RECORD
    if 0xA0 <= first <= 0xBF:
        return Form.CBOR_COLLECTION
    if 0xC0 <= first <= 0xDB:
        return Form.CBOR_TAG
    raise MalformedEncoding(f"0x{first:02x} does not start a CBOR or JSON CMW")


def decode(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> CMW:
    """Decode a CMW in any form, chosen by its first byte (see :func:`sniff`).

    ``max_depth`` bounds the nesting of collections (a top-level collection is depth 1).
    Raises a :class:`~attquic.errors.CMWError` subclass on any invalid input.
    """
    form = sniff(data)
    if form.is_cbor:
        return decode_cbor(data, max_depth=max_depth)
    return decode_json(data, max_depth=max_depth)
