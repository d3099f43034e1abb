"""X.509 validation of the authenticator's certificate (draft-fossati-seat-expat -04 §3.3).

"Certificate validation ... MUST still be performed according to TLS and PKIX. The attestation
credentials ... MUST NOT be used as a substitute for X.509 certificate validation." The relying
party accepts the leaf certificate of a peer's exported authenticator as one of three
identities (:class:`AuthenticatorIdentity`), tried in this order:

(a) ``TLS_CERTIFICATE``: the leaf is, byte for byte, the certificate the peer presented in this
    connection's TLS handshake, and TLS verified it (a client with certificate verification on;
    aioquic servers never verify client certificates, so a client's authenticator is never (a)).
    The leaf must also be within its validity period at ``now`` and, if it has a KeyUsage
    extension, allow digitalSignature.
(b) ``TRUST_STORE``: the chain (leaf, then the intermediates the peer sent) builds to a root of
    the :class:`TrustStore` the relying party configured. Path building, signatures, validity at
    ``now``, basic constraints, key usage and extended key usage are checked by ``cryptography``'s
    X.509 verification API (its web PKI profile), with two changes: the leaf needs no
    SubjectAlternativeName (no name is matched: the authenticator is bound to the connection, not
    to a host name), and its ExtendedKeyUsage, when present, must allow the attester's TLS role
    (serverAuth for a server, clientAuth for a client) or anyExtendedKeyUsage.
(c) ``EVIDENCE_ONLY``: any leaf, trusted only because the evidence commits to the hash of its
    key. This is a **deviation from §3.3**, available only when the relying party opts in
    (``AttestationConfiguration(accept_evidence_only_identity=True)``), which warns once per
    process (:class:`EvidenceOnlyIdentityWarning`).

Anything else raises :class:`~attquic.errors.CertificateRejected` (close code
CERTIFICATE_REJECTED). Everything here is pure: the caller passes the time.
"""

from __future__ import annotations

import datetime
import enum
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from attquic.errors import CertificateRejected, ConfigurationError

__all__ = [
    "AuthenticatorIdentity",
    "EvidenceOnlyIdentityWarning",
    "TrustStore",
    "validate_authenticator_certificate",
    "warn_evidence_only_identity",
]


class AuthenticatorIdentity(enum.Enum):
    """How the relying party accepted the authenticator's certificate."""

    TLS_CERTIFICATE = "tls-certificate"
    """(a) the certificate TLS verified in this connection's handshake."""
    TRUST_STORE = "trust-store"
    """(b) a chain to the relying party's trust store."""
    EVIDENCE_ONLY = "evidence-only"
    """(c) trusted only through the evidence: a deviation from expat -04 §3.3 (opt-in)."""


class EvidenceOnlyIdentityWarning(UserWarning):
    """A relying party accepts authenticator certificates that no PKIX validation vouches for."""


_warned = False
_warn_lock = threading.Lock()


def warn_evidence_only_identity() -> None:
    """Warn, once per process, that identity (c) is enabled."""
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    warnings.warn(
        "accept_evidence_only_identity=True: authenticator certificates are accepted without "
        "X.509 validation, trusted only because the evidence commits to their key. This "
        "deviates from draft-fossati-seat-expat -04 §3.3 (attestation MUST NOT replace "
        "certificate validation); use the TLS certificate or a trust store instead.",
        EvidenceOnlyIdentityWarning,
        stacklevel=3,
    )


@dataclass(frozen=True)
class TrustStore:
    """Roots the relying party trusts to issue authenticator certificates (identity (b))."""

    roots: tuple[x509.Certificate, ...]
    _store: Store = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.roots:
            raise ConfigurationError("a trust store needs at least one root certificate")
        if not all(isinstance(root, x509.Certificate) for root in self.roots):
            raise ConfigurationError("trust store roots must be x509.Certificate objects")
        object.__setattr__(self, "_store", Store(list(self.roots)))

    @classmethod
    def from_certificates(cls, roots: Iterable[x509.Certificate]) -> TrustStore:
        return cls(tuple(roots))

    @classmethod
    def from_pem(cls, data: bytes) -> TrustStore:
        """Every certificate in a PEM bundle."""
        try:
            roots = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ConfigurationError(f"cannot load trust store: {exc}") from None
        return cls(tuple(roots))

    @classmethod
    def from_pem_file(cls, path: str | Path) -> TrustStore:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read trust store {path}: {exc}") from None
        return cls.from_pem(data)

    @property
    def pem(self) -> bytes:
        """The roots as a PEM bundle (e.g. for a TLS client's ``cadata``)."""
        return b"".join(root.public_bytes(serialization.Encoding.PEM) for root in self.roots)

    def verify(
        self, chain: Sequence[x509.Certificate], *, now: float, attester_is_server: bool
    ) -> None:
        """Validate ``chain`` (leaf first) against these roots at ``now`` (Unix seconds).

        Raises :class:`~attquic.errors.CertificateRejected` with cryptography's reason.
        """
        role_eku = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if attester_is_server
            else (ExtendedKeyUsageOID.CLIENT_AUTH)
        )

        def check_eku(
            _policy: object, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
        ) -> None:
            if eku is None:
                return
            if role_eku not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
                role = "serverAuth" if attester_is_server else "clientAuth"
                raise ValueError(f"extended key usage does not allow {role}")

        ee_policy = (
            ExtensionPolicy.webpki_defaults_ee()
            .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, check_eku)
            .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _check_key_usage)
            .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        )
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(_utc(now))
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[0], list(chain[1:]))
        except Exception as exc:  # VerificationError, or a parse error: fail closed on anything
            raise CertificateRejected(
                f"the authenticator's certificate does not validate against the trust store: "
                f"{_short(exc)}"
            ) from None


