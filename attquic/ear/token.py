"""Signed EARs: issue (compact JWS) and verify (signature, algorithm, time, nonce, status).

JWS processing is delegated to joserfc; this module only decides *which* keys and algorithms are
acceptable and what the claims must say. Checks in order (first failure wins):

1. compact form, header ``alg`` in the allowlist, no ``crit`` (EvidenceInvalid);
2. signature under one of the configured trusted keys (EvidenceInvalid); a key embedded in the
   header (``jwk``, ``x5c``, ``jku``) is never used;
3. claims-set well formed (EvidenceInvalid), ``eat_profile`` accepted (EvidenceInvalid);
4. ``iat`` not in the future, ``nbf`` reached, ``exp`` not passed, optional maximum age, all
   with the clock-skew allowance (EvidenceInvalid);
5. ``eat_nonce`` equal to the expected nonce, compared in constant time, and so must be the
   required submodule's own ``eat_nonce`` (-03) when it has one (BindingMismatch);
6. the required submodule present and its status (and the top-level status, if any) at least
   the required tier (PolicyRejected).

When the caller names the media type the token came with (a CMW record's type), its
``eat_profile`` parameter must be the token's ``eat_profile`` (checked with step 3).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey

from attquic.attestation import IssuerAssertion
from attquic.ear.claims import (
    IETF_PROFILE,
    VERAISON_PROFILE,
    Dialect,
    EarClaims,
    Status,
    TrustVector,
    b64url_decode,
    decode_claims,
    encode_claims,
    parse_claims_json,
)
from attquic.ear.keys import KeySource, load_private_key, load_public_key
from attquic.errors import (
    BindingMismatch,
    ConfigurationError,
    EvidenceInvalid,
    PolicyRejected,
)

__all__ = [
    "ACCEPTED_PROFILES",
    "ALLOWED_ALGORITHMS",
    "EAR_JWT_BASE_TYPE",
    "IETF_EAR_MEDIA_TYPE",
    "MAX_TOKEN_SIZE",
    "TDX_SUBMODULE",
    "VERAISON_EAR_MEDIA_TYPE",
    "EarAttestation",
    "EarVerifier",
    "ear_media_type",
    "ear_profile_of_media_type",
    "issue_ear",
]

#: Profiles whose claim names this module understands: draft-ietf-rats-ear-03 (what attquic
#: issues) and Veraison's (still accepted).
ACCEPTED_PROFILES: Final = (IETF_PROFILE, VERAISON_PROFILE)
#: Algorithms that may ever be configured: asymmetric EC signatures only (no "none", no HMAC).
ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "ES384", "ES512"})
#: Submodule label of the TDX appraisal in EARs issued by attquic's verifier service.
TDX_SUBMODULE: Final = "tdx"
#: Largest token accepted (bytes of compact JWS).
MAX_TOKEN_SIZE: Final = 64 * 1024

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
#: Characters a profile may have to be written as a quoted media type parameter value.
_QUOTABLE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

#: The media type of an EAT carried as a JWT (RFC 9782); its ``eat_profile`` parameter names
#: the EAR profile.
EAR_JWT_BASE_TYPE: Final = "application/eat+jwt"
#: The passport CMW media type of a draft-ietf-rats-ear-03 EAR (what attquic sends).
IETF_EAR_MEDIA_TYPE: Final = f'{EAR_JWT_BASE_TYPE}; eat_profile="{IETF_PROFILE}"'
#: The passport CMW media type of a Veraison-profile EAR (attquic/1's; still accepted).
VERAISON_EAR_MEDIA_TYPE: Final = f'{EAR_JWT_BASE_TYPE}; eat_profile="{VERAISON_PROFILE}"'


def ear_media_type(profile: str) -> str:
    """``application/eat+jwt; eat_profile="<profile>"`` (RFC 9782) for an EAR JWT."""
    if not _QUOTABLE.fullmatch(profile):
        raise ConfigurationError(f"EAR profile {profile!r} cannot be a media type parameter")
    return f'{EAR_JWT_BASE_TYPE}; eat_profile="{profile}"'


def _media_type_of(profile: str) -> str:
    try:
        return ear_media_type(profile)
    except ConfigurationError:
        raise EvidenceInvalid(f"EAR: profile {profile!r} cannot name a media type") from None


def ear_profile_of_media_type(media_type: str) -> str | None:
    """The ``eat_profile`` parameter of an ``application/eat+jwt`` media type, else None.

    Type and parameter names are compared case-insensitively, whitespace around ``;`` and ``=``
    is ignored and a quoted value is unquoted. The draft's section 5 writes
    ``application/eat-jwt``; RFC 9782 registers ``application/eat+jwt``, and only that is an
    EAR media type here.
    """
    base, *params = (part.strip() for part in media_type.split(";"))
    if base.lower() != EAR_JWT_BASE_TYPE:
        return None
    for param in params:
        name, sep, value = param.partition("=")
        if not sep or name.strip().lower() != "eat_profile":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value
    return None


@dataclass(frozen=True)
class EarAttestation(IssuerAssertion):
    """An EAR accepted for one channel binding: asserted by ``issuer``, not hardware-verified."""

    claims: EarClaims
    submodule: str
    """The submodule whose appraisal was required (e.g. "tdx")."""
    status: Status
    """That submodule's status."""
    trust_vector: TrustVector | None
    """That submodule's trustworthiness vector, if the issuer sent one."""


