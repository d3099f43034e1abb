"""A Veraison-compatible verifier service for the passport model, and its client side.

* :mod:`~attquic.verifier_service.server`: :class:`VerifierService` / :func:`create_app`, the
  HTTP service (discovery, challenge-response sessions, EAR results).
* :mod:`~attquic.verifier_service.appraiser`: :class:`TdxEvidenceAppraiser`, TDX appraisal
  with the channel's verifier and policy.
* :mod:`~attquic.verifier_service.evidence`: the accepted evidence media types and how each
  binds the session nonce.
* :mod:`~attquic.verifier_service.client`: :class:`VerifierClient` and
  :class:`PassportAttester`.

See docs/passport.md.
"""

from __future__ import annotations

from attquic.verifier_service.appraiser import (
    EvidenceAppraiser,
    TdxEvidenceAppraiser,
    policy_id_of,
)
from attquic.verifier_service.client import (
    ChallengeSession,
    PassportAttester,
    QuoteSource,
    VerifierClient,
    VerifierInfo,
)
from attquic.verifier_service.evidence import (
    ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE,
    EVIDENCE_MEDIA_TYPES,
    EvidenceFormatError,
    SubmittedEvidence,
    decode_evidence,
    encode_attquic_evidence,
)
from attquic.verifier_service.server import (
    DISCOVERY_MEDIA_TYPE,
    DISCOVERY_PATH,
    NEW_SESSION_PATH,
    PROBLEM_MEDIA_TYPE,
    SESSION_MEDIA_TYPE,
    VerifierService,
    VerifierServiceConfig,
    create_app,
)

__all__ = [
    "ATTQUIC_TDX_EVIDENCE_MEDIA_TYPE",
    "DISCOVERY_MEDIA_TYPE",
    "DISCOVERY_PATH",
    "EVIDENCE_MEDIA_TYPES",
    "NEW_SESSION_PATH",
    "PROBLEM_MEDIA_TYPE",
    "SESSION_MEDIA_TYPE",
    "ChallengeSession",
    "EvidenceAppraiser",
    "EvidenceFormatError",
    "PassportAttester",
    "QuoteSource",
    "SubmittedEvidence",
    "TdxEvidenceAppraiser",
    "VerifierClient",
    "VerifierInfo",
    "VerifierService",
    "VerifierServiceConfig",
    "create_app",
    "decode_evidence",
    "encode_attquic_evidence",
    "policy_id_of",
]
