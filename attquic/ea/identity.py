"""The key and certificate chain an endpoint authenticates with.

An attested endpoint authenticates, by default, with its TLS certificate and key; the relying
party validates that certificate by X.509 rules (:mod:`attquic.pkix`), and the evidence commits
to the hash of its SubjectPublicKeyInfo on top. :func:`from_pem` loads a key and chain,
:func:`generate_self_signed` makes an ephemeral self-signed one, which a relying party accepts
only if it opted in to trusting a key through the evidence alone (a deviation from
draft-fossati-seat-expat -04 §3.3).
"""

from __future__ import annotations

import datetime
import functools
import secrets
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from attquic.ea.schemes import (
    SUPPORTED_SIGNATURE_SCHEMES,
    PrivateKey,
    certificate_fits_scheme,
    key_description,
    schemes_for_key,
)
from attquic.errors import ConfigurationError, EADecodeError

__all__ = [
    "KeyType",
    "SigningIdentity",
    "from_pem",
    "generate_self_signed",
    "spki_der",
    "spki_der_of",
]

KeyType = Literal["p256", "p384", "ed25519", "rsa"]

#: How long a generated self-signed certificate is valid (its validity is not what makes it
#: trusted; the attestation binding is).
DEFAULT_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True, repr=False)
class SigningIdentity:
    """A private key and its X.509 chain, leaf first. The leaf's key must be ``private_key``'s."""

    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if not self.chain:
            raise ConfigurationError("a signing identity needs at least a leaf certificate")
        if not schemes_for_key(self.private_key):
            raise ConfigurationError(
                f"no TLS 1.3 signature scheme fits a {key_description(self.private_key)}"
            )
        own = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        leaf_key = self.leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if own != leaf_key:
            raise ConfigurationError("the leaf certificate does not carry this private key")

    def __repr__(self) -> str:  # never print key material
        return f"SigningIdentity(leaf={self.leaf.subject.rfc4514_string()!r})"

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @functools.cached_property
    def spki_der(self) -> bytes:
        """DER SubjectPublicKeyInfo of the leaf, exactly as in the certificate (binder input)."""
        return spki_der(self.leaf)

    @functools.cached_property
    def chain_der(self) -> tuple[bytes, ...]:
        """The chain as DER, leaf first (encoded once: every authenticator carries it)."""
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in self.chain)

    @functools.cached_property
    def leaf_schemes(self) -> frozenset[int]:
        """Every supported scheme the leaf certificate's key can be checked with (what an
        authenticator of this identity may be signed with; computed once per identity)."""
        return frozenset(
            s for s in SUPPORTED_SIGNATURE_SCHEMES if certificate_fits_scheme(self.leaf, s)
        )

    @functools.cached_property
    def encoded_entries(self) -> tuple[bytes, bytes]:
        """This chain in a TLS Certificate message, encoded once (every authenticator carries
        it): the leaf entry's ``cert_data`` field, and every later entry (no extensions)."""
        der = self.chain_der
        for cert_data in der:
            if not 0 < len(cert_data) <= 0xFFFFFF:
                raise ConfigurationError("cert_data must hold 1 to 2^24-1 bytes")
        rest = b"".join(len(d).to_bytes(3, "big") + d + b"\x00\x00" for d in der[1:])
        return len(der[0]).to_bytes(3, "big") + der[0], rest


def spki_der(certificate: x509.Certificate) -> bytes:
    """The DER SubjectPublicKeyInfo bytes exactly as they appear inside ``certificate``.

    Taken from the certificate's TBSCertificate rather than re-encoded from the parsed key, so
    the binding ``H(SPKI ‖ exported)`` matches what any other implementation computes from the
    same certificate. Raises :class:`~attquic.errors.EADecodeError` on a malformed TBS.
    """
    tbs = _DerReader(certificate.tbs_certificate_bytes)
    fields = _DerReader(tbs.expect(0x30))  # TBSCertificate ::= SEQUENCE
    tbs.end()
    return _spki_field(fields)


