"""RFC 9261 request / authenticate / refuse / validate between two endpoints of one connection.

Both sides share one ExporterSecret (what the captured exporter master secret gives each end of a
real connection). Every receiver check has a negative test that breaks exactly that check while
keeping everything after it consistent (re-signed, re-MACed), so the right exception is asserted.
"""

from __future__ import annotations

import datetime
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, padding, rsa
from cryptography.x509.oid import NameOID

from attquic import profile
from attquic.ea.authenticator import (
    AuthenticatorKeys,
    ExportedAuthenticators,
    ValidatedAuthenticator,
    authenticator_keys,
    build_authenticator,
    build_empty_authenticator,
    certificate_verify_content,
    check_authenticator,
    finished_verify_data,
)
from attquic.ea.identity import (
    SigningIdentity,
    from_pem,
    generate_self_signed,
    spki_der,
    spki_der_of,
)
from attquic.ea.messages import (
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    CertificateVerifyMessage,
    Extension,
    FinishedMessage,
    Role,
)
from attquic.ea.schemes import (
    DEFAULT_SIGNATURE_SCHEMES,
    ECDSA_SECP256R1_SHA256,
    ECDSA_SECP384R1_SHA384,
    ECDSA_SECP521R1_SHA512,
    ED448,
    ED25519,
    RSA_PSS_RSAE_SHA256,
    RSA_PSS_RSAE_SHA384,
    RSA_PSS_RSAE_SHA512,
    PrivateKey,
    sign,
)
from attquic.errors import (
    AuthenticatorError,
    BadFinished,
    BadSignature,
    ConfigurationError,
    ContextAlreadyUsed,
    ContextMismatch,
    ContextReused,
    EADecodeError,
    EmptyCertificateList,
    ExtensionNotRequested,
    MisplacedExtension,
    NoCommonSignatureScheme,
    RefusedAuthenticator,
    SignatureSchemeMismatch,
    UnexpectedMessage,
    UnofferedExtension,
    UnsupportedSignatureScheme,
)
from attquic.keyschedule import ExporterSecret

CMW = profile.CMW_ATTESTATION_EXTENSION
HASHES = ("sha256", "sha384")
HASH_LENGTH = {"sha256": 32, "sha384": 48}


# --- fixtures and helpers --------------------------------------------------------------------


def self_signed(
    key: PrivateKey, *, issuer: SigningIdentity | None = None, ca: bool = False
) -> x509.Certificate:
    """A minimal certificate for ``key`` (self-signed, or issued by ``issuer``)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca" if ca else "test leaf")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    signer: PrivateKey = key if issuer is None else issuer.private_key
    digest = None if isinstance(signer, ed448.Ed448PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.leaf.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, digest)
    )


@pytest.fixture(scope="module")
def identities() -> dict[str, SigningIdentity]:
    out = {kind: generate_self_signed(kind) for kind in ("p256", "p384", "ed25519", "rsa")}
    for kind, key in (
        ("p521", ec.generate_private_key(ec.SECP521R1())),
        ("ed448", ed448.Ed448PrivateKey.generate()),
    ):
        out[kind] = SigningIdentity(key, (self_signed(key),))
    return out


@pytest.fixture(scope="module")
def chained(identities: dict[str, SigningIdentity]) -> SigningIdentity:
    """A leaf issued by a CA: a two-certificate chain."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = SigningIdentity(ca_key, (self_signed(ca_key, ca=True),))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    return SigningIdentity(leaf_key, (self_signed(leaf_key, issuer=ca), ca.leaf))


@dataclass
class Connection:
    """Both ends of one connection."""

    exporter: ExporterSecret
    client: ExportedAuthenticators
    server: ExportedAuthenticators

    def keys(self, sender: Role) -> AuthenticatorKeys:
        return authenticator_keys(self.exporter, sender)


def connect(hash_name: str = "sha256") -> Connection:
    exporter = ExporterSecret(hash_name, os.urandom(HASH_LENGTH[hash_name]))
    return Connection(
        exporter,
        ExportedAuthenticators(exporter, Role.CLIENT),
        ExportedAuthenticators(exporter, Role.SERVER),
    )


@pytest.fixture(params=HASHES)
def conn(request: pytest.FixtureRequest) -> Connection:
    return connect(request.param)


