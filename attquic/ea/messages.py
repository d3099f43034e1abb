"""RFC 9261 message codecs: authenticator requests and authenticators, byte for byte.

Every message is a bare TLS 1.3 handshake message, ``msg_type(1) ‖ uint24 length ‖ body``
(RFC 9261 §4, §5). The structures here are frozen dataclasses with ``encode()`` and a strict
``decode()``: wrong lengths, trailing bytes, duplicate extensions and unknown message types
raise :class:`~attquic.errors.EADecodeError` and nothing else, on any input. Because decoding is
strict, ``decode(data).encode() == data`` for every accepted input, so transcripts may be
recomputed from the parsed form.

This module only checks structure. What an authenticator *means* (context, offered extensions,
signature, Finished) is checked by :mod:`attquic.ea.authenticator`.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from attquic import profile
from attquic._memo import memoized_property
from attquic._wire import Reader, u8, u16, vec8, vec16, vec24
from attquic.errors import ConfigurationError, EADecodeError

__all__ = [
    "EXTENSION_NAMES",
    "HANDSHAKE_NAMES",
    "REQUEST_TYPES",
    "Authenticator",
    "AuthenticatorRequest",
    "CertificateEntry",
    "CertificateMessage",
    "CertificateVerifyMessage",
    "Extension",
    "FinishedMessage",
    "HandshakeMessage",
    "Role",
    "check_unique_extensions",
    "decode_extensions",
    "decode_signature_schemes",
    "encode_extensions",
    "extension_name",
    "handshake_spans",
    "signature_algorithms_extension",
    "split_handshake_messages",
]

#: Handshake message names (RFC 8446 §4, RFC 9261 §4) for diagnostics.
HANDSHAKE_NAMES: dict[int, str] = {
    profile.HS_CERTIFICATE: "Certificate",
    profile.HS_CERTIFICATE_REQUEST: "CertificateRequest",
    profile.HS_CERTIFICATE_VERIFY: "CertificateVerify",
    profile.HS_CLIENT_CERTIFICATE_REQUEST: "ClientCertificateRequest",
    profile.HS_FINISHED: "Finished",
}

#: The two authenticator request types (RFC 9261 §4).
REQUEST_TYPES: frozenset[int] = frozenset(
    {profile.HS_CERTIFICATE_REQUEST, profile.HS_CLIENT_CERTIFICATE_REQUEST}
)

#: TLS extension names (IANA "TLS ExtensionType Values") for diagnostics.
EXTENSION_NAMES: dict[int, str] = {
    profile.EXT_SERVER_NAME: "server_name",
    0x0005: "status_request",
    profile.EXT_SIGNATURE_ALGORITHMS: "signature_algorithms",
    0x0012: "signed_certificate_timestamp",
    profile.EXT_CERTIFICATE_AUTHORITIES: "certificate_authorities",
    profile.EXT_OID_FILTERS: "oid_filters",
    profile.EXT_SIGNATURE_ALGORITHMS_CERT: "signature_algorithms_cert",
    profile.CMW_ATTESTATION_EXTENSION: "cmw_attestation",
}

_U16_MAX = 0xFFFF
_U24_MAX = 0xFFFFFF


def extension_name(extension_type: int) -> str:
    """A readable name for an extension codepoint (``"unknown(0x1234)"`` if not known)."""
    return EXTENSION_NAMES.get(extension_type, f"unknown(0x{extension_type:04x})")


class Role(enum.Enum):
    """The TLS role of the endpoint that SENDS an authenticator (it selects the exporter keys)."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        """The other role."""
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


# --- extensions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """A TLS extension: ``uint16 extension_type ‖ opaque extension_data<0..2^16-1>``."""

    type: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.type <= _U16_MAX:
            raise ConfigurationError(f"extension type {self.type} does not fit in 16 bits")
        if len(self.data) > _U16_MAX:
            raise ConfigurationError("extension data longer than 65535 bytes")

    @property
    def name(self) -> str:
        return extension_name(self.type)

    def encode(self) -> bytes:
        return u16(self.type) + vec16(self.data)


def check_unique_extensions(extensions: Iterable[Extension]) -> None:
    """Raise :class:`~attquic.errors.ConfigurationError` if two extensions share a type."""
    seen: set[int] = set()
    for extension in extensions:
        if extension.type in seen:
            raise ConfigurationError(f"duplicate extension {extension.name}")
        seen.add(extension.type)


def encode_extensions(extensions: Sequence[Extension]) -> bytes:
    """An extension vector: ``Extension extensions<0..2^16-1>`` (types must be unique)."""
    check_unique_extensions(extensions)
    body = b"".join(extension.encode() for extension in extensions)
    if len(body) > _U16_MAX:
        raise ConfigurationError("extensions longer than 65535 bytes")
    return vec16(body)


def decode_extensions(reader: Reader, what: str = "extensions") -> tuple[Extension, ...]:
    """Read an extension vector from ``reader``; duplicate types are rejected (RFC 8446 §4.2)."""
    return _decode_extension_block(reader.vec16(what), what)


#: Extension blocks of requests up to this size are remembered by their bytes (below).
_MAX_REMEMBERED_EXTENSIONS = 1024


@functools.lru_cache(maxsize=32)
def _remembered_request_extensions(block: bytes) -> tuple[Extension, ...]:
    """A request's decoded extension block, by its exact bytes: a peer's requests differ in
    their context only, so each connection would decode the same block again. Pure (the
    extensions are immutable), bounded (32 blocks of at most 1 KiB); errors are not kept."""
    return _decode_extension_block(block, "request extensions")


def _decode_extension_block(block: bytes, what: str) -> tuple[Extension, ...]:
    body = Reader(block, EADecodeError)
    extensions: list[Extension] = []
    seen: set[int] = set()
    while body.remaining:
        extension_type = body.u16(f"{what}: extension type")
        data = body.vec16(f"{what}: {extension_name(extension_type)} data")
        if extension_type in seen:
            raise EADecodeError(f"{what}: duplicate extension {extension_name(extension_type)}")
        seen.add(extension_type)
        extensions.append(Extension(extension_type, data))
    return tuple(extensions)


def _find(extensions: Sequence[Extension], extension_type: int) -> Extension | None:
    for extension in extensions:
        if extension.type == extension_type:
            return extension
    return None


def signature_algorithms_extension(
    schemes: Sequence[int], extension_type: int = profile.EXT_SIGNATURE_ALGORITHMS
) -> Extension:
    """``signature_algorithms`` (or ``_cert``): ``SignatureScheme list<2..2^16-2>``."""
    if not schemes:
        raise ConfigurationError("a signature scheme list must not be empty")
    if len(set(schemes)) != len(schemes):
        raise ConfigurationError("duplicate signature scheme")
    return Extension(extension_type, vec16(b"".join(u16(scheme) for scheme in schemes)))


def decode_signature_schemes(data: bytes) -> tuple[int, ...]:
    """Decode ``signature_algorithms``/``_cert`` extension data (RFC 8446 §4.2.3)."""
    reader = Reader(data, EADecodeError)
    body = reader.vec16("signature scheme list")
    reader.expect_end("signature scheme list")
    if not body or len(body) % 2:
        raise EADecodeError(f"signature scheme list has invalid length {len(body)}")
    return struct.unpack(f">{len(body) // 2}H", body)


# --- handshake framing -----------------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeMessage:
    """One framed handshake message: ``msg_type ‖ uint24 length ‖ body``."""

    msg_type: int
    body: bytes

    @property
    def name(self) -> str:
        return HANDSHAKE_NAMES.get(self.msg_type, f"unknown({self.msg_type})")

    def encode(self) -> bytes:
        if len(self.body) > _U24_MAX:
            raise ConfigurationError("handshake message body longer than 2^24-1 bytes")
        return u8(self.msg_type) + vec24(self.body)


def split_handshake_messages(data: bytes) -> tuple[HandshakeMessage, ...]:
    """Split ``data`` into framed handshake messages; a partial message is an error."""
    reader = Reader(data, EADecodeError)
    if not reader.remaining:
        raise EADecodeError("empty input: no handshake message")
    messages: list[HandshakeMessage] = []
    while reader.remaining:
        msg_type = reader.u8("handshake type")
        messages.append(HandshakeMessage(msg_type, reader.vec24("handshake message body")))
    return tuple(messages)


def handshake_spans(data: bytes) -> list[tuple[int, int, int]]:
    """``(msg_type, start, end)`` of each framed message in ``data`` (its header at ``start``,
    its body at ``start + 4 .. end``): :func:`split_handshake_messages` without copying the
    bodies, accepting and rejecting exactly the same inputs with the same errors."""
    spans: list[tuple[int, int, int]] = []
    size = len(data)
    start = 0
    while start < size:
        end = start + 4 + int.from_bytes(data[start + 1 : start + 4], "big")
        if start + 4 > size or end > size:
            split_handshake_messages(data)  # raises its exact EADecodeError
            raise EADecodeError("truncated handshake message")  # pragma: no cover
        spans.append((data[start], start, end))
        start = end
    if not spans:
        split_handshake_messages(data)  # raises its exact EADecodeError
    return spans


def _unframe(data: bytes, expected_type: int) -> Reader:
    """A reader over the body of the single ``expected_type`` message that ``data`` holds."""
    reader = Reader(data, EADecodeError)
    msg_type = reader.u8("handshake type")
    if msg_type != expected_type:
        raise EADecodeError(
            f"expected {HANDSHAKE_NAMES[expected_type]} ({expected_type}), got type {msg_type}"
        )
    body = reader.vec24(f"{HANDSHAKE_NAMES[expected_type]} body")
    reader.expect_end(HANDSHAKE_NAMES[expected_type])
    return Reader(body, EADecodeError)


# --- authenticator request -------------------------------------------------------------------


@dataclass(frozen=True)
class AuthenticatorRequest:
    """A CertificateRequest (13, sent by a server) or ClientCertificateRequest (17, by a client).

    Body: ``opaque certificate_request_context<0..2^8-1> ‖ Extension extensions<2..2^16-1>``.
    Unknown extensions are kept (so the bytes re-encode exactly) but carry no meaning here.
    """

    msg_type: int
    context: bytes
    extensions: tuple[Extension, ...]

    def __post_init__(self) -> None:
        if self.msg_type not in REQUEST_TYPES:
            raise ConfigurationError(f"{self.msg_type} is not an authenticator request type")
        if len(self.context) > 255:
            raise ConfigurationError("certificate_request_context longer than 255 bytes")
        if not self.extensions:
            raise ConfigurationError("an authenticator request needs at least one extension")
        check_unique_extensions(self.extensions)

    @property
    def name(self) -> str:
        return HANDSHAKE_NAMES[self.msg_type]

    def encode_body(self) -> bytes:
        """The body without the handshake header (what Fizz calls the request)."""
        return vec8(self.context) + encode_extensions(self.extensions)

    def encode(self) -> bytes:
        """The full handshake message, header included (what RFC 9261 transcripts hash)."""
        return self._encoded

    @memoized_property
    def _encoded(self) -> bytes:
        # Encoded once: both sides hash the request into every transcript. A decoded request
        # starts with the bytes it came from (strict decoding makes them its only encoding).
        return HandshakeMessage(self.msg_type, self.encode_body()).encode()

    @classmethod
    def decode(
        cls, data: bytes, *, with_header: bool = True, msg_type: int | None = None
    ) -> AuthenticatorRequest:
        """Decode a request; ``with_header=False`` reads a bare body (Fizz's encoding), whose
        type is then ``msg_type`` (default CertificateRequest)."""
        if with_header:
            reader = Reader(data, EADecodeError)
            found = reader.u8("handshake type")
            if found not in REQUEST_TYPES:
                raise EADecodeError(f"handshake type {found} is not an authenticator request")
            body = Reader(reader.vec24("request body"), EADecodeError)
            reader.expect_end("authenticator request")
        else:
            found = profile.HS_CERTIFICATE_REQUEST if msg_type is None else msg_type
            if found not in REQUEST_TYPES:
                raise ConfigurationError(f"{found} is not an authenticator request type")
            body = Reader(data, EADecodeError)
        context = body.vec8("certificate_request_context")
        block = body.vec16("request extensions")
        if len(block) <= _MAX_REMEMBERED_EXTENSIONS:
            extensions = _remembered_request_extensions(block)
        else:
            extensions = _decode_extension_block(block, "request extensions")
        body.expect_end("request body")
        if not extensions:
            raise EADecodeError("request extensions must not be empty (<2..2^16-1>)")
        schemes: dict[int, tuple[int, ...]] = {}
        for known in (profile.EXT_SIGNATURE_ALGORITHMS, profile.EXT_SIGNATURE_ALGORITHMS_CERT):
            extension = _find(extensions, known)
            if extension is not None:
                schemes[known] = decode_signature_schemes(extension.data)
        request = cls(found, context, extensions)
        # What was just decoded is kept, not decoded again (both are pure functions of the
        # fields of this immutable request; tests/test_ea_messages.py checks they agree).
        cached = request.__dict__
        if with_header:
            cached["_encoded"] = bytes(data)
        cached["signature_schemes"] = schemes.get(profile.EXT_SIGNATURE_ALGORITHMS, ())
        return request

    def extension(self, extension_type: int) -> Extension | None:
        """The extension of this type, if the request carries it."""
        return _find(self.extensions, extension_type)

    @memoized_property
    def extension_types(self) -> frozenset[int]:
        """Types of every extension offered (what a Certificate may carry in its entries)."""
        return frozenset(extension.type for extension in self.extensions)

    @memoized_property
    def signature_schemes(self) -> tuple[int, ...]:
        """Schemes in ``signature_algorithms`` (0x000d), in the requester's order; () if absent."""
        extension = self.extension(profile.EXT_SIGNATURE_ALGORITHMS)
        return () if extension is None else decode_signature_schemes(extension.data)


# --- authenticator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateEntry:
    """``opaque cert_data<1..2^24-1> ‖ Extension extensions<0..2^16-1>`` (X.509 only)."""

    cert_data: bytes
    extensions: tuple[Extension, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < len(self.cert_data) <= _U24_MAX:
            raise ConfigurationError("cert_data must hold 1 to 2^24-1 bytes")
        check_unique_extensions(self.extensions)

    def encode(self) -> bytes:
        return vec24(self.cert_data) + encode_extensions(self.extensions)

    def extension(self, extension_type: int) -> Extension | None:
        return _find(self.extensions, extension_type)


@dataclass(frozen=True)
class CertificateMessage:
    """TLS 1.3 Certificate (RFC 8446 §4.4.2): context ‖ ``CertificateEntry list<0..2^24-1>``."""

    context: bytes
    entries: tuple[CertificateEntry, ...]

    def __post_init__(self) -> None:
        if len(self.context) > 255:
            raise ConfigurationError("certificate_request_context longer than 255 bytes")

    def encode(self) -> bytes:
        entries = b"".join(entry.encode() for entry in self.entries)
        if len(entries) > _U24_MAX:
            raise ConfigurationError("certificate_list longer than 2^24-1 bytes")
        body = vec8(self.context) + vec24(entries)
        return HandshakeMessage(profile.HS_CERTIFICATE, body).encode()

    @classmethod
    def decode(cls, data: bytes) -> CertificateMessage:
        return cls._decode_body_bytes(_unframe(data, profile.HS_CERTIFICATE).rest())

    @classmethod
    def _decode_body_bytes(cls, body: bytes) -> CertificateMessage:
        """Decode exactly the message body (after its 4-byte header).

        Well-framed bodies (the rule) are read by offsets; at the first framing fault the
        body goes to :meth:`_decode_body`, which raises that fault's exact error. Extension
        blocks are decoded by the same function on both paths, in the same order.
        """
        size = len(body)
        if not size:
            return cls._decode_body(Reader(body, EADecodeError))
        pos = 1 + body[0]
        if pos + 3 > size or pos + 3 + int.from_bytes(body[pos : pos + 3], "big") != size:
            return cls._decode_body(Reader(body, EADecodeError))
        context = body[1:pos]
        pos += 3
        entries: list[CertificateEntry] = []
        what = "certificate entry extensions"
        while pos < size:
            start = pos + 3
            data_end = start + int.from_bytes(body[pos:start], "big")
            block_start = data_end + 2
            if start > size or data_end == start or block_start > size:
                return cls._decode_body(Reader(body, EADecodeError))
            block_end = block_start + int.from_bytes(body[data_end:block_start], "big")
            if block_end > size:
                return cls._decode_body(Reader(body, EADecodeError))
            extensions = _decode_extension_block(body[block_start:block_end], what)
            entries.append(CertificateEntry(body[start:data_end], extensions))
            pos = block_end
        return cls(context, tuple(entries))

    @classmethod
    def _decode_body(cls, body: Reader) -> CertificateMessage:
        """Decode from a reader over exactly the message body (after its 4-byte header)."""
        context = body.vec8("certificate_request_context")
        entries_reader = Reader(body.vec24("certificate_list"), EADecodeError)
        body.expect_end("Certificate")
        entries: list[CertificateEntry] = []
        while entries_reader.remaining:
            cert_data = entries_reader.vec24("cert_data")
            if not cert_data:
                raise EADecodeError("empty cert_data in certificate entry")
            extensions = decode_extensions(entries_reader, "certificate entry extensions")
            entries.append(CertificateEntry(cert_data, extensions))
        return cls(context, tuple(entries))


@dataclass(frozen=True)
class CertificateVerifyMessage:
    """``SignatureScheme algorithm ‖ opaque signature<0..2^16-1>`` (RFC 8446 §4.4.3)."""

    scheme: int
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.scheme <= _U16_MAX:
            raise ConfigurationError(f"signature scheme {self.scheme} does not fit in 16 bits")
        if len(self.signature) > _U16_MAX:
            raise ConfigurationError("signature longer than 65535 bytes")

    def encode(self) -> bytes:
        body = u16(self.scheme) + vec16(self.signature)
        return HandshakeMessage(profile.HS_CERTIFICATE_VERIFY, body).encode()

    @classmethod
    def decode(cls, data: bytes) -> CertificateVerifyMessage:
        body = _unframe(data, profile.HS_CERTIFICATE_VERIFY)
        scheme = body.u16("signature scheme")
        signature = body.vec16("signature")
        body.expect_end("CertificateVerify")
        return cls(scheme, signature)


@dataclass(frozen=True)
class FinishedMessage:
    """``opaque verify_data[Hash.length]`` (RFC 8446 §4.4.4)."""

    verify_data: bytes

    def encode(self) -> bytes:
        return HandshakeMessage(profile.HS_FINISHED, self.verify_data).encode()

    @classmethod
    def decode(cls, data: bytes, *, hash_length: int | None = None) -> FinishedMessage:
        """Decode; with ``hash_length`` the verify_data must have exactly that length."""
        verify_data = _unframe(data, profile.HS_FINISHED).rest()
        if hash_length is not None and len(verify_data) != hash_length:
            raise EADecodeError(
                f"Finished verify_data is {len(verify_data)} bytes, expected {hash_length}"
            )
        return cls(verify_data)


_FULL_SEQUENCE = (profile.HS_CERTIFICATE, profile.HS_CERTIFICATE_VERIFY, profile.HS_FINISHED)
_EMPTY_SEQUENCE = (profile.HS_FINISHED,)


@dataclass(frozen=True)
class Authenticator:
    """``Certificate ‖ CertificateVerify ‖ Finished``, or a lone Finished (the empty authenticator,
    RFC 9261 §6), in which case ``certificate`` and ``certificate_verify`` are ``None``."""

    certificate: CertificateMessage | None
    certificate_verify: CertificateVerifyMessage | None
    finished: FinishedMessage

    def __post_init__(self) -> None:
        if (self.certificate is None) != (self.certificate_verify is None):
            raise ConfigurationError("Certificate and CertificateVerify go together")

    @property
    def is_empty(self) -> bool:
        """True for the empty authenticator (a refusal)."""
        return self.certificate is None

    def encode(self) -> bytes:
        parts = [self.finished.encode()]
        if self.certificate is not None and self.certificate_verify is not None:
            parts[:0] = [self.certificate.encode(), self.certificate_verify.encode()]
        return b"".join(parts)

    @staticmethod
    def is_valid_sequence(message_types: Sequence[int]) -> bool:
        """Whether message types form an authenticator (full or empty), nothing more."""
        return tuple(message_types) in (_FULL_SEQUENCE, _EMPTY_SEQUENCE)

    @classmethod
    def decode(cls, data: bytes, *, hash_length: int) -> Authenticator:
        """Decode an authenticator; any other message sequence or trailing byte is an error."""
        messages = split_handshake_messages(data)
        types = tuple(message.msg_type for message in messages)
        if not cls.is_valid_sequence(types):
            names = ", ".join(message.name for message in messages)
            raise EADecodeError(
                f"not an authenticator: got [{names}], expected "
                "[Certificate, CertificateVerify, Finished] or [Finished]"
            )
        encoded = [message.encode() for message in messages]
        finished = FinishedMessage.decode(encoded[-1], hash_length=hash_length)
        if len(encoded) == 1:
            return cls(None, None, finished)
        return cls(
            CertificateMessage.decode(encoded[0]),
            CertificateVerifyMessage.decode(encoded[1]),
            finished,
        )
