"""RFC 9261 codecs: exact encodings, strict decoding, and no exception outside the project tree."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic.ea.authenticator import ExportedAuthenticators
from attquic.ea.identity import generate_self_signed, spki_der
from attquic.ea.messages import (
    Authenticator,
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    CertificateVerifyMessage,
    Extension,
    FinishedMessage,
    Role,
    decode_signature_schemes,
    encode_extensions,
    signature_algorithms_extension,
    split_handshake_messages,
)
from attquic.ea.schemes import (
    ECDSA_SECP256R1_SHA256,
    ED25519,
    RSA_PSS_RSAE_SHA256,
    SCHEME_NAMES,
    TLS13_SIGNATURE_SCHEMES,
    is_tls13_scheme,
    scheme_name,
)
from attquic.errors import AuthenticatorError, ConfigurationError, EADecodeError
from attquic.keyschedule import ExporterSecret

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CMW = profile.CMW_ATTESTATION_EXTENSION


# --- exact encodings (protocols.md §6) --------------------------------------------------------


def test_request_bytes_match_protocol_sketch() -> None:
    context = bytes(range(32))
    request = AuthenticatorRequest(
        profile.HS_CLIENT_CERTIFICATE_REQUEST,
        context,
        (
            signature_algorithms_extension([ECDSA_SECP256R1_SHA256, RSA_PSS_RSAE_SHA256, ED25519]),
            Extension(CMW),
        ),
    )
    expected = (
        bytes.fromhex("11000033")
        + b"\x20"
        + context
        + bytes.fromhex("0010000d0008000604030804 0807".replace(" ", ""))
        + bytes.fromhex("ffff0000")
    )
    assert request.encode() == expected
    assert AuthenticatorRequest.decode(expected) == request
    assert request.encode_body() == expected[4:]
    assert (
        AuthenticatorRequest.decode(
            expected[4:], with_header=False, msg_type=profile.HS_CLIENT_CERTIFICATE_REQUEST
        )
        == request
    )


def test_certificate_encoding() -> None:
    entry = CertificateEntry(b"\x30\x00", (Extension(CMW, b"\x00\x01z"),))
    message = CertificateMessage(b"\xaa", (entry, CertificateEntry(b"\x01")))
    expected = bytes.fromhex("0b00001901aa00001400000230000007ffff000300017a000001010000")
    assert message.encode() == expected
    assert CertificateMessage.decode(expected) == message
    assert message.entries[0].extension(CMW) == Extension(CMW, b"\x00\x01z")
    assert message.entries[1].extension(CMW) is None


def test_certificate_verify_and_finished_encoding() -> None:
    cv = CertificateVerifyMessage(0x0807, b"sig")
    assert cv.encode() == bytes.fromhex("0f00000708070003") + b"sig"
    assert CertificateVerifyMessage.decode(cv.encode()) == cv
    finished = FinishedMessage(bytes(32))
    assert finished.encode() == bytes.fromhex("14000020") + bytes(32)
    assert FinishedMessage.decode(finished.encode(), hash_length=32) == finished
    with pytest.raises(EADecodeError):
        FinishedMessage.decode(finished.encode(), hash_length=48)


def test_authenticator_sequences() -> None:
    certificate = CertificateMessage(b"c", (CertificateEntry(b"x"),))
    cv = CertificateVerifyMessage(0x0403, b"s")
    finished = FinishedMessage(bytes(48))
    full = Authenticator(certificate, cv, finished)
    assert Authenticator.decode(full.encode(), hash_length=48) == full
    assert not full.is_empty
    empty = Authenticator(None, None, finished)
    assert empty.encode() == finished.encode()
    assert Authenticator.decode(empty.encode(), hash_length=48).is_empty
    with pytest.raises(ConfigurationError):
        Authenticator(certificate, None, finished)
    for bad in (
        certificate.encode() + finished.encode(),
        cv.encode() + certificate.encode() + finished.encode(),
        full.encode() + finished.encode(),
        full.encode() + b"\x14",
        finished.encode() + finished.encode(),
        b"",
    ):
        with pytest.raises(EADecodeError):
            Authenticator.decode(bad, hash_length=48)


# --- strictness ---------------------------------------------------------------------------


def test_duplicate_extensions_rejected() -> None:
    body = bytes.fromhex("ffff0000ffff0000")
    twice = len(body).to_bytes(2, "big") + body
    with pytest.raises(EADecodeError, match="duplicate"):
        AuthenticatorRequest.decode(b"\x00" + twice, with_header=False)
    entry = b"\x00\x00\x01\x01" + twice
    message = (
        b"\x0b"
        + (len(entry) + 4).to_bytes(3, "big")
        + b"\x00"
        + len(entry).to_bytes(3, "big")
        + entry
    )
    with pytest.raises(EADecodeError, match="duplicate"):
        CertificateMessage.decode(message)
    with pytest.raises(ConfigurationError):
        encode_extensions([Extension(1), Extension(1)])
    with pytest.raises(ConfigurationError):
        CertificateEntry(b"x", (Extension(1), Extension(1)))


def test_request_requires_extensions_and_valid_signature_algorithms() -> None:
    with pytest.raises(EADecodeError):
        AuthenticatorRequest.decode(bytes.fromhex("0d000003000000"))
    for bad_data in ("0003040304", "0000", "000104", "0002040300"):
        data = bytes.fromhex(bad_data)
        extensions = b"\x00\x0d" + len(data).to_bytes(2, "big") + data
        body = b"\x00" + len(extensions).to_bytes(2, "big") + extensions
        with pytest.raises(EADecodeError):
            AuthenticatorRequest.decode(body, with_header=False)


def test_request_header_rules() -> None:
    body = AuthenticatorRequest(13, b"", (Extension(CMW),)).encode_body()
    with pytest.raises(EADecodeError):  # not a request type
        AuthenticatorRequest.decode(b"\x0b" + len(body).to_bytes(3, "big") + body)
    with pytest.raises(EADecodeError):  # length says one more byte than present
        AuthenticatorRequest.decode(b"\x0d" + (len(body) + 1).to_bytes(3, "big") + body)
    with pytest.raises(EADecodeError):  # trailing byte
        AuthenticatorRequest.decode(b"\x0d" + len(body).to_bytes(3, "big") + body + b"\x00")
    with pytest.raises(ConfigurationError):
        AuthenticatorRequest.decode(body, with_header=False, msg_type=11)


def test_unknown_extensions_kept() -> None:
    request = AuthenticatorRequest(
        13, b"ctx", (Extension(0x1234, b"opaque"), signature_algorithms_extension([0x0403]))
    )
    decoded = AuthenticatorRequest.decode(request.encode())
    assert decoded.extension(0x1234) == Extension(0x1234, b"opaque")
    assert decoded.extension(0x4321) is None
    assert decoded.signature_schemes == (0x0403,)
    assert decoded.extension_types == {0x1234, profile.EXT_SIGNATURE_ALGORITHMS}
    assert decoded.encode() == request.encode()


def test_signature_schemes() -> None:
    assert decode_signature_schemes(bytes.fromhex("000404030807")) == (0x0403, 0x0807)
    assert AuthenticatorRequest(13, b"", (Extension(CMW),)).signature_schemes == ()
    with pytest.raises(ConfigurationError):
        signature_algorithms_extension([])
    with pytest.raises(ConfigurationError):
        signature_algorithms_extension([0x0403, 0x0403])
    assert is_tls13_scheme(0x0403) and not is_tls13_scheme(0x0401) and not is_tls13_scheme(0x0203)
    assert SCHEME_NAMES.keys() >= TLS13_SIGNATURE_SCHEMES
    assert scheme_name(0x0403) == "ecdsa_secp256r1_sha256 (0x0403)"
    assert scheme_name(0xABCD) == "unknown (0xabcd)"


def test_constructors_validate() -> None:
    with pytest.raises(ConfigurationError):
        AuthenticatorRequest(11, b"", (Extension(CMW),))
    with pytest.raises(ConfigurationError):
        AuthenticatorRequest(13, bytes(256), (Extension(CMW),))
    with pytest.raises(ConfigurationError):
        CertificateEntry(b"")
    with pytest.raises(ConfigurationError):
        Extension(0x10000)
    with pytest.raises(ConfigurationError):
        CertificateVerifyMessage(-1, b"")


def test_role() -> None:
    assert Role.CLIENT.peer is Role.SERVER and Role.SERVER.peer is Role.CLIENT
    assert Role("client") is Role.CLIENT


def test_spki_is_a_der_sequence_inside_the_certificate() -> None:
    identity = generate_self_signed("p256")
    spki = spki_der(identity.leaf)
    assert spki[0] == 0x30 and spki in identity.leaf.tbs_certificate_bytes


# --- generated round trips --------------------------------------------------------------------

extensions_st = st.lists(
    st.builds(Extension, st.integers(0, 0xFFFF), st.binary(max_size=40)),
    max_size=4,
    unique_by=lambda e: e.type,
).map(tuple)


@FUZZ
@given(
    st.sampled_from([13, 17]),
    st.binary(max_size=255),
    extensions_st.filter(bool),
    st.booleans(),
)
def test_request_round_trip(
    msg_type: int, context: bytes, extensions: tuple[Extension, ...], header: bool
) -> None:
    # signature_algorithms must be well formed to decode; drop generated ones.
    extensions = tuple(e for e in extensions if e.type not in (0x000D, 0x0032)) or (Extension(CMW),)
    request = AuthenticatorRequest(msg_type, context, extensions)
    if header:
        assert AuthenticatorRequest.decode(request.encode()) == request
    else:
        assert (
            AuthenticatorRequest.decode(request.encode_body(), with_header=False, msg_type=msg_type)
            == request
        )


@FUZZ
@given(
    st.binary(max_size=255),
    st.lists(
        st.builds(CertificateEntry, st.binary(min_size=1, max_size=50), extensions_st), max_size=3
    ),
    st.integers(0, 0xFFFF),
    st.binary(max_size=80),
    st.sampled_from([32, 48]),
)
def test_authenticator_round_trip(
    context: bytes, entries: list[CertificateEntry], scheme: int, signature: bytes, hash_length: int
) -> None:
    authenticator = Authenticator(
        CertificateMessage(context, tuple(entries)),
        CertificateVerifyMessage(scheme, signature),
        FinishedMessage(os.urandom(hash_length)),
    )
    data = authenticator.encode()
    assert Authenticator.decode(data, hash_length=hash_length) == authenticator
    assert [m.msg_type for m in split_handshake_messages(data)] == [11, 15, 20]


# --- arbitrary bytes: only EADecodeError (or the AuthenticatorError family) ---------------------


@FUZZ
@given(st.binary(max_size=300))
def test_decoders_raise_only_decode_errors(data: bytes) -> None:
    decoders: list[Callable[[], object]] = [
        lambda: AuthenticatorRequest.decode(data),
        lambda: AuthenticatorRequest.decode(data, with_header=False),
        lambda: CertificateMessage.decode(data),
        lambda: CertificateVerifyMessage.decode(data),
        lambda: FinishedMessage.decode(data, hash_length=32),
        lambda: Authenticator.decode(data, hash_length=32),
        lambda: Authenticator.decode(data, hash_length=48),
        lambda: split_handshake_messages(data),
        lambda: decode_signature_schemes(data),
    ]
    for decode in decoders:
        with contextlib.suppress(EADecodeError):
            decode()


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([11, 13, 15, 17, 20]))
def test_framed_decoders_raise_only_decode_errors(body: bytes, msg_type: int) -> None:
    # Valid framing around arbitrary bodies reaches deeper code than raw bytes do.
    data = bytes([msg_type]) + len(body).to_bytes(3, "big") + body
    decoders: list[Callable[[], object]] = [
        lambda: AuthenticatorRequest.decode(data),
        lambda: CertificateMessage.decode(data),
        lambda: CertificateVerifyMessage.decode(data),
        lambda: Authenticator.decode(data, hash_length=32),
    ]
    for decode in decoders:
        with contextlib.suppress(EADecodeError):
            decode()


@FUZZ
@given(st.binary(max_size=400))
def test_validate_raises_only_project_errors(data: bytes) -> None:
    exporter = ExporterSecret("sha256", bytes(32))
    client = ExportedAuthenticators(exporter, Role.CLIENT)
    client.request([Extension(CMW)])
    calls: list[Callable[[], object]] = [
        lambda: client.validate(data),
        lambda: client.validate_spontaneous(data),
    ]
    for call in calls:
        with contextlib.suppress(EADecodeError, AuthenticatorError):
            call()


@FUZZ
@given(st.data())
def test_validate_mutated_authenticator(data: st.DataObject) -> None:
    # Deterministic input (fixed secret and context, Ed25519) so hypothesis can replay draws.
    exporter = ExporterSecret("sha256", bytes(32))
    client = ExportedAuthenticators(exporter, Role.CLIENT, random_bytes=lambda n: b"\x07" * n)
    server = ExportedAuthenticators(exporter, Role.SERVER)
    request = client.request([Extension(CMW)])
    valid = server.authenticate(request, IDENTITY, [Extension(CMW, b"\x00\x01x")])
    position = data.draw(st.integers(0, len(valid) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != valid[position]))
    mutated = valid[:position] + bytes([replacement]) + valid[position + 1 :]
    cut = data.draw(st.integers(0, len(mutated)))
    with pytest.raises((EADecodeError, AuthenticatorError)):
        client.validate(mutated[:cut] if data.draw(st.booleans()) else mutated)


IDENTITY = generate_self_signed("ed25519")