def forge(
    keys: AuthenticatorKeys,
    request: AuthenticatorRequest | None,
    certificate: CertificateMessage,
    scheme: int,
    signer: Callable[[bytes], bytes],
) -> bytes:
    """Certificate ‖ CertificateVerify ‖ Finished with a valid Finished over whatever was given."""
    request_bytes = b"" if request is None else request.encode()
    cert = certificate.encode()
    content = certificate_verify_content(
        keys.hash_name, keys.handshake_context, request_bytes, cert
    )
    cv = CertificateVerifyMessage(scheme, signer(content)).encode()
    mac = finished_verify_data(
        keys.hash_name, keys.finished_key, keys.handshake_context, request_bytes, cert, cv
    )
    return cert + cv + FinishedMessage(mac).encode()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def leaf_message(
    identity: SigningIdentity, context: bytes, extensions: tuple[Extension, ...] = ()
) -> CertificateMessage:
    return CertificateMessage(context, (CertificateEntry(der(identity.leaf), extensions),))


def signer_for(identity: SigningIdentity, scheme: int) -> Callable[[bytes], bytes]:
    return lambda content: sign(identity.private_key, scheme, content)


def reencode_with_finished(
    keys: AuthenticatorKeys, request: bytes, cert: bytes, cv: bytes
) -> bytes:
    mac = finished_verify_data(
        keys.hash_name, keys.finished_key, keys.handshake_context, request, cert, cv
    )
    return cert + cv + FinishedMessage(mac).encode()


def split3(data: bytes) -> Iterator[bytes]:
    while data:
        length = 4 + int.from_bytes(data[1:4], "big")
        yield data[:length]
        data = data[length:]


# --- round trips -----------------------------------------------------------------------------


KEY_SCHEMES = [
    ("p256", ECDSA_SECP256R1_SHA256),
    ("p384", ECDSA_SECP384R1_SHA384),
    ("p521", ECDSA_SECP521R1_SHA512),
    ("ed25519", ED25519),
    ("ed448", ED448),
    ("rsa", RSA_PSS_RSAE_SHA256),
]


def assert_valid(result: ValidatedAuthenticator, identity: SigningIdentity, scheme: int) -> None:
    assert result.scheme == scheme
    assert result.leaf == identity.leaf
    assert result.chain == identity.chain
    assert result.spki_der == identity.spki_der
    assert result.spki_der == identity.leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(("kind", "scheme"), KEY_SCHEMES)
def test_server_authenticates_to_client(
    conn: Connection, identities: dict[str, SigningIdentity], kind: str, scheme: int
) -> None:
    identity = identities[kind]
    request = conn.client.request([Extension(CMW)])
    assert request.msg_type == profile.HS_CLIENT_CERTIFICATE_REQUEST
    received = AuthenticatorRequest.decode(request.encode())
    cmw = Extension(CMW, b"\x00\x04cmw!")
    data = conn.server.authenticate(received, identity, [cmw])
    assert conn.client.outstanding == {request.context}
    result = conn.client.validate(data)
    assert_valid(result, identity, scheme)
    assert result.request == request
    assert result.context == request.context
    assert result.leaf_extensions == (cmw,)
    assert result.leaf_extension(CMW) == cmw
    assert conn.client.outstanding == frozenset()


@pytest.mark.parametrize(("kind", "scheme"), KEY_SCHEMES)
def test_client_authenticates_to_server(
    conn: Connection, identities: dict[str, SigningIdentity], kind: str, scheme: int
) -> None:
    identity = identities[kind]
    request = conn.server.request()
    assert request.msg_type == profile.HS_CERTIFICATE_REQUEST
    data = conn.client.authenticate(AuthenticatorRequest.decode(request.encode()), identity)
    result = conn.server.validate(data)
    assert_valid(result, identity, scheme)
    assert result.leaf_extensions == ()


@pytest.mark.parametrize("scheme", [RSA_PSS_RSAE_SHA256, RSA_PSS_RSAE_SHA384, RSA_PSS_RSAE_SHA512])
def test_rsa_pss_hashes(
    conn: Connection, identities: dict[str, SigningIdentity], scheme: int
) -> None:
    request = conn.client.request(signature_schemes=[scheme])
    data = conn.server.authenticate(request, identities["rsa"])
    assert conn.client.validate(data).scheme == scheme


