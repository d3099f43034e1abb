"""The relying-party side of the passport model: an EAR in a CMW, checked against the binding.

:class:`EarChannelVerifier` implements :class:`attquic.attestation.Verifier`. The peer's CMW must
be (or contain exactly one) record whose media type is an EAR JWT
(``application/eat+jwt`` with an accepted ``eat_profile``: draft-ietf-rats-ear-03's or
Veraison's) and whose ``ind``, when present, marks Attestation Results. The media type's
``eat_profile`` must be the token's own. The EAR's ``eat_nonce`` must equal
``binding.binding``, the binder this side recomputed from its own TLS state and the
authenticator's key (docs/passport.md, "How the EAR is bound to the channel").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from attquic.cmw import CMWCollection, CMWRecord, iter_leaves
from attquic.ear.token import (
    ACCEPTED_PROFILES,
    EAR_JWT_BASE_TYPE,
    EarAttestation,
    EarVerifier,
    ear_profile_of_media_type,
)
from attquic.errors import EvidenceInvalid

if TYPE_CHECKING:
    from attquic.cmw import CMW
    from attquic.keyschedule import Binding

__all__ = ["EAR_JWT_BASE_TYPE", "EarChannelVerifier", "ear_profile_of_media_type"]


class EarChannelVerifier:
    """An :class:`~attquic.attestation.Verifier` for passport CMWs (EAR JWTs)."""

    def __init__(
        self, ear_verifier: EarVerifier, *, media_profiles: Collection[str] = ACCEPTED_PROFILES
    ) -> None:
        self.ear_verifier = ear_verifier
        self.media_profiles = frozenset(media_profiles)

    def _is_ear(self, leaf: object) -> bool:
        if not isinstance(leaf, CMWRecord) or leaf.media_type is None:
            return False
        return ear_profile_of_media_type(leaf.media_type) in self.media_profiles

    def _ear_record(self, cmw: CMW) -> CMWRecord:
        if isinstance(cmw, CMWCollection):
            found = [leaf for _, leaf in iter_leaves(cmw) if self._is_ear(leaf)]
            if len(found) != 1:
                raise EvidenceInvalid(
                    f"passport CMW collection must hold exactly one EAR record, has {len(found)}"
                )
            record = found[0]
        elif self._is_ear(cmw):
            assert isinstance(cmw, CMWRecord)
            record = cmw
        else:
            raise EvidenceInvalid("passport CMW is not an EAR JWT record")
        assert isinstance(record, CMWRecord)
        if record.ind is not None and not record.is_attestation_results:
            raise EvidenceInvalid("EAR record's ind does not mark attestation results")
        return record

    async def verify(self, cmw: CMW, binding: Binding, *, now: float) -> EarAttestation:
        """Check the EAR in ``cmw``; its ``eat_nonce`` must equal ``binding.binding``."""
        record = self._ear_record(cmw)
        assert record.media_type is not None
        return self.ear_verifier.verify(
            record.value, now=now, expected_nonce=binding.binding, media_type=record.media_type
        )
