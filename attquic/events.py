"""Events emitted by the I/O-free :class:`~attquic.session.AttestationSession`.

The adapter dispatches on the type: it writes control bytes, runs the attester or the
verifier (off the event loop's critical path) and feeds the outcome back, opens the gate, or
closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from attquic.attestation import AttestationResult
from attquic.cmw import CMW
from attquic.errors import CloseCode
from attquic.keyschedule import Binding

__all__ = [
    "CloseConnection",
    "EvidenceNeeded",
    "GateOpened",
    "PeerAttested",
    "SendControlData",
    "SessionEvent",
    "VerificationNeeded",
]


@dataclass(frozen=True)
class SendControlData:
    """Write ``data`` to the control stream."""

    data: bytes


@dataclass(frozen=True)
class EvidenceNeeded:
    """The peer asked for our attestation: run the attester on ``binding``, then call
    ``evidence_ready(context, cmw, now)`` or ``evidence_failed(context, error)``."""

    context: bytes
    binding: Binding
    peer_accepts_batched: bool = False
    """The peer's SETUP accepts batched evidence: a batching attester may batch this one."""


@dataclass(frozen=True)
class VerificationNeeded:
    """The peer answered our request: validate the authenticator's certificate
    (:func:`attquic.pkix.validate_authenticator_certificate`), run the verifier, then call
    ``verification_succeeded(context, result, now)`` or ``verification_failed(context, error)``."""

    context: bytes
    cmw: CMW
    binding: Binding
    chain: tuple[x509.Certificate, ...] = ()
    """The authenticator's certificates, leaf first, for X.509 validation (expat -04 §3.3)."""


@dataclass(frozen=True)
class PeerAttested:
    """The peer's attestation for request ``context`` verified."""

    context: bytes
    result: AttestationResult
    initial: bool
    """True for the attestation that opened the gate, False for a re-attestation."""


@dataclass(frozen=True)
class GateOpened:
    """Every required verification passed: application data may flow."""


@dataclass(frozen=True)
class CloseConnection:
    """Close the connection with the application error ``code``; discard held data."""

    code: CloseCode
    reason: str
    error: BaseException


SessionEvent = (
    SendControlData
    | EvidenceNeeded
    | VerificationNeeded
    | PeerAttested
    | GateOpened
    | CloseConnection
)