def test_scheme_follows_requester_order(
    conn: Connection, identities: dict[str, SigningIdentity]
) -> None:
    request = conn.client.request(
        signature_schemes=[ED25519, RSA_PSS_RSAE_SHA512, RSA_PSS_RSAE_SHA256]
    )
    data = conn.server.authenticate(request, identities["rsa"])
    assert conn.client.validate(data).scheme == RSA_PSS_RSAE_SHA512


def test_chain_is_sent_leaf_first(conn: Connection, chained: SigningIdentity) -> None:
    request = conn.client.request([Extension(CMW)])
    data = conn.server.authenticate(request, chained, [Extension(CMW, b"\x00\x01x")])
    result = conn.client.validate(data)
    assert result.chain == chained.chain
    assert [e.extensions for e in result.certificate.entries] == [
        (Extension(CMW, b"\x00\x01x"),),
        (),
    ]


def test_many_requests_answered_out_of_order(
    conn: Connection, identities: dict[str, SigningIdentity]
) -> None:
    requests = [conn.client.request() for _ in range(3)]
    assert len({r.context for r in requests}) == 3
    answers = [conn.server.authenticate(r, identities["p256"]) for r in requests]
    for request, answer in reversed(list(zip(requests, answers, strict=True))):
        assert conn.client.validate(answer).request == request
    assert conn.client.outstanding == frozenset()


# --- requests ------------------------------------------------------------------------------


def test_request_shape() -> None:
    conn = connect()
    request = conn.client.request(
        [Extension(CMW)], signature_schemes=[ECDSA_SECP256R1_SHA256, ED25519]
    )
    assert len(request.context) == profile.REQUEST_CONTEXT_LENGTH
    assert request.extensions[0].type == profile.EXT_SIGNATURE_ALGORITHMS
    assert request.signature_schemes == (ECDSA_SECP256R1_SHA256, ED25519)
    assert request.extension(CMW) == Extension(CMW)
    assert request.encode()[:4] == bytes([17]) + len(request.encode_body()).to_bytes(3, "big")
    assert conn.server.request().signature_schemes == DEFAULT_SIGNATURE_SCHEMES


def test_request_contexts_are_fresh_and_never_repeat() -> None:
    exporter = ExporterSecret("sha256", bytes(32))
    counter = itertools.count()
    values = [b"\x01" * 32, b"\x01" * 32, b"\x02" * 32]

    def fake_random(n: int) -> bytes:
        return values[min(next(counter), len(values) - 1)]

    eas = ExportedAuthenticators(exporter, Role.CLIENT, random_bytes=fake_random)
    assert eas.request().context == b"\x01" * 32
    assert eas.request().context == b"\x02" * 32  # the repeat was skipped
    with pytest.raises(ConfigurationError):
        eas.request()  # random_bytes is stuck on a used value


def test_request_rejects_bad_arguments() -> None:
    conn = connect()
    with pytest.raises(ConfigurationError):
        conn.client.request(signature_schemes=[0x0401])  # PKCS#1 v1.5: not TLS 1.3
    with pytest.raises(ConfigurationError):
        conn.client.request(signature_schemes=[])
    with pytest.raises(ConfigurationError):
        conn.client.request([Extension(profile.EXT_SIGNATURE_ALGORITHMS, b"\x00\x02\x04\x03")])
    with pytest.raises(ConfigurationError):
        conn.client.request([Extension(CMW), Extension(CMW)])
    assert conn.client.outstanding == frozenset()


def test_exporter_with_unknown_hash_rejected() -> None:
    class Odd:
        hash_name = "sha512"

        def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
            return bytes(length)

    with pytest.raises(ConfigurationError):
        ExportedAuthenticators(Odd(), Role.CLIENT)


# --- spontaneous server authenticator ---------------------------------------------------------