def spki_der_of(certificate_der: bytes) -> bytes:
    """:func:`spki_der` of a DER certificate, read from its bytes without re-encoding the TBS.

    For bytes that already parsed as an X.509 certificate (DER is canonical, so this is the
    same SubjectPublicKeyInfo :func:`spki_der` returns). Raises
    :class:`~attquic.errors.EADecodeError` on malformed DER.
    """
    outer = _DerReader(certificate_der)
    certificate = _DerReader(outer.expect(0x30))  # Certificate ::= SEQUENCE
    outer.end()
    fields = _DerReader(certificate.expect(0x30))  # tbsCertificate
    return _spki_field(fields)


def _spki_field(fields: _DerReader) -> bytes:
    """The whole subjectPublicKeyInfo TLV, from a reader over a TBSCertificate's contents."""
    if fields.peek() == 0xA0:  # [0] EXPLICIT Version
        fields.expect(0xA0)
    fields.expect(0x02)  # serialNumber
    fields.expect(0x30)  # signature AlgorithmIdentifier
    fields.expect(0x30)  # issuer
    fields.expect(0x30)  # validity
    fields.expect(0x30)  # subject
    return fields.expect(0x30, whole=True)  # subjectPublicKeyInfo


class _DerReader:
    """Just enough DER to walk a TBSCertificate's leading fields."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def peek(self) -> int:
        if self._pos >= len(self._data):
            raise EADecodeError("truncated DER")
        return self._data[self._pos]

    def end(self) -> None:
        if self._pos != len(self._data):
            raise EADecodeError("trailing bytes after DER element")

    def expect(self, tag: int, *, whole: bool = False) -> bytes:
        """Read a TLV with ``tag``: its contents, or the whole TLV when ``whole``."""
        start = self._pos
        if self.peek() != tag:
            raise EADecodeError(f"DER: expected tag 0x{tag:02x}, got 0x{self.peek():02x}")
        self._pos += 1
        first = self.peek()
        self._pos += 1
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if not 0 < count <= 4 or self._pos + count > len(self._data):
                raise EADecodeError("DER: bad length")
            length = int.from_bytes(self._data[self._pos : self._pos + count], "big")
            self._pos += count
        if self._pos + length > len(self._data):
            raise EADecodeError("DER: truncated element")
        contents_start = self._pos
        self._pos += length
        return self._data[start : self._pos] if whole else self._data[contents_start : self._pos]


def _generate_key(key_type: KeyType) -> PrivateKey:
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ConfigurationError(f"unknown key type {key_type!r}")


def generate_self_signed(
    key_type: KeyType = "p256",
    common_name: str = "attquic attester",
    *,
    now: datetime.datetime | None = None,
    validity: datetime.timedelta = DEFAULT_VALIDITY,
) -> SigningIdentity:
    """A fresh key and a self-signed leaf certificate for it (an ephemeral identity).

    ``now`` (timezone-aware) sets notBefore (one minute earlier, for clock skew); default: the
    current time.
    """
    key = _generate_key(key_type)
    issued = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    # Ed25519/Ed448 certificates are signed without a separate hash.
    digest = (
        None
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else (hashes.SHA384() if key_type == "p384" else hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
        .not_valid_before(issued - datetime.timedelta(minutes=1))
        .not_valid_after(issued + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, digest)
    )
    return SigningIdentity(key, (certificate,))


def from_pem(cert_pem: bytes, key_pem: bytes, *, password: bytes | None = None) -> SigningIdentity:
    """Load a PEM chain (leaf first, intermediates after) and the leaf's PEM private key.

    Raises :class:`~attquic.errors.ConfigurationError` if either does not parse, the key type
    cannot sign TLS 1.3 CertificateVerify, or the key is not the leaf's.
    """
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_pem))
    except ValueError as exc:
        raise ConfigurationError(f"cannot load certificate chain: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot load private key: {exc}") from None
    if not isinstance(key, PrivateKey):
        raise ConfigurationError(f"unsupported private key type {type(key).__name__}")
    return SigningIdentity(key, chain)
