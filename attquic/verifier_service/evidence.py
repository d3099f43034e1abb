"""What an attester submits to the verifier service, and the REPORTDATA each form must carry.

The session nonce is the channel binder (``binding``), but attquic's REPORTDATA layout v1 is
``SHA-512(binding ‖ aik_pub_hash)`` (docs/protocol.md), so the service cannot check a bare quote
against the nonce. Two evidence media types are accepted:

* :data:`ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE` (what :class:`~attquic.verifier_service.PassportAttester`
  sends): a CBOR map ``{"tdx-quote": bstr, "aik-pub-hash": bstr}``. The service requires
  REPORTDATA = ``SHA-512(nonce ‖ aik-pub-hash)``; ``aik-pub-hash`` is an output of the
  connection's TLS hash (32 or 48 bytes) and the nonce is as long (one binding) or 64 bytes
  (the SHA-512 Merkle root of a batch of bindings, see :mod:`attquic.batching`).
* :data:`~attquic.profile.TDX_QUOTE_MEDIA_TYPE`: a raw quote whose REPORTDATA is the nonce
  itself, zero-padded to 64 bytes (the usual "nonce in REPORTDATA" convention of generic
  challenge-response clients).

Either way the quote commits to the session nonce, so the EAR's ``eat_nonce`` (= the nonce)
is only ever issued for evidence produced for it. The relying party then checks
``eat_nonce == binding``, and the binder itself commits to the authenticator's SPKI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import cbor2

from attquic import profile
from attquic.errors import DecodeError
from attquic.keyschedule import Binding

__all__ = [
    "ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE",
    "EVIDENCE_MEDIA_TYPES",
    "EvidenceFormatError",
    "SubmittedEvidence",
    "decode_evidence",
    "encode_attquic_evidence",
    "normalize_media_type",
]

#: A TDX quote plus the AIK public key hash, so REPORTDATA layout v1 can be recomputed.
ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE: Final = "application/vnd.attquic.tdx-evidence+cbor"
#: Every evidence media type the service accepts, in order of preference.
EVIDENCE_MEDIA_TYPES: Final = (ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE, profile.TDX_QUOTE_MEDIA_TYPE)

_QUOTE_KEY: Final = "tdx-quote"
_AIK_KEY: Final = "aik-pub-hash"
_HASH_NAMES: Final = {32: "sha256", 48: "sha384"}
_REPORT_DATA_SIZE: Final = 64
_BATCH_ROOT_SIZE: Final = 64  # SHA-512 Merkle root of a batch of bindings (attquic.batching)


class EvidenceFormatError(DecodeError):
    """A submitted evidence body is malformed for its media type (HTTP 400)."""


@dataclass(frozen=True)
class SubmittedEvidence:
    """A quote and the REPORTDATA it must carry for the session nonce."""

    quote: bytes
    expected_report_data: bytes


def normalize_media_type(value: str) -> str:
    """Lower-case type and parameter names, unquoted values, parameters sorted.

    Used to compare a Content-Type header with the accepted media types.
    """
    base, *params = (part.strip() for part in value.split(";"))
    normalized = []
    for param in params:
        if not param:
            continue
        name, _, raw = param.partition("=")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        normalized.append(f"{name.strip().lower()}={raw}")
    return ";".join([base.lower(), *sorted(normalized)])


def encode_attquic_evidence(quote: bytes, aik_pub_hash: bytes) -> bytes:
    """The body of an :data:`ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE` submission."""
    return bytes(cbor2.dumps({_QUOTE_KEY: bytes(quote), _AIK_KEY: bytes(aik_pub_hash)}))


def _decode_attquic(body: bytes, nonce: bytes) -> SubmittedEvidence:
    try:
        value: Any = cbor2.loads(body)
    except Exception:  # cbor2 raises many types on garbage; all mean "malformed"
        raise EvidenceFormatError("evidence is not well-formed CBOR") from None
    if not isinstance(value, dict) or set(value) != {_QUOTE_KEY, _AIK_KEY}:
        raise EvidenceFormatError(f"evidence must be a CBOR map {{{_QUOTE_KEY}, {_AIK_KEY}}}")
    quote, aik = value[_QUOTE_KEY], value[_AIK_KEY]
    if not isinstance(quote, bytes) or not isinstance(aik, bytes):
        raise EvidenceFormatError("evidence values must be byte strings")
    # the nonce is the binding (one TLS hash, like aik-pub-hash) or a batch's Merkle root
    if len(aik) not in _HASH_NAMES or len(nonce) not in (len(aik), _BATCH_ROOT_SIZE):
        raise EvidenceFormatError(
            "aik-pub-hash must be one TLS hash (32 or 48 bytes) and the session nonce as long,"
            " or a 64-byte batch root"
        )
    binding = Binding(hash_name=_HASH_NAMES[len(aik)], binding=nonce, aik_pub_hash=aik)
    return SubmittedEvidence(quote, binding.report_data)


def decode_evidence(media_type: str, body: bytes, nonce: bytes) -> SubmittedEvidence:
    """The quote in ``body`` and the REPORTDATA it must carry for ``nonce``.

    ``media_type`` must be one of :data:`EVIDENCE_MEDIA_TYPES` (already normalized or not).
    """
    kind = normalize_media_type(media_type)
    if kind == normalize_media_type(ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE):
        return _decode_attquic(body, nonce)
    if kind == normalize_media_type(profile.TDX_QUOTE_MEDIA_TYPE):
        if len(nonce) > _REPORT_DATA_SIZE:
            raise EvidenceFormatError("nonce longer than REPORTDATA")
        return SubmittedEvidence(body, nonce.ljust(_REPORT_DATA_SIZE, b"\x00"))
    raise EvidenceFormatError(f"unsupported evidence media type {media_type!r}")
