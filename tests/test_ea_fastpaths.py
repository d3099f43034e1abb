"""The exchange's fast paths give exactly the bytes and values of the plain codecs.

Each cache or shortcut of the attestation exchange (attquic.ea, attquic.keyschedule) is compared
with the reference computation it replaces, and every memoised value is checked to follow its
input: a value cached for one request, identity or key is never served for another.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic.ea.authenticator import (
    AuthenticatorKeys,
    _encode_certificate,
    build_authenticator,
    certificate_verify_content,
    complete_authenticator,
    finished_verify_data,
)
from attquic.ea.identity import SigningIdentity, generate_self_signed, spki_der
from attquic.ea.messages import (
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    Extension,
    decode_signature_schemes,
    signature_algorithms_extension,
)
from attquic.ea.schemes import ECDSA_SECP256R1_SHA256, sign
from attquic.errors import BadSignature, ConfigurationError
from tests.test_ea_authenticator import self_signed

CMW = profile.CMW_ATTESTATION_EXTENSION


@pytest.fixture(scope="module")
def identity() -> SigningIdentity:
    return generate_self_signed("p256")


@pytest.fixture(scope="module")
def chained() -> SigningIdentity:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = SigningIdentity(root_key, (self_signed(root_key, ca=True),))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    middle_key = ec.generate_private_key(ec.SECP256R1())
    middle = self_signed(middle_key, issuer=root, ca=True)
    return SigningIdentity(leaf_key, (self_signed(leaf_key, issuer=root), middle, root.leaf))


def reference_certificate(
    context: bytes, identity: SigningIdentity, extensions: tuple[Extension, ...]
) -> bytes:
    der = identity.chain_der
    entries = [CertificateEntry(der[0], extensions)]
    entries += [CertificateEntry(d) for d in der[1:]]
    return CertificateMessage(context, tuple(entries)).encode()


# --- the Certificate message of a local identity ---------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    context=st.binary(max_size=255),
    extensions=st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=300)),
        max_size=4,
        unique_by=lambda e: e[0],
    ),
)
def test_certificate_encoding_equals_the_message_codec(
    identity: SigningIdentity,
    chained: SigningIdentity,
    context: bytes,
    extensions: list[tuple[int, bytes]],
) -> None:
    leaf_extensions = tuple(Extension(t, d) for t, d in extensions)
    for who in (identity, chained):
        encoded = _encode_certificate(context, who, leaf_extensions)
        assert encoded == reference_certificate(context, who, leaf_extensions)
        decoded = CertificateMessage.decode(encoded)
        assert decoded.entries[0].extensions == leaf_extensions
        assert [e.cert_data for e in decoded.entries] == list(who.chain_der)


def test_certificate_encoding_keeps_the_codec_errors(identity: SigningIdentity) -> None:
    with pytest.raises(ConfigurationError, match="duplicate"):
        _encode_certificate(b"", identity, (Extension(CMW, b"a"), Extension(CMW, b"b")))
    with pytest.raises(ConfigurationError, match="255"):
        _encode_certificate(bytes(256), identity, ())
    with pytest.raises(ConfigurationError, match="65535"):
        _encode_certificate(b"", identity, tuple(Extension(t, bytes(40000)) for t in (1, 2)))


def test_identity_entries_follow_the_identity(
    identity: SigningIdentity, chained: SigningIdentity
) -> None:
    """Each identity caches its own chain: two identities never share encoded entries."""
    other = generate_self_signed("p256")
    a = _encode_certificate(b"ctx", identity, ())
    b = _encode_certificate(b"ctx", other, ())
    c = _encode_certificate(b"ctx", chained, ())
    assert len({a, b, c}) == 3
    assert a == reference_certificate(b"ctx", identity, ())
    assert b == reference_certificate(b"ctx", other, ())
    assert c == reference_certificate(b"ctx", chained, ())


# --- the running transcript ------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_complete_authenticator_equals_the_rfc_formulas(
    identity: SigningIdentity, hash_name: str
) -> None:
    size = hashlib.new(hash_name).digest_size
    keys = AuthenticatorKeys(hash_name, os.urandom(size), os.urandom(size))
    request = AuthenticatorRequest(
        17, os.urandom(32), (signature_algorithms_extension([0x0403]), Extension(CMW))
    ).encode()
    certificate = _encode_certificate(b"\x01" * 32, identity, (Extension(CMW, b"\x00\x01x"),))
    seen: list[bytes] = []

    def signer(content: bytes) -> bytes:
        seen.append(content)
        return b"signature"

    out = complete_authenticator(keys, request, certificate, 0x0403, signer)
    assert seen == [
        certificate_verify_content(hash_name, keys.handshake_context, request, certificate)
    ]
    certificate_verify = bytes((15,)) + (2 + 2 + 9).to_bytes(3, "big") + b"\x04\x03\x00\x09"
    certificate_verify += b"signature"
    verify_data = finished_verify_data(
        hash_name,
        keys.finished_key,
        keys.handshake_context,
        request,
        certificate,
        certificate_verify,
    )
    finished = bytes((20,)) + size.to_bytes(3, "big") + verify_data
    assert out == certificate + certificate_verify + finished
    # build_authenticator is the same with the identity's Certificate
    built = build_authenticator(keys, request, b"\x01" * 32, identity, 0x0403, ())
    assert built.startswith(_encode_certificate(b"\x01" * 32, identity, ()))


# --- requests decoded once -------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    msg_type=st.sampled_from([13, 17]),
    context=st.binary(max_size=255),
    schemes=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20, unique=True),
    cert_schemes=st.none() | st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=5, unique=True),
    extra=st.lists(st.integers(0x10, 0xFFFF), max_size=3, unique=True),
)
def test_decoded_request_caches_equal_a_fresh_computation(
    msg_type: int,
    context: bytes,
    schemes: list[int],
    cert_schemes: list[int] | None,
    extra: list[int],
) -> None:
    extensions = [signature_algorithms_extension(schemes)]
    if cert_schemes is not None:
        extensions.append(
            signature_algorithms_extension(cert_schemes, profile.EXT_SIGNATURE_ALGORITHMS_CERT)
        )
    extensions += [Extension(t, b"x") for t in extra if t not in (0x0D, 0x32)]
    original = AuthenticatorRequest(msg_type, context, tuple(extensions))
    data = original.encode()
    decoded = AuthenticatorRequest.decode(data)
    fresh = AuthenticatorRequest(decoded.msg_type, decoded.context, decoded.extensions)
    assert decoded == original == fresh
    assert decoded.encode() == fresh.encode() == data
    assert decoded.signature_schemes == fresh.signature_schemes == tuple(schemes)
    assert decoded.extension_types == fresh.extension_types
    # a request without signature_algorithms offers no scheme, decoded or built
    bare = AuthenticatorRequest(msg_type, context, (Extension(CMW),))
    assert AuthenticatorRequest.decode(bare.encode()).signature_schemes == ()
    assert bare.signature_schemes == ()


def test_request_caches_are_per_request() -> None:
    a = AuthenticatorRequest(17, b"a", (signature_algorithms_extension([0x0403]),))
    b = AuthenticatorRequest(17, b"b", (signature_algorithms_extension([0x0804, 0x0403]),))
    for request in (a, b, a, b):
        assert AuthenticatorRequest.decode(request.encode()) == request
    assert a.encode() != b.encode()
    assert (a.signature_schemes, b.signature_schemes) == ((0x0403,), (0x0804, 0x0403))
    body_only = AuthenticatorRequest.decode(a.encode_body(), with_header=False, msg_type=17)
    assert body_only.encode() == a.encode()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40))
def test_signature_scheme_decoding_equals_the_field_by_field_reading(data: bytes) -> None:
    framed = len(data).to_bytes(2, "big") + data
    if not data or len(data) % 2:
        with pytest.raises(Exception, match="invalid length"):
            decode_signature_schemes(framed)
        return
    expected = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    assert decode_signature_schemes(framed) == expected


def test_shared_ecdsa_parameters_sign_and_verify_per_content(identity: SigningIdentity) -> None:
    from attquic.ea.schemes import verify

    key = identity.private_key
    public = identity.leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for content in (b"a", b"b"):
        signature = sign(key, ECDSA_SECP256R1_SHA256, content)
        verify(public, ECDSA_SECP256R1_SHA256, signature, content)
        with pytest.raises(BadSignature):
            verify(public, ECDSA_SECP256R1_SHA256, signature, content + b"!")


# --- authenticators split once ---------------------------------------------------------------


def _framed(msg_type: int, body: bytes) -> bytes:
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=30),
        st.lists(
            st.tuples(st.sampled_from([11, 15, 20, 13, 0]), st.binary(max_size=12)), max_size=4
        ).map(lambda ms: b"".join(_framed(t, b) for t, b in ms)),
    ),
    cut=st.integers(0, 3),
)
def test_handshake_spans_equal_split_handshake_messages(data: bytes, cut: int) -> None:
    """Same accepted inputs, same messages, same errors (truncations included)."""
    from attquic.ea.messages import handshake_spans, split_handshake_messages
    from attquic.errors import EADecodeError

    for candidate in (data, data[: len(data) - cut]):
        try:
            expected = split_handshake_messages(candidate)
        except EADecodeError as exc:
            with pytest.raises(EADecodeError) as caught:
                handshake_spans(candidate)
            assert str(caught.value) == str(exc)
            continue
        spans = handshake_spans(candidate)
        assert [(t, candidate[s + 4 : e]) for t, s, e in spans] == [
            (m.msg_type, m.body) for m in expected
        ]
        assert spans[-1][2] == len(candidate)


# --- certificates remembered by their DER ----------------------------------------------------


def test_certificate_cache_serves_only_the_same_bytes(
    identity: SigningIdentity, chained: SigningIdentity
) -> None:
    from attquic.ea import authenticator as ea

    a, b = identity.chain_der[0], chained.chain_der[0]
    first = ea._load_certificate(a)
    assert ea._load_certificate(bytes(a)) is first  # equal bytes, another object: same parse
    other = ea._load_certificate(b)
    assert other is not first
    assert first.public_bytes(serialization.Encoding.DER) == a
    assert other.public_bytes(serialization.Encoding.DER) == b
    assert ea._leaf_spki(a) == spki_der(identity.leaf)
    assert ea._leaf_spki(b) == spki_der(chained.leaf)
    assert ea._leaf_spki(a) != ea._leaf_spki(b)


def test_certificate_cache_is_bounded_and_remembers_no_failure() -> None:
    from attquic.ea import authenticator as ea
    from attquic.errors import EADecodeError

    for _ in range(2):  # a malformed certificate fails every time
        with pytest.raises(EADecodeError, match="not a DER X"):
            ea._parse_certificates(CertificateMessage(b"", (CertificateEntry(b"\x30\x00"),)))
    for _ in range(ea.CERTIFICATE_CACHE_SIZE + 5):
        ea._load_certificate(generate_self_signed("p256").chain_der[0])
    assert ea._load_remembered.cache_info().currsize <= ea.CERTIFICATE_CACHE_SIZE
    # past the size bound a certificate is parsed each time and not remembered
    big = generate_self_signed("p256", common_name="x" * 60)
    der = big.chain_der[0]
    before = ea._load_remembered.cache_info()
    original = ea.MAX_CACHED_CERTIFICATE_SIZE
    try:
        ea.MAX_CACHED_CERTIFICATE_SIZE = len(der) - 1  # type: ignore[misc]
        assert ea._load_certificate(der) is not ea._load_certificate(der)
    finally:
        ea.MAX_CACHED_CERTIFICATE_SIZE = original  # type: ignore[misc]
    assert ea._load_remembered.cache_info().currsize == before.currsize


def test_memoized_property_is_per_instance_and_computed_once() -> None:
    from attquic._memo import memoized_property

    calls: list[int] = []

    class Box:
        def __init__(self, value: int) -> None:
            self.value = value

        @memoized_property
        def doubled(self) -> int:
            """Twice the value."""
            calls.append(self.value)
            return 2 * self.value

    a, b = Box(1), Box(5)
    assert (a.doubled, b.doubled, a.doubled, b.doubled) == (2, 10, 2, 10)
    assert calls == [1, 5]
    assert isinstance(Box.doubled, memoized_property)
    assert Box.doubled.__doc__ == "Twice the value."


def test_remembered_request_extensions_follow_the_bytes() -> None:
    from attquic.ea import messages
    from attquic.errors import EADecodeError

    small = AuthenticatorRequest(17, b"a", (signature_algorithms_extension([0x0403]),))
    other = AuthenticatorRequest(17, b"a", (signature_algorithms_extension([0x0804]),))
    large = AuthenticatorRequest(
        17, b"a", (signature_algorithms_extension([0x0403]), Extension(CMW, bytes(2000)))
    )
    for request in (small, other, large, small, other, large):
        decoded = AuthenticatorRequest.decode(request.encode())
        assert decoded.extensions == request.extensions
        assert decoded.signature_schemes == request.signature_schemes
    before = messages._remembered_request_extensions.cache_info().currsize
    # a duplicated extension fails every time (failures are not remembered)
    ext = Extension(CMW).encode()
    block = (2 * len(ext)).to_bytes(2, "big") + ext + ext
    bad = bytes((17,)) + (1 + len(block)).to_bytes(3, "big") + b"\x00" + block
    for _ in range(2):
        with pytest.raises(EADecodeError, match="duplicate"):
            AuthenticatorRequest.decode(bad)
    assert messages._remembered_request_extensions.cache_info().currsize == before


def test_request_keeps_failing_before_spending_a_context() -> None:
    from attquic.ea.authenticator import ExportedAuthenticators
    from attquic.ea.messages import Role
    from attquic.keyschedule import ExporterSecret

    contexts: list[bytes] = []

    def random_bytes(n: int) -> bytes:
        contexts.append(os.urandom(n))
        return contexts[-1]

    ea = ExportedAuthenticators(
        ExporterSecret("sha256", bytes(32)), Role.CLIENT, random_bytes=random_bytes
    )
    with pytest.raises(ConfigurationError, match="duplicate"):
        ea.request(extensions=[Extension(CMW), Extension(CMW, b"x")])
    assert contexts == []
    first = ea.request(extensions=[Extension(CMW)], signature_schemes=[0x0403])
    second = ea.request(extensions=[Extension(CMW)])
    assert first.signature_schemes == (0x0403,)
    assert second.signature_schemes != first.signature_schemes
    assert len(contexts) == 2


# --- pkix: facts of remembered certificate objects -------------------------------------------


def test_pkix_facts_follow_each_certificate_object() -> None:
    """Identity (a) on alternating certificates: a remembered verdict (DER, validity, key
    usage) is only served for the very object it was read from, and time is checked per call."""
    import datetime

    from cryptography import x509

    from attquic import pkix
    from attquic.demo_ca import DemoCA
    from attquic.errors import CertificateRejected

    ca = DemoCA.default()
    good = ca.issue("good", server=True, client=False).leaf
    twin = x509.load_der_x509_certificate(good.public_bytes(serialization.Encoding.DER))
    other = generate_self_signed("p256").leaf  # KeyUsage digitalSignature, another DER
    now = datetime.datetime.now(datetime.UTC).timestamp()

    def check(leaf: x509.Certificate, tls: x509.Certificate, at: float = now) -> object:
        return pkix.validate_authenticator_certificate(
            (leaf,),
            now=at,
            attester_is_server=True,
            tls_certificate=tls,
            tls_verified=True,
            trust_store=None,
            accept_evidence_only=False,
        )

    for _ in range(3):
        assert check(good, twin) is pkix.AuthenticatorIdentity.TLS_CERTIFICATE
        assert check(twin, good) is pkix.AuthenticatorIdentity.TLS_CERTIFICATE
        with pytest.raises(CertificateRejected, match="not the certificate"):
            check(other, good)
        with pytest.raises(CertificateRejected, match="not the certificate"):
            check(good, other)
        with pytest.raises(CertificateRejected, match="expired"):
            check(good, twin, good.not_valid_after_utc.timestamp() + 1)
        with pytest.raises(CertificateRejected, match="not valid yet"):
            check(good, good, good.not_valid_before_utc.timestamp() - 1)
    assert len(pkix._remembered_facts) <= pkix._MAX_REMEMBERED_FACTS
    for _ in range(pkix._MAX_REMEMBERED_FACTS + 3):
        leaf = generate_self_signed("p256").leaf
        assert check(leaf, leaf) is pkix.AuthenticatorIdentity.TLS_CERTIFICATE
    assert len(pkix._remembered_facts) <= pkix._MAX_REMEMBERED_FACTS


def test_identity_leaf_schemes_are_the_schemes_that_fit_its_leaf(
    identity: SigningIdentity,
) -> None:
    from attquic.ea.schemes import SUPPORTED_SIGNATURE_SCHEMES, certificate_fits_scheme

    for who in (identity, generate_self_signed("p384"), generate_self_signed("ed25519")):
        expected = {s for s in SUPPORTED_SIGNATURE_SCHEMES if certificate_fits_scheme(who.leaf, s)}
        assert who.leaf_schemes == expected and expected
    assert identity.leaf_schemes != generate_self_signed("p384").leaf_schemes


def _certificate_body(
    context: bytes, entries: list[tuple[bytes, list[tuple[int, bytes]]]]
) -> bytes:
    encoded = b""
    for cert_data, extensions in entries:
        block = b"".join(
            t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for t, d in extensions
        )
        encoded += len(cert_data).to_bytes(3, "big") + cert_data
        encoded += len(block).to_bytes(2, "big") + block
    return bytes((len(context),)) + context + len(encoded).to_bytes(3, "big") + encoded


@settings(max_examples=400, deadline=None)
@given(
    context=st.binary(max_size=8),
    entries=st.lists(
        st.tuples(
            st.binary(max_size=6),
            st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=4)), max_size=3),
        ),
        max_size=3,
    ),
    corruption=st.one_of(
        st.none(),
        st.tuples(st.integers(0, 200), st.integers(0, 255)),  # overwrite one byte
        st.integers(0, 200),  # truncate
        st.binary(min_size=1, max_size=3),  # trailing bytes
    ),
)
def test_certificate_body_offsets_equal_the_reader(
    context: bytes,
    entries: list[tuple[bytes, list[tuple[int, bytes]]]],
    corruption: tuple[int, int] | int | bytes | None,
) -> None:
    """The offset reader of Certificate bodies and the field-by-field one accept the same
    bodies with the same result and reject the rest with the same error."""
    from attquic._wire import Reader
    from attquic.errors import EADecodeError

    body = _certificate_body(context, entries)
    if isinstance(corruption, tuple):
        index = corruption[0] % len(body)
        body = body[:index] + bytes((corruption[1],)) + body[index + 1 :]
    elif isinstance(corruption, int):
        body = body[: corruption % (len(body) + 1)]
    elif isinstance(corruption, bytes):
        body += corruption
    try:
        expected = CertificateMessage._decode_body(Reader(body, EADecodeError))
    except EADecodeError as exc:
        with pytest.raises(EADecodeError) as caught:
            CertificateMessage._decode_body_bytes(body)
        assert str(caught.value) == str(exc)
        return
    assert CertificateMessage._decode_body_bytes(body) == expected
    framed = bytes((11,)) + len(body).to_bytes(3, "big") + body
    assert CertificateMessage.decode(framed) == expected


@settings(max_examples=300, deadline=None)
@given(
    verify_body=st.binary(max_size=12),
    finished=st.binary(max_size=50),
    hash_name=st.sampled_from(["sha256", "sha384"]),
)
def test_received_short_messages_equal_their_decoders(
    identity: SigningIdentity, verify_body: bytes, finished: bytes, hash_name: str
) -> None:
    """CertificateVerify and Finished read by offsets in _receive: the decoders' result or
    their exact error, for well-formed and malformed bodies alike."""
    from attquic.ea.authenticator import _receive
    from attquic.ea.messages import CertificateVerifyMessage, FinishedMessage
    from attquic.errors import EADecodeError

    certificate = _encode_certificate(b"c", identity, ())
    verify = _framed(15, verify_body)
    data = certificate + verify + _framed(20, finished)
    size = hashlib.new(hash_name).digest_size
    try:
        expected = (
            CertificateVerifyMessage.decode(verify),
            FinishedMessage.decode(_framed(20, finished), hash_length=size),
        )
    except EADecodeError as exc:
        with pytest.raises(EADecodeError) as caught:
            _receive(data, hash_name)
        assert str(caught.value) == str(exc)
        return
    received = _receive(data, hash_name)
    assert (received.certificate_verify, received.finished) == expected
    assert received.certificate_bytes == certificate
    assert received.certificate_verify_bytes == verify


def test_received_well_formed_short_messages(identity: SigningIdentity) -> None:
    from attquic.ea.authenticator import _receive

    certificate = _encode_certificate(b"c", identity, ())
    verify = _framed(15, b"\x04\x03\x00\x03sig")
    received = _receive(certificate + verify + _framed(20, bytes(range(32))), "sha256")
    assert received.certificate_verify is not None
    assert (received.certificate_verify.scheme, received.certificate_verify.signature) == (
        0x0403,
        b"sig",
    )
    assert received.finished.verify_data == bytes(range(32))


# --- CMW: definite strings read in place -----------------------------------------------------

_CBOR_VALUES = st.recursive(
    st.one_of(
        st.integers(-(2**64), 2**64 - 1),
        st.text(max_size=30),
        st.binary(max_size=300),
        st.sampled_from(["application/eat+cwt", "__cmwc_t", "evidence", "tag:x,2024:y"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(-5, 5)), children, max_size=3),
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(value=_CBOR_VALUES, cut=st.integers(0, 8), flip=st.none() | st.integers(0, 400))
def test_cbor_fast_strings_equal_the_general_reader(
    value: object, cut: int, flip: int | None
) -> None:
    """With and without the in-place reading of definite strings, the CBOR decoder returns the
    same CMW or raises the same error, on valid, truncated and corrupted encodings."""
    import cbor2

    from attquic.cmw import CMWError, decode_cbor
    from attquic.cmw.cbor_codec import _Decoder

    data = cbor2.dumps(value)
    if flip is not None and data:
        index = flip % len(data)
        data = data[:index] + bytes((data[index] ^ 0x20,)) + data[index + 1 :]
    data = data[: len(data) - cut] if cut < len(data) else data

    def outcome() -> tuple[str, object]:
        try:
            return "ok", decode_cbor(data)
        except CMWError as exc:
            return type(exc).__name__, str(exc)

    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Decoder, "_definite", lambda self, major: None)
        general = outcome()
    assert fast == general
