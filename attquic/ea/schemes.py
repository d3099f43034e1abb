"""TLS 1.3 signature schemes (RFC 8446 §4.2.3) for CertificateVerify in exported authenticators.

Only schemes valid in a TLS 1.3 CertificateVerify are usable: RSASSA-PKCS1-v1_5 and SHA-1 are
not, and an ECDSA scheme fixes both the curve and the hash. attquic signs and verifies:

=========  ==========================  =====================================
code       name                        key
=========  ==========================  =====================================
0x0403     ecdsa_secp256r1_sha256      EC P-256
0x0503     ecdsa_secp384r1_sha384      EC P-384
0x0603     ecdsa_secp521r1_sha512      EC P-521
0x0804-6   rsa_pss_rsae_sha256/384/512 RSA (rsaEncryption SPKI)
0x0807     ed25519                     Ed25519
0x0808     ed448                       Ed448
=========  ==========================  =====================================

``rsa_pss_pss_*`` (0x0809-0x080b, id-RSASSA-PSS keys) are valid TLS 1.3 schemes but are not
implemented: they are never offered, so a peer using them fails the "offered" check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from attquic.errors import BadSignature, ConfigurationError, SignatureSchemeMismatch

__all__ = [
    "DEFAULT_SIGNATURE_SCHEMES",
    "ECDSA_SECP256R1_SHA256",
    "ECDSA_SECP384R1_SHA384",
    "ECDSA_SECP521R1_SHA512",
    "ED448",
    "ED25519",
    "RSA_PSS_RSAE_SHA256",
    "RSA_PSS_RSAE_SHA384",
    "RSA_PSS_RSAE_SHA512",
    "SCHEME_NAMES",
    "SUPPORTED_SIGNATURE_SCHEMES",
    "TLS13_SIGNATURE_SCHEMES",
    "PrivateKey",
    "PublicKey",
    "certificate_fits_scheme",
    "is_tls13_scheme",
    "key_description",
    "key_fits_scheme",
    "scheme_for_key",
    "scheme_name",
    "schemes_for_key",
    "sign",
    "verify",
]

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""A private key attquic can sign a CertificateVerify with."""

PublicKey = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
"""A public key attquic can verify a CertificateVerify with."""

ECDSA_SECP256R1_SHA256: Final = 0x0403
ECDSA_SECP384R1_SHA384: Final = 0x0503
ECDSA_SECP521R1_SHA512: Final = 0x0603
RSA_PSS_RSAE_SHA256: Final = 0x0804
RSA_PSS_RSAE_SHA384: Final = 0x0805
RSA_PSS_RSAE_SHA512: Final = 0x0806
ED25519: Final = 0x0807
ED448: Final = 0x0808

#: Names of TLS signature schemes (IANA registry), including ones TLS 1.3 forbids, for messages.
SCHEME_NAMES: dict[int, str] = {
    0x0201: "rsa_pkcs1_sha1",
    0x0203: "ecdsa_sha1",
    0x0401: "rsa_pkcs1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    ECDSA_SECP256R1_SHA256: "ecdsa_secp256r1_sha256",
    ECDSA_SECP384R1_SHA384: "ecdsa_secp384r1_sha384",
    ECDSA_SECP521R1_SHA512: "ecdsa_secp521r1_sha512",
    RSA_PSS_RSAE_SHA256: "rsa_pss_rsae_sha256",
    RSA_PSS_RSAE_SHA384: "rsa_pss_rsae_sha384",
    RSA_PSS_RSAE_SHA512: "rsa_pss_rsae_sha512",
    ED25519: "ed25519",
    ED448: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
}

#: Every scheme RFC 8446 allows in a TLS 1.3 CertificateVerify.
TLS13_SIGNATURE_SCHEMES: frozenset[int] = frozenset(
    {0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B}
)

_ECDSA: dict[int, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    ECDSA_SECP256R1_SHA256: (ec.SECP256R1, hashes.SHA256),
    ECDSA_SECP384R1_SHA384: (ec.SECP384R1, hashes.SHA384),
    ECDSA_SECP521R1_SHA512: (ec.SECP521R1, hashes.SHA512),
}
_RSA_PSS_RSAE: dict[int, type[hashes.HashAlgorithm]] = {
    RSA_PSS_RSAE_SHA256: hashes.SHA256,
    RSA_PSS_RSAE_SHA384: hashes.SHA384,
    RSA_PSS_RSAE_SHA512: hashes.SHA512,
}

#: The schemes attquic can sign and verify, in its order of preference.
SUPPORTED_SIGNATURE_SCHEMES: tuple[int, ...] = (
    ECDSA_SECP256R1_SHA256,
    ECDSA_SECP384R1_SHA384,
    ECDSA_SECP521R1_SHA512,
    ED25519,
    ED448,
    RSA_PSS_RSAE_SHA256,
    RSA_PSS_RSAE_SHA384,
    RSA_PSS_RSAE_SHA512,
)

#: What attquic offers in ``signature_algorithms`` by default: everything it can verify.
DEFAULT_SIGNATURE_SCHEMES: tuple[int, ...] = SUPPORTED_SIGNATURE_SCHEMES

_RSA_PKCS1_ENCRYPTION_OID = x509.ObjectIdentifier("1.2.840.113549.1.1.1")

