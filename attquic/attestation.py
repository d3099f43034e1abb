"""The evidence plug points: :class:`Attester` and :class:`Verifier`, and the result types.

An attester turns a :class:`~attquic.keyschedule.Binding` into a CMW (background-check:
hardware evidence whose REPORTDATA commits to the binding; passport: an attestation result
whose nonce is the binding). A verifier takes the CMW the peer sent, the binding this side
computed from its own TLS state, and the time, and returns a result or raises an
:class:`~attquic.errors.AttestationError`.

Results keep "verified from hardware evidence" (:class:`HardwareAttestation`) and "asserted by
a token issuer" (:class:`IssuerAssertion`) in different types, so an application can never
confuse the two. A hardware result also names the root it was verified against
(:class:`TrustAnchor`): the vendor's, or a test root trusted explicitly (simulated evidence).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from attquic.cmw import CMW
    from attquic.keyschedule import Binding

__all__ = [
    "MEASUREMENT_FIELDS",
    "AttestationChange",
    "AttestationResult",
    "Attester",
    "BatchingAttester",
    "HardwareAttestation",
    "IssuerAssertion",
    "TrustAnchor",
    "Verifier",
    "compare_attestations",
    "measurements",
]


class TrustAnchor(enum.Enum):
    """The root of trust a :class:`HardwareAttestation` was verified against."""

    VENDOR_ROOT = "vendor root"
    """The hardware vendor's pinned root (for TDX: the Intel SGX Root CA)."""
    TEST_ROOT = "test root"
    """A root the verifier was told to trust explicitly (``unsafe_root_ca_der``): simulated or
    test evidence, which anyone can forge. Never accept it in production. Also the default of
    a result whose verifier does not claim a vendor root."""

    @property
    def simulated(self) -> bool:
        """True for :attr:`TEST_ROOT`: the evidence proves nothing about real hardware."""
        return self is TrustAnchor.TEST_ROOT


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
    trust_anchor: TrustAnchor = field(default=TrustAnchor.TEST_ROOT, kw_only=True)
    """The root the evidence was verified against. A verifier that checked a vendor root says
    ``VENDOR_ROOT`` explicitly; the default fails closed (``TEST_ROOT``: not a vendor root)."""


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
class BatchingAttester(Attester, Protocol):
    """An attester that can answer a peer which accepts batched evidence (SETUP bit 2).

    ``attest_batched`` may return either form: a batched CMW (:mod:`attquic.batching`: one
    quote over a Merkle root of many bindings plus this binding's inclusion proof) or the
    unbatched CMW ``attest`` would return. The adapter calls it only for such peers.
    """

    async def attest_batched(self, binding: Binding) -> CMW:
        """Evidence committing to ``binding``, batched or not."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """Appraises the CMW a peer sent, against the binding recomputed on this side."""

    async def verify(self, cmw: CMW, binding: Binding, *, now: float) -> AttestationResult:
        """Return the accepted result, or raise an :class:`~attquic.errors.AttestationError`."""
        ...


#: Attributes of a hardware result that say *what* was attested (TDX names); compared between a
#: connection's first attestation and its re-attestations. TCB status and collateral are not:
#: they may legitimately change while the same TD keeps running.
MEASUREMENT_FIELDS: Final = (
    "mrtd",
    "rtmrs",
    "mrconfigid",
    "mrowner",
    "mrownerconfig",
    "mrseam",
    "td_attributes",
    "xfam",
)


@dataclass(frozen=True)
class AttestationChange:
    """How a re-attestation differs from the connection's first attestation of the peer."""

    previous: AttestationResult
    """The first attestation accepted on the connection."""
    current: AttestationResult
    """The re-attestation just verified."""
    key_changed: bool
    """The authenticator presented another key (SubjectPublicKeyInfo) than the first time."""
    changed: tuple[str, ...]
    """Names of what changed, e.g. ``("authenticator key", "rtmrs[2]")``."""


def measurements(result: AttestationResult) -> dict[str, object]:
    """What identifies the attested environment in ``result``, by name.

    Hardware results (e.g. :class:`~attquic.tdx.verifier.TdxAttestation`): the fields of
    :data:`MEASUREMENT_FIELDS` it has, RTMRs one by one. Issuer assertions (e.g. an EAR): the
    issuer, the appraised submodule and its appraisal policy ids, which is what an attestation
    result says about the environment that a relying party can compare. Always the result's
    type and media type.
    """
    found: dict[str, object] = {
        "result type": type(result).__name__,
        "media type": result.media_type,
    }
    if isinstance(result, IssuerAssertion):
        found["issuer"] = result.issuer
        submodule = getattr(result, "submodule", None)
        found["submodule"] = submodule
        claims = getattr(result, "claims", None)
        submods = getattr(claims, "submods", None)
        if isinstance(submods, Mapping) and submodule in submods:
            found["appraisal policy ids"] = getattr(submods[submodule], "policy_ids", None)
        return found
    for name in MEASUREMENT_FIELDS:
        if not hasattr(result, name):
            continue
        value = getattr(result, name)
        if name == "rtmrs" and isinstance(value, tuple):
            found.update({f"rtmrs[{index}]": rtmr for index, rtmr in enumerate(value)})
        else:
            found[name] = value
    return found


def compare_attestations(
    previous: AttestationResult,
    current: AttestationResult,
    *,
    previous_key: bytes,
    current_key: bytes,
) -> AttestationChange | None:
    """The change from ``previous`` to ``current``, or None if key and measurements are equal.

    ``previous_key``/``current_key`` are the DER SubjectPublicKeyInfo of the two authenticators.
    """
    before, after = measurements(previous), measurements(current)
    changed = [
        name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)
    ]
    key_changed = not hmac.compare_digest(previous_key, current_key)
    if key_changed:
        changed.insert(0, "authenticator key")
    if not changed:
        return None
    return AttestationChange(previous, current, key_changed, tuple(changed))