def test_spontaneous(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    data = conn.server.authenticate(None, identities["p256"])
    result = conn.client.validate_spontaneous(data)
    assert result.request is None
    assert len(result.context) == profile.REQUEST_CONTEXT_LENGTH
    assert_valid(result, identities["p256"], ECDSA_SECP256R1_SHA256)
    with pytest.raises(ContextReused):
        conn.client.validate_spontaneous(data)


def test_spontaneous_extensions_need_client_offer(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    data = conn.server.authenticate(None, identities["p256"], [Extension(CMW, b"\x00\x00")])
    with pytest.raises(UnofferedExtension):
        conn.client.validate_spontaneous(data)
    data = conn.server.authenticate(None, identities["p256"], [Extension(CMW, b"\x00\x00")])
    assert conn.client.validate_spontaneous(data, offered_extensions={CMW}).leaf_extensions


def test_spontaneous_scheme_from_client_hello(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    with pytest.raises(NoCommonSignatureScheme):
        conn.server.authenticate(None, identities["p256"], spontaneous_signature_schemes=[ED25519])
    data = conn.server.authenticate(
        None, identities["ed25519"], spontaneous_signature_schemes=[ED25519]
    )
    with pytest.raises(UnsupportedSignatureScheme):
        conn.client.validate_spontaneous(data, signature_schemes={ECDSA_SECP256R1_SHA256})


def test_spontaneous_role_rules(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    with pytest.raises(ConfigurationError):
        conn.client.authenticate(None, identities["p256"])
    data = conn.server.authenticate(None, identities["p256"])
    with pytest.raises(ConfigurationError):
        conn.server.validate_spontaneous(data)


def test_spontaneous_cannot_be_empty() -> None:
    conn = connect()
    lone = FinishedMessage(bytes(32)).encode()
    with pytest.raises(UnexpectedMessage):
        conn.client.validate_spontaneous(lone)


def test_spontaneous_with_outstanding_context_rejected(
    identities: dict[str, SigningIdentity],
) -> None:
    conn = connect()
    request = conn.client.request()
    certificate = leaf_message(identities["p256"], request.context)
    data = forge(
        conn.keys(Role.SERVER),
        None,
        certificate,
        ECDSA_SECP256R1_SHA256,
        signer_for(identities["p256"], ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(ContextReused):
        conn.client.validate_spontaneous(data)


# --- refusal (empty authenticator) ------------------------------------------------------------


def test_refusal(conn: Connection) -> None:
    request = conn.client.request()
    data = conn.server.refuse(AuthenticatorRequest.decode(request.encode()))
    assert data[0] == profile.HS_FINISHED and len(data) == 4 + HASH_LENGTH[conn.exporter.hash_name]
    with pytest.raises(RefusedAuthenticator):
        conn.client.validate(data)
    assert conn.client.outstanding == frozenset()


def test_refusal_matches_the_right_request(conn: Connection) -> None:
    first, second = conn.client.request(), conn.client.request()
    with pytest.raises(RefusedAuthenticator, match="could not obtain evidence") as refused:
        conn.client.validate(conn.server.refuse(second))
    assert refused.value.context == second.context
    assert second.context.hex() not in str(refused.value)  # a reason, not a context in hex
    assert conn.client.outstanding == {first.context}


def test_refusal_with_bad_finished(conn: Connection) -> None:
    request = conn.client.request()
    data = bytearray(conn.server.refuse(request))
    data[-1] ^= 1
    with pytest.raises(BadFinished):
        conn.client.validate(bytes(data))
    assert conn.client.outstanding == frozenset()  # the only candidate was consumed


def test_refusal_with_wrong_role_keys(conn: Connection) -> None:
    request = conn.client.request()
    data = build_empty_authenticator(conn.keys(Role.CLIENT), request.encode(), request.context)
    with pytest.raises(BadFinished):
        conn.client.validate(data)


def test_refusal_without_request() -> None:
    conn = connect()
    with pytest.raises(ContextMismatch):
        conn.client.validate(FinishedMessage(bytes(32)).encode())


def test_refusal_wrong_length() -> None:
    conn = connect()
    conn.client.request()
    with pytest.raises(EADecodeError):
        conn.client.validate(FinishedMessage(bytes(48)).encode())


# --- authenticate-side rules ------------------------------------------------------------------


def test_answer_each_context_once(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    request = conn.client.request()
    conn.server.authenticate(request, identities["p256"])
    with pytest.raises(ContextAlreadyUsed):
        conn.server.authenticate(request, identities["p256"])
    with pytest.raises(ContextAlreadyUsed):
        conn.server.refuse(request)
    refused = conn.client.request()
    conn.server.refuse(refused)
    with pytest.raises(ContextAlreadyUsed):
        conn.server.authenticate(refused, identities["p256"])


def test_no_common_scheme(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    request = conn.client.request(signature_schemes=[ED25519])
    with pytest.raises(NoCommonSignatureScheme):
        conn.server.authenticate(request, identities["p256"])
    # Still answerable (for example with a refusal): a failed attempt does not spend the context.
    conn.server.refuse(request)


def test_no_signature_algorithms_in_request(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    request = AuthenticatorRequest(profile.HS_CLIENT_CERTIFICATE_REQUEST, b"ctx", (Extension(CMW),))
    with pytest.raises(NoCommonSignatureScheme):
        conn.server.authenticate(request, identities["p256"])


def test_rsa_pss_pss_never_chosen_for_rsae_key(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    request = AuthenticatorRequest(
        profile.HS_CLIENT_CERTIFICATE_REQUEST,
        b"ctx",
        (Extension(profile.EXT_SIGNATURE_ALGORITHMS, b"\x00\x02\x08\x09"),),
    )
    with pytest.raises(NoCommonSignatureScheme):
        conn.server.authenticate(request, identities["rsa"])


def test_extension_must_be_requested(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    request = conn.client.request()
    with pytest.raises(ExtensionNotRequested):
        conn.server.authenticate(request, identities["p256"], [Extension(CMW, b"\x00\x00")])


def test_request_type_must_fit_role(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    with pytest.raises(UnexpectedMessage):
        conn.server.authenticate(conn.server.request(), identities["p256"])
    with pytest.raises(UnexpectedMessage):
        conn.client.authenticate(conn.client.request(), identities["p256"])


# --- receiver checklist: one negative test per step ------------------------------------------


@pytest.fixture
def answered(
    conn: Connection, identities: dict[str, SigningIdentity]
) -> tuple[Connection, AuthenticatorRequest, bytes]:
    request = conn.client.request([Extension(CMW)])
    return (
        conn,
        request,
        conn.server.authenticate(request, identities["p256"], [Extension(CMW, b"\x00\x00")]),
    )


def test_trailing_garbage(answered: tuple[Connection, AuthenticatorRequest, bytes]) -> None:
    conn, _, data = answered
    with pytest.raises(EADecodeError):
        conn.client.validate(data + b"\x00")


def test_trailing_message(answered: tuple[Connection, AuthenticatorRequest, bytes]) -> None:
    conn, _, data = answered
    *_, fin = split3(data)
    with pytest.raises(UnexpectedMessage):
        conn.client.validate(data + fin)


@pytest.mark.parametrize("order", [(1, 0, 2), (0, 2), (0, 1), (1, 2), (2, 0, 1), (0, 1, 1, 2)])
def test_wrong_order(
    answered: tuple[Connection, AuthenticatorRequest, bytes], order: tuple[int, ...]
) -> None:
    conn, _, data = answered
    parts = list(split3(data))
    with pytest.raises(UnexpectedMessage):
        conn.client.validate(b"".join(parts[i] for i in order))


def test_empty_input() -> None:
    with pytest.raises(EADecodeError):
        connect().client.validate(b"")


def test_context_mismatch(identities: dict[str, SigningIdentity]) -> None:
    conn = connect()
    conn.client.request()
    forged = AuthenticatorRequest(
        profile.HS_CLIENT_CERTIFICATE_REQUEST, os.urandom(32), conn.client.request().extensions
    )
    data = conn.server.authenticate(forged, identities["p256"])
    with pytest.raises(ContextMismatch):
        conn.client.validate(data)
    assert len(conn.client.outstanding) == 2


def test_check_authenticator_rejects_a_signed_authenticator_for_another_context(
    identities: dict[str, SigningIdentity],
) -> None:
    """check_authenticator (public, stateless) is given the request; a peer holding this
    connection's keys signs and MACs over that request's exact bytes but puts another context in
    its Certificate. Signature and Finished are valid: only the context comparison catches it,
    whether the expected context comes from the request or is passed explicitly."""
    conn = connect()
    request = conn.client.request()
    keys = conn.keys(Role.SERVER)
    offered, request_bytes = request, request.encode()

    def check(data: bytes, request: AuthenticatorRequest | None, expected: bytes | None) -> None:
        check_authenticator(
            data,
            keys=keys,
            request=request,
            request_bytes=request_bytes,
            offered_extensions=offered.extension_types,
            offered_schemes=offered.signature_schemes,
            expected_context=expected,
        )

    last_bit = request.context[:-1] + bytes([request.context[-1] ^ 1])
    for context in (bytes(byte ^ 0xFF for byte in request.context), last_bit):
        data = build_authenticator(
            keys, request.encode(), context, identities["p256"], ECDSA_SECP256R1_SHA256
        )
        with pytest.raises(ContextMismatch):
            check(data, request, None)
        with pytest.raises(ContextMismatch):
            check(data, None, request.context)
        check(data, None, context)  # the same bytes pass under their own context


def test_context_reused(answered: tuple[Connection, AuthenticatorRequest, bytes]) -> None:
    conn, _, data = answered
    conn.client.validate(data)
    with pytest.raises(ContextReused):
        conn.client.validate(data)


def test_failed_validation_consumes_request(
    answered: tuple[Connection, AuthenticatorRequest, bytes],
) -> None:
    conn, _, data = answered
    broken = bytearray(data)
    broken[-1] ^= 1
    with pytest.raises(BadFinished):
        conn.client.validate(bytes(broken))
    with pytest.raises(ContextReused):
        conn.client.validate(data)


def test_context_of_answered_peer_request_not_accepted(
    identities: dict[str, SigningIdentity],
) -> None:
    # A context the server already answered (the client's request) is never accepted again,
    # even inside an authenticator the client sends the server.
    conn = connect()
    request = conn.client.request()
    conn.server.authenticate(request, identities["p256"])
    certificate = leaf_message(identities["p256"], request.context)
    data = forge(
        conn.keys(Role.CLIENT),
        None,
        certificate,
        ECDSA_SECP256R1_SHA256,
        signer_for(identities["p256"], ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(ContextReused):
        conn.server.validate(data)


def test_empty_certificate_list(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request()
    data = forge(
        conn.keys(Role.SERVER),
        request,
        CertificateMessage(request.context, ()),
        ECDSA_SECP256R1_SHA256,
        signer_for(identities["p256"], ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(EmptyCertificateList):
        conn.client.validate(data)


def test_unoffered_leaf_extension(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request()  # no cmw_attestation offered
    identity = identities["p256"]
    data = build_authenticator(
        conn.keys(Role.SERVER),
        request.encode(),
        request.context,
        identity,
        ECDSA_SECP256R1_SHA256,
        [Extension(CMW, b"\x00\x00")],
    )
    with pytest.raises(UnofferedExtension):
        conn.client.validate(data)


def test_unoffered_extension_on_chain_entry(conn: Connection, chained: SigningIdentity) -> None:
    request = conn.client.request([Extension(CMW)])
    certificate = CertificateMessage(
        request.context,
        (
            CertificateEntry(der(chained.chain[0]), (Extension(CMW, b"\x00\x00"),)),
            CertificateEntry(der(chained.chain[1]), (Extension(0x1234, b""),)),
        ),
    )
    data = forge(
        conn.keys(Role.SERVER),
        request,
        certificate,
        ECDSA_SECP256R1_SHA256,
        signer_for(chained, ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(UnofferedExtension):
        conn.client.validate(data)


def test_cmw_on_chain_entry_is_misplaced(conn: Connection, chained: SigningIdentity) -> None:
    request = conn.client.request([Extension(CMW)])
    certificate = CertificateMessage(
        request.context,
        (
            CertificateEntry(der(chained.chain[0])),
            CertificateEntry(der(chained.chain[1]), (Extension(CMW, b"\x00\x00"),)),
        ),
    )
    data = forge(
        conn.keys(Role.SERVER),
        request,
        certificate,
        ECDSA_SECP256R1_SHA256,
        signer_for(chained, ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(MisplacedExtension):
        conn.client.validate(data)


def test_unparseable_certificate(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request()
    certificate = CertificateMessage(request.context, (CertificateEntry(b"\x30\x03\x02\x01\x01"),))
    data = forge(
        conn.keys(Role.SERVER),
        request,
        certificate,
        ECDSA_SECP256R1_SHA256,
        signer_for(identities["p256"], ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(EADecodeError):
        conn.client.validate(data)


def test_unoffered_scheme(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request(signature_schemes=[ECDSA_SECP256R1_SHA256])
    identity = identities["ed25519"]
    data = build_authenticator(
        conn.keys(Role.SERVER), request.encode(), request.context, identity, ED25519
    )
    with pytest.raises(UnsupportedSignatureScheme, match="not offered"):
        conn.client.validate(data)


def test_pkcs1_scheme_rejected(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    identity = identities["rsa"]
    request = conn.client.request()
    key = identity.private_key
    assert isinstance(key, rsa.RSAPrivateKey)

    def pkcs1(content: bytes) -> bytes:
        return key.sign(content, padding.PKCS1v15(), hashes.SHA256())

    data = forge(
        conn.keys(Role.SERVER), request, leaf_message(identity, request.context), 0x0401, pkcs1
    )
    with pytest.raises(UnsupportedSignatureScheme):
        conn.client.validate(data)


@pytest.mark.parametrize(
    ("kind", "claimed"),
    [
        ("p256", ECDSA_SECP384R1_SHA384),
        ("rsa", ECDSA_SECP256R1_SHA256),
        ("p256", ED25519),
        ("ed25519", RSA_PSS_RSAE_SHA256),
    ],
)
def test_scheme_key_mismatch(
    conn: Connection, identities: dict[str, SigningIdentity], kind: str, claimed: int
) -> None:
    identity = identities[kind]
    request = conn.client.request()
    real = {"p256": ECDSA_SECP256R1_SHA256, "rsa": RSA_PSS_RSAE_SHA256, "ed25519": ED25519}[kind]
    data = forge(
        conn.keys(Role.SERVER),
        request,
        leaf_message(identity, request.context),
        claimed,
        signer_for(identity, real),
    )
    with pytest.raises(SignatureSchemeMismatch):
        conn.client.validate(data)


def test_bad_signature(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request()
    identity = identities["p256"]

    def corrupt(content: bytes) -> bytes:
        return sign(identity.private_key, ECDSA_SECP256R1_SHA256, content + b"x")

    data = forge(
        conn.keys(Role.SERVER),
        request,
        leaf_message(identity, request.context),
        ECDSA_SECP256R1_SHA256,
        corrupt,
    )
    with pytest.raises(BadSignature):
        conn.client.validate(data)


def test_signed_by_another_key(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    request = conn.client.request()
    other = generate_self_signed("p256")
    data = forge(
        conn.keys(Role.SERVER),
        request,
        leaf_message(identities["p256"], request.context),
        ECDSA_SECP256R1_SHA256,
        signer_for(other, ECDSA_SECP256R1_SHA256),
    )
    with pytest.raises(BadSignature):
        conn.client.validate(data)


def test_wrong_role_keys(conn: Connection, identities: dict[str, SigningIdentity]) -> None:
    # The server signs with the client's handshake context: the client must not accept it.
    request = conn.client.request()
    data = build_authenticator(
        conn.keys(Role.CLIENT),
        request.encode(),
        request.context,
        identities["p256"],
        ECDSA_SECP256R1_SHA256,
    )
    with pytest.raises(BadSignature):
        conn.client.validate(data)


def test_headerless_request_transcript_rejected(
    conn: Connection, identities: dict[str, SigningIdentity]
) -> None:
    # A Fizz-style transcript (request without its header) is not RFC 9261.
    request = conn.client.request()
    data = build_authenticator(
        conn.keys(Role.SERVER),
        request.encode_body(),
        request.context,
        identities["p256"],
        ECDSA_SECP256R1_SHA256,
    )
    with pytest.raises(BadSignature):
        conn.client.validate(data)


def test_bad_finished(answered: tuple[Connection, AuthenticatorRequest, bytes]) -> None:
    conn, _, data = answered
    broken = bytearray(data)
    broken[-5] ^= 0x80
    with pytest.raises(BadFinished):
        conn.client.validate(bytes(broken))


def test_finished_with_wrong_finished_key(
    conn: Connection, identities: dict[str, SigningIdentity]
) -> None:
    request = conn.client.request()
    server_keys = conn.keys(Role.SERVER)
    wrong = AuthenticatorKeys(
        server_keys.hash_name, server_keys.handshake_context, conn.keys(Role.CLIENT).finished_key
    )
    data = build_authenticator(
        wrong, request.encode(), request.context, identities["p256"], ECDSA_SECP256R1_SHA256
    )
    with pytest.raises(BadFinished):
        conn.client.validate(data)


def test_finished_wrong_length(answered: tuple[Connection, AuthenticatorRequest, bytes]) -> None:
    conn, _, data = answered
    with pytest.raises(EADecodeError):
        conn.client.validate(data[:-1])  # truncated message
    cert, cv, fin = split3(data)
    short = FinishedMessage(fin[4:-1]).encode()
    with pytest.raises(EADecodeError):
        conn.client.validate(cert + cv + short)


def test_every_byte_matters(identities: dict[str, SigningIdentity]) -> None:
    """Flipping any byte of a valid authenticator makes validation fail with a project error."""
    cmw = [Extension(CMW, b"\x00\x02hi")]
    position = 0
    while True:
        conn = connect("sha256")
        request = conn.client.request([Extension(CMW)])
        valid = conn.server.authenticate(request, identities["p256"], cmw)
        if position >= len(valid):  # ECDSA signatures vary in length by a byte or two
            break
        broken = bytearray(valid)
        broken[position] ^= 0x01
        with pytest.raises((EADecodeError, AuthenticatorError)):
            conn.client.validate(bytes(broken))
        position += 3


# --- identities ------------------------------------------------------------------------------


def test_identity_rejects_foreign_leaf(identities: dict[str, SigningIdentity]) -> None:
    with pytest.raises(ConfigurationError):
        SigningIdentity(identities["p256"].private_key, identities["p384"].chain)
    with pytest.raises(ConfigurationError):
        SigningIdentity(identities["p256"].private_key, ())


def test_identity_from_pem(chained: SigningIdentity) -> None:
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chained.chain)
    key_pem = chained.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    loaded = from_pem(chain_pem, key_pem)
    assert loaded.chain == chained.chain
    assert loaded.spki_der == chained.spki_der
    with pytest.raises(ConfigurationError):
        from_pem(b"not pem", key_pem)
    with pytest.raises(ConfigurationError):
        from_pem(chain_pem, b"not pem")


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa"])
def test_generated_identity(identities: dict[str, SigningIdentity], kind: str) -> None:
    identity = identities[kind]
    assert identity.leaf.subject == identity.leaf.issuer
    assert identity.spki_der == spki_der(identity.leaf)
    assert "PRIVATE" not in repr(identity)
    # the validator reads the SPKI from the received bytes: the same bytes as from the TBS
    leaf_der = identity.leaf.public_bytes(serialization.Encoding.DER)
    assert identity.chain_der[0] == leaf_der
    assert spki_der_of(leaf_der) == identity.spki_der


@pytest.mark.parametrize(
    "mangle",
    [
        lambda der: der[:-1],  # truncated
        lambda der: der + b"\x00",  # trailing byte
        lambda der: b"\x31" + der[1:],  # not a SEQUENCE
        lambda der: der[:4] + b"\x31" + der[5:],  # TBS not a SEQUENCE (after 30 82 LL LL)
        lambda der: b"",
    ],
)
def test_spki_der_of_rejects_malformed_der(
    identities: dict[str, SigningIdentity], mangle: Callable[[bytes], bytes]
) -> None:
    der = identities["p256"].leaf.public_bytes(serialization.Encoding.DER)
    with pytest.raises(EADecodeError):
        spki_der_of(mangle(der))


def test_generated_identity_time_is_an_argument() -> None:
    now = datetime.datetime(2030, 6, 1, tzinfo=datetime.UTC)
    identity = generate_self_signed("p256", "x", now=now, validity=datetime.timedelta(hours=1))
    assert identity.leaf.not_valid_before_utc < now < identity.leaf.not_valid_after_utc
    assert identity.leaf.not_valid_after_utc == now + datetime.timedelta(hours=1)