def _check_algorithms(algorithms: Collection[str]) -> tuple[str, ...]:
    chosen = tuple(algorithms)
    if not chosen or not set(chosen) <= ALLOWED_ALGORITHMS:
        raise ConfigurationError(
            f"EAR algorithms must be a non-empty subset of {sorted(ALLOWED_ALGORITHMS)}"
        )
    return chosen


def issue_ear(
    claims: EarClaims,
    private_key: KeySource,
    *,
    alg: str = "ES256",
    kid: str | None = None,
    dialect: Dialect | None = None,
) -> str:
    """Sign ``claims`` as a compact JWS (a JWT with ``typ`` "JWT").

    The claim names follow ``dialect``, by default the one matching ``claims.profile``.
    """
    (alg,) = _check_algorithms((alg,))
    key = load_private_key(private_key)
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    payload = json.dumps(encode_claims(claims, dialect), separators=(",", ":")).encode()
    try:
        return jws.serialize_compact(header, payload, key, algorithms=[alg])
    except (JoseError, ValueError) as exc:
        raise ConfigurationError(f"cannot sign the EAR with this key: {exc}") from None


def _token_text(token: bytes | str) -> str:
    if isinstance(token, bytes | bytearray | memoryview):
        if len(token) > MAX_TOKEN_SIZE:
            raise EvidenceInvalid("EAR: token too large")
        try:
            return bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise EvidenceInvalid("EAR: token is not ASCII") from None
    if len(token) > MAX_TOKEN_SIZE:
        raise EvidenceInvalid("EAR: token too large")
    return token


