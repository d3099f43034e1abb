"""EAR claims, issue and verify: round trips, one negative test per check, and fuzzing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from attquic import profile
from attquic.attestation import IssuerAssertion, Verifier
from attquic.cmw import CMWCollection, CMWRecord
from attquic.ear import (
    IETF_PROFILE,
    VERAISON_PROFILE,
    Appraisal,
    Dialect,
    EarAttestation,
    EarChannelVerifier,
    EarClaims,
    EarVerifier,
    Status,
    TrustVector,
    VerifierId,
    decode_claims,
    ear_profile_of_media_type,
    encode_claims,
    generate_signing_key,
    issue_ear,
    load_private_key,
    load_public_key,
    public_jwk,
)
from attquic.errors import (
    AttquicError,
    BindingMismatch,
    ConfigurationError,
    EvidenceInvalid,
    PolicyRejected,
)
from attquic.keyschedule import Binding

NOW = 1_800_000_000
NONCE = bytes(range(32))
KEY = generate_signing_key()
OTHER_KEY = generate_signing_key()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_claims(
    *,
    status: Status = Status.AFFIRMING,
    nonce: bytes | None = NONCE,
    iat: int = NOW,
    exp: int | None = NOW + 300,
    profile_: str = IETF_PROFILE,
    submodule: str = "tdx",
) -> EarClaims:
    return EarClaims(
        profile=profile_,
        iat=iat,
        exp=exp,
        verifier_id=VerifierId("attquic tests", "0.1"),
        submods={
            submodule: Appraisal(
                status=status,
                trust_vector=TrustVector(instance_identity=2, hardware=2, executables=2),
                policy_ids=("policy:attquic/test",),
            )
        },
        nonce=nonce,
    )


def verifier(**kwargs: object) -> EarVerifier:
    return EarVerifier([KEY], **kwargs)  # type: ignore[arg-type]


# --- round trips -------------------------------------------------------------------------------


def test_issue_verify_round_trip() -> None:
    token = issue_ear(make_claims(), KEY)
    result = verifier().verify(token, now=NOW + 1, expected_nonce=NONCE)
    assert isinstance(result, EarAttestation)
    assert isinstance(result, IssuerAssertion)
    assert result.status is Status.AFFIRMING
    assert result.issuer == "attquic tests 0.1"
    assert result.trust_vector == TrustVector(instance_identity=2, hardware=2, executables=2)
    assert result.claims.nonce == NONCE
    assert result.token == token.encode()
    assert result.verified_at == NOW + 1
    assert result.media_type == profile.EAR_JWT_MEDIA_TYPE
    assert result.submodule == "tdx"


def test_issued_token_uses_the_draft03_dialect() -> None:
    token = issue_ear(make_claims(), KEY)
    header_b64, payload_b64, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    assert header == {"alg": "ES256", "typ": "JWT"}
    assert payload["eat_profile"] == IETF_PROFILE == "tag:ietf.org,2026:rats/ear#03"
    assert payload["ear_verifier_id"] == {"developer": "attquic tests", "build": "0.1"}
    assert payload["submods"]["tdx"] == {
        "ear_status": "affirming",
        "ear_trustworthiness_vector": {"instance-identity": 2, "executables": 2, "hardware": 2},
        "ear_appraisal_policy_ids": ["policy:attquic/test"],
    }
    assert payload["eat_nonce"] == b64url(NONCE)
    assert not any(name.startswith("ear.") for name in payload)


def test_issued_token_uses_the_veraison_dialect() -> None:
    token = issue_ear(make_claims(profile_=VERAISON_PROFILE), KEY)
    header_b64, payload_b64, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    assert header == {"alg": "ES256", "typ": "JWT"}
    assert payload["eat_profile"] == VERAISON_PROFILE
    assert payload["ear.verifier-id"] == {"developer": "attquic tests", "build": "0.1"}
    assert payload["submods"]["tdx"]["ear.status"] == "affirming"
    assert payload["submods"]["tdx"]["ear.appraisal-policy-id"] == "policy:attquic/test"
    assert payload["submods"]["tdx"]["ear.trustworthiness-vector"] == {
        "instance-identity": 2,
        "executables": 2,
        "hardware": 2,
    }
    assert payload["eat_nonce"] == b64url(NONCE)


def test_ietf_dialect_round_trip() -> None:
    claims = make_claims(profile_=IETF_PROFILE)
    encoded = encode_claims(claims)
    assert encoded["ear_verifier_id"] == {"developer": "attquic tests", "build": "0.1"}
    assert encoded["submods"]["tdx"]["ear_appraisal_policy_ids"] == ["policy:attquic/test"]
    assert decode_claims(encoded) == claims
    token = issue_ear(claims, KEY)
    assert verifier().verify(token, now=NOW, expected_nonce=NONCE).claims.profile == IETF_PROFILE


def test_claims_decode_is_inverse_of_encode_for_both_dialects() -> None:
    """The profile decides the claim names; a mismatch is malformed."""
    mixed = encode_claims(make_claims(profile_=VERAISON_PROFILE), Dialect.IETF)
    with pytest.raises(EvidenceInvalid):
        decode_claims(mixed)
    for profile_, dialect in ((VERAISON_PROFILE, Dialect.VERAISON), (IETF_PROFILE, Dialect.IETF)):
        claims = replace(
            make_claims(profile_=profile_), status=Status.WARNING, raw_evidence=b"\x00\xff"
        )
        claims = replace(claims, nbf=NOW - 5)
        assert claims.dialect is dialect
        again = decode_claims(encode_claims(claims))
        assert again == claims
        assert again.submods == claims.submods
        assert again.status is Status.WARNING
        assert again.raw_evidence == b"\x00\xff"
        assert again.nbf == NOW - 5


def test_bytes_token_and_kid_header() -> None:
    token = issue_ear(make_claims(), KEY, kid="k1")
    assert (
        verifier().verify(token.encode(), now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING
    )


def test_second_trusted_key_is_tried() -> None:
    token = issue_ear(make_claims(), KEY)
    v = EarVerifier([OTHER_KEY, KEY])
    assert v.verify(token, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING


def test_padded_nonce_from_veraison_services_is_accepted() -> None:
    claims = encode_claims(make_claims(nonce=None))
    claims["eat_nonce"] = base64.urlsafe_b64encode(NONCE).decode()  # Go URLEncoding pads
    assert claims["eat_nonce"].endswith("=")
    assert decode_claims(claims).nonce == NONCE


# --- one negative test per check -------------------------------------------------------------


def test_forged_signature_is_rejected() -> None:
    token = issue_ear(make_claims(), KEY)
    header, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[5] ^= 1
    with pytest.raises(EvidenceInvalid, match="signature"):
        verifier().verify(f"{header}.{payload}.{b64url(bytes(raw))}", now=NOW, expected_nonce=NONCE)


def test_modified_claims_are_rejected() -> None:
    token = issue_ear(make_claims(status=Status.WARNING), KEY)
    header, _, sig = token.split(".")
    forged = json.dumps(encode_claims(make_claims())).encode()
    with pytest.raises(EvidenceInvalid, match="signature"):
        verifier().verify(f"{header}.{b64url(forged)}.{sig}", now=NOW, expected_nonce=NONCE)


def test_untrusted_key_is_rejected() -> None:
    token = issue_ear(make_claims(), OTHER_KEY)
    with pytest.raises(EvidenceInvalid, match="trusted"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_embedded_header_jwk_is_not_trusted() -> None:
    from joserfc import jws

    payload = json.dumps(encode_claims(make_claims())).encode()
    header = {"alg": "ES256", "jwk": public_jwk(OTHER_KEY)}
    token = jws.serialize_compact(header, payload, OTHER_KEY, algorithms=["ES256"])
    with pytest.raises(EvidenceInvalid, match="trusted"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_expired_is_rejected_beyond_the_skew() -> None:
    token = issue_ear(make_claims(exp=NOW + 100), KEY)
    v = verifier(clock_skew=60)
    assert v.verify(token, now=NOW + 159, expected_nonce=NONCE).status is Status.AFFIRMING
    with pytest.raises(EvidenceInvalid, match="expired"):
        v.verify(token, now=NOW + 160, expected_nonce=NONCE)


def test_issued_in_the_future_is_rejected() -> None:
    token = issue_ear(make_claims(iat=NOW + 120), KEY)
    with pytest.raises(EvidenceInvalid, match="future"):
        verifier(clock_skew=60).verify(token, now=NOW, expected_nonce=NONCE)


def test_issued_in_the_future_within_the_skew_is_accepted_to_the_second() -> None:
    token = issue_ear(make_claims(iat=NOW + 60, exp=NOW + 600), KEY)
    v = verifier(clock_skew=60)
    assert v.verify(token, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING
    with pytest.raises(EvidenceInvalid, match="future"):
        v.verify(token, now=NOW - 1, expected_nonce=NONCE)


def test_not_before_is_enforced() -> None:
    token = issue_ear(replace(make_claims(), nbf=NOW + 120), KEY)
    with pytest.raises(EvidenceInvalid, match="nbf"):
        verifier(clock_skew=60).verify(token, now=NOW, expected_nonce=NONCE)


def test_not_before_within_the_skew_is_accepted_to_the_second() -> None:
    token = issue_ear(replace(make_claims(), nbf=NOW + 60), KEY)
    v = verifier(clock_skew=60)
    assert v.verify(token, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING
    with pytest.raises(EvidenceInvalid, match="nbf"):
        v.verify(token, now=NOW - 1, expected_nonce=NONCE)


def test_max_age_applies_without_exp() -> None:
    token = issue_ear(make_claims(exp=None), KEY)
    v = verifier(max_age=300, clock_skew=0)
    assert v.verify(token, now=NOW + 300, expected_nonce=NONCE)
    with pytest.raises(EvidenceInvalid, match="maximum age"):
        v.verify(token, now=NOW + 301, expected_nonce=NONCE)


def test_other_nonce_is_a_binding_mismatch() -> None:
    token = issue_ear(make_claims(), KEY)
    with pytest.raises(BindingMismatch):
        verifier().verify(token, now=NOW, expected_nonce=bytes(32))


def test_missing_nonce_is_a_binding_mismatch() -> None:
    token = issue_ear(make_claims(nonce=None), KEY)
    with pytest.raises(BindingMismatch):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_nonce_prefix_is_a_binding_mismatch() -> None:
    token = issue_ear(make_claims(nonce=NONCE + b"\x00" * 8), KEY)
    with pytest.raises(BindingMismatch):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def _hs256_token(secret: bytes, claims: dict[str, object]) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def test_hs256_key_confusion_is_rejected() -> None:
    pem = KEY.as_pem(private=False)
    token = _hs256_token(pem, encode_claims(make_claims()))
    with pytest.raises(EvidenceInvalid, match="algorithm"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


@pytest.mark.parametrize("signature", ["", "AAAA"])
def test_alg_none_is_rejected(signature: str) -> None:
    header = b64url(b'{"alg":"none"}')
    payload = b64url(json.dumps(encode_claims(make_claims())).encode())
    with pytest.raises(EvidenceInvalid):
        verifier().verify(f"{header}.{payload}.{signature}", now=NOW, expected_nonce=NONCE)


def test_es384_header_is_rejected_when_only_es256_is_allowed() -> None:
    key = load_private_key(ec.generate_private_key(ec.SECP384R1()))
    token = issue_ear(make_claims(), key, alg="ES384")
    with pytest.raises(EvidenceInvalid, match="algorithm"):
        EarVerifier([key]).verify(token, now=NOW, expected_nonce=NONCE)
    v = EarVerifier([key], algorithms=("ES384",))
    assert v.verify(token, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING


def test_crit_header_is_rejected() -> None:
    from joserfc import jws

    payload = json.dumps(encode_claims(make_claims())).encode()
    token = jws.serialize_compact(
        {"alg": "ES256", "crit": ["b64"], "b64": True}, payload, KEY, algorithms=["ES256"]
    )
    with pytest.raises(EvidenceInvalid):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


@pytest.mark.parametrize("status", [Status.WARNING, Status.CONTRAINDICATED, Status.NONE])
def test_non_affirming_status_is_rejected(status: Status) -> None:
    token = issue_ear(make_claims(status=status), KEY)
    with pytest.raises(PolicyRejected) as info:
        verifier().verify(token, now=NOW, expected_nonce=NONCE)
    assert status.json_name in info.value.reasons[0]


def test_required_warning_accepts_warning_but_not_contraindicated() -> None:
    v = verifier(required_status="warning")
    ok = issue_ear(make_claims(status=Status.WARNING), KEY)
    assert v.verify(ok, now=NOW, expected_nonce=NONCE).status is Status.WARNING
    bad = issue_ear(make_claims(status=Status.CONTRAINDICATED), KEY)
    with pytest.raises(PolicyRejected):
        v.verify(bad, now=NOW, expected_nonce=NONCE)


def test_worse_top_level_status_is_rejected() -> None:
    token = issue_ear(replace(make_claims(), status=Status.CONTRAINDICATED), KEY)
    with pytest.raises(PolicyRejected, match="overall"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_missing_submodule_is_rejected() -> None:
    token = issue_ear(make_claims(submodule="sgx"), KEY)
    with pytest.raises(PolicyRejected, match="tdx"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_wrong_profile_is_rejected() -> None:
    token = issue_ear(make_claims(profile_="tag:example.com,2024:other"), KEY)
    with pytest.raises(EvidenceInvalid, match="profile"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)
    with pytest.raises(EvidenceInvalid, match="profile"):
        verifier(expected_profile=IETF_PROFILE).verify(
            issue_ear(make_claims(profile_=VERAISON_PROFILE), KEY), now=NOW, expected_nonce=NONCE
        )
    with pytest.raises(EvidenceInvalid, match="profile"):
        verifier(expected_profile=VERAISON_PROFILE).verify(
            issue_ear(make_claims(), KEY), now=NOW, expected_nonce=NONCE
        )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "..",
        ".eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        "eyJhbGciOiJFUzI1NiJ9.e30.AA!A",
        "bm90IGpzb24.e30.AAAA",
        "WzFd.e30.AAAA",
        "\u00e9.e30.AAAA",
    ],
)
def test_malformed_tokens_are_evidence_invalid(token: str) -> None:
    with pytest.raises(EvidenceInvalid):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


_VERAISON_NAMES = {
    "vid": "ear.verifier-id",
    "status": "ear.status",
    "tv": "ear.trustworthiness-vector",
    "pid": "ear.appraisal-policy-id",
    "pids": ["a"],
}
_IETF_NAMES = {
    "vid": "ear_verifier_id",
    "status": "ear_status",
    "tv": "ear_trustworthiness_vector",
    "pid": "ear_appraisal_policy_ids",
    "pids": "a",
}


@pytest.mark.parametrize(
    ("profile_", "n"), [(VERAISON_PROFILE, _VERAISON_NAMES), (IETF_PROFILE, _IETF_NAMES)]
)
@pytest.mark.parametrize(
    "mutate",
    [
        lambda c, n: c.pop("eat_profile"),
        lambda c, n: c.pop("iat"),
        lambda c, n: c.update(iat=1.5),
        lambda c, n: c.update(iat=True),
        lambda c, n: c.update(exp="soon"),
        lambda c, n: c.pop(n["vid"]),
        lambda c, n: c.update({n["vid"]: {"developer": "x"}}),
        lambda c, n: c.update({n["vid"]: {"developer": "x", "build": 1}}),
        lambda c, n: c.update(submods={}),
        lambda c, n: c.update(submods=[]),
        lambda c, n: c["submods"].update(tdx="affirming"),
        lambda c, n: c["submods"]["tdx"].pop(n["status"]),
        lambda c, n: c["submods"]["tdx"].update({n["status"]: "great"}),
        lambda c, n: c["submods"]["tdx"].update({n["status"]: 2}),
        lambda c, n: c["submods"]["tdx"].update({n["tv"]: {"hardware": 300}}),
        lambda c, n: c["submods"]["tdx"].update({n["tv"]: {"colour": 2}}),
        lambda c, n: c["submods"]["tdx"].update({n["tv"]: [2]}),
        lambda c, n: c["submods"]["tdx"].update({n["pid"]: n["pids"]}),
        lambda c, n: c.update({n["status"]: "excellent"}),
        lambda c, n: c.update(eat_nonce="short"),
        lambda c, n: c.update(eat_nonce="not base64!"),
        lambda c, n: c.update(eat_nonce=["AAAAAAAAAAA"]),
        lambda c, n: c.update(eat_nonce=b64url(bytes(65))),
    ],
)
def test_malformed_claims_are_evidence_invalid(
    profile_: str, n: dict[str, object], mutate: object
) -> None:
    claims = encode_claims(make_claims(profile_=profile_))
    mutate(claims, n)  # type: ignore[operator]
    from joserfc import jws

    token = jws.serialize_compact(
        {"alg": "ES256"}, json.dumps(claims).encode(), KEY, algorithms=["ES256"]
    )
    with pytest.raises(EvidenceInvalid):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


def test_duplicate_claim_names_are_rejected() -> None:
    from joserfc import jws

    payload = json.dumps(encode_claims(make_claims()))[:-1] + ',"iat":1}'
    token = jws.serialize_compact({"alg": "ES256"}, payload.encode(), KEY, algorithms=["ES256"])
    with pytest.raises(EvidenceInvalid, match="duplicate"):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_input_raises_only_evidence_invalid(token: bytes | str) -> None:
    with pytest.raises(EvidenceInvalid):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_arbitrary_claims_json_raises_only_evidence_invalid(value: object) -> None:
    for profile_, n in ((VERAISON_PROFILE, _VERAISON_NAMES), (IETF_PROFILE, _IETF_NAMES)):
        claims = encode_claims(make_claims(profile_=profile_))
        claims["submods"]["tdx"][n["tv"]] = value
        claims[n["vid"]] = value if isinstance(value, dict) else claims[n["vid"]]
        with contextlib.suppress(EvidenceInvalid):
            decode_claims(claims)


# --- configuration and keys ------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), (), ("ES256", "RS256")])
def test_symmetric_or_none_algorithms_cannot_be_configured(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError):
        EarVerifier([KEY], algorithms=algorithms)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        EarVerifier([])
    with pytest.raises(ConfigurationError):
        EarVerifier([KEY], required_status="excellent")
    with pytest.raises(ConfigurationError):
        EarVerifier([KEY], expected_profile=())
    with pytest.raises(ConfigurationError):
        EarVerifier(["/nonexistent/key.pem"])
    with pytest.raises(ConfigurationError):
        issue_ear(make_claims(), load_public_key(KEY))
    with pytest.raises(ConfigurationError):
        issue_ear(make_claims(), KEY, alg="HS256")


def test_keys_load_from_pem_and_jwk_files_and_objects(tmp_path: Path) -> None:
    crypto_key = ec.generate_private_key(ec.SECP256R1())
    pem_public = crypto_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem_private = crypto_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "pub.pem").write_bytes(pem_public)
    (tmp_path / "key.pem").write_bytes(pem_private)
    signer = load_private_key(tmp_path / "key.pem")
    jwk = public_jwk(signer)
    assert jwk["alg"] == "ES256" and "d" not in jwk
    (tmp_path / "pub.jwk").write_text(json.dumps(jwk))
    token = issue_ear(make_claims(), str(tmp_path / "key.pem"))
    for source in (
        tmp_path / "pub.pem",
        str(tmp_path / "pub.jwk"),
        pem_public,
        jwk,
        crypto_key.public_key(),
        crypto_key,  # a private key is reduced to its public half
    ):
        v = EarVerifier([source])
        assert not v.trusted_keys[0].is_private
        assert v.verify(token, now=NOW, expected_nonce=NONCE).status is Status.AFFIRMING
    (tmp_path / "junk.pem").write_bytes(b"junk")
    with pytest.raises(ConfigurationError):
        load_public_key(tmp_path / "junk.pem")


# --- the channel verifier --------------------------------------------------------------------


def _binding(nonce: bytes = NONCE) -> Binding:
    return Binding(hash_name="sha256", binding=nonce, aik_pub_hash=os.urandom(32))


@pytest.mark.anyio
async def test_channel_verifier_accepts_matching_binding() -> None:
    channel = EarChannelVerifier(verifier())
    assert isinstance(channel, Verifier)
    token = issue_ear(make_claims(), KEY).encode()
    cmw = CMWRecord(profile.EAR_JWT_MEDIA_TYPE, token, profile.IND_ATTESTATION_RESULTS)
    result = await channel.verify(cmw, _binding(), now=NOW)
    assert result.status is Status.AFFIRMING and result.token == token
    collection = CMWCollection({"ear": cmw, "other": CMWRecord("application/x", b"x")})
    assert (await channel.verify(collection, _binding(), now=NOW)).status is Status.AFFIRMING


@pytest.mark.anyio
async def test_channel_verifier_rejects_other_binding() -> None:
    token = issue_ear(make_claims(), KEY).encode()
    cmw = CMWRecord(profile.EAR_JWT_MEDIA_TYPE, token, profile.IND_ATTESTATION_RESULTS)
    with pytest.raises(BindingMismatch):
        await EarChannelVerifier(verifier()).verify(cmw, _binding(bytes(32)), now=NOW)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cmw",
    [
        CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, b"quote", profile.IND_EVIDENCE),
        CMWRecord('application/eat+jwt; eat_profile="tag:example.com,1:x"', b"x"),
        CMWRecord(profile.EAR_JWT_MEDIA_TYPE, b"x", profile.IND_EVIDENCE),
        CMWRecord(60000, b"x"),
        CMWCollection(
            {
                "a": CMWRecord(profile.EAR_JWT_MEDIA_TYPE, b"x"),
                "b": CMWRecord(profile.EAR_JWT_MEDIA_TYPE, b"y"),
            }
        ),
    ],
)
async def test_channel_verifier_rejects_non_ear_cmws(cmw: CMWRecord | CMWCollection) -> None:
    with pytest.raises(EvidenceInvalid):
        await EarChannelVerifier(verifier()).verify(cmw, _binding(), now=NOW)


def test_media_type_profile_parsing() -> None:
    assert ear_profile_of_media_type(profile.EAR_JWT_MEDIA_TYPE) == IETF_PROFILE
    assert ear_profile_of_media_type(f"Application/EAT+JWT ;EAT_PROFILE = {IETF_PROFILE}") == (
        IETF_PROFILE
    )
    assert ear_profile_of_media_type("application/eat+cwt; eat_profile=x") is None
    assert ear_profile_of_media_type("application/eat+jwt") is None


def test_errors_stay_in_the_tree() -> None:
    for exc in (EvidenceInvalid, BindingMismatch, PolicyRejected):
        assert issubclass(exc, AttquicError)


def test_over_long_integer_literal_is_evidence_invalid() -> None:
    from joserfc import jws

    payload = json.dumps(encode_claims(make_claims())).replace(str(NOW), "9" * 5000, 1)
    token = jws.serialize_compact({"alg": "ES256"}, payload.encode(), KEY, algorithms=["ES256"])
    with pytest.raises(EvidenceInvalid):
        verifier().verify(token, now=NOW, expected_nonce=NONCE)
