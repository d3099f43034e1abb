"""draft-ietf-rats-ear-03, the EAR profile attquic issues: the draft's own examples (copied to
tests/data/ear/, see tests/data/README.md), every -03 shape rule broken once, the binding and
media-type checks, and hypothesis properties of the -03 claim set."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey

from attquic import profile
from attquic.cmw import CMWRecord
from attquic.ear import (
    ACCEPTED_PROFILES,
    IETF_EAR_MEDIA_TYPE,
    IETF_PROFILE,
    VERAISON_EAR_MEDIA_TYPE,
    Appraisal,
    EarChannelVerifier,
    EarClaims,
    EarVerifier,
    Status,
    TrustVector,
    VerifierId,
    decode_claims,
    ear_media_type,
    encode_claims,
    generate_signing_key,
    issue_ear,
)
from attquic.errors import BindingMismatch, ConfigurationError, EvidenceInvalid, PolicyRejected
from attquic.keyschedule import Binding

DATA = Path(__file__).resolve().parent / "data" / "ear" / "draft-ietf-rats-ear-03"
KEY = generate_signing_key()
NONCE = bytes(range(32))
POLICY = "https://veraison.example/policy/1/60a0068d"
VERAISON_ID = VerifierId("https://veraison-project.org", "vts 0.0.1")

#: example file -> {submod label: (status, trust vector)}
EXAMPLES: dict[str, dict[str, tuple[Status, TrustVector]]] = {
    "ear-json-1.diag": {
        "PSA": (
            Status.CONTRAINDICATED,
            TrustVector(instance_identity=2, executables=96, hardware=2),
        )
    },
    "ear-json-2.diag": {
        "CCA Platform": (
            Status.AFFIRMING,
            TrustVector(instance_identity=2, executables=2, hardware=2),
        ),
        "CCA Realm": (Status.AFFIRMING, TrustVector(instance_identity=2)),
    },
    "ext-teep-json-1.diag": {
        "PSA": (
            Status.CONTRAINDICATED,
            TrustVector(instance_identity=2, executables=96, hardware=2),
        )
    },
    "ext-veraison-json-1.diag": {
        "PSA_IOT": (
            Status.CONTRAINDICATED,
            TrustVector(instance_identity=2, executables=96, hardware=2),
        )
    },
    "ext-veraison-json-2.diag": {
        "PARSEC_TPM": (
            Status.AFFIRMING,
            TrustVector(instance_identity=2, executables=2, hardware=2),
        )
    },
}


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict[str, Any], key: ECKey = KEY) -> str:
    """A compact JWS over exactly these claims (no re-encoding through the model)."""
    payload = json.dumps(claims).encode()
    return jws.serialize_compact({"alg": "ES256", "typ": "JWT"}, payload, key, algorithms=["ES256"])


def bound(claims: dict[str, Any], nonce: bytes = NONCE) -> dict[str, Any]:
    """The example as a relying party would get it: with an eat_nonce (the examples have none)."""
    return dict(claims, eat_nonce=b64url(nonce))


# --- the draft's examples ----------------------------------------------------------------------


def test_every_example_file_is_read() -> None:
    names = {path.name for path in DATA.iterdir()}
    assert names == set(EXAMPLES) | {"appendix-b-opa-input.json"}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_draft_example_decodes_with_its_values(name: str) -> None:
    raw = load(name)
    claims = decode_claims(raw)
    assert claims.profile == IETF_PROFILE == "tag:ietf.org,2026:rats/ear#03"
    assert claims.iat == raw["iat"] and claims.exp is None and claims.status is None
    assert claims.verifier_id == VERAISON_ID
    assert claims.raw_evidence == base64.urlsafe_b64decode(raw["ear_raw_evidence"])
    assert claims.nonce is None
    assert set(claims.submods) == set(EXAMPLES[name])
    for label, (status, vector) in EXAMPLES[name].items():
        appraisal = claims.submods[label]
        assert appraisal.status is status
        assert appraisal.trust_vector == vector
        assert appraisal.policy_ids == (POLICY,)
        assert appraisal.profile is None and appraisal.nonce is None


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_draft_example_reencodes_to_the_same_json(name: str) -> None:
    raw = load(name)
    assert encode_claims(decode_claims(raw)) == raw


def test_draft_extensions_are_kept_uninterpreted() -> None:
    teep = decode_claims(load("ext-teep-json-1.diag")).submods["PSA"].extensions
    assert teep["ear_teep_claims"]["eat_nonce"] == "80FH7byS7VjfARIq0_KLqu6B9j-F79QtV6p"
    assert teep["ear_teep_claims"]["hwversion"] == ["1.2.5", 16384]
    veraison = decode_claims(load("ext-veraison-json-1.diag")).submods["PSA_IOT"].extensions
    assert set(veraison) == {"ear_veraison_annotated_evidence", "ear_veraison_policy_claims"}
    parsec = decode_claims(load("ext-veraison-json-2.diag")).submods["PARSEC_TPM"].extensions
    assert parsec == {"ear_veraison_key_attestation": {"akpub": "MFkwEwYHKoZIzj0CAQYIKoZIz___"}}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_signed_draft_example_is_accepted_or_refused_by_its_status(name: str) -> None:
    raw = bound(load(name))
    token = sign(raw)
    for label, (status, vector) in EXAMPLES[name].items():
        verifier = EarVerifier([KEY], submodule=label)
        if status is Status.AFFIRMING:
            result = verifier.verify(token, now=raw["iat"], expected_nonce=NONCE)
            assert result.status is Status.AFFIRMING and result.trust_vector == vector
            assert result.media_type == IETF_EAR_MEDIA_TYPE
            assert result.issuer == "https://veraison-project.org vts 0.0.1"
        else:
            with pytest.raises(PolicyRejected, match="contraindicated"):
                verifier.verify(token, now=raw["iat"], expected_nonce=NONCE)
        with pytest.raises(BindingMismatch):
            verifier.verify(token, now=raw["iat"], expected_nonce=bytes(32))


@pytest.mark.anyio
async def test_signed_draft_example_through_the_channel_verifier() -> None:
    raw = bound(load("ext-veraison-json-2.diag"))
    cmw = CMWRecord(IETF_EAR_MEDIA_TYPE, sign(raw).encode(), profile.IND_ATTESTATION_RESULTS)
    binding = Binding(hash_name="sha256", binding=NONCE, aik_pub_hash=bytes(32))
    channel = EarChannelVerifier(EarVerifier([KEY], submodule="PARSEC_TPM"))
    result = await channel.verify(cmw, binding, now=raw["iat"])
    assert result.claims.submods["PARSEC_TPM"].status is Status.AFFIRMING
    # The draft's section 5 spells the type "application/eat-jwt"; RFC 9782 registers
    # "application/eat+jwt", and only that one is an EAR record here.
    draft_spelling = f'application/eat-jwt; eat_profile="{IETF_PROFILE}"'
    with pytest.raises(EvidenceInvalid, match="not an EAR"):
        await channel.verify(CMWRecord(draft_spelling, cmw.value, 8), binding, now=raw["iat"])


def test_appendix_b_token_has_a_valid_signature_and_a_forbidden_float_iat() -> None:
    """The draft's own OPA example: signed correctly, but its iat is 1.666529184e+09, and the
    draft (section 3, after RFC 9711) disallows the floating-point representation."""
    example = load("appendix-b-opa-input.json")
    token, (key,) = example["ear_token"], example["trusted_verifiers"]["keys"]
    assert jws.deserialize_compact(token, ECKey.import_key(key), algorithms=["ES256"]).payload
    verifier = EarVerifier([key], expected_profile=("tag:github.com,2023:veraison/ear",))
    with pytest.raises(EvidenceInvalid, match="'iat' must be a non-negative integer"):
        verifier.decode(token, now=1_677_247_879)


# --- each -03 shape rule, broken once on a draft example ----------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _platform(claims: dict[str, Any]) -> dict[str, Any]:
    platform: dict[str, Any] = claims["submods"]["CCA Platform"]
    return platform


SHAPE_RULES: dict[str, tuple[Mutation, str]] = {
    "empty policy ids": (
        lambda c: _platform(c).update(ear_appraisal_policy_ids=[]),
        "must not be empty",
    ),
    "policy ids as text": (
        lambda c: _platform(c).update(ear_appraisal_policy_ids=POLICY),
        "array of text",
    ),
    "policy id not text": (
        lambda c: _platform(c).update(ear_appraisal_policy_ids=[POLICY, 1]),
        "array of text",
    ),
    "empty vector": (
        lambda c: _platform(c).update(ear_trustworthiness_vector={}),
        "must not be empty",
    ),
    "vector claim out of range": (
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(hardware=128),
        "trustworthiness claim",
    ),
    "vector claim unknown": (
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(firmware=2),
        "unknown trustworthiness claim",
    ),
    "padded raw evidence": (lambda c: c.update(ear_raw_evidence="AAE="), "unpadded"),
    "raw evidence not text": (lambda c: c.update(ear_raw_evidence=[1]), "unpadded"),
    "empty raw evidence": (lambda c: c.update(ear_raw_evidence=""), "unpadded"),
    "appraisal profile not text": (lambda c: _platform(c).update(eat_profile=7), "must be text"),
    "appraisal profile empty": (lambda c: _platform(c).update(eat_profile=""), "not be empty"),
    "appraisal nonce short": (lambda c: _platform(c).update(eat_nonce="AAAA"), "8..64"),
    "appraisal nonce long": (lambda c: _platform(c).update(eat_nonce=b64url(bytes(65))), "8..64"),
    "appraisal nonce not base64url": (
        lambda c: _platform(c).update(eat_nonce="not base64url!"),
        "base64url",
    ),
    "affirming over a contraindicated claim": (
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(executables=96),
        "claims more trust",
    ),
    "affirming over a warning claim": (
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(hardware=32),
        "claims more trust",
    ),
    "affirming over a negative contraindicated claim": (
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(hardware=-128),
        "claims more trust",
    ),
    "warning over a contraindicated claim": (
        lambda c: _platform(c).update(
            ear_status="warning", ear_trustworthiness_vector={"executables": 99}
        ),
        "claims more trust",
    ),
    "overall affirming over a warning submod": (
        lambda c: (
            c.update(ear_status="affirming"),
            _platform(c).update(ear_status="warning", ear_trustworthiness_vector={"hardware": 32}),
        ),
        "claims more trust than submod 'CCA Platform'",
    ),
    "overall warning over a contraindicated submod": (
        lambda c: (
            c.update(ear_status="warning"),
            _platform(c).update(ear_status="contraindicated"),
        ),
        "claims more trust than submod",
    ),
    "status in CBOR's integer form": (lambda c: _platform(c).update(ear_status=2), "status"),
    "status in capitals": (lambda c: _platform(c).update(ear_status="AFFIRMING"), "status"),
    "overall status unknown": (lambda c: c.update(ear_status="trusted"), "unknown status"),
    "appraisal without status": (lambda c: _platform(c).pop("ear_status"), "no ear_status"),
    "exp equal to iat": (lambda c: c.update(exp=c["iat"]), "exp is not after iat"),
    "exp before iat": (lambda c: c.update(exp=c["iat"] - 1), "exp is not after iat"),
    "float iat": (lambda c: c.update(iat=float(c["iat"])), "'iat'"),
    "negative iat": (lambda c: c.update(iat=-1), "'iat'"),
    "float exp": (lambda c: c.update(exp=c["iat"] + 0.5), "'exp'"),
    "verifier id with an extra member": (
        lambda c: c["ear_verifier_id"].update(version="1"),
        "verifier id",
    ),
    "verifier id build not text": (lambda c: c["ear_verifier_id"].update(build=1), "text"),
    "Veraison's verifier id name only": (
        lambda c: c.update({"ear.verifier-id": c.pop("ear_verifier_id")}),
        "missing claim 'ear_verifier_id'",
    ),
    "no submods": (lambda c: c.pop("submods"), "submods"),
    "empty submods": (lambda c: c.update(submods={}), "submods"),
    "appraisal not an object": (lambda c: c["submods"].update(x=["affirming"]), "not an object"),
    "no iat": (lambda c: c.pop("iat"), "'iat'"),
    "eat_nonce too long": (lambda c: c.update(eat_nonce=b64url(bytes(65))), "eat_nonce"),
    "eat_nonce as an array": (lambda c: c.update(eat_nonce=[b64url(NONCE)]), "eat_nonce"),
}


@pytest.mark.parametrize("rule", list(SHAPE_RULES))
def test_each_draft03_shape_rule_is_enforced(rule: str) -> None:
    mutate, match = SHAPE_RULES[rule]
    claims = bound(load("ear-json-2.diag"))
    decode_claims(claims)  # the unmutated example passes: the mutation is what fails
    mutate(claims)
    with pytest.raises(EvidenceInvalid, match=match):
        decode_claims(claims)
    with pytest.raises(EvidenceInvalid):
        EarVerifier([KEY], submodule="CCA Realm").verify(
            sign(claims), now=claims.get("iat", 0), expected_nonce=NONCE
        )


@pytest.mark.parametrize(
    "mutate",
    [
        # "none" makes no claim: not compared with the vector or the submods
        lambda c: _platform(c).update(ear_status="none"),
        lambda c: c.update(ear_status="none"),
        # a vector claim of tier none (-1..1) does not limit the status
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(
            {"file-system": 0, "hardware": -1}
        ),
        # less trust than the vector or the submods is allowed
        lambda c: _platform(c).update(ear_status="contraindicated"),
        lambda c: c.update(ear_status="contraindicated"),
        lambda c: c.update(ear_status="affirming"),
        # negative affirming claims
        lambda c: _platform(c)["ear_trustworthiness_vector"].update(hardware=-32),
        # extensions and unknown claims are ignored, also Veraison's dotted names
        lambda c: _platform(c).update({"ear.status": "contraindicated", "x_ext": {"a": 1}}),
        lambda c: c.update({"ear.status": "contraindicated", "x_top": 1}),
        lambda c: _platform(c).update(
            eat_profile="tag:example.com,2026:tdx", eat_nonce=b64url(NONCE)
        ),
        lambda c: c.update(exp=c["iat"] + 1, nbf=c["iat"]),
        lambda c: c.update(ear_raw_evidence="-_8"),
    ],
)
def test_what_draft03_allows_is_accepted(mutate: Mutation) -> None:
    claims = bound(load("ear-json-2.diag"))
    mutate(claims)
    decoded = decode_claims(claims)
    assert decoded.submods["CCA Realm"].status is Status.AFFIRMING
    assert encode_claims(decoded) == claims


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        (-128, Status.CONTRAINDICATED),
        (-97, Status.CONTRAINDICATED),
        (-96, Status.WARNING),
        (-33, Status.WARNING),
        (-32, Status.AFFIRMING),
        (-2, Status.AFFIRMING),
        (-1, Status.NONE),
        (0, Status.NONE),
        (1, Status.NONE),
        (2, Status.AFFIRMING),
        (31, Status.AFFIRMING),
        (32, Status.WARNING),
        (95, Status.WARNING),
        (96, Status.CONTRAINDICATED),
        (127, Status.CONTRAINDICATED),
    ],
)
def test_tier_of_a_trustworthiness_claim(value: int, tier: Status) -> None:
    assert Status.of_claim(value) is tier


# --- binding and media type ---------------------------------------------------------------------


def _claims03(*, tdx_nonce: bytes | None = NONCE, other_nonce: bytes | None = None) -> EarClaims:
    vector = TrustVector(instance_identity=2, hardware=2)
    submods = {"tdx": Appraisal(Status.AFFIRMING, vector, ("p",), nonce=tdx_nonce)}
    if other_nonce is not None:
        submods["gpu"] = Appraisal(Status.AFFIRMING, vector, ("p",), nonce=other_nonce)
    return EarClaims(
        profile=IETF_PROFILE,
        iat=1_800_000_000,
        exp=1_800_000_300,
        verifier_id=VerifierId("attquic tests", "1"),
        submods=submods,
        status=Status.AFFIRMING,
        nonce=NONCE,
    )


def test_required_appraisal_nonce_must_be_the_binding_too() -> None:
    verifier = EarVerifier([KEY])
    now = 1_800_000_000
    assert verifier.verify(issue_ear(_claims03(), KEY), now=now, expected_nonce=NONCE)
    assert verifier.verify(issue_ear(_claims03(tdx_nonce=None), KEY), now=now, expected_nonce=NONCE)
    with pytest.raises(BindingMismatch, match="submod 'tdx' eat_nonce"):
        verifier.verify(
            issue_ear(_claims03(tdx_nonce=bytes(32)), KEY), now=now, expected_nonce=NONCE
        )
    # another attester's evidence nonce is its own business
    other = issue_ear(_claims03(other_nonce=bytes(16)), KEY)
    assert verifier.verify(other, now=now, expected_nonce=NONCE).submodule == "tdx"


@pytest.mark.parametrize(
    "media_type",
    [
        VERAISON_EAR_MEDIA_TYPE,
        "application/eat+jwt",
        'application/eat+jwt; eat_profile="tag:ietf.org,2026:rats/ear#02"',
        "application/jwt",
    ],
)
def test_media_type_must_name_the_tokens_profile(media_type: str) -> None:
    token = issue_ear(_claims03(), KEY)
    with pytest.raises(EvidenceInvalid, match="media type names profile"):
        EarVerifier([KEY]).verify(
            token, now=1_800_000_000, expected_nonce=NONCE, media_type=media_type
        )
    for spelling in (IETF_EAR_MEDIA_TYPE, f"Application/EAT+JWT;EAT_PROFILE={IETF_PROFILE}"):
        result = EarVerifier([KEY]).verify(
            token, now=1_800_000_000, expected_nonce=NONCE, media_type=spelling
        )
        assert result.media_type == spelling


def test_media_type_constants() -> None:
    assert profile.EAR_JWT_MEDIA_TYPE == IETF_EAR_MEDIA_TYPE
    # the wire profile object names the same EAR profile, media type and accepted profiles
    assert profile.ATTQUIC_2.ear_profile == IETF_PROFILE
    assert profile.ATTQUIC_2.passport_media_type == IETF_EAR_MEDIA_TYPE
    assert profile.ATTQUIC_2.accepted_ear_profiles == set(ACCEPTED_PROFILES)
    assert IETF_EAR_MEDIA_TYPE == 'application/eat+jwt; eat_profile="tag:ietf.org,2026:rats/ear#03"'
    assert VERAISON_EAR_MEDIA_TYPE == (
        'application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"'
    )
    assert ear_media_type(IETF_PROFILE) == IETF_EAR_MEDIA_TYPE
    for bad in ('a"b', "a;b c", ""):
        with pytest.raises(ConfigurationError):
            ear_media_type(bad)


def test_veraison_dialect_cannot_carry_appraisal_eat_claims() -> None:
    claims = _claims03()
    with pytest.raises(ValueError, match="Veraison"):
        encode_claims(
            EarClaims(**{**claims.__dict__, "profile": "tag:github.com,2023:veraison/ear"})
        )


# --- properties ---------------------------------------------------------------------------------

_INT8 = st.integers(-128, 127)
_TEXT = st.text(min_size=1, max_size=12)


@st.composite
def _appraisals(draw: st.DrawFn) -> Appraisal:
    vector = draw(
        st.builds(
            TrustVector,
            instance_identity=st.none() | _INT8,
            configuration=st.none() | _INT8,
            executables=st.none() | _INT8,
            hardware=st.none() | _INT8,
            sourced_data=st.none() | _INT8,
        ).filter(lambda v: bool(v.to_json()))
        | st.none()
    )
    worst = vector.worst_tier() if vector is not None else None
    allowed = [s for s in Status if worst is None or not s.claims_more_than(worst)]
    return Appraisal(
        status=draw(st.sampled_from(allowed)),
        trust_vector=vector,
        policy_ids=tuple(draw(st.lists(_TEXT, max_size=3))),
        profile=draw(st.none() | _TEXT),
        nonce=draw(st.none() | st.binary(min_size=8, max_size=64)),
    )


@st.composite
def _claims_sets(draw: st.DrawFn) -> EarClaims:
    submods = draw(st.dictionaries(_TEXT, _appraisals(), min_size=1, max_size=3))
    statuses = [a.status for a in submods.values()]
    top = [s for s in Status if not any(s.claims_more_than(t) for t in statuses)]
    iat = draw(st.integers(0, 2**40))
    return EarClaims(
        profile=IETF_PROFILE,
        iat=iat,
        exp=draw(st.none() | st.integers(iat + 1, iat + 2**20)),
        nbf=draw(st.none() | st.integers(0, 2**40)),
        verifier_id=VerifierId(draw(st.text(max_size=8)), draw(st.text(max_size=8))),
        submods=submods,
        status=draw(st.none() | st.sampled_from(top)),
        nonce=draw(st.none() | st.binary(min_size=8, max_size=64)),
        raw_evidence=draw(st.none() | st.binary(min_size=1, max_size=40)),
    )


@settings(max_examples=100, deadline=None)
@given(_claims_sets())
def test_every_valid_draft03_claims_set_round_trips(claims: EarClaims) -> None:
    encoded = json.loads(json.dumps(encode_claims(claims)))
    assert not any(key.startswith("ear.") for key in encoded)
    assert decode_claims(encoded) == claims


_REQUIRED_TOP = ("eat_profile", "iat", "ear_verifier_id", "submods")


@settings(max_examples=100, deadline=None)
@given(_claims_sets(), st.sampled_from(_REQUIRED_TOP), st.data())
def test_dropping_a_required_claim_is_always_refused(
    claims: EarClaims, name: str, data: st.DataObject
) -> None:
    encoded = encode_claims(claims)
    del encoded[name]
    with pytest.raises(EvidenceInvalid):
        decode_claims(encoded)
    label = data.draw(st.sampled_from(sorted(claims.submods)))
    encoded = encode_claims(claims)
    del encoded["submods"][label]["ear_status"]
    with pytest.raises(EvidenceInvalid):
        decode_claims(encoded)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_TOP_SLOTS = ("eat_profile", "iat", "exp", "nbf", "ear_verifier_id", "ear_status", "eat_nonce",
              "ear_raw_evidence", "submods")  # fmt: skip
_APPRAISAL_SLOTS = ("ear_status", "ear_trustworthiness_vector", "ear_appraisal_policy_ids",
                    "eat_profile", "eat_nonce")  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_claims_sets(), st.sampled_from(_TOP_SLOTS + _APPRAISAL_SLOTS), _JSON, st.booleans())
def test_any_value_in_any_draft03_slot_raises_only_evidence_invalid(
    claims: EarClaims, slot: str, value: object, in_appraisal: bool
) -> None:
    encoded = copy.deepcopy(encode_claims(claims))
    if in_appraisal and slot in _APPRAISAL_SLOTS:
        target = encoded["submods"][sorted(encoded["submods"])[0]]
    else:
        target = encoded
    target[slot] = value
    with contextlib.suppress(EvidenceInvalid):
        decoded = decode_claims(encoded)
        # whatever is accepted is a well-formed -03 claims-set that encodes back
        assert decode_claims(json.loads(json.dumps(encode_claims(decoded)))) == decoded


@settings(max_examples=50, deadline=None)
@given(_claims_sets())
def test_signed_draft03_claims_verify_only_for_their_nonce(claims: EarClaims) -> None:
    tdx = Appraisal(Status.AFFIRMING, TrustVector(hardware=2), nonce=NONCE)
    claims = EarClaims(**{**claims.__dict__, "submods": {**claims.submods, "tdx": tdx}})
    claims = EarClaims(**{**claims.__dict__, "nonce": NONCE, "status": None, "exp": None})
    claims = EarClaims(**{**claims.__dict__, "nbf": None})
    token = issue_ear(claims, KEY)
    verifier = EarVerifier([KEY], required_status="none")
    assert verifier.verify(token, now=claims.iat, expected_nonce=NONCE).claims == claims
    with pytest.raises(BindingMismatch):
        verifier.verify(token, now=claims.iat, expected_nonce=bytes(32))
