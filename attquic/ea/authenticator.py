"""RFC 9261 exported authenticators for one TLS connection: request, authenticate, refuse, validate.

I/O-free: :class:`ExportedAuthenticators` turns bytes into bytes using the connection's
:class:`~attquic.keyschedule.Exporter`; the caller carries them (attquic's control stream).

Keys (RFC 9261 §5.1). "client"/"server" is the role of the endpoint that SENDS the
authenticator; the context is empty and the length is the suite hash length::

    HC = TLS-Exporter("EXPORTER-<role> authenticator handshake context", "", Hash.length)
    FK = TLS-Exporter("EXPORTER-<role> authenticator finished key", "", Hash.length)

Messages (RFC 9261 §5.2), with ``request`` the full request message INCLUDING its 4-byte
handshake header (empty for a spontaneous server authenticator)::

    CertificateVerify.signature = Sign(0x20*64 ‖ "Exported Authenticator" ‖ 0x00 ‖
                                       Hash(HC ‖ request ‖ Certificate))
    Finished.verify_data        = HMAC(FK, Hash(HC ‖ request ‖ Certificate ‖ CertificateVerify))
    empty authenticator         = Finished over HC ‖ request ‖ Certificate(ctx, [])  (not sent)

The stateless building blocks (:func:`certificate_verify_content`, :func:`finished_verify_data`,
:func:`build_authenticator`, :func:`check_authenticator`) take the keys and request bytes
explicitly; they are public so that vectors from other implementations can be replayed.

Certificate chains are NOT validated against a trust store here: this module is RFC 9261 only.
The attested channel validates :attr:`ValidatedAuthenticator.chain` with :mod:`attquic.pkix`
(expat -04 §3.3) before it looks at the evidence, which in turn commits to the hash of the
leaf's SubjectPublicKeyInfo (:attr:`ValidatedAuthenticator.spki_der`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from cryptography import x509

from attquic import profile
from attquic._memo import memoized_property
from attquic.ea.identity import SigningIdentity, spki_der, spki_der_of
from attquic.ea.messages import (
    Authenticator,
    AuthenticatorRequest,
    CertificateMessage,
    CertificateVerifyMessage,
    Extension,
    FinishedMessage,
    HandshakeMessage,
    Role,
    check_unique_extensions,
    encode_extensions,
    handshake_spans,
    signature_algorithms_extension,
)
from attquic.ea.schemes import (
    DEFAULT_SIGNATURE_SCHEMES,
    SUPPORTED_SIGNATURE_SCHEMES,
    PublicKey,
    certificate_fits_scheme,
    is_tls13_scheme,
    scheme_name,
    sign,
    verify,
)
from attquic.errors import (
    BadFinished,
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
from attquic.keyschedule import Exporter

__all__ = [
    "CERTIFICATE_VERIFY_LABEL",
    "AuthenticatorKeys",
    "ExportedAuthenticators",
    "ValidatedAuthenticator",
    "authenticator_keys",
    "build_authenticator",
    "build_empty_authenticator",
    "certificate_verify_content",
    "check_authenticator",
    "complete_authenticator",
    "finished_verify_data",
]

#: RFC 9261 §5.2.2 context string of the CertificateVerify content.
CERTIFICATE_VERIFY_LABEL = b"Exported Authenticator"
_CERTIFICATE_VERIFY_PREFIX = b"\x20" * 64 + CERTIFICATE_VERIFY_LABEL + b"\x00"

_HANDSHAKE_CONTEXT_LABELS = {
    Role.CLIENT: profile.LABEL_CLIENT_HANDSHAKE_CONTEXT,
    Role.SERVER: profile.LABEL_SERVER_HANDSHAKE_CONTEXT,
}
_FINISHED_KEY_LABELS = {
    Role.CLIENT: profile.LABEL_CLIENT_FINISHED_KEY,
    Role.SERVER: profile.LABEL_SERVER_FINISHED_KEY,
}
_HASH_LENGTHS = {"sha256": 32, "sha384": 48}
_MAX_CONTEXT_ATTEMPTS = 8


# --- stateless building blocks ---------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class AuthenticatorKeys:
    """Handshake context and finished key of one sender role on one connection."""

    hash_name: str
    handshake_context: bytes
    finished_key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"AuthenticatorKeys(hash_name={self.hash_name!r})"


def _hash_length(hash_name: str) -> int:
    try:
        return _HASH_LENGTHS[hash_name]
    except KeyError:
        raise ConfigurationError(f"not a TLS 1.3 suite hash: {hash_name!r}") from None


def authenticator_keys(exporter: Exporter, sender: Role) -> AuthenticatorKeys:
    """HC and FK for authenticators sent by ``sender`` (RFC 9261 §5.1): empty exporter context,
    output length = hash length."""
    length = _hash_length(exporter.hash_name)
    return AuthenticatorKeys(
        hash_name=exporter.hash_name,
        handshake_context=exporter.export_keying_material(
            _HANDSHAKE_CONTEXT_LABELS[sender], b"", length
        ),
        finished_key=exporter.export_keying_material(_FINISHED_KEY_LABELS[sender], b"", length),
    )


def _digest(hash_name: str, *parts: bytes) -> bytes:
    return hashlib.new(hash_name, b"".join(parts)).digest()


def certificate_verify_content(
    hash_name: str,
    handshake_context: bytes,
    request: bytes,
    certificate: bytes,
    *,
    label: bytes = CERTIFICATE_VERIFY_LABEL,
) -> bytes:
    """What CertificateVerify signs: ``0x20*64 ‖ label ‖ 0x00 ‖ Hash(HC ‖ request ‖ Certificate)``.

    ``request`` and ``certificate`` are full encoded messages (``request`` is b"" for a
    spontaneous authenticator). ``label`` is only overridable to replay pre-RFC vectors.
    """
    return (
        b"\x20" * 64 + label + b"\x00" + _digest(hash_name, handshake_context, request, certificate)
    )


def finished_verify_data(
    hash_name: str,
    finished_key: bytes,
    handshake_context: bytes,
    request: bytes,
    certificate: bytes,
    certificate_verify: bytes = b"",
) -> bytes:
    """``HMAC(FK, Hash(HC ‖ request ‖ Certificate ‖ CertificateVerify))`` (RFC 9261 §5.2.3).

    For the empty authenticator pass the request's empty Certificate and no CertificateVerify.
    """
    transcript_hash = _digest(
        hash_name, handshake_context, request, certificate, certificate_verify
    )
    return hmac.new(finished_key, transcript_hash, hash_name).digest()


def build_authenticator(
    keys: AuthenticatorKeys,
    request: bytes,
    context: bytes,
    identity: SigningIdentity,
    scheme: int,
    leaf_extensions: Sequence[Extension] = (),
) -> bytes:
    """``Certificate ‖ CertificateVerify ‖ Finished`` for ``identity``, signed with ``scheme``.

    No policy checks: :meth:`ExportedAuthenticators.authenticate` chooses the scheme and checks
    the request first.
    """
    certificate = _encode_certificate(context, identity, tuple(leaf_extensions))
    return complete_authenticator(
        keys,
        request,
        certificate,
        scheme,
        lambda content: sign(identity.private_key, scheme, content),
    )


def _encode_certificate(
    context: bytes, identity: SigningIdentity, leaf_extensions: tuple[Extension, ...]
) -> bytes:
    """``CertificateMessage(context, [leaf + leaf_extensions, *rest]).encode()``, with the
    identity's entries after the leaf's DER encoded once per identity (tests check equality)."""
    leaf_cert_data, rest = identity.encoded_entries
    if len(context) > 255:
        raise ConfigurationError("certificate_request_context longer than 255 bytes")
    extensions = encode_extensions(leaf_extensions)  # checks unique types and the u16 bound
    entries_length = len(leaf_cert_data) + len(extensions) + len(rest)
    body_length = 1 + len(context) + 3 + entries_length
    if entries_length > 0xFFFFFF or body_length > 0xFFFFFF:
        raise ConfigurationError("certificate_list longer than 2^24-1 bytes")
    return b"".join(
        (
            bytes((profile.HS_CERTIFICATE,)),
            body_length.to_bytes(3, "big"),
            bytes((len(context),)),
            context,
            entries_length.to_bytes(3, "big"),
            leaf_cert_data,
            extensions,
            rest,
        )
    )


def complete_authenticator(
    keys: AuthenticatorKeys,
    request: bytes,
    certificate: bytes,
    scheme: int,
    signer: Callable[[bytes], bytes],
) -> bytes:
    """``certificate ‖ CertificateVerify ‖ Finished`` for an encoded Certificate message.

    ``signer`` signs the CertificateVerify content with ``scheme``. The building block of
    :func:`build_authenticator`, public so that test peers can forge Certificate messages.
    """
    # One running hash: HC ‖ request ‖ Certificate for the signature, then ‖ CertificateVerify
    # for Finished (what certificate_verify_content and finished_verify_data compute).
    transcript = hashlib.new(keys.hash_name, keys.handshake_context)
    transcript.update(request)
    transcript.update(certificate)
    content = _CERTIFICATE_VERIFY_PREFIX + transcript.digest()
    certificate_verify = CertificateVerifyMessage(scheme, signer(content)).encode()
    transcript.update(certificate_verify)
    verify_data = hmac.digest(keys.finished_key, transcript.digest(), keys.hash_name)
    finished = FinishedMessage(verify_data).encode()
    return b"".join((certificate, certificate_verify, finished))


def build_empty_authenticator(keys: AuthenticatorKeys, request: bytes, context: bytes) -> bytes:
    """The empty authenticator (RFC 9261 §6): a lone Finished whose MAC covers an implicit
    ``Certificate(context, [])`` that is not sent."""
    empty_certificate = CertificateMessage(context, ()).encode()
    verify_data = finished_verify_data(
        keys.hash_name, keys.finished_key, keys.handshake_context, request, empty_certificate
    )
    return FinishedMessage(verify_data).encode()


#: Certificates parsed from authenticators are remembered by their exact DER bytes, so a peer
#: that authenticates again (another connection, a re-attestation) with the same chain costs a
#: dictionary lookup instead of a parse, and its key and extensions, which cryptography keeps
#: on the certificate object once read, are not decoded again either. Parsing is a pure
#: function of the bytes and certificate objects are immutable; failures are not remembered.
#: Process-wide and bounded: at most CERTIFICATE_CACHE_SIZE certificates of at most
#: MAX_CACHED_CERTIFICATE_SIZE bytes each (larger ones are parsed every time).
CERTIFICATE_CACHE_SIZE: Final = 32
MAX_CACHED_CERTIFICATE_SIZE: Final = 16 * 1024


@functools.lru_cache(maxsize=CERTIFICATE_CACHE_SIZE)
def _load_remembered(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


@functools.lru_cache(maxsize=CERTIFICATE_CACHE_SIZE)
def _spki_remembered(der: bytes) -> bytes:
    return spki_der_of(der)


def _load_certificate(der: bytes) -> x509.Certificate:
    if type(der) is bytes and len(der) <= MAX_CACHED_CERTIFICATE_SIZE:
        return _load_remembered(der)
    return x509.load_der_x509_certificate(der)


def _leaf_spki(der: bytes) -> bytes:
    if type(der) is bytes and len(der) <= MAX_CACHED_CERTIFICATE_SIZE:
        return _spki_remembered(der)
    return spki_der_of(der)


@functools.lru_cache(maxsize=16)
def _offered_schemes(schemes: tuple[int, ...]) -> Extension:
    """The ``signature_algorithms`` extension of a request (the same for every request of an
    endpoint: built once per scheme list; immutable)."""
    return signature_algorithms_extension(schemes)


def _parse_certificates(certificate: CertificateMessage) -> tuple[x509.Certificate, ...]:
    chain: list[x509.Certificate] = []
    for index, entry in enumerate(certificate.entries):
        try:
            chain.append(_load_certificate(entry.cert_data))
        except Exception:  # ValueError, x509.InvalidVersion, ...: any parse failure fails closed
            raise EADecodeError(
                f"certificate entry {index} is not a DER X.509 certificate"
            ) from None
    return tuple(chain)


def _leaf_public_key(leaf: x509.Certificate) -> PublicKey:
    try:
        key = leaf.public_key()
    except Exception:  # cryptography raises UnsupportedAlgorithm / ValueError for exotic keys
        raise SignatureSchemeMismatch("the leaf certificate's key type is not supported") from None
    if not isinstance(key, PublicKey):
        raise SignatureSchemeMismatch(
            f"no TLS 1.3 signature scheme fits the leaf's {type(key).__name__}"
        )
    return key


@dataclass(frozen=True)
class _Received:
    """An authenticator split once: its messages decoded, and the bytes of each as received
    (what the transcript hashes: no re-encoding)."""

    certificate: CertificateMessage | None
    certificate_verify: CertificateVerifyMessage | None
    finished: FinishedMessage
    certificate_bytes: bytes
    certificate_verify_bytes: bytes


def _receive(data: bytes, hash_name: str, *, spontaneous: bool = False) -> _Received:
    """Split and decode ``data`` once (check 1 of :func:`check_authenticator`)."""
    data = bytes(data)
    spans = handshake_spans(data)
    types = [msg_type for msg_type, _, _ in spans]
    if spontaneous and types == [profile.HS_FINISHED]:
        raise UnexpectedMessage("an empty authenticator cannot be spontaneous")
    if not Authenticator.is_valid_sequence(types):
        names = ", ".join(HandshakeMessage(msg_type, b"").name for msg_type in types)
        expected = "" if spontaneous else " or [Finished]"
        raise UnexpectedMessage(
            f"expected [Certificate, CertificateVerify, Finished]{expected}, got [{names}]"
        )
    hash_length = _hash_length(hash_name)
    if len(spans) == 1:
        finished = FinishedMessage.decode(data, hash_length=hash_length)
        return _Received(None, None, finished, b"", b"")
    # handshake_spans checked the framing: each message is its 4-byte header + body
    certificate_end = spans[0][2]
    verify_end = spans[1][2]
    certificate = CertificateMessage._decode_body_bytes(data[4:certificate_end])
    certificate_verify_bytes = data[certificate_end:verify_end]
    # The two short messages, read by offsets when well formed (their decoders otherwise, for
    # the exact error): CertificateVerify = scheme(2) ‖ signature<0..2^16-1>, Finished =
    # verify_data[hash length].
    signature_end = 8 + int.from_bytes(certificate_verify_bytes[6:8], "big")
    if len(certificate_verify_bytes) >= 8 and signature_end == len(certificate_verify_bytes):
        certificate_verify = CertificateVerifyMessage(
            int.from_bytes(certificate_verify_bytes[4:6], "big"),
            certificate_verify_bytes[8:],
        )
    else:
        certificate_verify = CertificateVerifyMessage.decode(certificate_verify_bytes)
    if len(data) - verify_end - 4 == hash_length:
        finished = FinishedMessage(data[verify_end + 4 :])
    else:
        finished = FinishedMessage.decode(data[verify_end:], hash_length=hash_length)
    return _Received(
        certificate,
        certificate_verify,
        finished,
        data[:certificate_end],
        certificate_verify_bytes,
    )


def check_authenticator(
    data: bytes,
    *,
    keys: AuthenticatorKeys,
    request: AuthenticatorRequest | None,
    request_bytes: bytes,
    offered_extensions: Collection[int],
    offered_schemes: Collection[int],
    expected_context: bytes | None = None,
    leaf_only_extensions: Collection[int] = frozenset({profile.CMW_ATTESTATION_EXTENSION}),
) -> ValidatedAuthenticator:
    """Run RFC 9261's receiver checks on one authenticator, in this order, each failure its own
    :class:`~attquic.errors.AuthenticatorError` (or :class:`~attquic.errors.EADecodeError`):

    1. exactly Certificate, CertificateVerify, Finished or a lone Finished, no trailing bytes
       (:class:`UnexpectedMessage`, :class:`EADecodeError`);
    2. a lone Finished is the empty authenticator: its MAC is checked
       (:class:`BadFinished`), then :class:`RefusedAuthenticator` is raised;
    3. the certificate list is not empty (:class:`EmptyCertificateList`);
    4. the context equals ``expected_context`` (the request's by default; :class:`ContextMismatch`);
    5. every entry's extensions were offered (:class:`UnofferedExtension`), and those in
       ``leaf_only_extensions`` (cmw_attestation by default) sit on the leaf entry only
       (:class:`MisplacedExtension`);
    6. certificates parse as X.509 (:class:`EADecodeError`);
    7. the scheme is a TLS 1.3 scheme attquic supports and was offered
       (:class:`UnsupportedSignatureScheme`) and fits the leaf key
       (:class:`SignatureSchemeMismatch`);
    8. the signature verifies (:class:`BadSignature`);
    9. Finished matches, compared in constant time (:class:`BadFinished`).

    The transcript hashes the Certificate and CertificateVerify bytes exactly as received.
    Context bookkeeping (outstanding, never reused) is :class:`ExportedAuthenticators`' job.
    """
    return _check(
        _receive(data, keys.hash_name),
        keys=keys,
        request=request,
        request_bytes=request_bytes,
        offered_extensions=offered_extensions,
        offered_schemes=offered_schemes,
        expected_context=expected_context,
        leaf_only_extensions=leaf_only_extensions,
    )


def _check(
    received: _Received,
    *,
    keys: AuthenticatorKeys,
    request: AuthenticatorRequest | None,
    request_bytes: bytes,
    offered_extensions: Collection[int],
    offered_schemes: Collection[int],
    expected_context: bytes | None,
    leaf_only_extensions: Collection[int],
) -> ValidatedAuthenticator:
    """Checks 2-9 of :func:`check_authenticator` on an authenticator split by :func:`_receive`."""
    if expected_context is None:
        expected_context = request.context if request is not None else None

    certificate = received.certificate
    certificate_verify = received.certificate_verify
    if certificate is None or certificate_verify is None:
        if expected_context is None:
            raise UnexpectedMessage("an empty authenticator answers a request; there is none")
        expected = build_empty_authenticator(keys, request_bytes, expected_context)
        if not hmac.compare_digest(expected, received.finished.encode()):
            raise BadFinished("the empty authenticator's Finished does not match")
        raise RefusedAuthenticator(context=expected_context)

    if not certificate.entries:
        raise EmptyCertificateList("a Certificate with no entries must not be signed")
    if expected_context is not None and not hmac.compare_digest(
        certificate.context, expected_context
    ):
        raise ContextMismatch("the Certificate's context is not the request's")
    for index, entry in enumerate(certificate.entries):
        for extension in entry.extensions:
            if extension.type not in offered_extensions:
                raise UnofferedExtension(
                    f"certificate entry {index} carries {extension.name}, which was not offered"
                )
            if index > 0 and extension.type in leaf_only_extensions:
                raise MisplacedExtension(
                    f"{extension.name} may only appear on the leaf entry, found on entry {index}"
                )

    chain = _parse_certificates(certificate)
    scheme = certificate_verify.scheme
    if not is_tls13_scheme(scheme) or scheme not in SUPPORTED_SIGNATURE_SCHEMES:
        raise UnsupportedSignatureScheme(f"{scheme_name(scheme)} is not usable in TLS 1.3 here")
    if scheme not in offered_schemes:
        raise UnsupportedSignatureScheme(f"{scheme_name(scheme)} was not offered")
    leaf_key = _leaf_public_key(chain[0])
    if not certificate_fits_scheme(chain[0], scheme):
        raise SignatureSchemeMismatch(f"{scheme_name(scheme)} does not fit the leaf key")

    # One running hash: HC ‖ request ‖ Certificate for the signature, then ‖ CertificateVerify
    # for Finished (RFC 9261 §5.2.2, §5.2.3), over the bytes as received.
    transcript = hashlib.new(keys.hash_name, keys.handshake_context)
    transcript.update(request_bytes)
    transcript.update(received.certificate_bytes)
    content = _CERTIFICATE_VERIFY_PREFIX + transcript.digest()
    verify(leaf_key, scheme, certificate_verify.signature, content)

    transcript.update(received.certificate_verify_bytes)
    expected_mac = hmac.digest(keys.finished_key, transcript.digest(), keys.hash_name)
    if not hmac.compare_digest(expected_mac, received.finished.verify_data):
        raise BadFinished("the Finished MAC does not match")
    return ValidatedAuthenticator(
        request=request,
        certificate=certificate,
        leaf=chain[0],
        chain=chain,
        scheme=scheme,
        leaf_der=certificate.entries[0].cert_data,
    )


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatedAuthenticator:
    """An authenticator that passed every RFC 9261 check (but no PKIX chain validation)."""

    request: AuthenticatorRequest | None
    """The request it answers; None for a spontaneous server authenticator."""
    certificate: CertificateMessage
    """The Certificate message as received."""
    leaf: x509.Certificate
    """The end-entity certificate, whose key signed the CertificateVerify."""
    chain: tuple[x509.Certificate, ...]
    """Every certificate, leaf first, as sent (not validated against any trust store)."""
    scheme: int
    """The CertificateVerify signature scheme."""
    leaf_der: bytes | None = None
    """The leaf's DER as received (None: take it from :attr:`leaf`)."""

    @property
    def leaf_extensions(self) -> tuple[Extension, ...]:
        """Extensions of the leaf CertificateEntry (where cmw_attestation travels)."""
        return self.certificate.entries[0].extensions

    def leaf_extension(self, extension_type: int) -> Extension | None:
        """The leaf entry's extension of this type, if present."""
        return self.certificate.entries[0].extension(extension_type)

    @memoized_property
    def spki_der(self) -> bytes:
        """DER SubjectPublicKeyInfo of the leaf, as in the certificate (the binder's input)."""
        if self.leaf_der is not None:
            return _leaf_spki(self.leaf_der)
        return spki_der(self.leaf)

    @property
    def context(self) -> bytes:
        """The certificate_request_context."""
        return self.certificate.context


# --- the per-connection API ------------------------------------------------------------------


class ExportedAuthenticators:
    """RFC 9261 for one connection: the request, authenticate, refuse and validate APIs (§7).

    ``local_role`` is this endpoint's TLS role. Authenticators this side builds use the keys of
    ``local_role``; authenticators it validates use the keys of the peer's role.

    Context rules (RFC 9261 §4, §5.1): every context this side generates is random, 32 bytes and
    unique on the connection; a request this side made is consumed by the first authenticator
    that answers it, whether it validates or not; no context is ever answered twice.

    ``random_bytes`` makes contexts (tests inject a deterministic source). Extensions in
    ``leaf_only_extensions`` (default: cmw_attestation at attquic's codepoint; pass the
    endpoint's configured codepoint if it differs) are rejected on non-leaf entries.
    """

    def __init__(
        self,
        exporter: Exporter,
        local_role: Role,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        leaf_only_extensions: Collection[int] = frozenset({profile.CMW_ATTESTATION_EXTENSION}),
    ) -> None:
        self._exporter = exporter
        self._role = local_role
        self._random_bytes = random_bytes
        self._leaf_only_extensions = frozenset(leaf_only_extensions)
        self._hash_name = exporter.hash_name
        _hash_length(self._hash_name)
        self._own_keys: AuthenticatorKeys | None = None
        self._peer_keys: AuthenticatorKeys | None = None
        self._outstanding: dict[bytes, AuthenticatorRequest] = {}
        # Every context seen on this connection: requests we made or answered, authenticators
        # we sent or validated. A context in here is never accepted or answered again.
        self._used: set[bytes] = set()

    @property
    def local_role(self) -> Role:
        return self._role

    @property
    def hash_name(self) -> str:
        return self._hash_name

    @property
    def outstanding(self) -> frozenset[bytes]:
        """Contexts of this side's requests that no authenticator has answered yet."""
        return frozenset(self._outstanding)

    @property
    def exporter(self) -> Exporter:
        return self._exporter

    def prepare_keys(self, *, own: bool, peer: bool) -> None:
        """Derive now the keys of this side's authenticators (``own``) and of the peer's
        (``peer``), which are otherwise derived on first use; each is derived once."""
        if own:
            self._keys(self._role)
        if peer:
            self._keys(self._role.peer)

    def _keys(self, sender: Role) -> AuthenticatorKeys:
        if sender is self._role:
            if self._own_keys is None:
                self._own_keys = authenticator_keys(self._exporter, sender)
            return self._own_keys
        if self._peer_keys is None:
            self._peer_keys = authenticator_keys(self._exporter, sender)
        return self._peer_keys

    def _new_context(self) -> bytes:
        for _ in range(_MAX_CONTEXT_ATTEMPTS):
            context = self._random_bytes(profile.REQUEST_CONTEXT_LENGTH)
            if len(context) != profile.REQUEST_CONTEXT_LENGTH:
                raise ConfigurationError("random_bytes returned the wrong number of bytes")
            if context not in self._used and context not in self._outstanding:
                self._used.add(context)
                return context
        raise ConfigurationError("random_bytes keeps returning contexts already used")

    # -- requester side --

    def request(
        self,
        extensions: Sequence[Extension] = (),
        signature_schemes: Sequence[int] = DEFAULT_SIGNATURE_SCHEMES,
    ) -> AuthenticatorRequest:
        """A new authenticator request with a fresh random context, recorded as outstanding.

        A client sends ClientCertificateRequest (17), a server CertificateRequest (13).
        ``signature_algorithms`` is always included (built from ``signature_schemes``, which
        must all be schemes attquic can verify); ``extensions`` may not contain it.
        """
        unsupported = [s for s in signature_schemes if s not in SUPPORTED_SIGNATURE_SCHEMES]
        if unsupported or not signature_schemes:
            names = ", ".join(scheme_name(s) for s in unsupported) or "(none)"
            raise ConfigurationError(f"cannot offer signature schemes: {names}")
        if any(e.type == profile.EXT_SIGNATURE_ALGORITHMS for e in extensions):
            raise ConfigurationError("pass signature_algorithms via signature_schemes")
        msg_type = (
            profile.HS_CLIENT_CERTIFICATE_REQUEST
            if self._role is Role.CLIENT
            else profile.HS_CERTIFICATE_REQUEST
        )
        all_extensions = (_offered_schemes(tuple(signature_schemes)), *extensions)
        # Invalid extensions (duplicates) fail before a context is spent.
        check_unique_extensions(all_extensions)
        context = self._new_context()
        request = AuthenticatorRequest(msg_type, context, all_extensions)
        self._outstanding[context] = request
        return request

    def validate(self, data: bytes) -> ValidatedAuthenticator:
        """Validate an authenticator the peer sent in answer to one of this side's requests.

        Runs :func:`check_authenticator` with the peer role's keys, after matching the context
        to an outstanding request (:class:`ContextMismatch`) never answered before
        (:class:`ContextReused`). The request is consumed whether validation succeeds or fails.
        An empty authenticator raises :class:`RefusedAuthenticator` once its Finished verified;
        it is matched against every outstanding request, since it carries no context.
        """
        keys = self._keys(self._role.peer)
        received = _receive(data, keys.hash_name)
        if received.certificate is None:
            self._validate_empty(received.finished, keys)
        context = received.certificate.context
        request = self._outstanding.pop(context, None)
        if request is None:
            if context in self._used:
                raise ContextReused(f"context {context.hex()} was already answered")
            raise ContextMismatch(f"context {context.hex()} matches no outstanding request")
        return _check(
            received,
            keys=keys,
            request=request,
            request_bytes=request.encode(),
            offered_extensions=request.extension_types,
            offered_schemes=request.signature_schemes,
            expected_context=None,
            leaf_only_extensions=self._leaf_only_extensions,
        )

    def _validate_empty(self, finished: FinishedMessage, keys: AuthenticatorKeys) -> NoReturn:
        outstanding = list(self._outstanding.values())
        for request in outstanding:
            expected = build_empty_authenticator(keys, request.encode(), request.context)
            if hmac.compare_digest(expected, finished.encode()):
                del self._outstanding[request.context]
                raise RefusedAuthenticator(context=request.context)
        if len(outstanding) == 1:  # it can only have answered this one: consume it
            del self._outstanding[outstanding[0].context]
        if not outstanding:
            raise ContextMismatch("an empty authenticator arrived with no request outstanding")
        raise BadFinished("the empty authenticator's Finished matches no outstanding request")

    def validate_spontaneous(
        self,
        data: bytes,
        *,
        offered_extensions: Collection[int] = frozenset(),
        signature_schemes: Collection[int] = DEFAULT_SIGNATURE_SCHEMES,
    ) -> ValidatedAuthenticator:
        """Validate a spontaneous server authenticator (no request; client side only).

        ``offered_extensions`` and ``signature_schemes`` are what this client offered in its
        ClientHello. The context must never have been seen on this connection.
        """
        if self._role is not Role.CLIENT:
            raise ConfigurationError("only a client validates spontaneous server authenticators")
        keys = self._keys(Role.SERVER)
        received = _receive(data, keys.hash_name, spontaneous=True)
        assert received.certificate is not None  # _receive refused a lone Finished
        context = received.certificate.context
        if context in self._used or context in self._outstanding:
            raise ContextReused(f"context {context.hex()} was already used on this connection")
        self._used.add(context)
        return _check(
            received,
            keys=keys,
            request=None,
            request_bytes=b"",
            offered_extensions=frozenset(offered_extensions),
            offered_schemes=frozenset(signature_schemes),
            leaf_only_extensions=self._leaf_only_extensions,
            expected_context=context,
        )

    # -- authenticator side --

    def _check_answerable(self, request: AuthenticatorRequest) -> None:
        expected_type = (
            profile.HS_CLIENT_CERTIFICATE_REQUEST
            if self._role is Role.SERVER
            else profile.HS_CERTIFICATE_REQUEST
        )
        if request.msg_type != expected_type:
            raise UnexpectedMessage(
                f"a {self._role.value} answers {expected_type}, not a {request.name}"
            )
        if request.context in self._used or request.context in self._outstanding:
            raise ContextAlreadyUsed(
                f"context {request.context.hex()} was already used on this connection"
            )

    def authenticate(
        self,
        request: AuthenticatorRequest | None,
        identity: SigningIdentity,
        leaf_extensions: Sequence[Extension] = (),
        *,
        spontaneous_signature_schemes: Sequence[int] = DEFAULT_SIGNATURE_SCHEMES,
    ) -> bytes:
        """``Certificate ‖ CertificateVerify ‖ Finished`` answering ``request`` with ``identity``.

        The scheme is the first one the request offers that fits the key
        (:class:`NoCommonSignatureScheme` if none: answer with :meth:`refuse`). Every extension
        in ``leaf_extensions`` must have been offered (:class:`ExtensionNotRequested`). A context
        already used raises :class:`ContextAlreadyUsed`. A request of the wrong type for this
        role (a server answers 17, a client answers 13) raises :class:`UnexpectedMessage`.

        ``request=None`` builds a spontaneous server authenticator (servers only) with a fresh
        context; its scheme comes from ``spontaneous_signature_schemes`` (what the client's
        ClientHello offered).
        """
        if request is None:
            if self._role is not Role.SERVER:
                raise ConfigurationError("only a server may send a spontaneous authenticator")
            offered_schemes: Sequence[int] = spontaneous_signature_schemes
            request_bytes = b""
        else:
            self._check_answerable(request)
            offered_schemes = request.signature_schemes
            request_bytes = request.encode()
            offered = request.extension_types
            for extension in leaf_extensions:
                if extension.type not in offered:
                    raise ExtensionNotRequested(f"{extension.name} was not offered in the request")
        fitting = identity.leaf_schemes
        scheme = next((s for s in offered_schemes if s in fitting), None)
        if scheme is None:
            raise NoCommonSignatureScheme(
                "the request offers no signature scheme that fits this identity's key"
            )
        if request is None:
            context = self._new_context()
        else:
            context = request.context
            self._used.add(context)
        return build_authenticator(
            self._keys(self._role), request_bytes, context, identity, scheme, leaf_extensions
        )

    def refuse(self, request: AuthenticatorRequest) -> bytes:
        """The empty authenticator for ``request`` (RFC 9261 §6): this side will not answer it."""
        self._check_answerable(request)
        self._used.add(request.context)
        return build_empty_authenticator(self._keys(self._role), request.encode(), request.context)
