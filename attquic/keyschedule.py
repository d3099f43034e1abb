"""TLS 1.3 exporters (RFC 8446 §7.5) from a captured exporter master secret, and the binder.

This module is pure: it knows nothing of aioquic. :mod:`attquic.quic.exporter_hook` captures
the exporter master secret from a live aioquic connection and hands it to :class:`Exporter`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes

from attquic import profile
from attquic._memo import memoized_property
from attquic._wire import u16, vec8

__all__ = [
    "Binding",
    "Exporter",
    "ExporterSecret",
    "derive_secret",
    "hash_algorithm",
    "hkdf_expand",
    "hkdf_expand_label",
    "tls_exporter",
]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The cryptography hash object for a TLS 1.3 suite hash name ("sha256" or "sha384")."""
    try:
        return _HASHES[name]()
    except KeyError:
        raise ValueError(f"not a TLS 1.3 hash: {name!r}") from None


_EMPTY_DIGESTS = {name: hashlib.new(name).digest() for name in _HASHES}
_DIGEST_SIZES = {name: hashlib.new(name).digest_size for name in _HASHES}


class _HmacKey:
    """HMAC under one key (the standard library's), the key's pads processed once.

    ``digest(msg)`` copies a keyed :mod:`hmac` object instead of keying a new one: a key used
    for several messages (the exporter master secret: three exporters per side and exchange)
    pays the key setup once.
    """

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes, hash_name: str) -> None:
        self._keyed = hmac.new(key, digestmod=hash_name)

    def digest(self, msg: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(msg)
        return mac.digest()


_CONSTRUCTORS: dict[str, Callable[..., hashlib._Hash]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
}


def _hkdf_expand_with(mac: _HmacKey, digest_size: int, info: bytes, length: int) -> bytes:
    if not 0 < length <= 255 * digest_size:
        raise ValueError(f"invalid HKDF-Expand length {length}")
    block = mac.digest(info + b"\x01")
    if length <= digest_size:  # every RFC 9261 and binder expansion: one block
        return block[:length]
    output = block
    counter = 2
    while len(output) < length:
        block = mac.digest(block + info + bytes((counter,)))
        output += block
        counter += 1
    return output[:length]


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3) on the standard library's hashes.

    Equal to cryptography's ``HKDFExpand`` (tests/test_keyschedule.py checks it), without
    building a KDF object per call: RFC 9261 and the binder expand six labels per connection.
    """
    digest_size = _DIGEST_SIZES.get(hash_name) or hashlib.new(hash_name).digest_size
    if not 0 < length <= 255 * digest_size:
        raise ValueError(f"invalid HKDF-Expand length {length}")
    return _hkdf_expand_with(_HmacKey(prk, hash_name), digest_size, info, length)


def _label_info(label: bytes, context: bytes, length: int) -> bytes:
    """The HkdfLabel structure (RFC 8446 §7.1): ``uint16 length ‖ "tls13 " label ‖ context``."""
    if len(context) > 255:
        return u16(length) + vec8(b"tls13 " + label) + vec8(context)  # raises OverflowError
    return _label_prefix(bytes(label), length) + bytes((len(context),)) + context


@functools.lru_cache(maxsize=64)
def _label_prefix(label: bytes, length: int) -> bytes:
    """``uint16 length ‖ opaque label<7..255>`` of an HkdfLabel: the same few labels and lengths
    come back on every connection (remembered by their exact value; bounded)."""
    return u16(length) + vec8(b"tls13 " + label)


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1)."""
    return hkdf_expand(algorithm.name, secret, _label_info(label, context, length), length)


def derive_secret(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, transcript_hash: bytes
) -> bytes:
    """Derive-Secret (RFC 8446 §7.1) given the transcript hash (not the messages)."""
    return hkdf_expand_label(algorithm, secret, label, transcript_hash, algorithm.digest_size)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    if not data:  # the exporter hashes the empty string once per export (RFC 8446 §7.5)
        return _EMPTY_DIGESTS.get(algorithm.name) or hashlib.new(algorithm.name).digest()
    return hashlib.new(algorithm.name, data).digest()


