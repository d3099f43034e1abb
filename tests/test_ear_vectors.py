"""The published EAR examples in tests/data/vectors/ear verify, or are rejected, as documented."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from attquic.ear import (
    IETF_PROFILE,
    VERAISON_PROFILE,
    EarVerifier,
    Status,
    TrustVector,
    decode_claims,
    issue_ear,
    load_private_key,
)
from attquic.errors import EvidenceInvalid, PolicyRejected


@pytest.fixture(scope="module")
def ear_dir(vectors_dir: Path) -> Path:
    return vectors_dir / "ear"


@pytest.fixture(scope="module")
def tokens(ear_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ear_dir / "tokens.json").read_text())
    return data


def _vector(tokens: dict[str, Any], name: str) -> dict[str, Any]:
    for vector in tokens["jwt_vectors"]:
        if vector["name"] == name:
            return dict(vector)
    raise AssertionError(f"vector {name} missing")


def _key_for(tokens: dict[str, Any], vector: dict[str, Any]) -> dict[str, Any]:
    name = vector["verification_key"]
    if name.startswith("JWK embedded"):
        # The Trustee vector: its signer published the key in the header; we pin it here as a
        # configured key (a header key is never trusted by itself).
        header = vector["header"]["jwk"]
        return {k: v for k, v in header.items() if k != "alg"}
    key: dict[str, Any] = tokens["keys"][name.split(" ")[0]]["public_jwk"]
    return key


def _now_for(vector: dict[str, Any]) -> int:
    claims = vector.get("claims", {})
    iat = claims.get("iat")
    return int(iat) + 10 if isinstance(iat, int) else 1_700_000_000


def test_every_jwt_vector_is_covered(tokens: dict[str, Any]) -> None:
    assert len(tokens["jwt_vectors"]) == 11


@pytest.mark.parametrize(
    "name",
    [
        "veraison_verify_pass_with_extensions",
        "veraison_arc_testJWT_no_jwk_header",
        "veraison_arc_testJWT_JWK_in_header",
        "rust_ear_verify_parsec_tpm",
    ],
)
def test_valid_veraison_vectors_decode(tokens: dict[str, Any], name: str) -> None:
    vector = _vector(tokens, name)
    assert vector["valid"] is True
    verifier = EarVerifier([_key_for(tokens, vector)])
    claims = verifier.decode(vector["jwt"], now=_now_for(vector))
    assert claims.profile == VERAISON_PROFILE
    assert claims.iat == vector["claims"]["iat"]
    expected_submods = vector["claims"]["submods"]
    assert set(claims.submods) == set(expected_submods)
    for label, appraisal in claims.submods.items():
        assert appraisal.status.json_name == expected_submods[label]["ear.status"]
    developer = vector["claims"]["ear.verifier-id"]["developer"]
    assert claims.verifier_id.developer == developer


def test_trust_vector_and_raw_evidence_of_arc_vector(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "veraison_arc_testJWT_no_jwk_header")
    claims = EarVerifier([_key_for(tokens, vector)]).decode(vector["jwt"], now=_now_for(vector))
    assert claims.raw_evidence == bytes.fromhex("deadbeef")
    assert claims.submods["test"].trust_vector == TrustVector(2, 2, 3, 2, 2, 2, 2, 2)
    assert claims.submods["test"].policy_ids == ("https://veraison.example/policy/1/60a0068d",)


def test_extensions_are_kept_uninterpreted(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "veraison_verify_pass_with_extensions")
    claims = EarVerifier([_key_for(tokens, vector)]).decode(vector["jwt"], now=_now_for(vector))
    extensions = claims.submods["test"].extensions
    assert extensions["ear.veraison.key-attestation"] == {"akpub": "YWtwdWIK"}
    assert extensions["ear.veraison.policy-claims"] == {"bar": "baz", "foo": "bar"}


def test_parsec_vector_full_verify_with_its_nonce(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "rust_ear_verify_parsec_tpm")
    nonce = base64.urlsafe_b64decode(vector["claims"]["eat_nonce"])
    verifier = EarVerifier([_key_for(tokens, vector)], submodule="PARSEC_TPM")
    result = verifier.verify(vector["jwt"], now=_now_for(vector), expected_nonce=nonce)
    assert result.status is Status.AFFIRMING
    assert result.issuer == "Veraison Project N/A"
    assert result.trust_vector is not None and result.trust_vector.hardware == 2


def test_rust_readme_vector_needs_its_placeholder_profile(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "rust_ear_readme_jwt")
    key = tokens["keys"]["rust_ear_test_key"]["public_jwk"]
    with pytest.raises(EvidenceInvalid, match="profile"):
        EarVerifier([key]).decode(vector["jwt"], now=_now_for(vector))
    claims = EarVerifier([key], expected_profile="test").decode(vector["jwt"], now=10)
    assert claims.submods["test"].status is Status.NONE


def test_rust_key_files_verify_the_readme_vector(tokens: dict[str, Any], ear_dir: Path) -> None:
    vector = _vector(tokens, "rust_ear_readme_jwt")
    for name in ("ec_key_pub.jwk", "ec_key_pub.pem", "ec_key.pem", "skey.pem"):
        verifier = EarVerifier([ear_dir / "rust-ear" / name], expected_profile="test")
        assert verifier.decode(vector["jwt"], now=10).iat == 1


def test_trustee_vector_is_rejected_as_expired(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "veraison_arc_testRealmJWT_expired_trustee")
    assert vector["valid"] is False and vector["es256_signature_valid"] is True
    profile = vector["claims"]["eat_profile"]
    verifier = EarVerifier([_key_for(tokens, vector)], expected_profile=profile)
    exp = vector["claims"]["exp"]
    # Before exp it is a well-formed, validly signed EAR: it is the time check that rejects it.
    assert verifier.decode(vector["jwt"], now=exp - 100).exp == exp
    with pytest.raises(EvidenceInvalid, match="expired"):
        verifier.decode(vector["jwt"], now=exp + 3600)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("veraison_verify_fail_hs256_alg", "algorithm"),
        ("veraison_verify_fail_alg_none", "algorithm|compact"),
        ("veraison_verify_fail_bad_jwt_format", "compact"),
        ("veraison_verify_fail_trailing_rubbish", "compact"),
        ("veraison_verify_fail_empty_claims", "eat_profile|missing"),
    ],
)
def test_invalid_vectors_are_rejected(tokens: dict[str, Any], name: str, match: str) -> None:
    vector = _vector(tokens, name)
    assert vector["valid"] is False
    verifier = EarVerifier([_key_for(tokens, vector)])
    with pytest.raises(EvidenceInvalid, match=match):
        verifier.decode(vector["jwt"], now=_now_for(vector))


def test_trailing_rubbish_vector_without_the_rubbish(tokens: dict[str, Any]) -> None:
    """Its note: without the suffix the signature is valid, but iat is a JSON float."""
    vector = _vector(tokens, "veraison_verify_fail_trailing_rubbish")
    jwt = ".".join(vector["jwt"].split(".")[:3])
    with pytest.raises(EvidenceInvalid, match="iat"):
        EarVerifier([_key_for(tokens, vector)]).decode(jwt, now=1_700_000_000)


def test_tokens_fail_under_the_wrong_test_key(tokens: dict[str, Any]) -> None:
    vector = _vector(tokens, "veraison_verify_pass_with_extensions")
    other = tokens["keys"]["rust_ear_test_key"]["public_jwk"]
    with pytest.raises(EvidenceInvalid, match="trusted"):
        EarVerifier([other]).decode(vector["jwt"], now=_now_for(vector))


@pytest.mark.parametrize(
    ("name", "label", "status"),
    [
        ("ear-claims.json", "test", Status.AFFIRMING),
        ("ear-claims-tv-ok.json", "test", Status.AFFIRMING),
        ("ear-claims-extension-ok.json", "test", Status.AFFIRMING),
        ("ear-claims-key-attestation-ok.json", "PARSEC_TPM", Status.AFFIRMING),
        # "ko" only for the Go library's key-attestation extension check (empty object), which
        # this model keeps uninterpreted; its status is contraindicated anyway.
        ("ear-claims-key-attestation-ko.json", "PARSEC_TPM", Status.CONTRAINDICATED),
    ],
)
def test_veraison_claims_files_decode_and_sign(
    ear_dir: Path, name: str, label: str, status: Status
) -> None:
    raw = json.loads((ear_dir / "veraison-ear" / name).read_text())
    claims = decode_claims(raw)
    assert claims.profile == VERAISON_PROFILE
    assert claims.submods[label].status is status
    # Sign with the upstream private test key and verify with its public twin.
    signer = load_private_key(ear_dir / "veraison-ear" / "skey.json")
    token = issue_ear(claims, signer)
    again = EarVerifier([ear_dir / "veraison-ear" / "pkey.json"], submodule=label).decode(
        token, now=claims.iat
    )
    assert again == claims


@pytest.mark.parametrize(
    ("name", "label", "status"),
    [
        ("ear-json-1.diag", "PSA", Status.CONTRAINDICATED),
        ("ear-json-2.diag", "CCA Realm", Status.AFFIRMING),
        ("ext-teep-json-1.diag", "PSA", Status.CONTRAINDICATED),
        ("ext-veraison-json-1.diag", "PSA_IOT", Status.CONTRAINDICATED),
        ("ext-veraison-json-2.diag", "PARSEC_TPM", Status.AFFIRMING),
    ],
)
def test_draft_json_examples_decode(ear_dir: Path, name: str, label: str, status: Status) -> None:
    raw = json.loads((ear_dir / "draft-ietf-rats-ear" / name).read_text())
    claims = decode_claims(raw)
    assert claims.profile == IETF_PROFILE
    assert claims.submods[label].status is status
    assert claims.submods[label].policy_ids == ("https://veraison.example/policy/1/60a0068d",)
    assert claims.raw_evidence is not None


def test_contraindicated_draft_example_is_rejected_by_policy(ear_dir: Path) -> None:
    raw = json.loads((ear_dir / "draft-ietf-rats-ear" / "ear-json-1.diag").read_text())
    raw["eat_nonce"] = base64.urlsafe_b64encode(b"n" * 16).decode()
    signer = load_private_key(ear_dir / "veraison-ear" / "skey.json")
    token = issue_ear(decode_claims(raw), signer)
    verifier = EarVerifier([ear_dir / "veraison-ear" / "pkey.json"], submodule="PSA")
    with pytest.raises(PolicyRejected, match="contraindicated"):
        verifier.verify(token, now=raw["iat"], expected_nonce=b"n" * 16)
    assert verifier.trusted_keys[0].as_dict()["x"] == "usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8"