def _check_key_usage(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.digital_signature:
        raise ValueError("key usage does not allow digitalSignature")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split(" (encountered processing", 1)[0]


def _utc(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.UTC)


def _der(certificate: x509.Certificate) -> bytes:
    entry = _remembered_facts.get(id(certificate))
    if entry is not None and entry[0] is certificate:
        return entry[1].der
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class _LeafFacts:
    """What identity (a) reads from a certificate: its DER, validity and key-usage verdict."""

    der: bytes
    not_before: datetime.datetime
    not_after: datetime.datetime
    usage_problem: str | None


def _read_facts(certificate: x509.Certificate) -> _LeafFacts:
    problem: str | None = None
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    except Exception as exc:  # a malformed or duplicated extension: fail closed
        problem = f"the authenticator's certificate is malformed: {exc}"
    else:
        if not usage.digital_signature:
            problem = "the authenticator's certificate does not allow digitalSignature"
    return _LeafFacts(
        certificate.public_bytes(serialization.Encoding.DER),
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
        problem,
    )


#: Facts of certificate objects seen recently, by object identity: attquic.ea hands the same
#: certificate object to every authenticator carrying the same DER (its certificate cache), so
#: a peer that authenticates again is not re-serialised or re-read. Each entry holds its
#: certificate, so an id cannot be reused while it is in here; the facts are pure functions of
#: the immutable certificate. Bounded: emptied when it reaches _MAX_REMEMBERED_FACTS entries.
_remembered_facts: dict[int, tuple[x509.Certificate, _LeafFacts]] = {}
_MAX_REMEMBERED_FACTS = 64


def _facts(certificate: x509.Certificate) -> _LeafFacts:
    entry = _remembered_facts.get(id(certificate))
    if entry is not None and entry[0] is certificate:
        return entry[1]
    facts = _read_facts(certificate)
    if len(_remembered_facts) >= _MAX_REMEMBERED_FACTS:
        _remembered_facts.clear()
    _remembered_facts[id(certificate)] = (certificate, facts)
    return facts


def _check_leaf_in_use(leaf: x509.Certificate, now: float) -> None:
    facts = _facts(leaf)
    moment = _utc(now)
    if moment < facts.not_before:
        raise CertificateRejected("the authenticator's certificate is not valid yet")
    if moment > facts.not_after:
        raise CertificateRejected("the authenticator's certificate has expired")
    if facts.usage_problem is not None:
        raise CertificateRejected(facts.usage_problem)


def validate_authenticator_certificate(
    chain: Sequence[x509.Certificate],
    *,
    now: float,
    attester_is_server: bool,
    tls_certificate: x509.Certificate | None,
    tls_verified: bool,
    trust_store: TrustStore | None,
    accept_evidence_only: bool,
) -> AuthenticatorIdentity:
    """Accept the authenticator's ``chain`` (leaf first) as identity (a), (b) or (c), in order.

    ``tls_certificate`` is the certificate the peer presented in the TLS handshake and
    ``tls_verified`` whether TLS validated it. Raises
    :class:`~attquic.errors.CertificateRejected` when no identity the relying party accepts
    fits, with the reason for the most specific one tried.
    """
    if not chain:
        raise CertificateRejected("the authenticator carries no certificate")
    leaf = chain[0]
    if tls_verified and tls_certificate is not None and _der(leaf) == _der(tls_certificate):
        _check_leaf_in_use(leaf, now)
        return AuthenticatorIdentity.TLS_CERTIFICATE
    if trust_store is not None:
        try:
            trust_store.verify(chain, now=now, attester_is_server=attester_is_server)
        except CertificateRejected:
            if not accept_evidence_only:
                raise
        else:
            return AuthenticatorIdentity.TRUST_STORE
    if accept_evidence_only:
        return AuthenticatorIdentity.EVIDENCE_ONLY
    if tls_certificate is None or not tls_verified:
        why = "TLS did not verify a peer certificate on this connection"
    else:
        why = "it is not the certificate TLS verified in the handshake"
    raise CertificateRejected(
        f"the authenticator's certificate is not trusted: {why}, and no trust store is "
        "configured (draft-fossati-seat-expat -04 §3.3)"
    )