def tls_exporter(
    algorithm: hashes.HashAlgorithm,
    exporter_master_secret: bytes,
    label: bytes,
    context: bytes,
    length: int,
) -> bytes:
    """TLS-Exporter(label, context, length) (RFC 8446 §7.5)."""
    if not 0 < length <= 255 * algorithm.digest_size:
        raise ValueError(f"invalid exporter length {length}")
    per_label = derive_secret(algorithm, exporter_master_secret, label, _digest(algorithm, b""))
    return hkdf_expand_label(algorithm, per_label, b"exporter", _digest(algorithm, context), length)


class Exporter(Protocol):
    """What RFC 9261 and the binder need from a TLS connection."""

    @property
    def hash_name(self) -> str:
        """The negotiated suite hash: "sha256" or "sha384"."""
        ...

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter(label, context, length)."""
        ...


@dataclass(frozen=True, repr=False)
class ExporterSecret:
    """An exporter master secret and its hash: an :class:`Exporter` for one connection."""

    hash_name: str
    secret: bytes

    def __post_init__(self) -> None:
        algorithm = hash_algorithm(self.hash_name)
        if len(self.secret) != algorithm.digest_size:
            raise ValueError("exporter master secret length does not match the hash")

    def __repr__(self) -> str:  # never print the secret
        return f"ExporterSecret(hash_name={self.hash_name!r})"

    @property
    def algorithm(self) -> hashes.HashAlgorithm:
        return hash_algorithm(self.hash_name)

    @memoized_property
    def _secret_mac(self) -> _HmacKey:
        """HMAC under the exporter master secret, its pads hashed once per connection."""
        return _HmacKey(self.secret, self.hash_name)

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """:func:`tls_exporter` (RFC 8446 §7.5) with this secret, the same bytes for less work:
        the secret's HMAC pads are hashed once, and each expansion is one HMAC block."""
        name = self.hash_name
        size = _DIGEST_SIZES[name]
        if not 0 < length <= 255 * size:
            raise ValueError(f"invalid exporter length {length}")
        per_label = _hkdf_expand_with(
            self._secret_mac, size, _label_info(label, _EMPTY_DIGESTS[name], size), size
        )
        context_hash = _CONSTRUCTORS[name](context).digest() if context else _EMPTY_DIGESTS[name]
        info = _label_info(b"exporter", context_hash, length)
        if length <= size:  # one block (every RFC 9261 and binder export)
            return hmac.digest(per_label, info + b"\x01", name)[:length]
        return _hkdf_expand_with(_HmacKey(per_label, name), size, info, length)


@dataclass(frozen=True)
class Binding:
    """The channel binding of one attestation exchange (draft-fossati-seat-expat -04 §5).

    ``binding = H(SPKI ‖ TLS-Exporter(label, certificate_request_context, 32))`` and
    ``aik_pub_hash = H(SPKI)``, with H the connection's TLS hash, SPKI the DER
    SubjectPublicKeyInfo of the authenticator's leaf certificate and ``label`` the wire
    profile's (``"EXPORTER-cmw-attestation"`` in attquic/2, ``"Attestation"`` in the legacy
    expat -03 profile).
    """

    hash_name: str
    binding: bytes
    aik_pub_hash: bytes

    @classmethod
    def compute(
        cls,
        exporter: Exporter,
        context: bytes,
        spki_der: bytes,
        *,
        wire_profile: profile.WireProfile = profile.ATTQUIC_2,
    ) -> Binding:
        exported = exporter.export_keying_material(
            wire_profile.binding_exporter_label, context, wire_profile.binding_exporter_length
        )
        h = exporter.hash_name
        new = _CONSTRUCTORS.get(h) or functools.partial(hashlib.new, h)
        return cls(
            hash_name=h,
            binding=new(spki_der + exported).digest(),
            aik_pub_hash=new(spki_der).digest(),
        )

    @property
    def report_data(self) -> bytes:
        """The 64-byte TDX REPORTDATA (:attr:`~attquic.profile.ReportDataLayout.SHA512_NONCE_AIK`,
        the only layout of both profiles): SHA-512(binding ‖ aik_pub_hash)."""
        return hashlib.sha512(self.binding + self.aik_pub_hash).digest()

    def matches_report_data(self, report_data: bytes) -> bool:
        """Constant-time comparison of a quote's REPORTDATA with the expected layout."""
        return hmac.compare_digest(self.report_data, report_data)

    def matches_nonce(self, nonce: bytes) -> bool:
        """Constant-time comparison of an EAR ``eat_nonce`` with the binding."""
        return hmac.compare_digest(self.binding, nonce)
