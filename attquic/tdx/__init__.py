"""Intel TDX evidence: quote model, DCAP verification, collateral and appraisal policy.

Verification: :func:`verify_quote` / :func:`check_quote` for one quote, :class:`TdxVerifier`
as attquic's :class:`~attquic.attestation.Verifier`. Collateral comes from a
:class:`CollateralSource` (:class:`FileCollateral`, :class:`PccsCollateral`, ...), and an
:class:`AppraisalPolicy` decides what is acceptable. See docs/tdx.md.
"""

from __future__ import annotations

from attquic.tdx.collateral import (
    INTEL_PCS_URL,
    SHARED_COLLATERAL_CACHE,
    Collateral,
    CollateralCache,
    CollateralSource,
    FileCollateral,
    PccsCollateral,
    StaticCollateral,
)
from attquic.tdx.intel_root import INTEL_SGX_ROOT_CA_SHA256, intel_sgx_root_ca_der
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import (
    QeReport,
    QuoteHeader,
    QuoteSignatureData,
    TdAttributes,
    TdReportBody,
    TdReportType,
    TdxQuote,
    parse_quote,
)
from attquic.tdx.verifier import (
    DEFAULT_POLICY,
    QuoteVerdict,
    TdxAttestation,
    TdxVerifier,
    VerificationCacheSettings,
    VerifiedBy,
    check_quote,
    verify_quote,
)

__all__ = [
    "DEFAULT_POLICY",
    "INTEL_PCS_URL",
    "INTEL_SGX_ROOT_CA_SHA256",
    "SHARED_COLLATERAL_CACHE",
    "AppraisalPolicy",
    "Collateral",
    "CollateralCache",
    "CollateralSource",
    "FileCollateral",
    "PccsCollateral",
    "QeReport",
    "QuoteHeader",
    "QuoteSignatureData",
    "QuoteVerdict",
    "StaticCollateral",
    "TdAttributes",
    "TdReportBody",
    "TdReportType",
    "TdxAttestation",
    "TdxQuote",
    "TdxVerifier",
    "VerificationCacheSettings",
    "VerifiedBy",
    "check_quote",
    "intel_sgx_root_ca_der",
    "parse_quote",
    "verify_quote",
]

# --- attesters (owned by the attester work: simulated TDX and configfs-tsm) ---------------------
# Add the SimulatedTdx* / ConfigfsTsmAttester imports below and extend __all__ with
# `__all__ += [...]`, so the two halves of this file never conflict.

from attquic.tdx.configfs import ConfigfsTsmAttester
from attquic.tdx.simulated import (
    DEFAULT_MRTD,
    DEFAULT_RTMRS,
    SimulatedCollateral,
    SimulatedTdxAttester,
    SimulatedTdxHierarchy,
    SimulatedTdxWarning,
    SimulationKnobs,
)

__all__ += [
    "DEFAULT_MRTD",
    "DEFAULT_RTMRS",
    "ConfigfsTsmAttester",
    "SimulatedCollateral",
    "SimulatedTdxAttester",
    "SimulatedTdxHierarchy",
    "SimulatedTdxWarning",
    "SimulationKnobs",
]
