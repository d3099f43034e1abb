"""A certificate authority for demos and tests: issues TLS and authenticator certificates.

:meth:`DemoCA.default` is **deterministic**: its private key is derived from a public constant,
so every process (the example server, the example client, ``make demo``) finds the same CA on
its own, with no file to share and no first-use race. The price is that anyone can issue
certificates under it: it proves nothing outside a demo. Bring real certificates for anything
else (the examples take ``--cert``/``--key``/``--ca``). :meth:`DemoCA.generate` makes a CA
with a fresh random key (tests).

Certificates follow the web PKI profile that ``cryptography``'s X.509 verification checks
(:mod:`attquic.pkix`): the CA has BasicConstraints CA, keyCertSign and a SubjectKeyIdentifier;
a leaf has SubjectAlternativeName, AuthorityKeyIdentifier, KeyUsage digitalSignature and the
ExtendedKeyUsage of its role.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from attquic.ea.identity import SigningIdentity
from attquic.pkix import TrustStore

__all__ = ["DEMO_CA_NAME", "DemoCA"]

#: Subject common name of :meth:`DemoCA.default`: it says what the CA is worth.
DEMO_CA_NAME = "attquic DEMO CA (public key material: trust it for demos only)"
_DEMO_SEED = b"attquic demo CA v1: deterministic, public, never trust outside a demo"
_DEMO_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_DEMO_NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC)
#: Default lifetime of an issued leaf certificate.
DEFAULT_LEAF_VALIDITY = datetime.timedelta(days=30)
_SKEW = datetime.timedelta(minutes=5)


def _key_usage(*, digital_signature: bool, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, repr=False)
class DemoCA:
    """A CA key and its self-signed certificate."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:  # never print key material
        return f"DemoCA({self.certificate.subject.rfc4514_string()!r})"

    @classmethod
    @functools.cache
    def default(cls) -> DemoCA:
        """The deterministic demo CA (the same in every process; public key material)."""
        order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
        scalar = int.from_bytes(hashlib.sha512(_DEMO_SEED).digest(), "big") % (order - 1) + 1
        key = ec.derive_private_key(scalar, ec.SECP256R1())
        return cls._self_signed(key, DEMO_CA_NAME, _DEMO_NOT_BEFORE, _DEMO_NOT_AFTER, serial=1)

    @classmethod
    def generate(
        cls, common_name: str = "attquic test CA", *, now: datetime.datetime | None = None
    ) -> DemoCA:
        """A CA with a fresh random key, valid for a year from ``now``."""
        issued = now or datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        return cls._self_signed(
            key,
            common_name,
            issued - _SKEW,
            issued + datetime.timedelta(days=365),
            serial=x509.random_serial_number(),
        )

    @classmethod
    def _self_signed(
        cls,
        key: ec.EllipticCurvePrivateKey,
        common_name: str,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        *,
        serial: int,
    ) -> DemoCA:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(digital_signature=False, key_cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def trust_store(self) -> TrustStore:
        """A trust store holding this CA only."""
        return TrustStore((self.certificate,))

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        dns_names: Iterable[str] = (),
        ip_addresses: Iterable[str] = (),
        server: bool = True,
        client: bool = True,
        now: datetime.datetime | None = None,
        validity: datetime.timedelta = DEFAULT_LEAF_VALIDITY,
    ) -> SigningIdentity:
        """A fresh P-256 key and a leaf certificate for it, signed by this CA.

        ``dns_names``/``ip_addresses`` go in the SubjectAlternativeName (a TLS server
        certificate needs the names clients connect to). ``server``/``client`` set the
        ExtendedKeyUsage (serverAuth/clientAuth). The leaf is
        valid from five minutes before ``now`` (default: the current time) for ``validity``.
        """
        issued = now or datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
            .not_valid_before(issued - _SKEW)
            .not_valid_after(issued + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_cert_sign=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        certificate = builder.sign(self.private_key, hashes.SHA256())
        return SigningIdentity(key, (certificate,))
