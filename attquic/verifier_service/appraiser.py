"""Appraisal of submitted evidence into the content of an EAR submodule.

The service asks an :class:`EvidenceAppraiser` for an :class:`Appraisal` of the evidence; it
never lets evidence problems escape as HTTP errors (Veraison semantics: a bad quote yields a
*contraindicated* result, not a failed request). Only "could not appraise right now"
(:class:`~attquic.errors.VerifierUnavailable`, e.g. collateral unreachable) and malformed
bodies (:class:`~attquic.verifier_service.evidence.EvidenceFormatError`) propagate.

Trustworthiness vector used by :class:`TdxEvidenceAppraiser` (AR4SI codes):

=====================  ===================================================================
outcome                claims
=====================  ===================================================================
accepted, UpToDate     affirming; instance-identity 2, hardware 2, executables 2,
                       configuration 2
accepted, other TCB    warning; as above but hardware 32 (known vulnerabilities)
the policy rejected    contraindicated; instance-identity 2, hardware 2, executables 96
it                     (the measured TD or its configuration is not acceptable)
REPORTDATA mismatch    contraindicated; instance-identity 96 (not produced for this nonce)
invalid evidence       contraindicated; instance-identity 97, hardware 97 (not recognised:
                       bad signature, chain, collateral or quote format)
=====================  ===================================================================

The two accepted outcomes also carry the appraisal's ``eat_nonce`` (draft-ietf-rats-ear-03):
the session nonce, which the quote was just shown to commit to. The others do not, since the
evidence was not shown to be fresh for it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Final, Protocol

import anyio.to_thread

from attquic.ear.claims import Appraisal, Status, TrustVector
from attquic.errors import (
    BindingMismatch,
    DecodeError,
    EvidenceInvalid,
    PolicyRejected,
    VerifierUnavailable,
)
from attquic.logs import get_logger
from attquic.tdx.collateral import CollateralSource
from attquic.tdx.policy import AppraisalPolicy
from attquic.tdx.quote import parse_quote
from attquic.tdx.verifier import DEFAULT_POLICY, verify_quote
from attquic.verifier_service.evidence import EVIDENCE_MEDIA_TYPES, decode_evidence

__all__ = ["EvidenceAppraiser", "TdxEvidenceAppraiser", "policy_id_of"]

_log = get_logger("attquic.verifier_service")

_UP_TO_DATE: Final = "UpToDate"


class EvidenceAppraiser(Protocol):
    """Turns evidence submitted for a session nonce into one EAR appraisal."""

    @property
    def media_types(self) -> Sequence[str]:
        """Evidence media types this appraiser accepts (advertised by discovery)."""
        ...

    async def appraise(
        self, media_type: str, evidence: bytes, nonce: bytes, *, now: float
    ) -> Appraisal:
        """The appraisal; raises EvidenceFormatError (malformed) or VerifierUnavailable."""
        ...


def policy_id_of(policy: AppraisalPolicy) -> str:
    """A stable identifier of ``policy``: a digest of its canonical JSON form."""
    canonical = json.dumps(policy.to_dict(), sort_keys=True, separators=(",", ":"))
    return "policy:attquic/tdx/" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _appraisal(
    status: Status, policy_id: str, nonce: bytes | None = None, **vector: int
) -> Appraisal:
    return Appraisal(status, TrustVector(**vector), (policy_id,), nonce=nonce)


class TdxEvidenceAppraiser:
    """Appraises TDX quotes with :func:`attquic.tdx.verifier.verify_quote` and a policy.

    The same verifier, collateral source and :class:`~attquic.tdx.policy.AppraisalPolicy` the
    channel's background-check model uses; dcap-qvl runs in a worker thread.
    ``unsafe_root_ca_der`` is for simulated TDX hierarchies only.
    """

    def __init__(
        self,
        collateral: CollateralSource,
        policy: AppraisalPolicy = DEFAULT_POLICY,
        *,
        unsafe_root_ca_der: bytes | None = None,
    ) -> None:
        self.collateral = collateral
        self.policy = policy
        self.unsafe_root_ca_der = unsafe_root_ca_der
        self.policy_id = policy_id_of(policy)

    @property
    def media_types(self) -> Sequence[str]:
        return EVIDENCE_MEDIA_TYPES

    async def appraise(
        self, media_type: str, evidence: bytes, nonce: bytes, *, now: float
    ) -> Appraisal:
        submitted = decode_evidence(media_type, evidence, nonce)
        pid = self.policy_id
        try:
            quote = parse_quote(submitted.quote)
            collateral = await self.collateral.get(quote, now=now)
            attestation = await anyio.to_thread.run_sync(
                functools.partial(
                    verify_quote,
                    quote,
                    collateral,
                    now=now,
                    policy=self.policy,
                    expected_report_data=submitted.expected_report_data,
                    unsafe_root_ca_der=self.unsafe_root_ca_der,
                )
            )
        except VerifierUnavailable:
            raise
        except PolicyRejected as exc:
            _log.info("appraisal.policy_rejected", reasons=list(exc.reasons))
            return _appraisal(
                Status.CONTRAINDICATED, pid, instance_identity=2, hardware=2, executables=96
            )
        except BindingMismatch as exc:
            _log.info("appraisal.binding_mismatch", reason=str(exc))
            return _appraisal(Status.CONTRAINDICATED, pid, instance_identity=96)
        except (EvidenceInvalid, DecodeError) as exc:
            _log.info("appraisal.evidence_invalid", reason=str(exc))
            return _appraisal(Status.CONTRAINDICATED, pid, instance_identity=97, hardware=97)
        up_to_date = attestation.tcb_status == _UP_TO_DATE
        return _appraisal(
            Status.AFFIRMING if up_to_date else Status.WARNING,
            pid,
            nonce,
            instance_identity=2,
            hardware=2 if up_to_date else 32,
            executables=2,
            configuration=2,
        )