class EarVerifier:
    """Verifies EAR JWTs against configured trusted verifier keys (see the module docstring).

    ``trusted_keys``: JWKs or PEM (objects, bytes or file paths), see
    :data:`attquic.ear.keys.KeySource`. ``required_status``: the minimum tier of the
    ``submodule`` appraisal ("affirming" by default; "none" disables the check).
    ``expected_profile``: one profile or several. ``max_age``: if set, the largest accepted
    ``now - iat`` in seconds, also for EARs without ``exp``.
    """

    def __init__(
        self,
        trusted_keys: Sequence[KeySource],
        *,
        algorithms: Collection[str] = ("ES256",),
        clock_skew: float = 60.0,
        required_status: Status | str = Status.AFFIRMING,
        submodule: str = TDX_SUBMODULE,
        expected_profile: str | Collection[str] = ACCEPTED_PROFILES,
        max_age: float | None = None,
    ) -> None:
        if isinstance(trusted_keys, str | bytes) or not trusted_keys:
            raise ConfigurationError("EarVerifier needs a non-empty sequence of trusted keys")
        self.trusted_keys: tuple[ECKey, ...] = tuple(load_public_key(k) for k in trusted_keys)
        self.algorithms = _check_algorithms(algorithms)
        if clock_skew < 0:
            raise ConfigurationError("clock_skew must not be negative")
        self.clock_skew = float(clock_skew)
        if isinstance(required_status, str):
            try:
                required_status = Status.from_json(required_status)
            except EvidenceInvalid:
                raise ConfigurationError(f"unknown status {required_status!r}") from None
        self.required_status = required_status
        self.submodule = submodule
        profiles = (
            (expected_profile,) if isinstance(expected_profile, str) else tuple(expected_profile)
        )
        if not profiles:
            raise ConfigurationError("expected_profile must name at least one profile")
        self.expected_profiles: tuple[str, ...] = profiles
        if max_age is not None and max_age <= 0:
            raise ConfigurationError("max_age must be positive")
        self.max_age = max_age

    # -- steps -----------------------------------------------------------------------------

    def _check_header(self, text: str) -> None:
        segments = text.split(".")
        if len(segments) != 3 or not all(_SEGMENT.fullmatch(s) for s in segments):
            raise EvidenceInvalid("EAR: not a compact JWS (three non-empty base64url segments)")
        header = parse_claims_json(b64url_decode(segments[0], "JWS header"))
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise EvidenceInvalid(f"EAR: algorithm {alg!r} is not allowed")
        if "crit" in header:
            raise EvidenceInvalid("EAR: critical header parameters are not supported")

    def _verified_payload(self, text: str) -> bytes:
        for key in self.trusted_keys:
            try:
                return jws.deserialize_compact(text, key, algorithms=list(self.algorithms)).payload
            except BadSignatureError:
                continue
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                # Wrong key type for the algorithm (e.g. a P-384 key for ES256): not this key.
                if isinstance(exc, JoseError) and exc.error in {
                    "invalid_key_type",
                    "invalid_key_curve",
                    "unsupported_key_algorithm",
                }:
                    continue
                raise EvidenceInvalid(f"EAR: malformed JWS: {exc}") from None
        raise EvidenceInvalid("EAR: signature does not verify under any trusted verifier key")

    def _check_time(self, claims: EarClaims, now: float) -> None:
        skew = self.clock_skew
        if claims.iat > now + skew:
            raise EvidenceInvalid("EAR: issued in the future (iat)")
        if claims.nbf is not None and now + skew < claims.nbf:
            raise EvidenceInvalid("EAR: not yet valid (nbf)")
        if claims.exp is not None and now >= claims.exp + skew:
            raise EvidenceInvalid("EAR: expired (exp)")
        if self.max_age is not None and now - skew > claims.iat + self.max_age:
            raise EvidenceInvalid("EAR: older than the maximum age")

    def _check_status(self, claims: EarClaims) -> tuple[Status, TrustVector | None]:
        appraisal = claims.submods.get(self.submodule)
        if appraisal is None:
            raise PolicyRejected([f"EAR has no appraisal for submodule {self.submodule!r}"])
        reasons = []
        if not appraisal.status.satisfies(self.required_status):
            reasons.append(
                f"submodule {self.submodule!r} status is {appraisal.status.json_name}, "
                f"{self.required_status.json_name} required"
            )
        if claims.status is not None and not claims.status.satisfies(self.required_status):
            reasons.append(
                f"overall status is {claims.status.json_name}, "
                f"{self.required_status.json_name} required"
            )
        if reasons:
            raise PolicyRejected(reasons)
        return appraisal.status, appraisal.trust_vector

    def _check_nonce(self, claims: EarClaims, expected_nonce: bytes) -> None:
        if claims.nonce is None or not hmac.compare_digest(claims.nonce, expected_nonce):
            raise BindingMismatch("EAR eat_nonce does not match the expected nonce")
        appraisal = claims.submods.get(self.submodule)
        if (
            appraisal is not None
            and appraisal.nonce is not None
            and not hmac.compare_digest(appraisal.nonce, expected_nonce)
        ):
            raise BindingMismatch(
                f"EAR submod {self.submodule!r} eat_nonce does not match the expected nonce"
            )

    # -- public ----------------------------------------------------------------------------

    def decode(self, token: bytes | str, *, now: float, media_type: str | None = None) -> EarClaims:
        """Steps 1-4: the claims of a validly signed, well-formed, current EAR.

        ``media_type``: the type the token was labelled with, if any; its ``eat_profile``
        must then be the token's.
        """
        text = _token_text(token)
        self._check_header(text)
        claims = decode_claims(parse_claims_json(self._verified_payload(text)))
        if claims.profile not in self.expected_profiles:
            raise EvidenceInvalid(f"EAR: profile {claims.profile!r} is not accepted")
        if media_type is not None:
            labelled = ear_profile_of_media_type(media_type)
            if labelled != claims.profile:
                raise EvidenceInvalid(
                    f"EAR: media type names profile {labelled!r}, the token's eat_profile "
                    f"is {claims.profile!r}"
                )
        self._check_time(claims, now)
        return claims

    def verify(
        self,
        token: bytes | str,
        *,
        now: float,
        expected_nonce: bytes,
        media_type: str | None = None,
    ) -> EarAttestation:
        """All checks; the accepted result, or EvidenceInvalid/BindingMismatch/PolicyRejected.

        ``media_type``: see :meth:`decode`; the result's ``media_type`` is it, or by default the
        EAR media type of the token's profile.
        """
        claims = self.decode(token, now=now, media_type=media_type)
        self._check_nonce(claims, expected_nonce)
        status, trust_vector = self._check_status(claims)
        raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
        return EarAttestation(
            verified_at=now,
            media_type=media_type if media_type is not None else _media_type_of(claims.profile),
            token=raw,
            issuer=str(claims.verifier_id),
            claims=claims,
            submodule=self.submodule,
            status=status,
            trust_vector=trust_vector,
        )
