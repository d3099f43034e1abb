"""The simulated TDX in one call, for trying attquic on any machine (NOT a TEE).

::

    server_attestation = attquic.simulated.configuration(attests=True)
    client_attestation = attquic.simulated.configuration(verifies=True)

The attesting side sends quotes from :class:`~attquic.tdx.simulated.SimulatedTdxAttester`
(signed by a public test root: anyone can forge them). The verifying side runs the real DCAP
verification (dcap-qvl) against that test root, trusted through the verifier's explicitly
named unsafe-root option, with the simulated collateral, and appraises the quote with
:func:`policy` (the simulated TD's measurements). Its results say
``trust_anchor=TrustAnchor.TEST_ROOT``. The first simulated object of a process emits one
:class:`~attquic.tdx.simulated.SimulatedTdxWarning`.

For real hardware, replace ``attester()`` by :class:`~attquic.tdx.ConfigfsTsmAttester` and
``verifier()`` by ``TdxVerifier(PccsCollateral(url), AppraisalPolicy.from_file(...))``.
"""

from __future__ import annotations

from typing import Any, Literal

from attquic.config import AttestationConfiguration
from attquic.errors import ConfigurationError
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.simulated import (
    DEFAULT_MEASUREMENTS,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
)
from attquic.tdx.verifier import TdxVerifier

__all__ = ["attester", "configuration", "policy", "verifier"]


def policy() -> AppraisalPolicy:
    """The appraisal policy that accepts the simulated TD: its MRTD and RTMR0-3, UpToDate TCB,
    no debug (the production defaults for everything else)."""
    measurements = DEFAULT_MEASUREMENTS
    return AppraisalPolicy(
        accepted_mrtd=(measurements.mrtd,),
        accepted_rtmr0=(measurements.rtmrs[0],),
        accepted_rtmr1=(measurements.rtmrs[1],),
        accepted_rtmr2=(measurements.rtmrs[2],),
        accepted_rtmr3=(measurements.rtmrs[3],),
    )


def attester(*, version: Literal[4, 5] = 4) -> SimulatedTdxAttester:
    """An attester producing simulated TDX quotes (v4 or v5) of the default simulated TD."""
    return SimulatedTdxAttester(version=version)


def verifier(appraisal: AppraisalPolicy | None = None) -> TdxVerifier:
    """A full DCAP verifier that trusts the simulated test root and its collateral.

    ``appraisal`` defaults to :func:`policy`.
    """
    hierarchy = SimulatedTdxHierarchy.default()
    return TdxVerifier(
        SimulatedCollateral(hierarchy),
        appraisal if appraisal is not None else policy(),
        unsafe_root_ca_der=hierarchy.root_ca_der,
    )


def configuration(
    *,
    attests: bool = False,
    verifies: bool = False,
    quote_version: Literal[4, 5] = 4,
    appraisal: AppraisalPolicy | None = None,
    **options: Any,
) -> AttestationConfiguration:
    """An :class:`~attquic.AttestationConfiguration` on the simulated TDX.

    ``attests``: this side sends simulated quotes; ``verifies``: this side requires and
    verifies the peer's (both: mutual attestation). ``options`` are the other
    :class:`~attquic.AttestationConfiguration` fields (``attestation_timeout=``, ...).
    """
    if not (attests or verifies):
        raise ConfigurationError(
            "simulated.configuration() needs attests=True, verifies=True or both"
        )
    return AttestationConfiguration(
        attester=attester(version=quote_version) if attests else None,
        verifier=verifier(appraisal) if verifies else None,
        **options,
    )
