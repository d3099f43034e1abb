"""The evidence plug points: :class:`Attester` and :class:`Verifier`, and the result types.

An attester turns a :class:`~attquic.keyschedule.Binding` into a CMW (background-check:
hardware evidence whose REPORTDATA commits to the binding; passport: an attestation result
whose nonce is the binding). A verifier takes the CMW the peer sent, the binding this side
computed from its own TLS state, and the time, and returns a result or raises an
:class:`~attquic.errors.AttestationError`.

Results keep "verified from hardware evidence" (:class:`HardwareAttestation`) and "asserted by
a token issuer" (:class:`IssuerAssertion`) in different types, so an application can never
confuse the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from attquic.cmw import CMW
    from attquic.keyschedule import Binding

__all__ = ["AttestationResult", "Attester", "HardwareAttestation", "IssuerAssertion", "Verifier"]


@dataclass(frozen=True)
class AttestationResult:
    """Common fields of every accepted attestation."""

    verified_at: float
    """Unix time at which verification ran (the ``now`` passed to the verifier)."""
    media_type: str
    """Media type of the CMW record that carried the evidence or result."""


@dataclass(frozen=True)
class HardwareAttestation(AttestationResult):
    """Verified by this process from hardware-rooted evidence (background-check model)."""

    evidence: bytes
    """The raw evidence (e.g. the TDX quote) as received."""


@dataclass(frozen=True)
class IssuerAssertion(AttestationResult):
    """Asserted by a trusted token issuer (passport model); not verified from hardware here."""

    token: bytes
    """The raw attestation result (e.g. the EAR JWT) as received."""
    issuer: str
    """The verifier that issued the result."""


@runtime_checkable
class Attester(Protocol):
    """Produces the CMW to place in our authenticator's leaf certificate entry."""

    async def attest(self, binding: Binding) -> CMW:
        """Evidence (or a result) committing to ``binding``."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """Appraises the CMW a peer sent, against the binding recomputed on this side."""

    async def verify(self, cmw: CMW, binding: Binding, *, now: float) -> AttestationResult:
        """Return the accepted result, or raise an :class:`~attquic.errors.AttestationError`."""
        ...