# Signature algorithm parameters are immutable: built once per scheme, not per signature.
_ECDSA_ALGORITHMS: dict[int, ec.ECDSA] = {
    scheme: ec.ECDSA(hash_cls()) for scheme, (_, hash_cls) in _ECDSA.items()
}


def scheme_name(scheme: int) -> str:
    """``"ecdsa_secp256r1_sha256 (0x0403)"``-style label for messages and the CLI."""
    return f"{SCHEME_NAMES.get(scheme, 'unknown')} (0x{scheme:04x})"


def is_tls13_scheme(scheme: int) -> bool:
    """Whether RFC 8446 allows ``scheme`` in a TLS 1.3 CertificateVerify."""
    return scheme in TLS13_SIGNATURE_SCHEMES


def key_fits_scheme(key: PublicKey | PrivateKey, scheme: int) -> bool:
    """Whether ``key`` (public or private) can produce or check ``scheme`` signatures.

    For RSA this cannot see whether a certificate's SPKI is rsaEncryption or id-RSASSA-PSS;
    :func:`certificate_fits_scheme` checks that too.
    """
    if scheme in _ECDSA:
        curve, _ = _ECDSA[scheme]
        if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
            return isinstance(key.curve, curve)
        return False
    if scheme in _RSA_PSS_RSAE:
        return isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
    if scheme == ED25519:
        return isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey)
    if scheme == ED448:
        return isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey)
    return False


def certificate_fits_scheme(certificate: x509.Certificate, scheme: int) -> bool:
    """Whether the certificate's key can check ``scheme`` signatures (rsae needs rsaEncryption)."""
    try:
        key = certificate.public_key()
    except Exception:  # unsupported key algorithm: fits no scheme
        return False
    if not isinstance(key, PublicKey):
        return False
    if (
        scheme in _RSA_PSS_RSAE
        and certificate.public_key_algorithm_oid != _RSA_PKCS1_ENCRYPTION_OID
    ):
        return False
    return key_fits_scheme(key, scheme)


def schemes_for_key(key: PrivateKey | PublicKey) -> tuple[int, ...]:
    """Every supported scheme that fits ``key``, in attquic's order of preference."""
    return tuple(s for s in SUPPORTED_SIGNATURE_SCHEMES if key_fits_scheme(key, s))


def scheme_for_key(private_key: PrivateKey, offered: Sequence[int] | None = None) -> int:
    """The scheme to sign with: the first of ``offered`` (the peer's preference order) that fits
    ``private_key``, or attquic's preferred scheme for the key when ``offered`` is None.

    Raises :class:`~attquic.errors.ConfigurationError` if no scheme fits.
    """
    candidates = SUPPORTED_SIGNATURE_SCHEMES if offered is None else offered
    for scheme in candidates:
        if scheme in SUPPORTED_SIGNATURE_SCHEMES and key_fits_scheme(private_key, scheme):
            return scheme
    raise ConfigurationError(f"no supported signature scheme fits a {key_description(private_key)}")


def key_description(key: PublicKey | PrivateKey | object) -> str:
    """``"EC P-256 key"``-style description for messages and the CLI."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name} key"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA-{key.key_size} key"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519 key"
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448 key"
    return f"{type(key).__name__}"


def _pss(hash_cls: type[hashes.HashAlgorithm]) -> padding.PSS:
    # RFC 8446 §4.2.3: MGF1 with the same hash, salt length equal to the digest length.
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign(private_key: PrivateKey, scheme: int, data: bytes) -> bytes:
    """Sign ``data`` (the CertificateVerify content) with ``scheme``.

    Raises :class:`~attquic.errors.ConfigurationError` if the key does not fit the scheme.
    """
    if scheme not in SUPPORTED_SIGNATURE_SCHEMES or not key_fits_scheme(private_key, scheme):
        raise ConfigurationError(
            f"cannot sign {scheme_name(scheme)} with a {key_description(private_key)}"
        )
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, _ECDSA_ALGORITHMS[scheme])
    if isinstance(private_key, rsa.RSAPrivateKey):
        hash_cls = _RSA_PSS_RSAE[scheme]
        return private_key.sign(data, _pss(hash_cls), hash_cls())
    return private_key.sign(data)


def verify(public_key: PublicKey, scheme: int, signature: bytes, data: bytes) -> None:
    """Check a ``scheme`` signature over ``data``.

    Raises :class:`~attquic.errors.SignatureSchemeMismatch` if the key does not fit the scheme
    and :class:`~attquic.errors.BadSignature` if the signature does not verify.
    """
    if scheme not in SUPPORTED_SIGNATURE_SCHEMES or not key_fits_scheme(public_key, scheme):
        raise SignatureSchemeMismatch(
            f"{scheme_name(scheme)} does not fit a {key_description(public_key)}"
        )
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, _ECDSA_ALGORITHMS[scheme])
        elif isinstance(public_key, rsa.RSAPublicKey):
            hash_cls = _RSA_PSS_RSAE[scheme]
            public_key.verify(signature, data, _pss(hash_cls), hash_cls())
        else:
            public_key.verify(signature, data)
    except InvalidSignature:
        raise BadSignature(f"{scheme_name(scheme)} signature does not verify") from None
