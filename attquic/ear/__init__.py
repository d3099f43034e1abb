"""EAR (EAT Attestation Results, draft-ietf-rats-ear) for the passport model.

* :mod:`attquic.ear.claims`: the typed claims model and its JSON encoding (draft-ietf-rats-ear-03,
  the default, and Veraison's profile).
* :mod:`attquic.ear.token`: :func:`issue_ear` and :class:`EarVerifier` (compact JWS, ES256), and
  the EAR media types.
* :mod:`attquic.ear.channel`: :class:`EarChannelVerifier`, the relying party's
  :class:`~attquic.attestation.Verifier` for EARs carried in a CMW.
* :mod:`attquic.ear.keys`: loading JWK/PEM keys.
"""

from __future__ import annotations

from attquic.ear.channel import EarChannelVerifier, ear_profile_of_media_type
from attquic.ear.claims import (
    IETF_PROFILE,
    VERAISON_PROFILE,
    Appraisal,
    Dialect,
    EarClaims,
    Status,
    TrustVector,
    VerifierId,
    decode_claims,
    encode_claims,
)
from attquic.ear.keys import (
    KeySource,
    generate_signing_key,
    load_private_key,
    load_public_key,
    public_jwk,
)
from attquic.ear.token import (
    ACCEPTED_PROFILES,
    ALLOWED_ALGORITHMS,
    IETF_EAR_MEDIA_TYPE,
    TDX_SUBMODULE,
    VERAISON_EAR_MEDIA_TYPE,
    EarAttestation,
    EarVerifier,
    ear_media_type,
    issue_ear,
)

__all__ = [
    "ACCEPTED_PROFILES",
    "ALLOWED_ALGORITHMS",
    "IETF_EAR_MEDIA_TYPE",
    "IETF_PROFILE",
    "TDX_SUBMODULE",
    "VERAISON_EAR_MEDIA_TYPE",
    "VERAISON_PROFILE",
    "Appraisal",
    "Dialect",
    "EarAttestation",
    "EarChannelVerifier",
    "EarClaims",
    "EarVerifier",
    "KeySource",
    "Status",
    "TrustVector",
    "VerifierId",
    "decode_claims",
    "ear_media_type",
    "ear_profile_of_media_type",
    "encode_claims",
    "generate_signing_key",
    "issue_ear",
    "load_private_key",
    "load_public_key",
    "public_jwk",
]
