"""Building blocks of the simulated TDX PKI: a tiny DER writer, the SGX PCK extension, keys,
certificates and CRLs.

Everything here is deterministic: keys are derived from a seed and every ECDSA signature uses
RFC 6979 nonces, so the same seed yields byte-identical certificates in every process (an attester
and a verifier in different processes agree on the test root without exchanging files).

Nothing in this module is secure, by design: the seed is public. Only
:mod:`attquic.tdx.simulated` uses it.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = [
    "SGX_EXTENSION_OID",
    "PckTcb",
    "build_ca_certificate",
    "build_crl",
    "build_leaf_certificate",
    "derive_key",
    "derive_serial",
    "encode_sgx_extension",
    "raw_public_key",
    "sign_raw",
]

#: Intel SGX PCK certificate extension (SGX Extensions), 1.2.840.113741.1.13.1.
SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)

# --- DER -------------------------------------------------------------------------------------

_TAG_BOOLEAN = 0x01
_TAG_INTEGER = 0x02
_TAG_OCTET_STRING = 0x04
_TAG_OID = 0x06
_TAG_ENUMERATED = 0x0A
_TAG_SEQUENCE = 0x30


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    encoded = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        encoded.extend(reversed(chunk))
    return _tlv(_TAG_OID, bytes(encoded))


def _der_integer(value: int, tag: int = _TAG_INTEGER) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are needed here")
    # One extra byte keeps the sign bit clear (0x80 -> 00 80); minimal form otherwise.
    content = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _tlv(tag, content)


def _der_boolean(value: bool) -> bytes:
    return _tlv(_TAG_BOOLEAN, b"\xff" if value else b"\x00")


def _der_sequence(*items: bytes) -> bytes:
    return _tlv(_TAG_SEQUENCE, b"".join(items))


def _pair(oid: str, value: bytes) -> bytes:
    return _der_sequence(_der_oid(oid), value)


# --- the SGX extension -----------------------------------------------------------------------


@dataclass(frozen=True)
class PckTcb:
    """The TCB a PCK certificate certifies: 16 CPU component SVNs, the PCE SVN, and CPUSVN."""

    component_svns: tuple[int, ...]
    pce_svn: int

    def __post_init__(self) -> None:
        if len(self.component_svns) != 16 or not all(0 <= s <= 255 for s in self.component_svns):
            raise ValueError("a PCK TCB has exactly 16 component SVNs in 0..255")

    @property
    def cpu_svn(self) -> bytes:
        """CPUSVN as Intel encodes it: the 16 component SVNs as bytes."""
        return bytes(self.component_svns)


def encode_sgx_extension(
    *,
    ppid: bytes,
    tcb: PckTcb,
    pce_id: bytes,
    fmspc: bytes,
    sgx_type: int,
    platform_instance_id: bytes | None,
    dynamic_platform: bool = False,
    cached_keys: bool = False,
    smt_enabled: bool = False,
) -> bytes:
    """DER value of the SGX Extensions (OID 1.2.840.113741.1.13.1) of a PCK certificate.

    ``SEQUENCE OF SEQUENCE { OID, value }``: PPID (.1), TCB (.2 with .2.1-.2.16 component SVNs,
    .2.17 PCESVN, .2.18 CPUSVN), PCE-ID (.3), FMSPC (.4), SGX type (.5, ENUMERATED) and, for
    certificates issued by the Platform CA, PlatformInstanceID (.6) and Configuration (.7).
    """
    base = SGX_EXTENSION_OID
    tcb_items = [
        _pair(f"{base}.2.{index}", _der_integer(svn))
        for index, svn in enumerate(tcb.component_svns, start=1)
    ]
    tcb_items.append(_pair(f"{base}.2.17", _der_integer(tcb.pce_svn)))
    tcb_items.append(_pair(f"{base}.2.18", _tlv(_TAG_OCTET_STRING, tcb.cpu_svn)))
    items = [
        _pair(f"{base}.1", _tlv(_TAG_OCTET_STRING, ppid)),
        _pair(f"{base}.2", _der_sequence(*tcb_items)),
        _pair(f"{base}.3", _tlv(_TAG_OCTET_STRING, pce_id)),
        _pair(f"{base}.4", _tlv(_TAG_OCTET_STRING, fmspc)),
        _pair(f"{base}.5", _der_integer(sgx_type, tag=_TAG_ENUMERATED)),
    ]
    if platform_instance_id is not None:
        items.append(_pair(f"{base}.6", _tlv(_TAG_OCTET_STRING, platform_instance_id)))
        configuration = _der_sequence(
            _pair(f"{base}.7.1", _der_boolean(dynamic_platform)),
            _pair(f"{base}.7.2", _der_boolean(cached_keys)),
            _pair(f"{base}.7.3", _der_boolean(smt_enabled)),
        )
        items.append(_pair(f"{base}.7", configuration))
    return _der_sequence(*items)


# --- keys and signatures ---------------------------------------------------------------------


def _seeded_int(seed: bytes, label: str) -> int:
    return int.from_bytes(hashlib.sha256(seed + b"\x00" + label.encode()).digest(), "big")


def derive_key(seed: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from ``seed`` and ``label`` (deterministic, and therefore public)."""
    scalar = _seeded_int(seed, "key:" + label) % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def derive_serial(seed: bytes, label: str) -> int:
    """A positive certificate serial number below 2**159 derived from ``seed`` and ``label``."""
    return (_seeded_int(seed, "serial:" + label) >> 97) | 1


def raw_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 64-byte ``x‖y`` form used inside quotes (uncompressed point without 0x04)."""
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 over ``data`` as raw big-endian ``r‖s`` (64 bytes), RFC 6979 nonces."""
    r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# --- certificates and CRLs -------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "attquic SIMULATED TDX - not Intel"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _builder(
    subject: str,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_public_key: ec.EllipticCurvePublicKey,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    )


def build_ca_certificate(
    *,
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    path_length: int | None,
) -> x509.Certificate:
    """A CA certificate (self-signed when ``issuer`` is None)."""
    issuer_name = _name(subject) if issuer is None else issuer.subject
    builder = _builder(
        subject,
        issuer_name,
        key.public_key(),
        issuer_key.public_key(),
        serial,
        not_before,
        not_after,
    )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(_CA_KEY_USAGE, critical=True)
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)


def build_leaf_certificate(
    *,
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    extra_extensions: Sequence[tuple[str, bytes]] = (),
) -> x509.Certificate:
    """An end-entity signing certificate, with optional raw (non-critical) extensions."""
    builder = _builder(
        subject,
        issuer.subject,
        public_key,
        issuer_key.public_key(),
        serial,
        not_before,
        not_after,
    )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    ).add_extension(_LEAF_KEY_USAGE, critical=True)
    for oid, value in extra_extensions:
        extension = x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)


def build_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
    revoked_serials: Sequence[int] = (),
    crl_number: int = 1,
) -> bytes:
    """A DER CRL issued by ``issuer`` listing ``revoked_serials`` (revoked at ``this_update``)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for serial in revoked_serials:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    return crl.public_bytes(serialization.Encoding.DER)
