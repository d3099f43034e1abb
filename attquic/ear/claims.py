"""EAR (EAT Attestation Results) claims: a typed model and its JSON claims-set encoding.

Two JSON dialects exist (see docs/passport.md):

* draft-ietf-rats-ear-03: ``eat_profile`` = :data:`IETF_PROFILE`, underscore names
  (``ear_status``, ``ear_verifier_id``, ``ear_trustworthiness_vector``,
  ``ear_appraisal_policy_ids`` (a non-empty array), ``ear_raw_evidence``), and per appraisal an
  optional ``eat_profile`` and ``eat_nonce``. attquic issues this one by default.
* Veraison: ``eat_profile`` = :data:`VERAISON_PROFILE`, dotted claim names (``ear.status``,
  ``ear.verifier-id``, ``ear.trustworthiness-vector``, ``ear.appraisal-policy-id`` (one string),
  ``ear.raw-evidence``). Still accepted, and issued on request.

The profile decides which names apply (:func:`encode_claims` writes the dialect of
``claims.profile``). :func:`decode_claims` accepts both; a -03 claims-set must also meet the
draft's shape rules (:func:`decode_claims` lists them). Every malformed claims-set raises
:class:`~attquic.errors.EvidenceInvalid` and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from attquic.errors import EvidenceInvalid

__all__ = [
    "IETF_PROFILE",
    "VERAISON_PROFILE",
    "Appraisal",
    "Dialect",
    "EarClaims",
    "Status",
    "TrustVector",
    "VerifierId",
    "b64url_decode",
    "b64url_encode",
    "decode_claims",
    "encode_claims",
    "parse_claims_json",
]

#: Profile of the Veraison EAR libraries and services (dotted claim names).
VERAISON_PROFILE: Final = "tag:github.com,2023:veraison/ear"
#: Profile of draft-ietf-rats-ear-03 (underscore claim names).
IETF_PROFILE: Final = "tag:ietf.org,2026:rats/ear#03"

_NONCE_MIN, _NONCE_MAX = 8, 64
_INT8_MIN, _INT8_MAX = -128, 127
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
#: The draft's ``binary-data`` in JSON: base64url text, no padding, not empty.
_B64URL_STRICT = re.compile(r"[A-Za-z0-9_-]+")


class Status(enum.IntEnum):
    """AR4SI trustworthiness tier of an appraisal (higher numbers are worse, except NONE)."""

    NONE = 0
    AFFIRMING = 2
    WARNING = 32
    CONTRAINDICATED = 96

    @property
    def json_name(self) -> str:
        """The JSON spelling: "none", "affirming", "warning" or "contraindicated"."""
        return self.name.lower()

    @classmethod
    def from_json(cls, value: object) -> Status:
        if isinstance(value, str):
            for member in cls:
                if member.json_name == value:
                    return member
        raise EvidenceInvalid(f"EAR: unknown status {value!r}")

    @classmethod
    def of_claim(cls, value: int) -> Status:
        """The tier of one trustworthiness claim value (-128..127).

        none -1..1; affirming 2..31 and -32..-2; warning 32..95 and -96..-33; contraindicated
        96..127 and -128..-97 (AR4SI's ranges, as the Veraison libraries implement them).
        """
        if -1 <= value <= 1:
            return cls.NONE
        if 2 <= value <= 31 or -32 <= value <= -2:
            return cls.AFFIRMING
        if 32 <= value <= 95 or -96 <= value <= -33:
            return cls.WARNING
        return cls.CONTRAINDICATED

    def claims_more_than(self, other: Status) -> bool:
        """Whether this tier states more trust than ``other`` (for the draft's "no higher
        trust than" rules): affirming > warning > contraindicated. ``NONE`` makes no claim and
        is never compared, so this is False when either side is ``NONE``.
        """
        if self is Status.NONE or other is Status.NONE:
            return False
        return self < other

    def satisfies(self, required: Status) -> bool:
        """Whether this tier meets ``required``.

        ``NONE`` required means "no requirement". Otherwise the tier must be a real verdict
        (not ``NONE``) at least as good as ``required``: with ``AFFIRMING`` required only
        ``AFFIRMING`` passes; with ``WARNING`` required, ``AFFIRMING`` and ``WARNING`` pass.
        """
        if required is Status.NONE:
            return True
        return self is not Status.NONE and self <= required


class Dialect(enum.Enum):
    """Which JSON claim names a claims-set uses."""

    VERAISON = "veraison"
    IETF = "ietf"

    @classmethod
    def for_profile(cls, profile: str) -> Dialect:
        """The dialect attquic writes for ``profile`` (IETF for the draft's, else Veraison)."""
        return cls.IETF if profile == IETF_PROFILE else cls.VERAISON


@dataclass(frozen=True)
class _Names:
    status: str
    verifier_id: str
    trust_vector: str
    policy_ids: str
    raw_evidence: str
    policy_ids_is_array: bool
    appraisal_eat_claims: bool
    """Whether appraisals carry their own ``eat_profile`` and ``eat_nonce`` (-03)."""


_NAMES: Final = {
    Dialect.VERAISON: _Names(
        "ear.status",
        "ear.verifier-id",
        "ear.trustworthiness-vector",
        "ear.appraisal-policy-id",
        "ear.raw-evidence",
        policy_ids_is_array=False,
        appraisal_eat_claims=False,
    ),
    Dialect.IETF: _Names(
        "ear_status",
        "ear_verifier_id",
        "ear_trustworthiness_vector",
        "ear_appraisal_policy_ids",
        "ear_raw_evidence",
        policy_ids_is_array=True,
        appraisal_eat_claims=True,
    ),
}

_STANDARD_TOP: Final = frozenset({"eat_profile", "iat", "exp", "nbf", "eat_nonce", "submods"})


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, what: str) -> bytes:
    """Decode base64url with or without padding; anything else raises EvidenceInvalid.

    Veraison services pad (Go ``base64.URLEncoding``), RFC 7515 does not: both are accepted.
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise EvidenceInvalid(f"EAR: {what} is not base64url text")
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1 or (text != unpadded and len(text) % 4 != 0):
        raise EvidenceInvalid(f"EAR: {what} has a bad base64url length")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise EvidenceInvalid(f"EAR: {what} is not base64url") from None


@dataclass(frozen=True)
class TrustVector:
    """AR4SI trustworthiness vector: each claim an int in -128..127, or None when absent."""

    instance_identity: int | None = None
    configuration: int | None = None
    executables: int | None = None
    file_system: int | None = None
    hardware: int | None = None
    runtime_opaque: int | None = None
    storage_opaque: int | None = None
    sourced_data: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not _INT8_MIN <= value <= _INT8_MAX
            ):
                raise EvidenceInvalid(f"EAR: trustworthiness claim {f.name} = {value!r}")

    def worst_tier(self) -> Status | None:
        """The least trustworthy tier among the claims that make one (not ``NONE``), or None."""
        tiers = [
            Status.of_claim(value)
            for value in (getattr(self, f.name) for f in fields(self))
            if value is not None and Status.of_claim(value) is not Status.NONE
        ]
        return max(tiers) if tiers else None

    def to_json(self) -> dict[str, int]:
        return {
            f.name.replace("_", "-"): getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    @classmethod
    def from_json(cls, value: object) -> TrustVector:
        if not isinstance(value, dict):
            raise EvidenceInvalid("EAR: trustworthiness vector is not an object")
        known = {f.name.replace("_", "-"): f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, claim in value.items():
            if key not in known:
                raise EvidenceInvalid(f"EAR: unknown trustworthiness claim {key!r}")
            kwargs[known[key]] = claim
        return cls(**kwargs)


@dataclass(frozen=True)
class VerifierId:
    """``ear.verifier-id``: who built the verifier and which build it is."""

    developer: str
    build: str

    def __str__(self) -> str:
        return f"{self.developer} {self.build}"

    @classmethod
    def from_json(cls, value: object) -> VerifierId:
        if not isinstance(value, dict) or set(value) != {"developer", "build"}:
            raise EvidenceInvalid("EAR: verifier id must be {developer, build}")
        developer, build = value["developer"], value["build"]
        if not isinstance(developer, str) or not isinstance(build, str):
            raise EvidenceInvalid("EAR: verifier id fields must be text")
        return cls(developer, build)


@dataclass(frozen=True)
class Appraisal:
    """One submodule's appraisal."""

    status: Status
    trust_vector: TrustVector | None = None
    policy_ids: tuple[str, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Claims this model does not interpret (e.g. ``ear_veraison_*``), as decoded JSON."""
    profile: str | None = None
    """-03 only: the appraisal's own ``eat_profile`` (a URI or OID as text), if present."""
    nonce: bytes | None = None
    """-03 only: the appraisal's ``eat_nonce``, the nonce of the appraised evidence (8..64
    bytes). attquic's service sets it to the session nonce when the quote committed to it."""

    def __post_init__(self) -> None:
        if self.nonce is not None and not _NONCE_MIN <= len(self.nonce) <= _NONCE_MAX:
            raise EvidenceInvalid(
                f"EAR: appraisal eat_nonce must be {_NONCE_MIN}..{_NONCE_MAX} bytes"
            )
        if self.profile is not None and not self.profile:
            raise EvidenceInvalid("EAR: appraisal eat_profile must not be empty")


@dataclass(frozen=True)
class EarClaims:
    """An EAR claims-set."""

    profile: str
    iat: int
    verifier_id: VerifierId
    submods: Mapping[str, Appraisal] = field(hash=False)
    exp: int | None = None
    nbf: int | None = None
    status: Status | None = None
    """Top-level ``ear.status`` (no better than the worst submodule), if present."""
    nonce: bytes | None = None
    """``eat_nonce`` (bytes; base64url in JSON)."""
    raw_evidence: bytes | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict, hash=False)
    spelling: Dialect | None = field(default=None, compare=False, repr=False)
    """The claim names this claims-set was decoded from (for profiles other than the two
    known ones, whose names decide); None: those of :attr:`profile`."""

    def __post_init__(self) -> None:
        if not self.submods:
            raise EvidenceInvalid("EAR: submods must not be empty")
        if self.nonce is not None and not _NONCE_MIN <= len(self.nonce) <= _NONCE_MAX:
            raise EvidenceInvalid(f"EAR: eat_nonce must be {_NONCE_MIN}..{_NONCE_MAX} bytes")
        if self.raw_evidence == b"" and self.dialect is Dialect.IETF:
            # -03's JSON binary-data is non-empty base64url text
            raise EvidenceInvalid("EAR: ear_raw_evidence must not be empty")
        object.__setattr__(self, "submods", MappingProxyType(dict(self.submods)))

    @property
    def dialect(self) -> Dialect:
        """The claim names to write: those of the profile, or those it was decoded from."""
        if self.profile in (IETF_PROFILE, VERAISON_PROFILE) or self.spelling is None:
            return Dialect.for_profile(self.profile)
        return self.spelling


# --- JSON decoding -----------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EvidenceInvalid(f"EAR: duplicate claim {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise EvidenceInvalid(f"EAR: non-finite number {name}")


def parse_claims_json(payload: bytes) -> dict[str, Any]:
    """Strict JSON: UTF-8, an object at the top, no duplicate names, no NaN/Infinity."""
    try:
        text = payload.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise EvidenceInvalid("EAR: claims-set is not valid JSON") from None
    except ValueError:  # an integer literal beyond Python's int_max_str_digits
        raise EvidenceInvalid("EAR: claims-set holds an integer too long to parse") from None
    if not isinstance(value, dict):
        raise EvidenceInvalid("EAR: claims-set is not a JSON object")
    return value


def _int_claim(claims: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    if name not in claims:
        if required:
            raise EvidenceInvalid(f"EAR: missing claim {name!r}")
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise EvidenceInvalid(f"EAR: claim {name!r} must be a non-negative integer")
    return value


def _detect_dialect(claims: Mapping[str, Any]) -> Dialect:
    if claims.get("eat_profile") == IETF_PROFILE:
        return Dialect.IETF
    if claims.get("eat_profile") == VERAISON_PROFILE:
        return Dialect.VERAISON
    # Other profiles (e.g. Trustee's) reuse one of the two spellings; pick by the verifier id.
    if _NAMES[Dialect.IETF].verifier_id in claims:
        return Dialect.IETF
    return Dialect.VERAISON


def _is_draft03(claims: Mapping[str, Any]) -> bool:
    """Whether the claims-set names the -03 profile (its shape rules then apply)."""
    return claims.get("eat_profile") == IETF_PROFILE


def _decode_policy_ids(value: object, names: _Names) -> tuple[str, ...]:
    if names.policy_ids_is_array:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EvidenceInvalid(f"EAR: {names.policy_ids} must be an array of text")
        if not value:
            raise EvidenceInvalid(f"EAR: {names.policy_ids} must not be empty")
        return tuple(value)
    if not isinstance(value, str):
        raise EvidenceInvalid(f"EAR: {names.policy_ids} must be text")
    return (value,)


def _decode_trust_vector(value: object, *, strict: bool) -> TrustVector:
    vector = TrustVector.from_json(value)
    if strict and not vector.to_json():
        raise EvidenceInvalid("EAR: ear_trustworthiness_vector must not be empty")
    return vector


def _decode_appraisal(label: str, value: object, names: _Names, *, strict: bool) -> Appraisal:
    if not isinstance(value, dict):
        raise EvidenceInvalid(f"EAR: submod {label!r} is not an object")
    if names.status not in value:
        raise EvidenceInvalid(f"EAR: submod {label!r} has no {names.status}")
    status = Status.from_json(value[names.status])
    trust_vector = (
        _decode_trust_vector(value[names.trust_vector], strict=strict)
        if names.trust_vector in value
        else None
    )
    policy_ids = (
        _decode_policy_ids(value[names.policy_ids], names) if names.policy_ids in value else ()
    )
    known = {names.status, names.trust_vector, names.policy_ids}
    profile: str | None = None
    nonce: bytes | None = None
    if strict:
        known |= {"eat_profile", "eat_nonce"}
        if "eat_profile" in value:
            profile = value["eat_profile"]
            if not isinstance(profile, str):
                raise EvidenceInvalid(f"EAR: submod {label!r} eat_profile must be text")
        if "eat_nonce" in value:
            nonce = b64url_decode(value["eat_nonce"], f"submod {label!r} eat_nonce")
        worst = trust_vector.worst_tier() if trust_vector is not None else None
        if worst is not None and status.claims_more_than(worst):
            raise EvidenceInvalid(
                f"EAR: submod {label!r} status {status.json_name} claims more trust than its "
                f"trustworthiness vector ({worst.json_name})"
            )
    extensions = {k: v for k, v in value.items() if k not in known}
    return Appraisal(status, trust_vector, policy_ids, MappingProxyType(extensions), profile, nonce)


def decode_claims(claims: Mapping[str, Any]) -> EarClaims:
    """Build :class:`EarClaims` from a decoded JSON claims-set (either dialect).

    Both dialects: ``eat_profile`` text; ``iat`` (and ``exp``, ``nbf`` if present) a
    non-negative integer, never a float; the verifier id exactly ``{developer, build}`` as
    text; ``submods`` a non-empty object of appraisals, each with a known status tier (JSON
    text) and, if present, a trustworthiness vector of known claims in -128..127;
    ``eat_nonce`` base64url of 8..64 bytes; raw evidence base64url.

    A -03 claims-set (``eat_profile`` = :data:`IETF_PROFILE`) must also have: a non-empty
    trustworthiness vector and policy-id array; ``ear_raw_evidence`` as unpadded base64url;
    appraisal ``eat_profile`` text and appraisal ``eat_nonce`` of 8..64 bytes; each appraisal
    status no more trustworthy than the worst claim of its vector; the top-level
    ``ear_status`` no more trustworthy than the worst appraisal; ``exp`` after ``iat``.
    Unknown claims are kept uninterpreted (the draft: "a receiver MUST ignore any unknown
    claim").
    """
    dialect = _detect_dialect(claims)
    names = _NAMES[dialect]
    strict = _is_draft03(claims)
    profile = claims.get("eat_profile")
    if not isinstance(profile, str):
        raise EvidenceInvalid("EAR: missing or non-text eat_profile")
    iat = _int_claim(claims, "iat", required=True)
    assert iat is not None
    exp = _int_claim(claims, "exp", required=False)
    if strict and exp is not None and exp <= iat:
        raise EvidenceInvalid("EAR: exp is not after iat")
    if names.verifier_id not in claims:
        raise EvidenceInvalid(f"EAR: missing claim {names.verifier_id!r}")
    verifier_id = VerifierId.from_json(claims[names.verifier_id])
    submods_json = claims.get("submods")
    if not isinstance(submods_json, dict) or not submods_json:
        raise EvidenceInvalid("EAR: submods must be a non-empty object")
    submods = {
        label: _decode_appraisal(label, value, names, strict=strict)
        for label, value in submods_json.items()
    }
    status = Status.from_json(claims[names.status]) if names.status in claims else None
    if strict and status is not None:
        for label, appraisal in submods.items():
            if status.claims_more_than(appraisal.status):
                raise EvidenceInvalid(
                    f"EAR: ear_status {status.json_name} claims more trust than submod "
                    f"{label!r} ({appraisal.status.json_name})"
                )
    nonce = b64url_decode(claims["eat_nonce"], "eat_nonce") if "eat_nonce" in claims else None
    raw_evidence: bytes | None = None
    if names.raw_evidence in claims:
        raw_text = claims[names.raw_evidence]
        if strict and not (isinstance(raw_text, str) and _B64URL_STRICT.fullmatch(raw_text)):
            raise EvidenceInvalid(f"EAR: {names.raw_evidence} must be unpadded base64url text")
        raw_evidence = b64url_decode(raw_text, names.raw_evidence)
    known = _STANDARD_TOP | {names.status, names.verifier_id, names.raw_evidence}
    extensions = {k: v for k, v in claims.items() if k not in known}
    return EarClaims(
        profile=profile,
        iat=iat,
        verifier_id=verifier_id,
        submods=submods,
        exp=exp,
        nbf=_int_claim(claims, "nbf", required=False),
        status=status,
        nonce=nonce,
        raw_evidence=raw_evidence,
        extensions=MappingProxyType(extensions),
        spelling=dialect,
    )


# --- JSON encoding -----------------------------------------------------------------------------


def _encode_appraisal(appraisal: Appraisal, names: _Names) -> dict[str, Any]:
    out: dict[str, Any] = {names.status: appraisal.status.json_name}
    if appraisal.trust_vector is not None:
        out[names.trust_vector] = appraisal.trust_vector.to_json()
    if appraisal.policy_ids:
        if names.policy_ids_is_array:
            out[names.policy_ids] = list(appraisal.policy_ids)
        elif len(appraisal.policy_ids) == 1:
            out[names.policy_ids] = appraisal.policy_ids[0]
        else:
            raise ValueError("the Veraison dialect carries exactly one appraisal policy id")
    if appraisal.profile is not None or appraisal.nonce is not None:
        if not names.appraisal_eat_claims:
            raise ValueError("the Veraison dialect has no appraisal eat_profile or eat_nonce")
        if appraisal.profile is not None:
            out["eat_profile"] = appraisal.profile
        if appraisal.nonce is not None:
            out["eat_nonce"] = b64url_encode(appraisal.nonce)
    out.update(appraisal.extensions)
    return out


def encode_claims(claims: EarClaims, dialect: Dialect | None = None) -> dict[str, Any]:
    """The JSON claims-set; the dialect defaults to the one matching ``claims.profile``."""
    names = _NAMES[dialect or claims.dialect]
    out: dict[str, Any] = {
        "eat_profile": claims.profile,
        "iat": claims.iat,
        names.verifier_id: {
            "developer": claims.verifier_id.developer,
            "build": claims.verifier_id.build,
        },
        "submods": {
            label: _encode_appraisal(appraisal, names)
            for label, appraisal in claims.submods.items()
        },
    }
    if claims.exp is not None:
        out["exp"] = claims.exp
    if claims.nbf is not None:
        out["nbf"] = claims.nbf
    if claims.status is not None:
        out[names.status] = claims.status.json_name
    if claims.nonce is not None:
        out["eat_nonce"] = b64url_encode(claims.nonce)
    if claims.raw_evidence is not None:
        out[names.raw_evidence] = b64url_encode(claims.raw_evidence)
    out.update(claims.extensions)
    return out
